//! Reminders and overdue alerts fire once, on time, across restarts and replicas, driven by
//! the test clock instead of real waiting.
use std::time::Duration;

use confab_tests::{Client, TestDb, TestServer, advance_clock};
use serde_json::{Value, json};

/// The server's time `now` plus `seconds`, as RFC 3339.
fn at(now: &str, seconds: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(now).expect("the server's time");
    (t + chrono::Duration::seconds(seconds)).to_rfc3339()
}

async fn kinds(client: &Client) -> Vec<String> {
    let d = client
        .ok(
            "{ notifications(first: 100) { edges { node { kind } } } }",
            json!({}),
        )
        .await;
    d["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Waits (briefly, in real time) until `client` has `n` notifications of `kind`.
async fn expect_count(client: &Client, kind: &str, n: usize) {
    let mut seen = 0;
    for _ in 0..100 {
        seen = kinds(client).await.iter().filter(|k| *k == kind).count();
        if seen >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, n, "{kind} notifications");
}

/// The kinds of the workspace's jobs with `status`.
async fn job_kinds(client: &Client, status: &str) -> Vec<String> {
    let d = client
        .ok(
            "query($s: JobStatus) { jobs(status: $s, first: 100) { edges { node { kind } } } }",
            json!({ "s": status }),
        )
        .await;
    d["jobs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap().to_string())
        .collect()
}

struct Setup {
    server: TestServer,
    admin: Client,
    bo: Client,
    bo_id: Value,
    conversation: Value,
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

async fn setup_with(args: &[&str]) -> Setup {
    let server = TestServer::start_with(TestDb::new().await, args).await;
    let admin = server.admin();
    let bo = server.client(&server.token("acme", "bo@acme.test", "agent"));
    let bo_id = bo.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    let r = admin
        .receive("SMS", "+14155550601", "please call", None)
        .await;
    Setup {
        conversation: r["conversation"]["id"].clone(),
        server,
        admin,
        bo,
        bo_id,
    }
}

const CREATE: &str = "mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }";

#[tokio::test]
async fn a_task_reminder_and_its_overdue_alert_fire_once_at_their_time() {
    let s = setup().await;
    let now = s.server.advance(0).await;
    s.admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Call back", "assigneeId": s.bo_id,
            "remindAt": at(&now, 60), "dueAt": at(&now, 120) } }))
        .await;
    s.server.advance(30).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !kinds(&s.bo).await.contains(&"TASK_REMINDER".to_string()),
        "not before its time"
    );
    s.server.advance(31).await;
    expect_count(&s.bo, "TASK_REMINDER", 1).await;
    s.server.advance(60).await;
    expect_count(&s.bo, "TASK_OVERDUE", 1).await;
    s.server.advance(3600).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    expect_count(&s.bo, "TASK_REMINDER", 1).await;
    expect_count(&s.bo, "TASK_OVERDUE", 1).await;

    let trail = s
        .admin
        .ok("query($id: ID!) { conversation(id: $id) { activities(kinds: [REMINDER_SENT]) { edges { node { actor { kind } } } } } }", json!({ "id": s.conversation }))
        .await;
    assert_eq!(
        trail["conversation"]["activities"]["edges"][0]["node"]["actor"]["kind"],
        "SYSTEM"
    );
    let jobs = s
        .admin
        .ok(
            "{ jobs(status: DONE, kind: \"task.reminder\") { totalCount edges { node { kind attempts finishedAt } } } overdue: jobs(status: DONE, kind: \"task.overdue\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(jobs["jobs"]["totalCount"], 1);
    assert_eq!(jobs["overdue"]["totalCount"], 1);
    assert_eq!(jobs["jobs"]["edges"][0]["node"]["kind"], "task.reminder");
    assert_eq!(jobs["jobs"]["edges"][0]["node"]["attempts"], 1);
    assert_eq!(
        s.bo.gql("{ jobs { totalCount } }", json!({})).await.code(),
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn a_reminder_due_between_polls_fires_when_it_falls_due_not_at_the_next_poll() {
    // A poll far longer than the test: only waiting for the next due job can fire it.
    let s = setup_with(&["--scheduler-poll-ms", "600000"]).await;
    let now = s.server.advance(0).await;
    s.admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Call back", "assigneeId": s.bo_id,
            "remindAt": at(&now, 60) } }))
        .await;
    // A second before its time: the scheduler wakes on the clock, finds nothing due yet and
    // goes back to sleep; the reminder falls due a second later in real time, with nothing
    // else to wake the scheduler.
    s.server.advance(59).await;
    expect_count(&s.bo, "TASK_REMINDER", 1).await;
    let jobs = s
        .admin
        .ok(
            "{ jobs(status: DONE, kind: \"task.reminder\") { edges { node { dueAt finishedAt } } } }",
            json!({}),
        )
        .await;
    let node = &jobs["jobs"]["edges"][0]["node"];
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(node[k].as_str().expect(k)).expect(k);
    assert!(time("finishedAt") >= time("dueAt"), "not early: {node}");
}

