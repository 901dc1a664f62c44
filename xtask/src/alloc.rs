//! The allocator: the system's, except that an allocation that fails ends the process with
//! one line saying how much was asked for and which run was training, instead of a bare
//! abort. Records already stored are whole (every file is written atomically), so nothing
//! computed is lost; the study resumes where it stopped.

// A global allocator is unsafe by definition; each block below says why it is sound.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The system allocator, reporting a failure in words.
pub struct Reporting;

/// The label of the run started last (`vary=init: raw p=0.005 rep 3`), for the report of a
/// failed allocation: fixed storage, so that reading it allocates nothing.
static LABEL: [AtomicU8; 192] = [const { AtomicU8::new(0) }; 192];
static LABEL_LEN: AtomicUsize = AtomicUsize::new(0);

/// Notes that `label` is being trained (the latest such note is what a failure names).
pub fn training(label: &str) {
    let bytes = &label.as_bytes()[..label.len().min(LABEL.len())];
    LABEL_LEN.store(0, Ordering::SeqCst);
    for (slot, &b) in LABEL.iter().zip(bytes) {
        slot.store(b, Ordering::Relaxed);
    }
    LABEL_LEN.store(bytes.len(), Ordering::SeqCst);
}

/// A message assembled in a fixed buffer (formatting integers into it allocates nothing).
struct Line {
    bytes: [u8; 512],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The one line that reports a failed allocation of `size` bytes while `label` trained.
fn message(size: usize, label: &[u8]) -> Line {
    let mut line = Line {
        bytes: [0; 512],
        len: 0,
    };
    let _ = write!(
        line,
        "error: out of memory: could not allocate {size} bytes ({} MiB)",
        size >> 20
    );
    if !label.is_empty() {
        let _ = line.write_str(" while training ");
        let _ = line.write_str(std::str::from_utf8(label).unwrap_or("a run"));
        let _ = line.write_str(" (or another run in progress)");
    }
    let _ = line.write_str(
        "; finished runs are stored: rerun with fewer --jobs, a smaller network, batch or --stack, or on a machine with more memory\n",
    );
    line
}

#[cold]
fn out_of_memory(size: usize) -> ! {
    let mut label = [0u8; 192];
    let len = LABEL_LEN.load(Ordering::SeqCst).min(label.len());
    for (b, slot) in label.iter_mut().zip(&LABEL).take(len) {
        *b = slot.load(Ordering::Relaxed);
    }
    let line = message(size, &label[..len]);
    exit_with(&line.bytes[..line.len])
}

#[cfg(unix)]
fn exit_with(text: &[u8]) -> ! {
    // SAFETY: `write` reads `text.len()` bytes of a live slice and `_exit` ends the process
    // at once; neither allocates, which matters here as the allocator has just failed.
    unsafe {
        libc::write(2, text.as_ptr().cast(), text.len());
        libc::_exit(1)
    }
}

#[cfg(not(unix))]
fn exit_with(_text: &[u8]) -> ! {
    std::process::abort()
}

// SAFETY: every call is forwarded to `System` with the caller's layout and pointer, so the
// contract of `GlobalAlloc` is `System`'s; a null result ends the process instead of
// returning.
unsafe impl GlobalAlloc for Reporting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_allocation_is_one_line_naming_the_run() {
        let line = message(
            822_083_584,
            b"channels=256,fc-width=4096: raw p=0.005 rep 0",
        );
        let text = std::str::from_utf8(&line.bytes[..line.len]).unwrap();
        assert!(
            text.starts_with("error: out of memory: could not allocate 822083584 bytes (784 MiB) while training channels=256,fc-width=4096: raw p=0.005 rep 0"),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 1);
        assert!(text.ends_with('\n'));
        let line = message(1 << 30, b"");
        let text = std::str::from_utf8(&line.bytes[..line.len]).unwrap();
        assert!(
            text.starts_with(
                "error: out of memory: could not allocate 1073741824 bytes (1024 MiB); "
            ),
            "{text}"
        );
    }

    #[test]
    fn the_label_is_the_last_started() {
        training("quick: raw p=0.01 rep 2");
        let len = LABEL_LEN.load(Ordering::SeqCst);
        let label: Vec<u8> = LABEL[..len]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(label, b"quick: raw p=0.01 rep 2");
    }
}
