//! Confab's benchmark driver. It starts the real `confab` binary (and, for the peer
//! comparison, PostGraphile 5) on fresh databases, seeds them with `confab seed`, and drives
//! them from this separate process over real HTTP and WebSocket: a fixed concurrency for a
//! fixed duration after a warm-up. It prints throughput, p50/p99 latency and server peak RSS
//! per scenario, and with `all` a summary of medians over several rounds against the targets.
//!
//! ```sh
//! cargo run --release -p confab-tests --example bench -- all            # everything, both databases
//! cargo run --release -p confab-tests --example bench -- inbox --backend postgres
//! ```
//! Each driven scenario also reports the CPU it cost per request: the server's, PostgreSQL's
//! processes' and the whole machine's. After the inbox, the framework floor: the server's
//! inbox response rebuilt from memory by async-graphql alone (`floor.rs`).
//!
//! Scenarios: `inbox` (with the PostGraphile peer on PostgreSQL), `timeline`, `ingest`,
//! `plugins` (these four share one seeded server), `fanout`, `reminders`, `plugin-runtime`.
//! Options (defaults in brackets): `--backend sqlite|postgres|both` [both], `--postgres URL`
//! [$CONFAB_TEST_DATABASE_URL or postgres://postgres@127.0.0.1:5432/test], `--rounds N` [3],
//! `--duration S` [10], `--warmup S` [3], `--concurrency N` [32], `--contacts N` [10000],
//! `--messages N` [200000], `--subscribers N` [1000], `--jobs N` [10000], `--runs N` [10000],
//! `--no-peer`.
mod floor;
mod load;
mod peer;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confab_tests::ws::{TRANSPORT_WS, Ws};
use confab_tests::{Client, TestDb, TestServer, cli};
use serde_json::{Value, json};

use load::{Request, Run, drive, memory_mib, percentile};

/// The command line, read once.
struct Options {
    args: Vec<String>,
}

impl Options {
    fn flag(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
    }
    fn text(&self, name: &str) -> Option<String> {
        let i = self.args.iter().position(|a| a == name)?;
        self.args.get(i + 1).cloned()
    }
    fn num(&self, name: &str, default: u64) -> u64 {
        self.text(name).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
    }
    fn duration(&self) -> Duration {
        Duration::from_secs(self.num("--duration", 10))
    }
    fn warmup(&self) -> Duration {
        Duration::from_secs(self.num("--warmup", 3))
    }
    fn concurrency(&self) -> usize {
        self.num("--concurrency", 32) as usize
    }
    fn postgres_url(&self) -> String {
        self.text("--postgres")
            .or_else(|| std::env::var("CONFAB_TEST_DATABASE_URL").ok())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Backend {
    Sqlite,
    Postgres,
    /// No database at all (the plugin runtime alone).
    Neither,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Neither => "-",
        }
    }
}

/// A goal a figure is held to.
#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    Below(f64),
}

impl Target {
    fn met(self, v: f64) -> bool {
        match self {
            Target::AtLeast(t) => v >= t,
            Target::Below(t) => v < t,
        }
    }
    fn show(self) -> String {
        match self {
            Target::AtLeast(t) => format!(">= {t}"),
            Target::Below(t) => format!("< {t}"),
        }
    }
}

/// One measured number.
#[derive(Clone)]
struct Figure {
    scenario: &'static str,
    backend: &'static str,
    metric: &'static str,
    unit: &'static str,
    value: f64,
    /// The issue's target; only held on PostgreSQL (the production target), shown on both.
    target: Option<Target>,
}

#[derive(Default)]
struct Figures(Vec<Figure>);

impl Figures {
    fn add(
        &mut self,
        scenario: &'static str,
        backend: Backend,
        metric: &'static str,
        unit: &'static str,
        value: f64,
        target: Option<Target>,
    ) {
        println!(
            "  {scenario:<10} {:<9} {metric:<34} {value:>12.2} {unit}",
            backend.name()
        );
        self.0.push(Figure {
            scenario,
            backend: backend.name(),
            metric,
            unit,
            value,
            target,
        });
    }

