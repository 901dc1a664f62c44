//! What machine this is, in words, for records and reports.

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

/// Estimated peak single-precision GFLOP/s of the CPU: logical cores x the clock that
/// `/proc/cpuinfo` reports x 32 FLOP per cycle (two 8-wide fused multiply-add units, as on
/// every x86-64 core with AVX2 and FMA since Haswell and Zen 2). `None` off x86-64 or when
/// the clock is unknown.
pub fn peak_gflops() -> Option<f64> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = text
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    let fma = text
        .lines()
        .any(|l| l.starts_with("flags") && l.contains(" fma"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    fma.then(|| cores as f64 * mhz / 1000.0 * 32.0)
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

/// Peak resident memory of this process in MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    proc_kib("/proc/self/status", "VmHWM").map(|kib| kib / 1024.0)
}
