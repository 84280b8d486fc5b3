//! Automation plugins, end to end: admins upload WebAssembly components over GraphQL (or the
//! CLI), they react to what happens and on schedules, and hostile ones are contained.
use std::time::{Duration, Instant};

use confab_tests::plugins::{Body, example, other_world, wat_plugin, wat_scheduled};
use confab_tests::{Client, TestServer, cli};
use serde_json::{Value, json};

const TASKS: &str = "query($id: ID!) { conversation(id: $id) { tasks(first: 20) { edges { node {
    title dueAt autoCreated createdByPlugin { name } } } } } }";

const ACTIVITIES: &str =
    "query($id: ID!) { conversation(id: $id) { activities(first: 100) { edges { node {
    kind summary actor { kind label plugin { name } } } } } } }";

async fn tasks(client: &Client, conversation: &Value) -> Vec<Value> {
    let d = client.ok(TASKS, json!({ "id": conversation })).await;
    nodes(&d["conversation"]["tasks"])
}

async fn activities(client: &Client, conversation: &Value) -> Vec<Value> {
    let d = client.ok(ACTIVITIES, json!({ "id": conversation })).await;
    nodes(&d["conversation"]["activities"])
}

fn nodes(connection: &Value) -> Vec<Value> {
    connection["edges"]
        .as_array()
        .expect("a connection")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// Polls `f` until it returns Some, for up to `seconds` of real time.
async fn eventually<T, F, Fut>(seconds: u64, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The client's notifications (newest first), once there are at least `n` (within 10 s).
async fn notifications(client: &Client, n: usize) -> Vec<Value> {
    eventually(10, || async {
        let d = client
            .ok(
                "{ notifications(first: 100) { edges { node { kind text task { title } } } } }",
                json!({}),
            )
            .await;
        let list = nodes(&d["notifications"]);
        (list.len() >= n).then_some(list)
    })
    .await
    .unwrap_or_else(|| panic!("{n} notifications"))
}

/// How many event runs' jobs are in the queue, in any state.
async fn queued_runs(client: &Client) -> i64 {
    let d = client
        .ok(
            "{ jobs(kind: \"plugin.run.event\") { totalCount } }",
            json!({}),
        )
        .await;
    d["jobs"]["totalCount"].as_i64().expect("a count")
}

fn system_events(list: &[Value]) -> Vec<String> {
    list.iter()
        .filter(|a| a["kind"] == "SYSTEM_EVENT")
        .map(|a| a["summary"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test]
async fn an_uploaded_follow_up_plugin_creates_one_follow_up_task_per_conversation() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = admin
        .installed("follow-up", example("follow-up"), None)
        .await;
    assert_eq!(p["name"], "follow-up");
    assert_eq!(p["version"], "0.1.0");
    assert_eq!(p["enabled"], true);
    assert_eq!(p["events"], json!(["MESSAGE_RECEIVED"]));
    assert_eq!(p["sha256"].as_str().unwrap().len(), 64);
    let listed = admin.ok("{ plugins { id name } }", json!({})).await;
    assert_eq!(listed["plugins"][0]["id"], p["id"]);

    let sent = Instant::now();
    let r = admin
        .ok(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "SMS", "from": "+14155550701", "body": "hi", "contactName": "Dana Reyes" } }),
        )
        .await["receiveMessage"]
        .clone();
    let conversation = r["conversation"]["id"].clone();
    let task = eventually(5, || async {
        tasks(&admin, &conversation).await.into_iter().next()
    })
    .await
    .expect("the follow-up task appears");
    let waited = sent.elapsed();
    assert!(waited < Duration::from_secs(1), "took {waited:?}");
    assert_eq!(task["title"], "Follow up with Dana Reyes");
    assert_eq!(task["autoCreated"], true);
    assert_eq!(task["createdByPlugin"]["name"], "follow-up");
    let received =
        chrono::DateTime::parse_from_rfc3339(r["message"]["createdAt"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(task["dueAt"].as_str().unwrap()).unwrap();
    let hours = (due - received).num_minutes() as f64 / 60.0;
    assert!(
        (23.9..=24.1).contains(&hours),
        "due {hours} h after the message"
    );

    let trail = activities(&admin, &conversation).await;
    let created = trail
        .iter()
        .find(|a| a["kind"] == "TASK_CREATED")
        .expect("a TASK_CREATED activity");
    assert_eq!(created["actor"]["kind"], "PLUGIN");
    assert_eq!(created["actor"]["plugin"]["name"], "follow-up");

    // A second message while the task is open: the plugin runs and leaves it alone.
    admin
        .receive("SMS", "+14155550701", "hello again?", None)
        .await;
    let runs = admin.wait_for_runs(p["id"].as_str().unwrap(), 2, 5).await;
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .all(|r| r["outcome"] == "OK" && r["trigger"] == "event: MESSAGE_RECEIVED"),
        "{runs:?}"
    );
    for run in &runs {
        // follow-up looks the conversation up; the worker read it ahead for the batch, so
        // the lookup is a small part of the run, or too small to count.
        let (whole, host) = (
            run["durationMicros"].as_i64().unwrap(),
            run["hostMicros"].as_i64().unwrap(),
        );
        assert!(
            0 < whole && (0..=whole).contains(&host),
            "host {host} of {whole} µs"
        );
    }
    assert_eq!(runs[0]["actions"], 0, "the newest run created nothing");
    assert_eq!(runs[1]["actions"], 1);
    assert_eq!(tasks(&admin, &conversation).await.len(), 1);
    // A run's job leaves the queue once the run is recorded: the record is its history.
    assert_eq!(queued_runs(&admin).await, 0);
}

#[tokio::test]
async fn the_audit_logger_writes_each_status_change_into_the_trail() {
    let server = TestServer::start().await;
    let admin = server.admin();
    admin
        .installed("audit-logger", example("audit-logger"), None)
        .await;
    let r = admin
        .receive("EMAIL", "ann@example.com", "thanks", None)
        .await;
    let conversation = r["conversation"]["id"].clone();
    let set = "mutation($id: ID!, $s: ConversationStatus!) { setConversationStatus(input: {conversationId: $id, status: $s}) { conversation { status } } }";
    admin
        .ok(set, json!({ "id": conversation, "s": "COMPLETED" }))
        .await;
    let logged = eventually(5, || async {
        let trail = activities(&admin, &conversation).await;
        trail.into_iter().find(|a| a["kind"] == "SYSTEM_EVENT")
    })
    .await
    .expect("the audit line appears");
    assert_eq!(
        logged["summary"],
        "Audit: status changed from OPEN to COMPLETED"
    );
    assert_eq!(logged["actor"]["kind"], "PLUGIN");
    assert_eq!(logged["actor"]["plugin"]["name"], "audit-logger");
}

#[tokio::test]
async fn the_appointment_reminder_plugin_messages_the_contact_a_day_before() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = admin
        .installed(
            "appointment-reminder",
            example("appointment-reminder"),
            None,
        )
        .await;
    let r = admin
        .ok(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "SMS", "from": "+14155550702", "body": "book me", "contactName": "Ola" } }),
        )
        .await["receiveMessage"]
        .clone();
    let conversation = r["conversation"]["id"].clone();
    let now = chrono::DateTime::parse_from_rfc3339(&server.advance(0).await).unwrap();
    let starts = now + chrono::Duration::days(3);
    let book = "mutation($i: CreateAppointmentInput!) { createAppointment(input: $i) { appointment { id } } }";
    admin
        .ok(book, json!({ "i": { "conversationId": conversation, "title": "Site visit",
            "startsAt": starts.to_rfc3339(), "endsAt": (starts + chrono::Duration::hours(1)).to_rfc3339() } }))
        .await;
    let runs = admin.wait_for_runs(p["id"].as_str().unwrap(), 1, 5).await;
    assert_eq!(runs[0]["outcome"], "OK", "{runs:?}");
    assert_eq!(runs[0]["actions"], 1);
    let jobs = admin
        .ok(
            "{ jobs(kind: \"plugin.reminder\", status: PENDING) { edges { node { dueAt } } } }",
            json!({}),
        )
        .await;
    let due = jobs["jobs"]["edges"][0]["node"]["dueAt"]
        .as_str()
        .expect("a pending reminder job");
    let due = chrono::DateTime::parse_from_rfc3339(due).unwrap();
    assert_eq!(
        (starts - due).num_minutes(),
        24 * 60,
        "24 hours before it starts"
    );

    server.advance(2 * 86_400 + 60).await;
    let body = eventually(5, || async {
        let d = admin
            .ok("query($id: ID!) { conversation(id: $id) { messages(last: 10) { edges { node { direction body } } } } }", json!({ "id": conversation }))
            .await;
        nodes(&d["conversation"]["messages"])
            .into_iter()
            .filter(|m| m["direction"] == "OUTBOUND")
            .map(|m| m["body"].as_str().unwrap().to_string())
            // The workspace's own 24 h reminder goes out too; this one is the plugin's.
            .find(|b| b.starts_with("Hi Ola"))
    })
    .await
    .expect("the reminder went out");
    assert!(body.contains("Site visit"), "{body}");
    let trail = activities(&admin, &conversation).await;
    let sent = trail
        .iter()
        .find(|a| a["kind"] == "REMINDER_SENT" && a["actor"]["kind"] == "PLUGIN")
        .expect("REMINDER_SENT by the plugin");
    assert_eq!(sent["actor"]["plugin"]["name"], "appointment-reminder");
}