    /// The load figures of one driven scenario.
    fn run(
        &mut self,
        scenario: &'static str,
        backend: Backend,
        run: &Run,
        targets: (Option<Target>, Option<Target>),
    ) {
        if run.errors > 0 {
            eprintln!(
                "warning: {scenario} on {}: {} of {} requests failed; first: {}",
                backend.name(),
                run.errors,
                run.requests,
                run.first_error.as_deref().unwrap_or("?")
            );
        }
        self.add(
            scenario,
            backend,
            "throughput",
            "req/s",
            run.throughput(),
            targets.0,
        );
        self.add(scenario, backend, "latency p50", "ms", run.p50_ms(), None);
        self.add(scenario, backend, "latency p90", "ms", run.p90_ms(), None);
        self.add(
            scenario,
            backend,
            "latency p99",
            "ms",
            run.p99_ms(),
            targets.1,
        );
        self.add(
            scenario,
            backend,
            "errors",
            "req",
            run.errors as f64,
            Some(Target::Below(1.0)),
        );
        self.add(
            scenario,
            backend,
            "server CPU",
            "cores",
            run.server_cores,
            None,
        );
        self.add(
            scenario,
            backend,
            "driver CPU",
            "cores",
            run.driver_cores,
            None,
        );
        self.add(
            scenario,
            backend,
            "machine CPU",
            "cores",
            run.machine_cores,
            None,
        );
        self.add(
            scenario,
            backend,
            "machine CPU taken by the hypervisor",
            "cores",
            run.steal_cores,
            None,
        );
        // On SQLite the database works inside the server; PostgreSQL idles beside it.
        let database = backend == Backend::Postgres && run.database_cores > 0.0;
        if database {
            self.add(
                scenario,
                backend,
                "database CPU",
                "cores",
                run.database_cores,
                None,
            );
        }
        let per_request = |cores: f64| cores / run.throughput() * 1e6;
        if run.throughput() > 0.0 {
            self.add(
                scenario,
                backend,
                "machine CPU per request",
                "µs",
                per_request(run.machine_cores),
                None,
            );
            self.add(
                scenario,
                backend,
                "server CPU per request",
                "µs",
                per_request(run.server_cores),
                None,
            );
            if database {
                self.add(
                    scenario,
                    backend,
                    "database CPU per request",
                    "µs",
                    per_request(run.database_cores),
                    None,
                );
            }
        }
    }
}

fn micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let options = Options {
        args: std::env::args().skip(1).collect(),
    };
    let Some(scenario) = options.args.first().cloned() else {
        eprintln!(
            "usage: bench all|inbox|timeline|ingest|plugins|fanout|reminders|plugin-runtime [options]; see tests/bench/main.rs"
        );
        std::process::exit(2);
    };
    let backends: Vec<Backend> = match options.text("--backend").as_deref() {
        Some("sqlite") => vec![Backend::Sqlite],
        Some("postgres") => vec![Backend::Postgres],
        _ => {
            let mut b = vec![Backend::Sqlite];
            if postgres_reachable(&options.postgres_url()).await {
                b.push(Backend::Postgres);
            } else {
                eprintln!(
                    "warning: no PostgreSQL at {}; SQLite only",
                    options.postgres_url()
                );
            }
            b
        }
    };
    let rounds = if scenario == "all" {
        options.num("--rounds", 3)
    } else {
        options.num("--rounds", 1)
    };
    let mut figures = Figures::default();
    for round in 1..=rounds {
        eprintln!("== round {round} of {rounds}");
        for &backend in &backends {
            match scenario.as_str() {
                "all" => {
                    seeded(
                        &options,
                        backend,
                        &mut figures,
                        &["inbox", "timeline", "ingest", "live", "plugins"],
                    )
                    .await;
                    fanout(&options, backend, &mut figures).await;
                    reminders(&options, backend, &mut figures).await;
                }
                s @ ("inbox" | "timeline" | "ingest" | "live" | "plugins") => {
                    seeded(&options, backend, &mut figures, &[s]).await;
                }
                "fanout" => fanout(&options, backend, &mut figures).await,
                "reminders" => reminders(&options, backend, &mut figures).await,
                "plugin-runtime" => {}
                other => {
                    eprintln!("unknown scenario {other}");
                    std::process::exit(2);
                }
            }
        }
        if scenario == "all" || scenario == "plugin-runtime" {
            plugin_runtime(&options, &mut figures);
        }
    }
    summary(&figures, rounds);
}

async fn postgres_reachable(url: &str) -> bool {
    match sea_orm::Database::connect(url).await {
        Ok(db) => {
            db.close().await.ok();
            true
        }
        Err(_) => false,
    }
}

async fn server(options: &Options, backend: Backend) -> TestServer {
    let db = match backend {
        Backend::Sqlite => TestDb::sqlite(),
        Backend::Postgres => TestDb::postgres(&options.postgres_url()).await,
        Backend::Neither => unreachable!("servers run on a database"),
    };
    TestServer::start_on(db).await
}

