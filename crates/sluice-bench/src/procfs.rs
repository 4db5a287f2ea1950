//! CPU time and memory of a local process (the server under test, or the bench itself), read
//! from `/proc/PID/stat` and `/proc/PID/status`. Linux only; elsewhere the readings are absent.

use serde::Serialize;
use std::time::Duration;

/// A reading of one process's accumulated CPU time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSample {
    /// User plus system time of all its threads so far.
    pub cpu: Duration,
}

/// What a process used over a measured window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProcessUsage {
    /// The process.
    pub pid: u32,
    /// CPU time (user + system, all threads) spent in the window, in milliseconds.
    pub cpu_ms: f64,
    /// CPU time per 1,000 messages of the window, in milliseconds.
    pub cpu_ms_per_1000_msgs: Option<f64>,
    /// Cores kept busy on average over the window.
    pub cores_busy: f64,
    /// Peak resident set size over the process's life (`VmHWM`), in MiB.
    pub peak_rss_mib: Option<f64>,
    /// Resident set size at the end of the window (`VmRSS`), in MiB.
    pub rss_mib: Option<f64>,
}

/// Reads the CPU time of `pid` (`None` for the bench itself: `/proc/self`).
pub fn cpu(pid: Option<u32>) -> std::io::Result<CpuSample> {
    let text = std::fs::read_to_string(proc_path(pid, "stat"))?;
    parse_stat_cpu(&text, clock_ticks_per_sec())
        .map(|cpu| CpuSample { cpu })
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "unreadable /proc/PID/stat"))
}

/// Reads a `kB` field (`VmHWM`, `VmRSS`) of `/proc/PID/status`, in MiB.
pub fn status_mib(pid: Option<u32>, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(proc_path(pid, "status")).ok()?;
    parse_status_kib(&text, field).map(|kib| kib as f64 / 1024.0)
}

/// The usage between two readings of the same process.
pub fn usage(pid: u32, own: bool, start: CpuSample, end: CpuSample, wall: Duration, messages: u64) -> ProcessUsage {
    let who = if own { None } else { Some(pid) };
    let cpu_ms = end.cpu.saturating_sub(start.cpu).as_secs_f64() * 1000.0;
    ProcessUsage {
        pid,
        cpu_ms,
        cpu_ms_per_1000_msgs: (messages > 0).then(|| cpu_ms * 1000.0 / messages as f64),
        cores_busy: if wall.is_zero() { 0.0 } else { cpu_ms / 1000.0 / wall.as_secs_f64() },
        peak_rss_mib: status_mib(who, "VmHWM"),
        rss_mib: status_mib(who, "VmRSS"),
    }
}

/// Threads of `pid` (`Threads:` of `/proc/PID/status`).
pub fn threads(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(proc_path(Some(pid), "status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok())
}

/// Open file descriptors of `pid` (entries of `/proc/PID/fd`; needs the same user or root).
pub fn open_fds(pid: u32) -> Option<u64> {
    std::fs::read_dir(proc_path(Some(pid), "fd")).ok().map(|d| d.count() as u64)
}

/// Raises this process's soft limit on open files to its hard limit (each connection is a
/// file descriptor); returns the soft limit in force afterwards.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Some(lim.rlim_cur)
}

fn proc_path(pid: Option<u32>, file: &str) -> String {
    match pid {
        Some(p) => format!("/proc/{p}/{file}"),
        None => format!("/proc/self/{file}"),
    }
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime (fields 14 and 15) of a `stat` line. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from the
/// last `)`.
fn parse_stat_cpu(stat: &str, ticks_per_sec: u64) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    let ticks = utime + stime;
    Some(
        Duration::from_secs(ticks / ticks_per_sec)
            + Duration::from_nanos(ticks % ticks_per_sec * 1_000_000_000 / ticks_per_sec),
    )
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    //! Goal: CPU and memory readings parse from real-shaped /proc files, including command
    //! names with spaces and parentheses; the usage arithmetic is per 1,000 messages.
    //! Method: parse fixed text, and read this test process's own files.

    use super::*;

    #[test]
    fn stat_cpu_counts_from_the_last_parenthesis() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 9 0 100 1000000 500";
        assert_eq!(parse_stat_cpu(stat, 100), Some(Duration::from_millis(4000)));
        assert_eq!(parse_stat_cpu("garbage", 100), None);
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tsluice\nVmPeak:\t  200 kB\nVmHWM:\t   2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(1024));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn own_process_can_be_read() {
        assert!(cpu(None).is_ok());
        assert!(status_mib(None, "VmHWM").unwrap() > 0.0);
        let me = std::process::id();
        assert!(threads(me).unwrap() >= 1);
        assert!(open_fds(me).unwrap() >= 1);
    }

    #[test]
    fn usage_is_per_thousand_messages() {
        let u = usage(
            1,
            true,
            CpuSample { cpu: Duration::from_millis(500) },
            CpuSample { cpu: Duration::from_millis(1500) },
            Duration::from_secs(2),
            100_000,
        );
        assert_eq!(u.cpu_ms, 1000.0);
        assert_eq!(u.cpu_ms_per_1000_msgs, Some(10.0));
        assert_eq!(u.cores_busy, 0.5);
    }
}