#[tokio::test]
async fn hostile_plugins_are_contained_and_the_server_keeps_serving() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let on = ["MESSAGE_RECEIVED"];
    let cases = [
        (
            "spinner",
            wat_plugin("spinner", &on, Body::Spin),
            None,
            "FUEL_EXHAUSTED",
            "fuel",
        ),
        (
            "sleeper",
            wat_plugin("sleeper", &on, Body::Spin),
            Some(json!({ "fuel": 2_000_000_000u64, "wallMs": 100 })),
            "TIMED_OUT",
            "deadline",
        ),
        (
            "bomb",
            wat_plugin("bomb", &on, Body::GrowMemory),
            None,
            "MEMORY_EXCEEDED",
            "memory",
        ),
        (
            "crasher",
            wat_plugin("crasher", &on, Body::Trap),
            None,
            "TRAPPED",
            "unreachable",
        ),
        (
            "shouter",
            wat_plugin("shouter", &on, Body::HugeText),
            None,
            "ERROR",
            "bytes of text",
        ),
        (
            "flooder",
            wat_plugin("flooder", &on, Body::FloodHostCalls),
            None,
            "ERROR",
            "host calls",
        ),
        (
            "refuser",
            wat_plugin("refuser", &on, Body::Fail("no thanks".into())),
            None,
            "ERROR",
            "no thanks",
        ),
    ];
    let mut ids = Vec::new();
    for (name, wasm, limits, _, _) in &cases {
        let p = admin.installed(name, wasm.clone(), limits.clone()).await;
        ids.push(p["id"].as_str().unwrap().to_string());
    }
    // A well-behaved plugin beside them still does its job.
    admin
        .installed("follow-up", example("follow-up"), None)
        .await;

    let r = admin.receive("SMS", "+14155550703", "hello", None).await;
    let conversation = r["conversation"]["id"].clone();
    for ((name, _, _, outcome, error), id) in cases.iter().zip(&ids) {
        let runs = admin.wait_for_runs(id, 1, 10).await;
        assert_eq!(runs.len(), 1, "{name} ran once");
        assert_eq!(runs[0]["outcome"], *outcome, "{name}: {:?}", runs[0]);
        assert_eq!(runs[0]["actions"], 0, "{name} changed nothing");
        let message = runs[0]["error"].as_str().unwrap_or("");
        assert!(message.contains(error), "{name}: {message}");
    }
    let sleeper = admin.runs(&ids[1]).await;
    assert!(
        sleeper[0]["durationMicros"].as_i64().unwrap() < 2_000_000,
        "{sleeper:?}"
    );
    let follow_up = eventually(5, || async {
        tasks(&admin, &conversation).await.into_iter().next()
    })
    .await;
    assert!(follow_up.is_some(), "the good plugin still ran");
    assert!(system_events(&activities(&admin, &conversation).await).is_empty());
    // Still serving.
    let again = admin
        .receive("SMS", "+14155550704", "anyone there?", None)
        .await;
    assert_eq!(again["duplicate"], false);
    admin.ok("{ me { id } }", json!({})).await;
}