/// Medians over the rounds, grouped by scenario, metric and backend, with the targets.
fn summary(figures: &Figures, rounds: u64) {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Figure>> = BTreeMap::new();
    for f in &figures.0 {
        groups
            .entry((f.scenario, f.metric, f.backend))
            .or_default()
            .push(f);
    }
    println!("\n## Summary: medians of {rounds} round(s)\n");
    println!("| scenario | metric | backend | median | unit | target | met |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for ((scenario, metric, backend), fs) in groups {
        let mut values: Vec<f64> = fs.iter().map(|f| f.value).collect();
        values.sort_by(f64::total_cmp);
        let median = values[values.len() / 2];
        let first = fs[0];
        let (target, met) = match first.target {
            Some(t) if backend == "postgres" => {
                (t.show(), if t.met(median) { "yes" } else { "NO" })
            }
            Some(t) => (t.show(), "(PostgreSQL target)"),
            None => (String::new(), ""),
        };
        let shown = if median.abs() >= 100.0 {
            format!("{median:.0}")
        } else {
            format!("{median:.2}")
        };
        println!(
            "| {scenario} | {metric} | {backend} | {shown} | {} | {target} | {met} |",
            first.unit
        );
    }
}

// ---------------------------------------------------------------------------------------
// One seeded server: inbox (and the peer), timeline, ingest, plugins.

const INBOX: &str = "{ conversations(first: 50, filter: {status: OPEN}) { totalCount edges { node {
    id unreadCount lastMessageAt
    contact { name tags owner { name email } }
    lastMessage { body channel sender { name } }
    tasks(status: OPEN, first: 3) { totalCount edges { node { title dueAt assignee { name } } } }
    appointments(when: UPCOMING, first: 1) { edges { node { title startsAt } } }
} } } }";

/// The inbox's response rebuilt from memory by async-graphql alone (`floor.rs`): the least
/// CPU any server on this framework spends per inbox response on this machine.
async fn framework_floor(client: &Client, backend: Backend, figures: &mut Figures) {
    let response = client.gql(INBOX, json!({})).await.body;
    // The CPU clock ticks in hundredths of a second: a few seconds' worth of responses.
    match floor::measure(INBOX, &response, 3_000).await {
        Ok(floor) => {
            eprintln!(
                "{}: framework floor over {} responses",
                backend.name(),
                floor.responses
            );
            figures.add(
                "inbox",
                backend,
                "framework floor CPU per response",
                "µs",
                floor.micros,
                None,
            );
        }
        Err(e) => eprintln!("warning: framework floor on {}: {e}", backend.name()),
    }
}

/// The same inbox for PostGraphile: its generated names, the workspace as a condition, and
/// two computed columns (`peer.rs`) for the last message and the next appointment.
const PEER_INBOX: &str = "query($ws: BigInt!) { allConversations(first: 50, condition: {workspaceId: $ws, status: \"OPEN\"}, orderBy: [LAST_MESSAGE_AT_DESC, ROW_ID_DESC]) { totalCount edges { node {
    id unreadCount lastMessageAt
    contactByContactId { name contactTagsByContactId { nodes { tagByTagId { name } } } userByOwnerId { name email } }
    lastMessage { body channel userBySenderId { name } }
    tasksByConversationId(first: 3, condition: {status: \"OPEN\"}, orderBy: [DUE_AT_ASC]) { totalCount edges { node { title dueAt userByAssigneeId { name } } } }
    nextAppointment { title startsAt }
} } } }";

const TIMELINE: &str = "query($id: ID!) { conversation(id: $id) {
    messages(last: 50) { edges { node { id body channel direction status createdAt sender { name } } } }
    notes(first: 20) { edges { node { body author { name } createdAt } } }
    activities(first: 50) { edges { node { kind summary occurredAt actor { kind label } } } }
} }";

const RECEIVE: &str =
    "mutation($input: ReceiveMessageInput!) { receiveMessage(input: $input) { message { id } } }";

