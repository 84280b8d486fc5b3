//! Confab's benchmark driver: starts the real server on a fresh database and drives it from
//! this separate process over real HTTP and WebSocket.
//!
//! `cargo run --release -p confab-tests --example bench -- fanout [--subscribers N] [--messages M] [--rate R]`
//! `cargo run --release -p confab-tests --example bench -- reminders [--jobs N]`
//! `cargo run --release -p confab-tests --example bench -- plugins [--messages N] [--concurrency C]`
//! `cargo run --release -p confab-tests --example bench -- plugin-runtime [--runs N]`
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
        Some("reminders") => reminders(&args).await,
        Some("plugins") => plugins(&args).await,
        Some("plugin-runtime") => plugin_runtime(&args),
        _ => {
            eprintln!(
                "usage: bench fanout [--subscribers N] [--messages M] [--rate R] | reminders [--jobs N] \
                 | plugins [--messages N] [--concurrency C] | plugin-runtime [--runs N]"
            );
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

/// N task reminders fall due at one instant (the test clock jumps to it); throughput is jobs
/// done per second of real time, lateness is each job's finish time minus its due time.
async fn reminders(args: &[String]) {
    use futures::StreamExt;
    let jobs = arg(args, "--jobs", 10_000) as usize;
    let server = TestServer::start().await;
    let backend = if server.db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550777", "seed", None).await;
    let me = admin.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    let now = server.advance(0).await;
    let due = chrono::DateTime::parse_from_rfc3339(&now).expect("server time")
        + chrono::Duration::seconds(3600);
    eprintln!("reminders on {backend}: creating {jobs} tasks due at one instant");
    let creates = (0..jobs).map(|i| {
        let admin = admin.clone();
        let input = json!({ "i": { "conversationId": r["conversation"]["id"], "title": format!("t{i}"), "assigneeId": me, "remindAt": due.to_rfc3339() } });
        async move { admin.ok("mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }", input).await }
    });
    let mut pending = futures::stream::iter(creates).buffer_unordered(16);
    while pending.next().await.is_some() {}

    // Jump the server's clock exactly to the due instant: lateness is then what the scheduler adds.
    let server_now =
        chrono::DateTime::parse_from_rfc3339(&server.advance(0).await).expect("server time");
    let to_due = (due - server_now).num_milliseconds().max(0);
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{}/debug/clock?advance_ms={to_due}", server.url))
        .send()
        .await;
    assert!(
        resp.is_ok_and(|r| r.status().is_success()),
        "the test clock moves"
    );
    let count = "{ jobs(status: DONE, kind: \"task.reminder\") { totalCount } }";
    loop {
        let done = admin.ok(count, json!({})).await["jobs"]["totalCount"]
            .as_u64()
            .unwrap_or(0) as usize;
        if done >= jobs {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            eprintln!("warning: only {done} of {jobs} jobs done after 300 s");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let mut lateness = Vec::with_capacity(jobs);
    let mut after = serde_json::Value::Null;
    loop {
        let page = admin
            .ok("query($a: String) { jobs(status: DONE, kind: \"task.reminder\", first: 100, after: $a) { pageInfo { hasNextPage endCursor } edges { node { dueAt finishedAt } } } }", json!({ "a": after }))
            .await;
        for e in page["jobs"]["edges"].as_array().unwrap() {
            let due =
                chrono::DateTime::parse_from_rfc3339(e["node"]["dueAt"].as_str().unwrap()).unwrap();
            let fin =
                chrono::DateTime::parse_from_rfc3339(e["node"]["finishedAt"].as_str().unwrap())
                    .unwrap();
            lateness.push((fin - due).num_microseconds().unwrap_or(0).max(0) as u64);
        }
        if page["jobs"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["jobs"]["pageInfo"]["endCursor"].clone();
    }
    lateness.sort_unstable();
    println!("scenario   backend   jobs   jobs/s   lateness_p50_ms  lateness_p99_ms");
    println!(
        "reminders  {backend:<8}  {jobs:>5}  {:>7.0}  {:>15.1}  {:>15.1}",
        lateness.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lateness, 0.50) as f64 / 1000.0,
        percentile(&lateness, 0.99) as f64 / 1000.0,
    );
}

/// Sends `n` first messages from new addresses (`prefix` + index) at `concurrency`; returns
/// messages per second.
async fn ingest(admin: &confab_tests::Client, prefix: u64, n: usize, concurrency: usize) -> f64 {
    use futures::StreamExt;
    let started = Instant::now();
    let sends = (0..n).map(|i| {
        let admin = admin.clone();
        async move {
            let from = format!("contact{}@bench.example", prefix + i as u64);
            admin
                .receive("EMAIL", &from, "hello, is anyone there?", None)
                .await
        }
    });
    let mut pending = futures::stream::iter(sends).buffer_unordered(concurrency);
    while pending.next().await.is_some() {}
    n as f64 / started.elapsed().as_secs_f64()
}

/// Ingest without plugins, then with the `follow-up` example installed: messages/s of each,
/// the plugin's runs/s, and the per-run duration (instantiate + run + its host lookups) that
/// the server records for every run.
async fn plugins(args: &[String]) {
    let n = arg(args, "--messages", 2_000) as usize;
    let concurrency = arg(args, "--concurrency", 16) as usize;
    let server = TestServer::start().await;
    let backend = if server.db.is_postgres() {
        "postgres"
    } else {
        "sqlite"
    };
    let admin = server.admin();
    let wasm = confab_tests::plugins::example("follow-up");
    eprintln!(
        "plugins on {backend}: {n} messages at concurrency {concurrency}, without then with follow-up"
    );
    ingest(&admin, 4_150_000_000, 200, concurrency).await; // warm-up
    let without = ingest(&admin, 4_151_000_000, n, concurrency).await;
    let plugin = admin.installed("follow-up", wasm, None).await;
    let id = plugin["id"].clone();
    let started = Instant::now();
    let with = ingest(&admin, 4_152_000_000, n, concurrency).await;
    let count = "query($id: ID!) { plugin(id: $id) { runs { totalCount } } }";
    loop {
        let done = admin.ok(count, json!({ "id": id })).await["plugin"]["runs"]["totalCount"]
            .as_u64()
            .unwrap_or(0) as usize;
        if done >= n || started.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let runs_per_s = n as f64 / started.elapsed().as_secs_f64();
    let mut durations = Vec::with_capacity(n);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    let mut after = serde_json::Value::Null;
    loop {
        let page = admin
            .ok("query($id: ID!, $a: String) { plugin(id: $id) { runs(first: 100, after: $a) { pageInfo { hasNextPage endCursor } edges { node { outcome durationMicros } } } } }", json!({ "id": id, "a": after }))
            .await;
        let runs = &page["plugin"]["runs"];
        for e in runs["edges"].as_array().unwrap() {
            durations.push(e["node"]["durationMicros"].as_u64().unwrap_or(0));
            *outcomes
                .entry(e["node"]["outcome"].as_str().unwrap_or("?").to_string())
                .or_default() += 1;
        }
        if runs["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = runs["pageInfo"]["endCursor"].clone();
    }
    durations.sort_unstable();
    // Idle latency: one message at a time, until its follow-up task can be read.
    let mut latency = Vec::new();
    for i in 0..20u64 {
        let sent = Instant::now();
        let r = admin
            .receive("EMAIL", &format!("latency{i}@bench.example"), "hi", None)
            .await;
        let q = "query($id: ID!) { conversation(id: $id) { tasks { totalCount } } }";
        let vars = json!({ "id": r["conversation"]["id"] });
        while admin.ok(q, vars.clone()).await["conversation"]["tasks"]["totalCount"] == 0 {
            if sent.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latency.push(sent.elapsed().as_micros() as u64);
    }
    latency.sort_unstable();
    let rss = server.pid().and_then(peak_rss_kib).unwrap_or(0);
    println!(
        "scenario  backend   msgs  ingest/s(no plugin)  ingest/s(follow-up)  ratio  runs/s  run_p50_us  run_p99_us  task_visible_p50_ms  task_visible_p99_ms  peak_rss_mib  outcomes"
    );
    println!(
        "plugins   {backend:<8} {n:>5}  {without:>19.0}  {with:>19.0}  {:>5.2}  {runs_per_s:>6.0}  {:>10}  {:>10}  {:>19.1}  {:>19.1}  {:>12.0}  {outcomes:?}",
        with / without,
        percentile(&durations, 0.50),
        percentile(&durations, 0.99),
        percentile(&latency, 0.50) as f64 / 1000.0,
        percentile(&latency, 0.99) as f64 / 1000.0,
        rss as f64 / 1024.0,
    );
}

/// The runtime alone, with no database: instantiate the `follow-up` component in a fresh
/// sandbox and run one event through it, `--runs` times on one thread.
fn plugin_runtime(args: &[String]) {
    use confab_plugins::wit::{ContactInfo, Conversation, Event};
    use confab_plugins::{Limits, Outcome, Runtime, Workspace};

    struct Fixed;
    impl Workspace for Fixed {
        fn conversation(&self, id: &str) -> Result<Conversation, String> {
            Ok(Conversation {
                id: id.to_string(),
                status: "OPEN".into(),
                starred: false,
                unread_count: 1,
                last_message_at: None,
                contact: ContactInfo {
                    id: "c".into(),
                    name: "Dana".into(),
                    email: None,
                    phone: None,
                    tags: vec![],
                    status: "ACTIVE".into(),
                },
                open_tasks: vec![],
                upcoming_appointments: vec![],
            })
        }
        fn teammate(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }

    let runs = arg(args, "--runs", 10_000) as usize;
    let runtime = Runtime::new().expect("the runtime starts");
    let wasm = confab_tests::plugins::example("follow-up");
    let inspected = runtime
        .inspect(&wasm, &["MESSAGE_RECEIVED"])
        .expect("follow-up is a valid plugin");
    let compiled = runtime
        .load(&inspected.artifact)
        .expect("the artifact loads");
    let event = Event {
        kind: "MESSAGE_RECEIVED".into(),
        schedule: None,
        conversation_id: Some("Q29udmVyc2F0aW9uOjE".into()),
        contact_id: None,
        subject_id: None,
        occurred_at: 1_790_000_000_000,
        object: "{}".into(),
        data: "{}".into(),
    };
    let workspace: std::sync::Arc<dyn Workspace> = std::sync::Arc::new(Fixed);
    let limits = Limits::default();
    let mut times = Vec::with_capacity(runs);
    let started = Instant::now();
    for _ in 0..runs {
        let report = runtime.run(&compiled, &event, &limits, workspace.clone());
        assert_eq!(report.outcome, Outcome::Ok, "{:?}", report.error);
        times.push(report.duration.as_micros() as u64);
    }
    let elapsed = started.elapsed();
    times.sort_unstable();
    println!("scenario        runs   runs/s(1 thread)  run_p50_us  run_p99_us");
    println!(
        "plugin-runtime  {runs:>5}  {:>16.0}  {:>10}  {:>10}",
        runs as f64 / elapsed.as_secs_f64(),
        percentile(&times, 0.50),
        percentile(&times, 0.99),
    );
}
