//! CPU time and resident memory of a process, read from `/proc/<pid>/`, so each phase can
//! say how much server CPU it cost without a profiler.

use std::time::Duration;

/// Linux reports `utime`/`stime` in USER_HZ, which is 100 on every mainstream ABI.
const USER_HZ: f64 = 100.0;

/// User plus system CPU time consumed so far by `pid` (`self` for this process).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are plain numbers.
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `comm`.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / USER_HZ))
}

/// `VmRSS` of `pid` in MiB.
pub fn rss_mib(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU used by the server and by this load generator over one phase.
pub struct CpuMeter {
    server_pid: Option<String>,
    server_start: Option<Duration>,
    own_start: Option<Duration>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<&str>) -> CpuMeter {
        CpuMeter {
            server_pid: server_pid.map(str::to_string),
            server_start: server_pid.and_then(cpu_time),
            own_start: cpu_time("self"),
        }
    }

    /// `server CPU x s (y µs/<unit>), loadgen CPU z s`, or empty when unreadable.
    pub fn report(&self, requests: usize, unit: &str) -> String {
        let mut parts = Vec::new();
        if let (Some(pid), Some(start)) = (&self.server_pid, self.server_start) {
            if let Some(now) = cpu_time(pid) {
                let used = now.saturating_sub(start);
                let per_request = used.as_secs_f64() * 1e6 / requests.max(1) as f64;
                parts.push(format!(
                    "server CPU {:.2} s ({per_request:.0} µs/{unit})",
                    used.as_secs_f64()
                ));
            }
        }
        if let (Some(start), Some(now)) = (self.own_start, cpu_time("self")) {
            parts.push(format!(
                "loadgen CPU {:.2} s",
                now.saturating_sub(start).as_secs_f64()
            ));
        }
        parts.join(", ")
    }
}