async fn seeded(options: &Options, backend: Backend, figures: &mut Figures, scenarios: &[&str]) {
    let (contacts, messages) = (
        options.num("--contacts", 10_000),
        options.num("--messages", 200_000),
    );
    let server = server(options, backend).await;
    eprintln!(
        "{}: seeding {contacts} contacts, {messages} messages",
        backend.name()
    );
    let out = cli(
        &server.db,
        &[
            "seed",
            "--workspace",
            "bench",
            "--contacts",
            &contacts.to_string(),
            "--messages",
            &messages.to_string(),
            "--notes",
            &(contacts / 5).to_string(),
            "--tasks",
            &(contacts / 2).to_string(),
            "--appointments",
            &(contacts / 5).to_string(),
            "--opportunities",
            &(contacts / 10).to_string(),
            "--tags",
            "20",
            "--custom-fields",
            "5",
            "--json",
        ],
    );
    assert!(out.success, "seed failed: {}", out.stderr);
    let seed = out.json();
    figures.add(
        "seed",
        backend,
        "seed time",
        "s",
        seed["millis"].as_f64().unwrap_or(0.0) / 1000.0,
        None,
    );
    let token = seed["token"].as_str().expect("a token").to_string();
    // A server that starts on the seeded database, as one would in production (the seed's
    // own bulk writes are not what the running server is measured on).
    let mut server = server;
    server.restart().await;
    let client = server.client(&token);
    let pid = server.pid();
    let url = format!("{}/graphql", server.url);
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Some(pid) = pid {
        figures.add(
            "memory",
            backend,
            "idle RSS (seeded)",
            "MiB",
            memory_mib(pid).0,
            Some(Target::Below(60.0)),
        );
    }
    let (c, warmup, duration) = (options.concurrency(), options.warmup(), options.duration());

    if scenarios.contains(&"inbox") {
        eprintln!("{}: inbox at concurrency {c}", backend.name());
        let confab = drive(
            request(&url, Some(&token), INBOX, |_| json!({})),
            c,
            warmup,
            duration,
            pid,
        )
        .await;
        figures.run("inbox", backend, &confab, (None, Some(Target::Below(50.0))));
        if let Some(pid) = pid {
            figures.add(
                "memory",
                backend,
                "peak RSS under inbox load",
                "MiB",
                memory_mib(pid).1,
                Some(Target::Below(200.0)),
            );
        }
        if backend == Backend::Postgres && !options.flag("--no-peer") {
            peer_inbox(&server, &confab, c, warmup, duration, figures).await;
        }
        framework_floor(&client, backend, figures).await;
    }
    if scenarios.contains(&"timeline") {
        let ids = busiest(&client).await;
        eprintln!(
            "{}: timeline of {} busy conversations at concurrency {c}",
            backend.name(),
            ids.len()
        );
        let ids = Arc::new(ids);
        let run = drive(
            request(
                &url,
                Some(&token),
                TIMELINE,
                move |n| json!({ "id": ids[n as usize % ids.len()] }),
            ),
            c,
            warmup,
            duration,
            pid,
        )
        .await;
        figures.run("timeline", backend, &run, (None, None));
    }
    let mut without = None;
    if scenarios.contains(&"ingest") || scenarios.contains(&"plugins") {
        eprintln!("{}: ingest at concurrency {c}", backend.name());
        let run = drive(
            ingest_request(&url, &token, contacts, "a"),
            c,
            warmup,
            duration,
            pid,
        )
        .await;
        figures.run(
            "ingest",
            backend,
            &run,
            (Some(Target::AtLeast(3000.0)), None),
        );
        without = Some(run.throughput());
    }
    if scenarios.contains(&"live") {
        live_ingest(&server, (&url, &token), contacts, options, backend, figures).await;
    }
    if scenarios.contains(&"plugins") {
        plugins(
            &client,
            backend,
            &url,
            &token,
            contacts,
            options,
            pid,
            without.unwrap_or(0.0),
            figures,
        )
        .await;
    }
}

fn request(
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: impl Fn(u64) -> Value + Send + Sync + 'static,
) -> Request {
    Request {
        url: url.to_string(),
        token: token.map(str::to_string),
        query: query.to_string(),
        variables: Arc::new(variables),
    }
}

/// Inbound email: every other one from an existing seeded contact (spread over all of
/// them), the rest from addresses never seen before (a new contact and conversation each).
fn ingest_request(url: &str, token: &str, contacts: u64, tag: &'static str) -> Request {
    ingest_replaying(url, token, contacts, tag, u64::MAX)
}

/// As [`ingest_request`], with the existing contacts' half written by the first `replay`
/// messages' contacts over and over (every drive walks them in the same order).
fn ingest_replaying(
    url: &str,
    token: &str,
    contacts: u64,
    tag: &'static str,
    replay: u64,
) -> Request {
    request(url, Some(token), RECEIVE, move |n| {
        let from = sender(n, contacts, tag, replay);
        json!({ "input": { "channel": "EMAIL", "from": from, "body": "Hello, any news on my order?" } })
    })
}