#[tokio::test]
async fn bad_uploads_are_refused_as_plugin_invalid_and_store_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let core_module = wat::parse_str("(module)").unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "text",
            b"hello, I am not wasm".to_vec(),
            "not a WebAssembly file",
        ),
        ("core", core_module, "core WebAssembly module"),
        (
            "other",
            other_world(),
            "does not implement confab:plugin/plugin@0.1.0",
        ),
        (
            "unknown-event",
            wat_plugin("x", &["MESSAGE_EXPLODED"], Body::Nothing),
            "unknown event kind",
        ),
        (
            "bad-cron",
            wat_scheduled("x", &["every tuesday"], Body::Nothing),
            "not a cron expression",
        ),
        ("idle", wat_plugin("x", &[], Body::Nothing), "never run"),
    ];
    for (name, wasm, message) in cases {
        let res = admin.install_plugin(name, wasm, None).await;
        assert_eq!(res.code(), "PLUGIN_INVALID", "{name}: {}", res.body);
        let text = res.body["errors"][0]["message"].as_str().unwrap();
        assert!(text.contains(message), "{name}: {text}");
    }
    let too_high = admin
        .install_plugin(
            "greedy",
            wat_plugin("x", &["MESSAGE_RECEIVED"], Body::Nothing),
            Some(json!({ "wallMs": 600_000 })),
        )
        .await;
    assert_eq!(too_high.code(), "BAD_USER_INPUT", "{}", too_high.body);

    let agent = server.client(&server.token("acme", "agent@acme.test", "agent"));
    let forbidden = agent
        .install_plugin(
            "follow-up",
            wat_plugin("x", &["MESSAGE_RECEIVED"], Body::Nothing),
            None,
        )
        .await;
    assert_eq!(forbidden.code(), "FORBIDDEN");
    assert_eq!(
        agent.gql("{ plugins { id } }", json!({})).await.code(),
        "FORBIDDEN"
    );

    let listed = admin
        .ok(
            "{ plugins { id } jobs(first: 50) { edges { node { kind } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["plugins"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn a_plugin_cannot_touch_another_workspaces_conversations() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let other = server.client(&server.other_workspace("globex"));
    let theirs = other.receive("SMS", "+14155550705", "private", None).await["conversation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = admin
        .installed(
            "snoop",
            wat_plugin("snoop", &["MESSAGE_RECEIVED"], Body::LogOn(theirs.clone())),
            None,
        )
        .await;
    admin.receive("SMS", "+14155550706", "hi", None).await;
    let runs = admin.wait_for_runs(p["id"].as_str().unwrap(), 1, 5).await;
    assert_eq!(runs[0]["actions"], 0, "{runs:?}");
    let trail = activities(&other, &json!(theirs)).await;
    assert!(system_events(&trail).is_empty(), "{trail:?}");
}

#[tokio::test]
async fn every_change_a_run_asks_for_lands_in_order_and_a_refused_run_writes_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let me = |c: Client| async move {
        c.ok("{ me { id } }", json!({})).await["me"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let kim = server.client(&server.token("acme", "kim@acme.test", "agent"));
    let kim_id = me(kim.clone()).await;
    let outsider_id = me(server.client(&server.other_workspace("globex"))).await;
    let p = admin.installed("scripted", example("scripted"), None).await;

    // Two conversations at once, so their runs share a wave when they can: one asks for every
    // kind of change, the other names a user of another workspace among harmless requests.
    let script = format!(
        "assign {kim_id} Call back\nlog Called in\ntag vip\nnote Prefers **mornings**\n\
         remind-teammate {kim_id} Ring them\ntask Send the quote"
    );
    let refused = format!("task Not this one\nassign {outsider_id} Nor this\nlog Nothing");
    let (good, bad) = tokio::join!(
        admin.receive("SMS", "+14155550731", &script, None),
        admin.receive("SMS", "+14155550732", &refused, None),
    );
    let runs = admin.wait_for_runs(p["id"].as_str().unwrap(), 2, 10).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let ok = runs
        .iter()
        .find(|r| r["outcome"] == "OK")
        .expect("the good run");
    assert_eq!(ok["actions"], 6, "{runs:?}");
    let error = runs
        .iter()
        .find(|r| r["outcome"] == "ERROR")
        .expect("the refused run");
    assert_eq!(error["actions"], 0);
    // The host refuses the outsider during the run; the run's earlier requests go with it.
    let why = error["error"].as_str().unwrap();
    assert!(why.contains("no teammate"), "{why}");

    // The plugin's trail on the good conversation, oldest first, in the order it asked.
    let conversation = good["conversation"]["id"].clone();
    let by_plugin = |trail: Vec<Value>| -> Vec<(String, String)> {
        trail
            .iter()
            .rev()
            .filter(|a| a["actor"]["kind"] == "PLUGIN" && a["kind"] != "REMINDER_SENT")
            .map(|a| {
                assert_eq!(a["actor"]["plugin"]["name"], "scripted");
                (
                    a["kind"].as_str().unwrap().to_string(),
                    a["summary"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pair = |k: &str, s: &str| (k.to_string(), s.to_string());
    assert_eq!(
        by_plugin(activities(&admin, &conversation).await),
        vec![
            pair("TASK_CREATED", "Task created: Call back"),
            pair("SYSTEM_EVENT", "Called in"),
            pair("TAG_ADDED", "Tagged vip"),
            pair("NOTE_ADDED", "Added a note"),
            pair("TASK_CREATED", "Task created: Send the quote"),
        ]
    );
    let d = admin
        .ok(
            "query($id: ID!) { conversation(id: $id) {
                contact { tags }
                tasks(first: 10) { edges { node { title autoCreated assignee { id } } } }
                notes(first: 10) { edges { node { body bodyHtml author { email } } } } } }",
            json!({ "id": conversation }),
        )
        .await;
    let c = &d["conversation"];
    assert_eq!(c["contact"]["tags"], json!(["vip"]));
    let mut created: Vec<(String, Value)> = nodes(&c["tasks"])
        .iter()
        .map(|t| {
            assert_eq!(t["autoCreated"], true);
            (
                t["title"].as_str().unwrap().to_string(),
                t["assignee"]["id"].clone(),
            )
        })
        .collect();
    created.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        created,
        vec![
            ("Call back".to_string(), json!(kim_id)),
            ("Send the quote".to_string(), Value::Null),
        ]
    );
    let notes = nodes(&c["notes"]);
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["body"], "Prefers **mornings**");
    assert!(
        notes[0]["bodyHtml"]
            .as_str()
            .unwrap()
            .contains("<strong>mornings</strong>"),
        "{notes:?}"
    );
    assert_eq!(notes[0]["author"]["email"], "admin@acme.test");

    // Kim is told of the assignment now, and reminded as soon as the scheduler delivers.
    let told = notifications(&kim, 2).await;
    let mut kinds: Vec<(&str, &str, &Value)> = told
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap(),
                n["text"].as_str().unwrap(),
                &n["task"]["title"],
            )
        })
        .collect();
    kinds.sort_by_key(|&(kind, text, _)| (kind, text));
    assert_eq!(
        kinds,
        vec![
            ("PLUGIN_REMINDER", "Ring them", &Value::Null),
            (
                "TASK_ASSIGNED",
                "scripted assigned you: Call back",
                &json!("Call back")
            ),
        ]
    );

    // The refused run left nothing behind, not even its harmless requests.
    let other = bad["conversation"]["id"].clone();
    assert!(tasks(&admin, &other).await.is_empty());
    assert!(by_plugin(activities(&admin, &other).await).is_empty());
}