#[tokio::test]
async fn moving_completing_or_deleting_a_task_moves_or_cancels_its_jobs() {
    let s = setup().await;
    let now = s.server.advance(0).await;
    let moved = s
        .admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Moved", "assigneeId": s.bo_id, "remindAt": at(&now, 60) } }))
        .await["createTask"]["task"]["id"]
        .clone();
    let done = s
        .admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Done", "assigneeId": s.bo_id, "dueAt": at(&now, 60) } }))
        .await["createTask"]["task"]["id"]
        .clone();
    let gone = s
        .admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Gone", "assigneeId": s.bo_id, "remindAt": at(&now, 60) } }))
        .await["createTask"]["task"]["id"]
        .clone();
    let update = "mutation($i: UpdateTaskInput!) { updateTask(input: $i) { task { id } } }";
    s.admin
        .ok(
            update,
            json!({ "i": { "taskId": moved, "remindAt": at(&now, 300) } }),
        )
        .await;
    s.admin
        .ok(
            update,
            json!({ "i": { "taskId": done, "status": "COMPLETED" } }),
        )
        .await;
    s.admin
        .ok(
            "mutation($id: ID!) { deleteTask(input: {taskId: $id}) { deletedId } }",
            json!({ "id": gone }),
        )
        .await;
    let pending = job_kinds(&s.admin, "PENDING").await;
    let tasks: Vec<_> = pending.iter().filter(|k| k.starts_with("task.")).collect();
    assert_eq!(
        tasks.len(),
        1,
        "only the moved reminder is pending: {pending:?}"
    );
    assert_eq!(job_kinds(&s.admin, "CANCELLED").await.len(), 3);

    s.server.advance(120).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        kinds(&s.bo).await.iter().all(|k| k == "TASK_ASSIGNED"),
        "nothing fired at the old times"
    );
    s.server.advance(200).await;
    expect_count(&s.bo, "TASK_REMINDER", 1).await;
}

#[tokio::test]
async fn reminders_that_fell_due_while_the_server_was_down_fire_once_on_start() {
    let mut s = setup().await;
    let now = s.server.advance(0).await;
    for title in ["one", "two"] {
        s.admin
            .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": title, "assigneeId": s.bo_id, "remindAt": at(&now, 60) } }))
            .await;
    }
    s.server.restart().await;
    // The new process starts with the real time; from its clock's view the jobs fell due
    // while it was down once we move it past them.
    advance_clock(&s.server.url, 3600).await;
    let bo = s.server.client(s.bo.token.as_deref().unwrap());
    expect_count(&bo, "TASK_REMINDER", 2).await;
    s.server.restart().await;
    advance_clock(&s.server.url, 7200).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let bo = s.server.client(s.bo.token.as_deref().unwrap());
    expect_count(&bo, "TASK_REMINDER", 2).await;
}