/// The `n`-th ingest message's sender: even ones an existing contact, odd ones someone new.
fn sender(n: u64, contacts: u64, tag: &str, replay: u64) -> String {
    if n.is_multiple_of(2) {
        format!(
            "contact{}@example.com",
            ((n % replay) / 2).wrapping_mul(7_919) % contacts
        )
    } else {
        format!("new-{tag}-{n}@bench.example")
    }
}

/// The 100 conversations with the most recent traffic (the busiest by the seed's long tail).
async fn busiest(client: &Client) -> Vec<String> {
    let d = client
        .ok(
            "{ conversations(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    d["conversations"]["edges"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("an id").to_string())
        .collect()
}

/// PostGraphile over the same database, same query shape and concurrency, right after Confab.
async fn peer_inbox(
    server: &TestServer,
    confab: &Run,
    c: usize,
    warmup: Duration,
    duration: Duration,
    figures: &mut Figures,
) {
    let Some(peer) = peer::Peer::start(&server.db.url).await else {
        return;
    };
    let ws: i64 = {
        let db = sea_orm::Database::connect(&server.db.url)
            .await
            .expect("the bench database");
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &db,
            sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT id FROM workspaces WHERE name = 'bench'",
            ),
        )
        .await
        .expect("the bench workspace")
        .expect("a row");
        db.close().await.ok();
        row.try_get("", "id").expect("an id")
    };
    eprintln!("postgres: PostGraphile inbox at concurrency {c}");
    let pid = peer.pid();
    let run = drive(
        request(
            &peer.url,
            None,
            PEER_INBOX,
            move |_| json!({ "ws": ws.to_string() }),
        ),
        c,
        warmup,
        duration,
        pid,
    )
    .await;
    figures.run("inbox-peer", Backend::Postgres, &run, (None, None));
    if let Some(pid) = pid {
        figures.add(
            "memory",
            Backend::Postgres,
            "PostGraphile peak RSS (inbox)",
            "MiB",
            memory_mib(pid).1,
            None,
        );
    }
    if run.errors > 0 || run.latencies.is_empty() {
        eprintln!("warning: the peer failed; no ratio");
        peer.stop(&server.db.url).await;
        return;
    }
    figures.add(
        "inbox",
        Backend::Postgres,
        "throughput / PostGraphile's",
        "x",
        confab.throughput() / run.throughput().max(1e-9),
        Some(Target::AtLeast(1.5)),
    );
    figures.add(
        "inbox",
        Backend::Postgres,
        "p99 / PostGraphile's",
        "x",
        confab.p99_ms() / run.p99_ms().max(1e-9),
        None,
    );
    peer.stop(&server.db.url).await;
}

