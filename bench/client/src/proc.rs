//! Resident memory of processes, from `/proc/PID/status`.

/// `VmRSS` plus `VmHWM` in KiB, summed over `pids` (a process that is gone counts 0).
pub fn memory_kib(pids: &[u32]) -> (u64, u64) {
    pids.iter().fold((0, 0), |(rss, hwm), pid| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        (
            rss + field_kib(&status, "VmRSS:"),
            hwm + field_kib(&status, "VmHWM:"),
        )
    })
}

fn field_kib(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Comma-separated pids.
pub fn parse_pids(list: &str) -> Vec<u32> {
    list.split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(field_kib(status, "VmRSS:"), 1024);
        assert_eq!(field_kib(status, "VmHWM:"), 2048);
        assert_eq!(field_kib(status, "VmSwap:"), 0);
    }
}