#[tokio::test]
async fn messages_stored_together_run_in_order_and_each_run_keeps_its_own_reminders() {
    // Messages arriving at once are stored in one transaction, which queues one job per
    // plugin for all of them. The job's runs on one conversation must still go one after
    // another (one follow-up task, not one per run), and each run's requests are its own
    // (every reminder is sent, none taken for another run's).
    let server = TestServer::start().await;
    let admin = server.admin();
    let kim = server.client(&server.token("acme", "kim@acme.test", "agent"));
    let kim_id = kim.ok("{ me { id } }", json!({})).await["me"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let follow_up = admin
        .installed("follow-up", example("follow-up"), None)
        .await;
    let scripted = admin.installed("scripted", example("scripted"), None).await;
    const N: usize = 16;
    let body = format!("remind-teammate {kim_id} Ring them\nlog seen");
    let sent = futures::future::join_all(
        (0..N).map(|_| admin.receive("SMS", "+14155550751", &body, None)),
    )
    .await;
    let conversation = sent[0]["conversation"]["id"].clone();
    assert!(sent.iter().all(|r| r["conversation"]["id"] == conversation));

    let runs = admin
        .wait_for_runs(follow_up["id"].as_str().unwrap(), N, 10)
        .await;
    assert_eq!(runs.len(), N, "{runs:?}");
    assert!(runs.iter().all(|r| r["outcome"] == "OK"), "{runs:?}");
    let opened: Vec<&Value> = runs.iter().filter(|r| r["actions"] == 1).collect();
    assert_eq!(opened.len(), 1, "one run opens the task: {runs:?}");
    assert_eq!(tasks(&admin, &conversation).await.len(), 1);

    let runs = admin
        .wait_for_runs(scripted["id"].as_str().unwrap(), N, 10)
        .await;
    assert_eq!(runs.len(), N, "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r["outcome"] == "OK" && r["actions"] == 2),
        "{runs:?}"
    );
    let trail = activities(&admin, &conversation).await;
    assert_eq!(system_events(&trail), vec!["seen"; N], "{trail:?}");
    let reminded = notifications(&kim, N).await;
    assert_eq!(reminded.len(), N);
    assert!(
        reminded
            .iter()
            .all(|n| n["kind"] == "PLUGIN_REMINDER" && n["text"] == "Ring them"),
        "{reminded:?}"
    );
    // Every job left the queue with its last run.
    assert_eq!(queued_runs(&admin).await, 0);
}

#[tokio::test]
async fn each_run_starts_on_a_fresh_memory_whatever_ran_in_its_slot_before() {
    // Runs one after another reuse the pool's memory slots; what a run left in memory (here
    // a counter in a static) must be gone when the next one starts.
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = admin.installed("scripted", example("scripted"), None).await;
    let mut conversation = Value::Null;
    for n in 1..=4 {
        let r = admin.receive("SMS", "+14155550741", "count", None).await;
        conversation = r["conversation"]["id"].clone();
        admin.wait_for_runs(p["id"].as_str().unwrap(), n, 5).await;
    }
    let trail = activities(&admin, &conversation).await;
    assert_eq!(system_events(&trail), vec!["counted 1"; 4], "{trail:?}");
}

#[tokio::test]
async fn a_plugin_failing_five_runs_in_a_row_is_disabled_and_says_so() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let p = admin
        .installed(
            "crasher",
            wat_plugin("crasher", &["MESSAGE_RECEIVED"], Body::Trap),
            None,
        )
        .await;
    let id = p["id"].as_str().unwrap();
    for n in 0..5 {
        admin
            .receive("SMS", &format!("+1415555072{n}"), "hi", None)
            .await;
        admin.wait_for_runs(id, n + 1, 5).await;
    }
    let state = admin
        .ok(
            "query($id: ID!) { plugin(id: $id) { enabled disabledReason } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(state["plugin"]["enabled"], false);
    assert!(
        state["plugin"]["disabledReason"]
            .as_str()
            .unwrap()
            .contains("5 failed runs in a row")
    );
    let runs = admin.runs(id).await;
    assert!(
        runs[0]["error"].as_str().unwrap().contains("disabled"),
        "{:?}",
        runs[0]
    );

    admin
        .receive("SMS", "+14155550730", "still there?", None)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        admin.runs(id).await.len(),
        5,
        "a disabled plugin does not run"
    );

    let set = "mutation($id: ID!) { setPluginEnabled(input: {pluginId: $id, enabled: true}) { plugin { enabled disabledReason } } }";
    let on = admin.ok(set, json!({ "id": id })).await;
    assert_eq!(
        on["setPluginEnabled"]["plugin"],
        json!({ "enabled": true, "disabledReason": null })
    );
    admin.receive("SMS", "+14155550731", "and now?", None).await;
    assert_eq!(admin.wait_for_runs(id, 6, 5).await.len(), 6);
}