/// Ingest again with `follow-up` installed; the plugin's runs give the per-run overhead
/// (duration minus host lookups) and whether the worker keeps up.
#[allow(clippy::too_many_arguments)]
async fn plugins(
    client: &Client,
    backend: Backend,
    url: &str,
    token: &str,
    contacts: u64,
    options: &Options,
    pid: Option<u32>,
    without: f64,
    figures: &mut Figures,
) {
    let wasm = confab_tests::plugins::example("follow-up");
    let plugin = client.installed("follow-up", wasm, None).await;
    let id = plugin["id"].as_str().expect("a plugin id").to_string();
    let c = options.concurrency();
    eprintln!(
        "{}: ingest with follow-up at concurrency {c}",
        backend.name()
    );
    let runs_before = total_runs(client, &id).await;
    let started = Instant::now();
    let run = drive(
        ingest_request(url, token, contacts, "b"),
        c,
        options.warmup(),
        options.duration(),
        pid,
    )
    .await;
    figures.run("plugins", backend, &run, (None, None));
    figures.add(
        "plugins",
        backend,
        "ingest with / without follow-up",
        "x",
        run.throughput() / without.max(1e-9),
        Some(Target::AtLeast(0.8)),
    );
    // Every message sent (warm-up included) queued one run: wait until the backlog drains.
    let stopped = Instant::now();
    let (done, last_change) = drained(client, &id).await;
    let drained = last_change.saturating_duration_since(stopped);
    let runs = done - runs_before;
    figures.add(
        "plugins",
        backend,
        "runs per second (until drained)",
        "runs/s",
        runs as f64 / (last_change - started).as_secs_f64(),
        None,
    );
    figures.add(
        "plugins",
        backend,
        "backlog drained after ingest",
        "s",
        drained.as_secs_f64(),
        None,
    );
    if runs < run.requests {
        eprintln!(
            "warning: {runs} runs for more than {} messages",
            run.requests
        );
    }
    let (mut overhead, mut whole) = (Vec::new(), Vec::new());
    let mut after = Value::Null;
    while overhead.len() < 5_000 {
        let page = client
            .ok("query($id: ID!, $a: String) { plugin(id: $id) { runs(first: 100, after: $a) { pageInfo { hasNextPage endCursor } edges { node { outcome durationMicros hostMicros } } } } }", json!({ "id": id, "a": after }))
            .await;
        let runs = &page["plugin"]["runs"];
        for e in runs["edges"].as_array().expect("runs") {
            let n = &e["node"];
            assert_eq!(n["outcome"], "OK", "every follow-up run succeeds: {n}");
            let (d, h) = (
                n["durationMicros"].as_u64().unwrap_or(0),
                n["hostMicros"].as_u64().unwrap_or(0),
            );
            whole.push(d);
            overhead.push(d.saturating_sub(h));
        }
        if runs["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = runs["pageInfo"]["endCursor"].clone();
    }
    overhead.sort_unstable();
    whole.sort_unstable();
    figures.add(
        "plugins",
        backend,
        "per-run overhead p50",
        "µs",
        percentile(&overhead, 0.5) as f64,
        Some(Target::Below(100.0)),
    );
    figures.add(
        "plugins",
        backend,
        "per-run overhead p99",
        "µs",
        percentile(&overhead, 0.99) as f64,
        Some(Target::Below(1000.0)),
    );
    figures.add(
        "plugins",
        backend,
        "per-run with host lookups p50",
        "µs",
        percentile(&whole, 0.5) as f64,
        None,
    );
    figures.add(
        "plugins",
        backend,
        "per-run with host lookups p99",
        "µs",
        percentile(&whole, 0.99) as f64,
        None,
    );
    steady(
        client,
        &id,
        backend,
        (url, token),
        contacts,
        options,
        pid,
        without,
        runs,
        figures,
    )
    .await;
}

/// Ingest with `follow-up` once the contacts who wrote before have their follow-up task open:
/// the existing contacts' half replays the first 90% of the messages just sent (each of those
/// contacts got a task or had one), the other half is new people, as in plain ingest. Every
/// message still runs the plugin; only the new people's open a task. The first figure
/// (nearly every message opening a task) is the one held against the target; this one shows
/// how much of the gap is the plugin's own writing rather than running it.
#[allow(clippy::too_many_arguments)]
async fn steady(
    client: &Client,
    plugin: &str,
    backend: Backend,
    (url, token): (&str, &str),
    contacts: u64,
    options: &Options,
    pid: Option<u32>,
    without: f64,
    sent: u64,
    figures: &mut Figures,
) {
    let replay = (sent * 9 / 10) & !1;
    if replay < 2 {
        return;
    }
    let (tasks_before, runs_before) = (open_tasks(client).await, total_runs(client, plugin).await);
    eprintln!("{}: ingest with follow-up, tasks open", backend.name());
    let run = drive(
        ingest_replaying(url, token, contacts, "c", replay),
        options.concurrency(),
        options.warmup(),
        options.duration(),
        pid,
    )
    .await;
    if run.errors > 0 {
        eprintln!(
            "warning: plugins (steady) on {}: {} of {} requests failed; first: {}",
            backend.name(),
            run.errors,
            run.requests,
            run.first_error.as_deref().unwrap_or("?")
        );
    }
    figures.add(
        "plugins",
        backend,
        "steady: throughput",
        "req/s",
        run.throughput(),
        None,
    );
    figures.add(
        "plugins",
        backend,
        "steady: with / without follow-up",
        "x",
        run.throughput() / without.max(1e-9),
        None,
    );
    // Once the worker is done: the tasks it opened per run (one run per message).
    let runs = drained(client, plugin).await.0.saturating_sub(runs_before);
    let opened = open_tasks(client).await.saturating_sub(tasks_before);
    figures.add(
        "plugins",
        backend,
        "steady: tasks opened per run",
        "x",
        opened as f64 / runs.max(1) as f64,
        None,
    );
}

/// Open tasks in the workspace.
async fn open_tasks(client: &Client) -> u64 {
    client
        .ok(
            "{ tasks(filter: { status: OPEN }) { totalCount } }",
            json!({}),
        )
        .await["tasks"]["totalCount"]
        .as_u64()
        .unwrap_or(0)
}

/// The plugin's run count once it has not moved for 3 s (its backlog drained), and when it
/// last moved.
async fn drained(client: &Client, plugin: &str) -> (u64, Instant) {
    let (mut done, mut last_change) = (total_runs(client, plugin).await, Instant::now());
    while last_change.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = total_runs(client, plugin).await;
        if now != done {
            (done, last_change) = (now, Instant::now());
        }
    }
    (done, last_change)
}

