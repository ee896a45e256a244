//! CPU time and memory of the process under test, read from `/proc`.
//!
//! A proxy may be several processes (nginx's master and worker, nghttpx's two) and several
//! threads; the watched pids count together with all their descendants. CPU time is
//! `utime + stime` of `/proc/PID/stat`, which covers every thread of a process; memory is the
//! sum of `VmRSS` (now) or `VmHWM` (peak since start) of `/proc/PID/status`. Shared pages of
//! several processes count once per process, as `ps` shows them.

use std::collections::HashMap;

/// Clock ticks per second of `/proc/PID/stat` times: Linux fixes `USER_HZ` at 100 for
/// user space on every architecture it runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes whose use is reported.
#[derive(Clone, Default)]
pub struct Watch {
    roots: Vec<u32>,
}

/// One reading of the watched processes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub processes: usize,
    pub cpu_ticks: u64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Sample {
    /// CPU seconds from `earlier` to this sample.
    pub fn cpu_seconds_since(&self, earlier: &Sample) -> f64 {
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / TICKS_PER_SECOND
    }
}

impl Watch {
    pub fn new(roots: Vec<u32>) -> Watch {
        Watch { roots }
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Reads CPU time and memory of the watched processes and their descendants now.
    pub fn sample(&self) -> Sample {
        let mut sample = Sample::default();
        if self.roots.is_empty() {
            return sample;
        }
        for pid in self.tree() {
            let Some(ticks) = cpu_ticks(pid) else {
                continue;
            };
            sample.processes += 1;
            sample.cpu_ticks += ticks;
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                sample.rss_kib += status_kib(&status, "VmRSS:");
                sample.hwm_kib += status_kib(&status, "VmHWM:");
            }
        }
        sample
    }

    /// The watched pids and all their descendants that are alive now.
    fn tree(&self) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(parent) = stat_fields(pid).and_then(|f| f.get(1)?.parse().ok()) {
                    children.entry(parent).or_default().push(pid);
                }
            }
        }
        let mut found = Vec::new();
        let mut queue = self.roots.clone();
        while let Some(pid) = queue.pop() {
            if found.contains(&pid) {
                continue;
            }
            found.push(pid);
            if let Some(kids) = children.get(&pid) {
                queue.extend(kids);
            }
        }
        found
    }
}

/// CPU time of the whole machine from the `cpu` line of `/proc/stat`: busy seconds (user,
/// nice, system, irq and softirq: interrupt time taken while a process runs counts in that
/// process's own times) and seconds stolen by the hypervisor. Busy time beyond the processes
/// of the benchmark is other load, which makes a run's numbers unreliable.
pub fn machine_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: u64 = [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| ticks.get(i).copied().unwrap_or(0))
        .sum();
    let steal = ticks.get(7).copied().unwrap_or(0);
    Some((
        busy as f64 / TICKS_PER_SECOND,
        steal as f64 / TICKS_PER_SECOND,
    ))
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces and
/// parentheses): index 0 is the state, 1 the parent pid, 11 `utime`, 12 `stime`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The value in KiB of a `Name:   1234 kB` line of `/proc/PID/status`, 0 when absent.
fn status_kib(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let watch = Watch::new(vec![std::process::id()]);
        let sample = watch.sample();
        assert_eq!(sample.processes, 1);
        assert!(sample.rss_kib > 0);
        assert!(sample.hwm_kib >= sample.rss_kib);
    }

    #[test]
    fn reads_the_machine() {
        let (busy, steal) = machine_seconds().expect("/proc/stat has a cpu line");
        assert!(busy > 0.0);
        assert!(steal >= 0.0);
    }

    #[test]
    fn parses_status_lines() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), 1024);
        assert_eq!(status_kib(status, "VmHWM:"), 2048);
        assert_eq!(status_kib(status, "VmSwap:"), 0);
    }
}