#[tokio::test]
async fn cascades_stop_and_a_plugin_is_not_woken_by_its_own_changes() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550740", "hi", None).await;
    let conversation = r["conversation"]["id"].as_str().unwrap().to_string();
    let events = ["CONVERSATION_STARRED", "SYSTEM_EVENT"];
    let ping = admin
        .installed(
            "ping",
            wat_plugin("ping", &events, Body::LogOn(conversation.clone())),
            None,
        )
        .await;
    let pong = admin
        .installed(
            "pong",
            wat_plugin("pong", &["SYSTEM_EVENT"], Body::LogOn(conversation.clone())),
            None,
        )
        .await;
    let star = "mutation($id: ID!) { starConversation(input: {conversationId: $id, starred: true}) { conversation { starred } } }";
    admin.ok(star, json!({ "id": conversation })).await;
    // star -> ping (1) -> pong (2) -> ping (3) -> stop. Without the cap they would never stop.
    let ping_runs = admin
        .wait_for_runs(ping["id"].as_str().unwrap(), 2, 5)
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ping_runs_after = admin.runs(ping["id"].as_str().unwrap()).await;
    let pong_runs = admin.runs(pong["id"].as_str().unwrap()).await;
    assert_eq!(ping_runs.len(), 2, "{ping_runs:?}");
    assert_eq!(ping_runs_after.len(), 2);
    assert_eq!(pong_runs.len(), 1);
    let probes = system_events(&activities(&admin, &json!(conversation)).await);
    assert_eq!(probes, vec!["probe"; 3]);
}