#[tokio::test]
async fn two_replicas_share_a_thousand_due_reminders_exactly_once() {
    let s = setup().await;
    if !s.server.db.is_postgres() {
        eprintln!("replicas share a database only on PostgreSQL; set CONFAB_TEST_DATABASE_URL");
        return;
    }
    let now = s.server.advance(0).await;
    let remind = at(&now, 60);
    let creates = (0..1000).map(|i| {
        let admin = s.admin.clone();
        let input = json!({ "i": { "conversationId": s.conversation, "title": format!("t{i}"), "assigneeId": s.bo_id, "remindAt": remind } });
        async move { admin.ok(CREATE, input).await }
    });
    let mut pending = futures::stream::iter(creates).buffer_unordered(16);
    use futures::StreamExt;
    while pending.next().await.is_some() {}
    let replica = s.server.replica().await;
    advance_clock(&replica.url, 3600).await;
    s.server.advance(3600).await;
    let count = "{ notifications(unreadOnly: false) { totalCount } }";
    let mut total = 0;
    for _ in 0..400 {
        let n = s.bo.ok(count, json!({})).await["notifications"]["totalCount"]
            .as_i64()
            .unwrap();
        total = n;
        if n >= 2000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 1,000 TASK_ASSIGNED + 1,000 TASK_REMINDER.
    assert_eq!(total, 2000);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = s.bo.ok(count, json!({})).await["notifications"]["totalCount"]
        .as_i64()
        .unwrap();
    assert_eq!(again, 2000, "no reminder ran twice");
    let done = s
        .admin
        .ok(
            "{ jobs(status: DONE, kind: \"task.reminder\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(done["jobs"]["totalCount"], 1000);
}

const BOOK: &str =
    "mutation($i: CreateAppointmentInput!) { createAppointment(input: $i) { appointment { id } } }";

async fn outbound_bodies(client: &Client, conversation: &Value) -> Vec<String> {
    let d = client
        .ok("query($id: ID!) { conversation(id: $id) { messages(last: 50) { edges { node { direction body } } } } }", json!({ "id": conversation }))
        .await;
    d["conversation"]["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["direction"] == "OUTBOUND")
        .map(|e| e["node"]["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn appointment_reminders_reach_the_organizer_and_the_contact_at_the_lead_time() {
    let s = setup().await;
    let now = s.server.advance(0).await;
    // Starts in 2 hours: the 24 h lead time has passed, the 1 h one is ahead.
    let a = s
        .bo
        .ok(BOOK, json!({ "i": { "conversationId": s.conversation, "title": "Demo call", "startsAt": at(&now, 7200), "endsAt": at(&now, 9000) } }))
        .await["createAppointment"]["appointment"]["id"]
        .clone();
    let kinds_pending = job_kinds(&s.admin, "PENDING").await;
    assert_eq!(
        kinds_pending
            .iter()
            .filter(|k| *k == "appointment.reminder")
            .count(),
        1,
        "{kinds_pending:?}"
    );
    s.server.advance(3500).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !kinds(&s.bo)
            .await
            .contains(&"APPOINTMENT_REMINDER".to_string()),
        "not before the lead time"
    );
    s.server.advance(200).await;
    expect_count(&s.bo, "APPOINTMENT_REMINDER", 1).await;
    let mut bodies = Vec::new();
    for _ in 0..50 {
        bodies = outbound_bodies(&s.admin, &s.conversation).await;
        if !bodies.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(bodies.len(), 1, "one reminder to the contact");
    assert!(
        bodies[0].starts_with("Reminder: Demo call on "),
        "{}",
        bodies[0]
    );

    // Rescheduling moves the reminder; cancelling cancels it.
    let now = s.server.advance(0).await;
    let update = "mutation($i: UpdateAppointmentInput!) { updateAppointment(input: $i) { appointment { id } } }";
    s.bo.ok(update, json!({ "i": { "appointmentId": a, "startsAt": at(&now, 7200), "endsAt": at(&now, 8000) } })).await;
    s.bo.ok("mutation($id: ID!) { cancelAppointment(input: {appointmentId: $id}) { appointment { status } } }", json!({ "id": a })).await;
    s.server.advance(7200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect_count(&s.bo, "APPOINTMENT_REMINDER", 1).await;
}

#[tokio::test]
async fn a_dnd_contact_gets_no_reminder_and_the_skip_is_recorded() {
    let s = setup().await;
    let contact = s
        .admin
        .ok(
            "query($id: ID!) { conversation(id: $id) { contact { id } } }",
            json!({ "id": s.conversation }),
        )
        .await;
    s.admin
        .ok("mutation($c: ID!) { updateContact(input: {contactId: $c, status: DND}) { contact { id } } }", json!({ "c": contact["conversation"]["contact"]["id"] }))
        .await;
    let now = s.server.advance(0).await;
    s.bo.ok(BOOK, json!({ "i": { "conversationId": s.conversation, "title": "Check-in", "startsAt": at(&now, 7200), "endsAt": at(&now, 7800) } })).await;
    s.server.advance(3700).await;
    expect_count(&s.bo, "APPOINTMENT_REMINDER", 1).await;
    let trail = s
        .admin
        .ok("query($id: ID!) { conversation(id: $id) { activities(kinds: [REMINDER_SENT]) { edges { node { data } } } } }", json!({ "id": s.conversation }))
        .await;
    assert_eq!(
        trail["conversation"]["activities"]["edges"][0]["node"]["data"]["skipped"],
        "CONTACT_DND"
    );
    assert!(
        outbound_bodies(&s.admin, &s.conversation).await.is_empty(),
        "nothing was sent"
    );
}

#[tokio::test]
async fn a_server_killed_mid_batch_loses_nothing_and_duplicates_nothing() {
    let mut s = setup().await;
    let now = s.server.advance(0).await;
    let remind = at(&now, 60);
    let creates = (0..300).map(|i| {
        let admin = s.admin.clone();
        let input = json!({ "i": { "conversationId": s.conversation, "title": format!("t{i}"), "assigneeId": s.bo_id, "remindAt": remind } });
        async move { admin.ok(CREATE, input).await }
    });
    use futures::StreamExt;
    let mut pending = futures::stream::iter(creates).buffer_unordered(8);
    while pending.next().await.is_some() {}
    // The jobs fall due, and the server dies while it works through them.
    s.server.advance(120).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.server.kill().await;
    s.server.start_again().await;
    // Past the lease of whatever the dead server had claimed.
    advance_clock(&s.server.url, 120 + 3600).await;
    let bo = s.server.client(s.bo.token.as_deref().unwrap());
    let count = "{ notifications { totalCount } }";
    let mut total = 0;
    for _ in 0..300 {
        total = bo.ok(count, json!({})).await["notifications"]["totalCount"]
            .as_i64()
            .unwrap();
        if total >= 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        total, 600,
        "300 TASK_ASSIGNED and 300 TASK_REMINDER, each once"
    );
    let admin = s.server.admin();
    let jobs = admin.ok("{ done: jobs(status: DONE, kind: \"task.reminder\") { totalCount } running: jobs(status: RUNNING) { totalCount } }", json!({})).await;
    assert_eq!(jobs["done"]["totalCount"], 300);
    assert_eq!(jobs["running"]["totalCount"], 0);
}

#[tokio::test]
async fn the_daily_overdue_digest_runs_once_even_after_missed_days() {
    let s = setup().await;
    let now = s.server.advance(0).await;
    s.admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Late", "assigneeId": s.bo_id, "dueAt": at(&now, 60) } }))
        .await;
    let digests =
        "{ jobs(status: PENDING, kind: \"cron.overdue_digest\") { edges { node { dueAt } } } }";
    let pending = s.admin.ok(digests, json!({})).await;
    assert_eq!(
        pending["jobs"]["edges"].as_array().unwrap().len(),
        1,
        "one digest pending per workspace"
    );
    assert!(
        pending["jobs"]["edges"][0]["node"]["dueAt"]
            .as_str()
            .unwrap()
            .contains("T08:00:00"),
        "08:00 in the workspace zone (UTC)"
    );
    s.server.advance(86_400).await;
    expect_count(&s.bo, "OVERDUE_DIGEST", 1).await;
    // Three days pass at once (as if the server had been down): the digest runs once, not three times.
    s.server.advance(3 * 86_400).await;
    expect_count(&s.bo, "OVERDUE_DIGEST", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect_count(&s.bo, "OVERDUE_DIGEST", 2).await;
    let next = s.admin.ok(digests, json!({})).await;
    assert_eq!(
        next["jobs"]["edges"].as_array().unwrap().len(),
        1,
        "the next one is scheduled"
    );

    // A time-zone change moves the pending digest to 08:00 in the new zone.
    s.admin.ok("mutation { updateWorkspace(input: {timeZone: \"Asia/Tokyo\"}) { workspace { timeZone } } }", json!({})).await;
    let moved = s.admin.ok(digests, json!({})).await;
    assert!(
        moved["jobs"]["edges"][0]["node"]["dueAt"]
            .as_str()
            .unwrap()
            .contains("T23:00:00"),
        "{moved}"
    );
}

#[tokio::test]
async fn reminders_reach_the_notifications_subscription_and_new_lead_times_apply() {
    use confab_tests::ws::{TRANSPORT_WS, Ws};
    let s = setup().await;
    let mut ws = Ws::connect(&s.server.url, TRANSPORT_WS, s.bo.token.as_deref().unwrap())
        .await
        .expect("connects");
    ws.subscribe(
        "n",
        "subscription { notifications { kind text } }",
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let now = s.server.advance(0).await;
    s.admin
        .ok(CREATE, json!({ "i": { "conversationId": s.conversation, "title": "Ping me", "assigneeId": s.bo_id, "remindAt": at(&now, 60) } }))
        .await;
    assert_eq!(
        ws.next("n").await["data"]["notifications"]["kind"],
        "TASK_ASSIGNED"
    );
    s.server.advance(61).await;
    let reminder = ws.next("n").await;
    assert_eq!(reminder["data"]["notifications"]["kind"], "TASK_REMINDER");
    assert_eq!(
        reminder["data"]["notifications"]["text"],
        "Reminder: Ping me"
    );

    // An appointment in 3 hours has no reminder ahead at the default lead times (24 h passed,
    // 1 h ahead); with a 2 h lead time added, it gets one more.
    let now = s.server.advance(0).await;
    s.bo.ok(BOOK, json!({ "i": { "conversationId": s.conversation, "title": "Plan", "startsAt": at(&now, 10_800), "endsAt": at(&now, 11_400) } })).await;
    let reminders = "{ jobs(status: PENDING, kind: \"appointment.reminder\") { totalCount } }";
    assert_eq!(
        s.admin.ok(reminders, json!({})).await["jobs"]["totalCount"],
        1
    );
    s.admin.ok("mutation { updateWorkspace(input: {appointmentReminderMinutes: [120, 60]}) { workspace { id } } }", json!({})).await;
    assert_eq!(
        s.admin.ok(reminders, json!({})).await["jobs"]["totalCount"],
        2
    );
}
