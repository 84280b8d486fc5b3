//! Confab's benchmark driver: starts the real server on a fresh database and drives it from
//! this separate process over real HTTP and WebSocket.
//!
//! `cargo run --release -p confab-tests --bin bench -- fanout [--subscribers N] [--messages M] [--rate R]`
//! (set `CONFAB_TEST_DATABASE_URL` to run on PostgreSQL).
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab_tests::TestServer;
use confab_tests::ws::{TRANSPORT_WS, Ws};
use serde_json::json;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("fanout") => fanout(&args).await,
        _ => {
            eprintln!("usage: bench fanout [--subscribers N] [--messages M] [--rate R]");
            std::process::exit(2);
        }
    }
}

/// N subscribers on `inboxEvents`; M inbound messages at R per second; each event's delivery
/// latency is its arrival time minus the send time written into the message body.
async fn fanout(args: &[String]) {
    let subscribers = arg(args, "--subscribers", 1000) as usize;
    let messages = arg(args, "--messages", 200) as usize;
    let rate = arg(args, "--rate", 50).max(1);
    let server = TestServer::start().await;
    let backend = if server.db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    eprintln!("fanout on {backend}: {subscribers} subscribers, {messages} messages at {rate}/s");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u64>>();
    let mut ready = Vec::new();
    for i in 0..subscribers {
        let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
            .await
            .unwrap_or_else(|e| panic!("subscriber {i}: {e:?}"));
        ws.subscribe(
            "inbox",
            "subscription { inboxEvents { kind message { body } } }",
            json!({}),
        )
        .await;
        let tx = tx.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(ready_rx);
        tokio::spawn(async move {
            let _ = ready_tx.send(());
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                let event = ws.next("inbox").await;
                let body = event["data"]["inboxEvents"]["message"]["body"]
                    .as_str()
                    .unwrap_or("");
                if let Some(sent) = body.strip_prefix("t=").and_then(|t| t.parse::<u64>().ok()) {
                    latencies.push(micros_now().saturating_sub(sent));
                }
            }
            let _ = tx.send(latencies);
        });
    }
    drop(tx);
    for r in ready {
        let _ = r.await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let admin = server.admin();
    let started = Instant::now();
    let gap = Duration::from_micros(1_000_000 / rate);
    for i in 0..messages {
        let due = started + gap * i as u32;
        tokio::time::sleep_until(due.into()).await;
        admin
            .receive(
                "SMS",
                &format!("+1415555{:04}", i % 50),
                &format!("t={}", micros_now()),
                None,
            )
            .await;
    }
    let mut all = Vec::with_capacity(subscribers * messages);
    let collect = async {
        while let Some(l) = rx.recv().await {
            all.extend(l);
        }
    };
    if tokio::time::timeout(Duration::from_secs(120), collect)
        .await
        .is_err()
    {
        eprintln!("warning: not every subscriber got every event within 120 s");
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let delivered = all.len();
    println!(
        "scenario   backend   subscribers  messages  delivered  events/s   p50_ms  p99_ms  max_ms"
    );
    println!(
        "fanout     {backend:<8}  {subscribers:>11}  {messages:>8}  {delivered:>9}  {:>8.0}  {:>7.1}  {:>6.1}  {:>6.1}",
        delivered as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.50) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
        all.last().copied().unwrap_or(0) as f64 / 1000.0,
    );
    if let Some(rss) = server.pid().and_then(peak_rss_kib) {
        println!("server peak RSS: {:.1} MiB", rss as f64 / 1024.0);
    }
}