#[tokio::test]
async fn a_plugin_schedule_runs_on_the_cron_in_the_workspace_time_zone() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550750", "hi", None).await;
    let conversation = r["conversation"]["id"].as_str().unwrap().to_string();
    let p = admin
        .installed(
            "daily",
            wat_scheduled("daily", &["0 0 9 * * *"], Body::LogOn(conversation.clone())),
            None,
        )
        .await;
    assert_eq!(p["schedules"], json!(["0 0 9 * * *"]));
    let pending =
        "{ jobs(kind: \"plugin.run.schedule\", status: PENDING) { edges { node { dueAt } } } }";
    let first = admin.ok(pending, json!({})).await["jobs"]["edges"][0]["node"]["dueAt"]
        .as_str()
        .expect("the next firing is scheduled")
        .to_string();
    let first = chrono::DateTime::parse_from_rfc3339(&first).unwrap();
    assert_eq!(
        first.format("%H:%M:%S").to_string(),
        "09:00:00",
        "UTC is the demo zone"
    );

    let now = chrono::DateTime::parse_from_rfc3339(&server.advance(0).await).unwrap();
    server.advance((first - now).num_seconds() + 1).await;
    let runs = admin.wait_for_runs(p["id"].as_str().unwrap(), 1, 5).await;
    assert_eq!(runs[0]["trigger"], "schedule: 0 0 9 * * *");
    assert_eq!(runs[0]["outcome"], "OK");
    assert_eq!(
        system_events(&activities(&admin, &json!(conversation)).await),
        vec!["probe"]
    );
    let next = eventually(5, || async {
        let d = admin.ok(pending, json!({})).await;
        d["jobs"]["edges"][0]["node"]["dueAt"]
            .as_str()
            .map(str::to_string)
    })
    .await
    .expect("the following firing is scheduled");
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    assert_eq!((next - first).num_hours(), 24);
}

