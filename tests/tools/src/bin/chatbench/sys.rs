//! What the machine says: CPU time and memory of processes from /proc, Redis command counts,
//! loopback bytes. Deterministic counters do not move with noise; CPU time is per process.

use std::process::Command;

/// Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on Linux).
const TICKS: f64 = 100.0;

fn pids_named(name: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .collect()
}

/// CPU seconds (user + system) used so far by these processes.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            // Fields after the command name (which may contain spaces) start after ')'.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / TICKS)
        })
        .sum()
}

/// Resident memory in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb * 1024)
}

/// The processes whose CPU a message costs: the engine's and the backends'.
#[derive(Debug, Clone)]
pub struct Processes {
    pub groups: Vec<(String, Vec<u32>)>,
}

impl Processes {
    pub fn find(engine: &[(&str, u32)]) -> Self {
        let mut groups: Vec<(String, Vec<u32>)> = engine.iter().map(|(n, p)| ((*n).to_owned(), vec![*p])).collect();
        for (label, comm) in [("rabbitmq", "beam.smp"), ("postgres", "postgres"), ("redis", "redis-server")] {
            let pids = pids_named(comm);
            if !pids.is_empty() {
                groups.push((label.to_owned(), pids));
            }
        }
        Self { groups }
    }

    pub fn cpu(&self) -> Vec<(String, f64)> {
        // postgres forks a backend per connection: look the group up again each time.
        self.groups
            .iter()
            .map(|(label, pids)| {
                let pids = if label == "postgres" { pids_named("postgres") } else { pids.clone() };
                (label.clone(), cpu_seconds(&pids))
            })
            .collect()
    }
}

pub fn redis_commands() -> Option<u64> {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "INFO", "stats"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:").and_then(|v| v.trim().parse().ok()))
}

pub fn redis_used_memory() -> Option<u64> {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "INFO", "memory"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:").and_then(|v| v.trim().parse().ok()))
}

/// Bytes received on the loopback interface so far.
pub fn loopback_bytes() -> u64 {
    std::fs::read_to_string("/proc/net/dev")
        .ok()
        .and_then(|s| s.lines().find(|l| l.trim_start().starts_with("lo:")).map(str::to_owned))
        .and_then(|l| l.split_once(':').and_then(|(_, r)| r.split_whitespace().next().and_then(|v| v.parse().ok())))
        .unwrap_or(0)
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024 / 1024);
    format!("{cores} cores, {mem} GiB, {cpu}")
}

/// A snapshot of every counter, to subtract.
#[derive(Debug, Clone)]
pub struct Counters {
    pub cpu: Vec<(String, f64)>,
    pub redis_commands: u64,
    pub loopback: u64,
}

impl Counters {
    pub fn take(p: &Processes) -> Self {
        Self { cpu: p.cpu(), redis_commands: redis_commands().unwrap_or(0), loopback: loopback_bytes() }
    }

    /// Per-unit costs between two snapshots: CPU microseconds by process and in all, Redis
    /// commands and loopback bytes.
    pub fn per(&self, later: &Counters, units: f64) -> serde_json::Value {
        let units = units.max(1.0);
        let mut by_process = serde_json::Map::new();
        let mut total = 0.0;
        for ((label, before), (_, after)) in self.cpu.iter().zip(&later.cpu) {
            let us = (after - before).max(0.0) * 1e6 / units;
            total += us;
            by_process.insert(label.clone(), serde_json::json!((us * 10.0).round() / 10.0));
        }
        serde_json::json!({
            "cpu_us": (total * 10.0).round() / 10.0,
            "cpu_us_by_process": by_process,
            "redis_commands": ((later.redis_commands.saturating_sub(self.redis_commands)) as f64 / units * 100.0).round() / 100.0,
            "loopback_bytes": ((later.loopback.saturating_sub(self.loopback)) as f64 / units).round(),
        })
    }
}
