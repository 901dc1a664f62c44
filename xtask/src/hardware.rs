//! What machine this is, in words, for records and reports.

// The peak-FLOPS probe runs FMA loops compiled for AVX2 and AVX-512F.
#![allow(unsafe_code)]

/// The CPU model name from `/proc/cpuinfo`, or the architecture when unknown.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

/// The number after `key` in a `/proc` file of `key: value kB` lines, in KiB.
fn proc_kib(file: &str, key: &str) -> Option<f64> {
    std::fs::read_to_string(file)
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak single-precision GFLOP/s of this CPU, measured: every logical core runs chains of
/// independent fused multiply-adds on registers (AVX-512 where present and `avx512`, else AVX2
/// with FMA: the peak of the instructions the kernels run) for about `seconds`. `None` off
/// x86-64 or without AVX-512F or AVX2 with FMA.
pub fn peak_gflops(seconds: f64, avx512: bool) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let wide = avx512 && std::arch::is_x86_feature_detected!("avx512f");
        // The narrow loop needs both AVX2 and FMA: some CPUs have FMA without AVX2.
        let narrow = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if !(wide || narrow) {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let flops: f64 = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..cores)
                .map(|_| scope.spawn(move || fma_flops(wide, seconds)))
                .collect();
            workers.into_iter().filter_map(|w| w.join().ok()).sum()
        });
        Some(flops / seconds / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (seconds, avx512);
        None
    }
}

/// FLOPs done by one thread's FMA loop in about `seconds`.
#[cfg(target_arch = "x86_64")]
fn fma_flops(wide: bool, seconds: f64) -> f64 {
    let start = std::time::Instant::now();
    let mut flops = 0.0;
    let mut sink = 0.0f32;
    while start.elapsed().as_secs_f64() < seconds {
        let seed = std::hint::black_box(flops as f32 * 1e-12);
        // SAFETY: each function runs only where its instruction set was detected above.
        let (done, value) = unsafe {
            if wide {
                fma_loop_avx512(seed, 1 << 20)
            } else {
                fma_loop_avx2(seed, 1 << 20)
            }
        };
        flops += done;
        sink += value;
    }
    std::hint::black_box(sink);
    flops
}

/// `rounds` x 12 independent 16-wide FMAs (enough chains to cover the latency of two units),
/// each chain starting from its own value so that none can be merged with another.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_loop_avx512(seed: f32, rounds: usize) -> (f64, f32) {
    use std::arch::x86_64::*;
    let mut acc: [__m512; 12] = std::array::from_fn(|i| _mm512_set1_ps(seed + i as f32));
    let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    let total = acc
        .iter()
        .fold(_mm512_set1_ps(0.0), |s, v| _mm512_add_ps(s, *v));
    (rounds as f64 * 12.0 * 32.0, _mm512_reduce_add_ps(total))
}

/// `rounds` x 12 independent 8-wide FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop_avx2(seed: f32, rounds: usize) -> (f64, f32) {
    use std::arch::x86_64::*;
    let mut acc: [__m256; 12] = std::array::from_fn(|i| _mm256_set1_ps(seed + i as f32));
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
    for _ in 0..rounds {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    let total = acc
        .iter()
        .fold(_mm256_set1_ps(0.0), |s, v| _mm256_add_ps(s, *v));
    // SAFETY: `lanes` holds exactly eight f32, what an unaligned 256-bit store writes.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
    (rounds as f64 * 12.0 * 16.0, lanes.iter().sum())
}

/// Total memory in GiB, from `/proc/meminfo`.
pub fn memory_gib() -> Option<f64> {
    proc_kib("/proc/meminfo", "MemTotal").map(|kib| kib / 1024.0 / 1024.0)
}

/// One line: CPU model, logical cores, memory.
pub fn describe() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = memory_gib()
        .map(|g| format!(", {g:.0} GiB RAM"))
        .unwrap_or_default();
    format!("{} ({cores} logical cores{memory})", cpu_model())
}

/// The memory this process can still take, in bytes, and where the figure comes from: the
/// least of the machine's available memory (`MemAvailable`), a cgroup's limit less its usage,
/// and an address-space limit (`ulimit -v`) less what the process has mapped. `None` where
/// none can be read.
pub fn available_memory() -> Option<(u64, String)> {
    let mut least: Option<(u64, String)> = None;
    let mut offer = |bytes: u64, source: &str| {
        if least.as_ref().is_none_or(|(b, _)| bytes < *b) {
            least = Some((bytes, source.to_owned()));
        }
    };
    if let Some(kib) = proc_kib("/proc/meminfo", "MemAvailable") {
        offer((kib * 1024.0) as u64, "MemAvailable in /proc/meminfo");
    }
    let number =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    for (limit, usage) in [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ] {
        // An unlimited cgroup says `max` (v2) or a number near 2^63 (v1).
        if let (Some(limit), Some(usage)) = (number(limit), number(usage))
            && limit < 1 << 60
        {
            offer(limit.saturating_sub(usage), "the cgroup's memory limit");
        }
    }
    if let Some(limit) = address_space_limit() {
        let mapped = proc_kib("/proc/self/status", "VmSize").map_or(0.0, |kib| kib * 1024.0);
        offer(
            limit.saturating_sub(mapped as u64),
            "the address-space limit (ulimit -v) less what this process has mapped",
        );
    }
    least
}

/// The soft limit on this process's address space, where there is one.
#[cfg(unix)]
fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` into the struct it is given, which lives here.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } == 0;
    // `rlim_t` is not 64 bits wide on every Unix.
    #[allow(clippy::unnecessary_cast)]
    let current = limit.rlim_cur as u64;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

#[cfg(not(unix))]
fn address_space_limit() -> Option<u64> {
    None
}

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    proc_kib("/proc/self/status", "VmHWM").map(|kib| kib / 1024.0)
}