#[tokio::test]
async fn the_cli_installs_a_plugin_and_refuses_a_bad_one() {
    let server = TestServer::start().await;
    let dir = std::env::temp_dir().join(format!("confab-cli-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("follow_up.wasm");
    std::fs::write(&good, example("follow-up")).unwrap();
    let out = cli(
        &server.db,
        &[
            "plugin",
            "install",
            good.to_str().unwrap(),
            "--workspace",
            "acme",
            "--json",
        ],
    );
    assert!(out.success, "{}", out.stderr);
    let installed = out.json();
    assert_eq!(installed["name"], "follow-up");
    let listed = server
        .admin()
        .ok("{ plugins { id name enabled } }", json!({}))
        .await;
    assert_eq!(listed["plugins"][0]["id"], installed["pluginId"]);

    let bad = dir.join("bad.wasm");
    std::fs::write(&bad, b"not wasm").unwrap();
    let out = cli(
        &server.db,
        &[
            "plugin",
            "install",
            bad.to_str().unwrap(),
            "--workspace",
            "acme",
            "--name",
            "bad",
        ],
    );
    assert!(!out.success);
    assert!(
        out.stderr.contains("not a WebAssembly file"),
        "{}",
        out.stderr
    );

    // Uninstalled: gone from the list, and it no longer runs.
    let id = installed["pluginId"].as_str().unwrap();
    let admin = server.admin();
    admin
        .ok(
            "mutation($id: ID!) { uninstallPlugin(input: {pluginId: $id}) { deletedId } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        admin.ok("{ plugins { id } }", json!({})).await["plugins"],
        json!([])
    );
    let r = admin.receive("SMS", "+14155550760", "hi", None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(tasks(&admin, &r["conversation"]["id"]).await.is_empty());
}

#[tokio::test]
async fn an_installed_plugin_keeps_working_after_a_restart() {
    let mut server = TestServer::start().await;
    let p = server
        .admin()
        .installed("follow-up", example("follow-up"), None)
        .await;
    server.restart().await;
    let admin = server.admin();
    let listed = admin
        .ok("{ plugins { id sha256 enabled } }", json!({}))
        .await;
    assert_eq!(listed["plugins"][0]["sha256"], p["sha256"]);
    let r = admin
        .receive("SMS", "+14155550770", "back again", None)
        .await;
    let task = eventually(5, || async {
        tasks(&admin, &r["conversation"]["id"])
            .await
            .into_iter()
            .next()
    })
    .await
    .expect("the plugin ran in the new process");
    assert!(
        task["title"]
            .as_str()
            .unwrap()
            .starts_with("Follow up with")
    );
}

#[tokio::test]
async fn an_upload_over_the_size_cap_is_refused() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut big = b"\0asm\x0d\0\x01\0".to_vec();
    big.resize((8 << 20) + 1024, 0);
    let res = admin.install_plugin("huge", big, None).await;
    assert_eq!(res.status, 413, "{}", res.body);
    assert_eq!(res.code(), "PLUGIN_INVALID");
    assert_eq!(
        admin.ok("{ plugins { id } }", json!({})).await["plugins"],
        json!([])
    );
}
