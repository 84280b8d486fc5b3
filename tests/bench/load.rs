//! A closed-loop load generator: a fixed number of clients, each sending its next request as
//! soon as the last one answered, for a warm-up and then a measured window. Light on CPU
//! (it does not parse response bodies), and it reports its own CPU so the share it takes
//! from the server on the same machine is visible.
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One GraphQL request to repeat; `variables` is called per request (so requests can vary).
pub struct Request {
    pub url: String,
    pub token: Option<String>,
    pub query: String,
    pub variables: Arc<dyn Fn(u64) -> Value + Send + Sync>,
}

#[derive(Debug, Default, Clone)]
pub struct Run {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    /// Latencies of the measured window, in microseconds, sorted.
    pub latencies: Vec<u64>,
    /// CPU the driver itself used during the window, in cores.
    pub driver_cores: f64,
    /// CPU the server process tree used during the window, in cores.
    pub server_cores: f64,
    /// CPU the whole machine used during the window (server, database, driver, the rest),
    /// in cores: on a machine this size, what a request costs in all.
    pub machine_cores: f64,
    /// CPU PostgreSQL's processes used during the window, in cores (measured on SQLite runs
    /// too, where it is PostgreSQL idling beside them).
    pub database_cores: f64,
    /// CPU the hypervisor took from this machine during the window (/proc/stat's steal), in
    /// cores: while it is taken, the machine's own processes wait for no cause of theirs, and
    /// a closed loop's slowest requests are the ones caught in such a wait.
    pub steal_cores: f64,
}

impl Run {
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }
    pub fn p50_ms(&self) -> f64 {
        percentile(&self.latencies, 0.50) as f64 / 1000.0
    }
    pub fn p90_ms(&self) -> f64 {
        percentile(&self.latencies, 0.90) as f64 / 1000.0
    }
    pub fn p99_ms(&self) -> f64 {
        percentile(&self.latencies, 0.99) as f64 / 1000.0
    }
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Drives `request` from `concurrency` clients: `warmup` unmeasured, then `duration` measured.
/// `server_pid` is the process whose tree's CPU is reported.
pub async fn drive(
    request: Request,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("an HTTP client");
    let request = Arc::new(request);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::with_capacity(concurrency);
    for client in 0..concurrency {
        let (http, request, measuring, stop) = (
            http.clone(),
            request.clone(),
            measuring.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut out = Run::default();
            let mut n = client as u64;
            while !stop.load(Ordering::Relaxed) {
                let body = serde_json::json!({
                    "query": request.query,
                    "variables": (request.variables)(n),
                });
                n += concurrency as u64;
                let mut req = http.post(&request.url).json(&body);
                if let Some(t) = &request.token {
                    req = req.bearer_auth(t);
                }
                let sent = Instant::now();
                let result = match req.send().await {
                    Ok(resp) => {
                        let status = resp.status();
                        match resp.bytes().await {
                            Ok(b) if status.is_success() && !has_errors(&b) => Ok(()),
                            Ok(b) => Err(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&b[..b.len().min(300)])
                            )),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let took = sent.elapsed().as_micros() as u64;
                if !measuring.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                    continue;
                }
                out.requests += 1;
                match result {
                    Ok(()) => out.latencies.push(took),
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(e);
                    }
                }
            }
            out
        }));
    }
    tokio::time::sleep(warmup).await;
    let (driver_before, server_before) = (cpu_seconds(std::process::id()), tree_cpu(server_pid));
    let (machine_before, database_before) = (machine_busy_seconds(), database_cpu());
    let steal_before = machine_steal_seconds();
    let started = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let (driver_after, server_after) = (cpu_seconds(std::process::id()), tree_cpu(server_pid));
    let (machine_after, database_after) = (machine_busy_seconds(), database_cpu());
    let steal_after = machine_steal_seconds();
    let mut run = Run {
        seconds,
        driver_cores: (driver_after - driver_before) / seconds,
        server_cores: (server_after - server_before) / seconds,
        machine_cores: (machine_after - machine_before) / seconds,
        database_cores: database_after
            .iter()
            .map(|(pid, after)| after - database_before.get(pid).copied().unwrap_or(0.0))
            .sum::<f64>()
            / seconds,
        steal_cores: (steal_after - steal_before) / seconds,
        ..Run::default()
    };
    for c in clients {
        let part = c.await.expect("a client task");
        run.requests += part.requests;
        run.errors += part.errors;
        if run.first_error.is_none() {
            run.first_error = part.first_error;
        }
        run.latencies.extend(part.latencies);
    }
    run.latencies.sort_unstable();
    run
}

/// A GraphQL response with a top-level `errors` entry (responses put `data` first, and no
/// benchmark body contains the text `"errors":`).
fn has_errors(body: &[u8]) -> bool {
    body.windows(9).any(|w| w == b"\"errors\":")
}

/// User + system CPU seconds of one process (from /proc; 0 where that is missing).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// CPU seconds the whole machine has spent busy since boot (all but idle and I/O wait, from
/// /proc/stat; 0 where that is missing).
pub fn machine_busy_seconds() -> f64 {
    let ticks = machine_ticks();
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy / 100.0 // USER_HZ
}

/// CPU seconds the hypervisor has taken from this machine since boot (steal; 0 where /proc/stat
/// or the field is missing).
pub fn machine_steal_seconds() -> f64 {
    machine_ticks().get(7).copied().unwrap_or(0.0) / 100.0 // USER_HZ
}

/// /proc/stat's machine-wide ticks: user nice system idle iowait irq softirq steal (guest time
/// is inside user).
fn machine_ticks() -> Vec<f64> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return Vec::new();
    };
    line.split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect()
}

/// CPU seconds of every PostgreSQL process (postmaster, backends, background workers), by
/// pid: a backend that starts during a window counts from zero, one that ends is lost (the
/// servers keep their pools open, so under load that is rare).
pub fn database_cpu() -> HashMap<u32, f64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| (pid, cpu_seconds(pid)))
        .collect()
}

/// A process and its descendants (PostGraphile runs as a cluster of workers).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(children) = std::fs::read_to_string(t.path().join("children")) {
                    out.extend(
                        children
                            .split_whitespace()
                            .filter_map(|c| c.parse::<u32>().ok()),
                    );
                }
            }
        }
        i += 1;
    }
    out
}

fn tree_cpu(pid: Option<u32>) -> f64 {
    pid.map_or(0.0, |p| process_tree(p).into_iter().map(cpu_seconds).sum())
}

/// Resident memory of a process tree in MiB: (now, peak), from VmRSS and VmHWM.
pub fn memory_mib(pid: u32) -> (f64, f64) {
    let field = |p: u32, name: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(name))?
                    .split_whitespace()
                    .nth(1)?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    let tree = process_tree(pid);
    let sum = |name: &str| tree.iter().map(|&p| field(p, name)).sum::<f64>() / 1024.0;
    (sum("VmRSS:"), sum("VmHWM:"))
}
