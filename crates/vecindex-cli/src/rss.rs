//! Resident memory of this process, from /proc/self/status (Linux; 0 elsewhere). Shared by the
//! `vecindex bench` grid and the `peer-bench` binary (crates/vecindex-bench includes this file).

/// A size field of /proc/self/status (VmRSS:, VmHWM:) in bytes; 0 where unavailable.
pub fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Resets the peak-RSS counter (VmHWM) where the kernel allows it.
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