async fn total_runs(client: &Client, id: &str) -> u64 {
    client
        .ok(
            "query($id: ID!) { plugin(id: $id) { runs { totalCount } } }",
            json!({ "id": id }),
        )
        .await["plugin"]["runs"]["totalCount"]
        .as_u64()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Fan-out, reminders and the plugin runtime alone.

/// N subscribers on `inboxEvents`; M inbound messages at R per second; each event's delivery
/// latency is its arrival time minus the send time written into the message body.
async fn fanout(options: &Options, backend: Backend, figures: &mut Figures) {
    let subscribers = options.num("--subscribers", 1000) as usize;
    let messages = options.num("--fanout-messages", 100) as usize;
    let rate = options.num("--rate", 20).max(1);
    let server = server(options, backend).await;
    eprintln!(
        "{}: fanout to {subscribers} subscribers, {messages} messages at {rate}/s",
        backend.name()
    );

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u64>>();
    let mut ready = Vec::new();
    for i in 0..subscribers {
        let mut ws =
            inbox_subscriber(&server, &server.admin_token, i, "kind message { body }").await;
        let tx = tx.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
        ready.push(ready_rx);
        tokio::spawn(async move {
            let _ = ready_tx.send(());
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                if let Some(sent) = sent_at(&ws.next("inbox").await) {
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
        tokio::time::sleep_until((started + gap * i as u32).into()).await;
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
    all.sort_unstable();
    let expected = (subscribers * messages) as f64;
    figures.add(
        "fanout",
        backend,
        "events delivered / expected",
        "x",
        all.len() as f64 / expected,
        Some(Target::AtLeast(1.0)),
    );
    delivery(figures, "fanout", backend, &all, Some(Target::Below(100.0)));
    if let Some(pid) = server.pid() {
        figures.add(
            "fanout",
            backend,
            "server peak RSS",
            "MiB",
            memory_mib(pid).1,
            None,
        );
    }
}

/// Ingest flat out while inbox subscribers listen: whether the server's events keep up with
/// what is committed. Each replica loads every event's rows once, however many subscribe, so
/// one subscriber (`--live-subscribers`) shows it; each message's body carries its send time.
async fn live_ingest(
    server: &TestServer,
    (url, token): (&str, &str),
    contacts: u64,
    options: &Options,
    backend: Backend,
    figures: &mut Figures,
) {
    let subscribers = options.num("--live-subscribers", 1) as usize;
    let c = options.concurrency();
    eprintln!(
        "{}: ingest at concurrency {c} with {subscribers} inbox subscriber(s)",
        backend.name()
    );
    let driving = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<u64>, Instant)>();
    for i in 0..subscribers {
        let mut ws = inbox_subscriber(
            server,
            token,
            i,
            "kind conversation { id unreadCount } message { body }",
        )
        .await;
        let (tx, driving) = (tx.clone(), driving.clone());
        tokio::spawn(async move {
            let (mut latencies, mut last) = (Vec::new(), Instant::now());
            // Until nothing has come for 3 s after the drive.
            loop {
                match tokio::time::timeout(Duration::from_secs(3), ws.next("inbox")).await {
                    Ok(event) => {
                        if let Some(sent) = sent_at(&event) {
                            latencies.push(micros_now().saturating_sub(sent));
                            last = Instant::now();
                        }
                    }
                    Err(_) if !driving.load(std::sync::atomic::Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
            let _ = tx.send((latencies, last));
        });
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let send = request(url, Some(token), RECEIVE, move |n| {
        let from = sender(n, contacts, "live", u64::MAX);
        json!({ "input": { "channel": "EMAIL", "from": from, "body": format!("t={}", micros_now()) } })
    });
    let run = drive(send, c, options.warmup(), options.duration(), server.pid()).await;
    let stopped = Instant::now();
    driving.store(false, std::sync::atomic::Ordering::Relaxed);
    figures.run("live ingest", backend, &run, (None, None));
    let (mut all, mut last) = (Vec::new(), stopped);
    while let Some((latencies, at)) = rx.recv().await {
        all.extend(latencies);
        last = last.max(at);
    }
    all.sort_unstable();
    delivery(figures, "live ingest", backend, &all, None);
    figures.add(
        "live ingest",
        backend,
        "last event after the drive ended",
        "s",
        last.saturating_duration_since(stopped).as_secs_f64(),
        None,
    );
}

/// Delivery p50 and p99 of `sorted` latencies (µs), the p99 held against `target`.
fn delivery(
    figures: &mut Figures,
    scenario: &'static str,
    backend: Backend,
    sorted: &[u64],
    target: Option<Target>,
) {
    for (name, p, target) in [("delivery p50", 0.50, None), ("delivery p99", 0.99, target)] {
        let ms = percentile(sorted, p) as f64 / 1000.0;
        figures.add(scenario, backend, name, "ms", ms, target);
    }
}

/// Subscriber `i` (with `token`) on `inboxEvents`, asking for `fields`.
async fn inbox_subscriber(server: &TestServer, token: &str, i: usize, fields: &str) -> Ws {
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, token)
        .await
        .unwrap_or_else(|e| panic!("subscriber {i}: {e:?}"));
    let query = format!("subscription {{ inboxEvents {{ {fields} }} }}");
    ws.subscribe("inbox", &query, json!({})).await;
    ws
}

/// When the message of an inbox event was sent, as its body (`t=<µs>`) says.
fn sent_at(event: &Value) -> Option<u64> {
    event["data"]["inboxEvents"]["message"]["body"]
        .as_str()?
        .strip_prefix("t=")?
        .parse()
        .ok()
}

/// N task reminders fall due at one instant (the test clock jumps to it); throughput is jobs
/// done per second of real time, lateness is each job's finish time minus its due time.
async fn reminders(options: &Options, backend: Backend, figures: &mut Figures) {
    use futures::StreamExt;
    let jobs = options.num("--jobs", 10_000) as usize;
    let server = server(options, backend).await;
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550777", "seed", None).await;
    let me = admin.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    let now = server.advance(0).await;
    let due = chrono::DateTime::parse_from_rfc3339(&now).expect("server time")
        + chrono::Duration::seconds(3600);
    eprintln!(
        "{}: reminders: creating {jobs} tasks due at one instant",
        backend.name()
    );
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
    let moved = reqwest::Client::new()
        .post(format!("{}/debug/clock?advance_ms={to_due}", server.url))
        .send()
        .await;
    assert!(
        moved.is_ok_and(|r| r.status().is_success()),
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
    let mut after = Value::Null;
    loop {
        let page = admin
            .ok("query($a: String) { jobs(status: DONE, kind: \"task.reminder\", first: 100, after: $a) { pageInfo { hasNextPage endCursor } edges { node { dueAt finishedAt } } } }", json!({ "a": after }))
            .await;
        for e in page["jobs"]["edges"].as_array().expect("jobs") {
            let at = |k: &str| {
                chrono::DateTime::parse_from_rfc3339(e["node"][k].as_str().expect("a time"))
                    .expect("RFC 3339")
            };
            lateness.push(
                (at("finishedAt") - at("dueAt"))
                    .num_microseconds()
                    .unwrap_or(0)
                    .max(0) as u64,
            );
        }
        if page["jobs"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["jobs"]["pageInfo"]["endCursor"].clone();
    }
    lateness.sort_unstable();
    figures.add(
        "reminders",
        backend,
        "jobs done / due",
        "x",
        lateness.len() as f64 / jobs as f64,
        Some(Target::AtLeast(1.0)),
    );
    figures.add(
        "reminders",
        backend,
        "jobs per second",
        "jobs/s",
        lateness.len() as f64 / elapsed.as_secs_f64(),
        Some(Target::AtLeast(5000.0)),
    );
    figures.add(
        "reminders",
        backend,
        "lateness p50",
        "ms",
        percentile(&lateness, 0.50) as f64 / 1000.0,
        None,
    );
    figures.add(
        "reminders",
        backend,
        "lateness p99",
        "ms",
        percentile(&lateness, 0.99) as f64 / 1000.0,
        Some(Target::Below(1000.0)),
    );
}

/// The runtime alone, with no database: instantiate the `follow-up` component in a fresh
/// sandbox and run one event through it, `--runs` times on one thread.
fn plugin_runtime(options: &Options, figures: &mut Figures) {
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

    let runs = options.num("--runs", 10_000) as usize;
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
    let workspace: Arc<dyn Workspace> = Arc::new(Fixed);
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
    let none = Backend::Neither;
    figures.add(
        "runtime",
        none,
        "runs per second (1 thread)",
        "runs/s",
        runs as f64 / elapsed.as_secs_f64(),
        None,
    );
    figures.add(
        "runtime",
        none,
        "run p50 (no database)",
        "µs",
        percentile(&times, 0.50) as f64,
        None,
    );
    figures.add(
        "runtime",
        none,
        "run p99 (no database)",
        "µs",
        percentile(&times, 0.99) as f64,
        None,
    );
}
