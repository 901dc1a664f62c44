//! The allocator setting that training steps need on glibc.

/// Keeps large freed blocks in the process. glibc's malloc maps each block above an adaptive
/// threshold afresh and unmaps it when freed, so without this every training step's buffers
/// (the saved activations, the fused kernels' outputs, burn's tensors: tens of MB) are
/// page-faulted in again (docs/performance.md has the cost).
///
/// Call it first thing in `main`, before other threads start; it changes nothing elsewhere
/// than on Linux with glibc. The environment equivalent is
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824`.
#[allow(unsafe_code)]
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes two allocator parameters and is thread-safe; its result
    // (0 on failure) leaves the defaults in place.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
