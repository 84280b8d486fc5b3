//! Live updates over WebSocket, on both subprotocols: what each subscription sees, in what
//! order, and what it never sees.
use std::time::Duration;

use confab_tests::TestServer;
use confab_tests::ws::{LEGACY_WS, Refused, TRANSPORT_WS, Ws};
use serde_json::json;

const INBOX: &str = "subscription { inboxEvents { kind conversation { id unreadCount starred } message { body } activity { actor { kind } } } }";
const CONVERSATION: &str = "subscription($id: ID!) { conversationEvents(conversationId: $id) { kind message { body } note { body } task { title } occurredAt } }";
const NOTIFICATIONS: &str = "subscription { notifications { kind text } }";

#[tokio::test]
async fn the_inbox_sees_new_messages_and_row_changes_on_both_protocols() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut ws = Ws::connect(&server.url, protocol, &server.admin_token)
            .await
            .expect("connects");
        ws.subscribe("inbox", INBOX, json!({})).await;
        // Give the subscription a moment to attach before the change.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = admin
            .receive(
                "SMS",
                "+14155550501",
                &format!("hello over {protocol}"),
                None,
            )
            .await;
        let event = ws.next("inbox").await;
        let e = &event["data"]["inboxEvents"];
        assert_eq!(e["kind"], "MESSAGE_RECEIVED", "{event}");
        assert_eq!(e["message"]["body"], format!("hello over {protocol}"));
        assert_eq!(e["activity"]["actor"]["kind"], "CONTACT");
        assert_eq!(e["conversation"]["id"], r["conversation"]["id"]);

        admin.ok("mutation($id: ID!) { starConversation(input: {conversationId: $id, starred: true}) { conversation { id } } }", json!({ "id": r["conversation"]["id"] })).await;
        let star = ws.next("inbox").await;
        assert_eq!(star["data"]["inboxEvents"]["kind"], "CONVERSATION_STARRED");
        assert_eq!(star["data"]["inboxEvents"]["conversation"]["starred"], true);
        admin.ok("mutation($id: ID!) { markConversationRead(input: {conversationId: $id}) { conversation { id } } }", json!({ "id": r["conversation"]["id"] })).await;
        let read = ws.next("inbox").await;
        assert_eq!(read["data"]["inboxEvents"]["kind"], "CONVERSATION_READ");
        assert_eq!(
            read["data"]["inboxEvents"]["conversation"]["unreadCount"],
            0
        );
        admin.ok("mutation($id: ID!) { starConversation(input: {conversationId: $id, starred: false}) { conversation { id } } }", json!({ "id": r["conversation"]["id"] })).await;
        assert_eq!(
            ws.next("inbox").await["data"]["inboxEvents"]["kind"],
            "CONVERSATION_STARRED"
        );
    }
}

#[tokio::test]
async fn a_subscribe_message_larger_than_the_socket_read_buffer_arrives_whole() {
    let server = TestServer::start().await;
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects");
    // 40 KiB of comment before the document: five times the server's read buffer.
    let padded = format!("# {}\n{INBOX}", "x".repeat(40 * 1024));
    ws.subscribe("inbox", &padded, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server
        .admin()
        .receive("SMS", "+14155550502", "after a long subscribe", None)
        .await;
    let event = ws.next("inbox").await;
    assert_eq!(
        event["data"]["inboxEvents"]["message"]["body"], "after a long subscribe",
        "{event}"
    );
}

#[tokio::test]
async fn a_conversation_streams_every_change_in_commit_order() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550502", "first", None).await;
    let id = r["conversation"]["id"].clone();
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects");
    ws.subscribe("c", CONVERSATION, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    for i in 0..100 {
        admin
            .receive("SMS", "+14155550502", &format!("burst {i}"), None)
            .await;
    }
    for i in 0..100 {
        let mut e = ws.next("c").await;
        if i == 0 && e["data"]["conversationEvents"]["message"]["body"] == "first" {
            // Committed before we subscribed, published just after (a busy machine): fine.
            e = ws.next("c").await;
        }
        assert_eq!(e["data"]["conversationEvents"]["kind"], "MESSAGE_RECEIVED");
        assert_eq!(
            e["data"]["conversationEvents"]["message"]["body"],
            format!("burst {i}"),
            "event {i} out of order"
        );
    }

    admin.ok("mutation($c: ID!) { addNote(input: {conversationId: $c, body: \"a note\"}) { note { id } } }", json!({ "c": id })).await;
    let note = ws.next("c").await;
    assert_eq!(note["data"]["conversationEvents"]["kind"], "NOTE_ADDED");
    assert_eq!(note["data"]["conversationEvents"]["note"]["body"], "a note");
    admin.ok("mutation($c: ID!) { createTask(input: {conversationId: $c, title: \"Call back\"}) { task { id } } }", json!({ "c": id })).await;
    let task = ws.next("c").await;
    assert_eq!(task["data"]["conversationEvents"]["kind"], "TASK_CREATED");
    assert_eq!(
        task["data"]["conversationEvents"]["task"]["title"],
        "Call back"
    );
    admin.ok("mutation($c: ID!) { sendMessage(input: {conversationId: $c, channel: SMS, body: \"On it\"}) { message { id } } }", json!({ "c": id })).await;
    let sent = ws.next("c").await;
    assert_eq!(sent["data"]["conversationEvents"]["kind"], "MESSAGE_SENT");
    // The dispatcher's SENT status reaches subscribers too.
    let status = ws.next("c").await;
    assert_eq!(
        status["data"]["conversationEvents"]["kind"],
        "MESSAGE_STATUS_CHANGED"
    );
}

#[tokio::test]
async fn messages_stored_together_reach_a_subscriber_once_each_in_commit_order() {
    // Messages arriving at once are stored in one transaction, and their trail rows written
    // with one insert (on PostgreSQL, one NOTIFY names them all). Each still reaches the
    // subscriber once, in the order of the conversation's audit trail (commit order; the
    // timeline orders by receipt time, which can differ within a batch).
    let server = TestServer::start().await;
    let admin = server.admin();
    const FROM: &str = "+14155550509";
    let first = admin.receive("SMS", FROM, "before", None).await;
    let id = first["conversation"]["id"].clone();
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects");
    ws.subscribe(
        "c",
        "subscription($id: ID!) { conversationEvents(conversationId: $id) { kind activity { id } message { body } } }",
        json!({ "id": id }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    const N: usize = 40;
    let bodies: Vec<String> = (0..N).map(|i| format!("together {i}")).collect();
    futures::future::join_all(bodies.iter().map(|b| admin.receive("SMS", FROM, b, None))).await;
    let (mut seen, mut trail_ids) = (Vec::new(), Vec::new());
    while seen.len() < N {
        let e = &ws.next("c").await["data"]["conversationEvents"];
        if e["message"]["body"] == "before" && seen.is_empty() {
            // Committed before we subscribed, published just after (a busy machine): fine.
            continue;
        }
        assert_eq!(e["kind"], "MESSAGE_RECEIVED", "{e}");
        seen.push(e["message"]["body"].as_str().expect("a body").to_string());
        trail_ids.push(e["activity"]["id"].clone());
    }
    assert!(
        ws.quiet("c", Duration::from_millis(500)).await,
        "no event twice"
    );
    seen.sort();
    let mut sent = bodies.clone();
    sent.sort();
    assert_eq!(seen, sent, "each message once");
    let trail = admin
        .ok(
            "query($id: ID!, $n: Int) { conversation(id: $id) { activities(kinds: [MESSAGE_RECEIVED], first: $n) { edges { node { id } } } } }",
            json!({ "id": id, "n": N }),
        )
        .await;
    let mut stored: Vec<serde_json::Value> = trail["conversation"]["activities"]["edges"]
        .as_array()
        .expect("activities")
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect();
    stored.reverse();
    assert_eq!(trail_ids, stored, "events in the trail's order");
}

#[tokio::test]
async fn notifications_reach_only_their_user() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let bo_token = server.token("acme", "bo@acme.test", "agent");
    let cy_token = server.token("acme", "cy@acme.test", "agent");
    let bo_id = server
        .client(&bo_token)
        .ok("{ me { id } }", json!({}))
        .await["me"]["id"]
        .clone();
    let mut bo = Ws::connect(&server.url, LEGACY_WS, &bo_token)
        .await
        .expect("connects");
    let mut cy = Ws::connect(&server.url, TRANSPORT_WS, &cy_token)
        .await
        .expect("connects");
    bo.subscribe("n", NOTIFICATIONS, json!({})).await;
    cy.subscribe("n", NOTIFICATIONS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = admin.receive("SMS", "+14155550503", "hi", None).await;
    admin
        .ok("mutation($c: ID!) { addNote(input: {conversationId: $c, body: \"@bo please look\"}) { note { id } } }", json!({ "c": r["conversation"]["id"] }))
        .await;
    admin
        .ok("mutation($c: ID!, $a: ID) { createTask(input: {conversationId: $c, title: \"Quote\", assigneeId: $a}) { task { id } } }", json!({ "c": r["conversation"]["id"], "a": bo_id }))
        .await;
    admin
        .ok("mutation($m: ID!, $u: ID!) { forwardMessage(input: {messageId: $m, toUserId: $u}) { message { id } } }", json!({ "m": r["message"]["id"], "u": bo_id }))
        .await;
    for kind in ["MENTION", "TASK_ASSIGNED", "MESSAGE_FORWARDED"] {
        assert_eq!(bo.next("n").await["data"]["notifications"]["kind"], kind);
    }
    assert!(
        cy.quiet("n", Duration::from_millis(500)).await,
        "cy is told nothing"
    );
}

#[tokio::test]
async fn other_workspaces_and_bad_tokens_get_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let other_token = server.other_workspace("globex");
    let r = admin.receive("SMS", "+14155550504", "ours", None).await;

    let mut theirs = Ws::connect(&server.url, TRANSPORT_WS, &other_token)
        .await
        .expect("connects");
    theirs.subscribe("inbox", INBOX, json!({})).await;
    theirs
        .subscribe(
            "peek",
            CONVERSATION,
            json!({ "id": r["conversation"]["id"] }),
        )
        .await;
    let peek = theirs.next("peek").await;
    assert_eq!(
        peek["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{peek}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    admin
        .receive("SMS", "+14155550504", "still ours", None)
        .await;
    server
        .client(&other_token)
        .receive("SMS", "+14155550599", "theirs", None)
        .await;
    let first = theirs.next("inbox").await;
    assert_eq!(
        first["data"]["inboxEvents"]["message"]["body"], "theirs",
        "our message never reached them"
    );

    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        match Ws::connect(&server.url, protocol, "cfb_wrong").await {
            Err(Refused::Closed(code)) => assert_eq!(code, 4403, "{protocol}"),
            Err(other) => panic!("{protocol}: expected a 4403 close, got {other:?}"),
            Ok(_) => panic!("{protocol}: a wrong token was accepted"),
        }
    }
    let integration = server.token("acme", "gw@acme.test", "integration");
    let mut gw = Ws::connect(&server.url, TRANSPORT_WS, &integration)
        .await
        .expect("connects");
    gw.subscribe("inbox", INBOX, json!({})).await;
    assert_eq!(
        gw.next("inbox").await["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_subscribers_of_another() {
    let server = TestServer::start().await;
    if !server.db.is_postgres() {
        eprintln!("replicas share a database only on PostgreSQL; set CONFAB_TEST_DATABASE_URL");
        return;
    }
    let replica = server.replica().await;
    let mut ws = Ws::connect(&replica.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects to B");
    ws.subscribe("inbox", INBOX, json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        server
            .admin()
            .receive("WHATSAPP", "+14155550505", &format!("via A {i}"), None)
            .await;
    }
    for i in 0..20 {
        let e = ws.next("inbox").await;
        assert_eq!(
            e["data"]["inboxEvents"]["message"]["body"],
            format!("via A {i}")
        );
    }
}

#[tokio::test]
async fn refused_changes_publish_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550506", "hi", None).await;
    let id = r["conversation"]["id"].clone();
    admin
        .ok("mutation($c: ID!) { updateContact(input: {contactId: $c, status: DND}) { contact { id } } }", json!({ "c": r["contact"]["id"] }))
        .await;
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects");
    ws.subscribe("c", CONVERSATION, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fence: the changes before it may still be on their way (the event source lags
    // under load); once the note's event arrives, anything after it is the refused changes'.
    admin.ok("mutation($c: ID!) { addNote(input: {conversationId: $c, body: \"fence\"}) { note { id } } }", json!({ "c": id })).await;
    while ws.next("c").await["data"]["conversationEvents"]["note"]["body"] != "fence" {}
    let refused = admin
        .gql("mutation($c: ID!) { sendMessage(input: {conversationId: $c, channel: SMS, body: \"promo\"}) { message { id } } }", json!({ "c": id }))
        .await;
    assert_eq!(refused.code(), "CONTACT_DND");
    let bad = admin.gql("mutation($c: ID!) { createTask(input: {conversationId: $c, title: \"\"}) { task { id } } }", json!({ "c": id })).await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    assert!(
        ws.quiet("c", Duration::from_millis(600)).await,
        "a refused change publishes no event"
    );
}

#[tokio::test]
async fn shutdown_closes_sockets_with_going_away() {
    let mut server = TestServer::start().await;
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects");
    ws.subscribe("inbox", INBOX, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = server.terminate().await;
    assert_eq!(ws.closed().await, 1001, "going away");
    assert!(
        status.success(),
        "a graceful shutdown exits cleanly: {status}"
    );
}

/// Socket operations take turns as HTTP queries do (`--max-concurrent-queries`): with one turn,
/// an open subscription holds none, and each query on the socket gives its turn back, so the
/// socket's next query, HTTP's queries and the subscription's events all keep coming.
#[tokio::test]
async fn with_one_turn_an_open_subscription_holds_none_and_socket_queries_give_theirs_back() {
    let db = confab_tests::TestDb::new().await;
    let server = TestServer::start_with(db, &["--max-concurrent-queries", "1"]).await;
    let admin = server.admin();
    let mut ws = Ws::connect(&server.url, TRANSPORT_WS, &server.admin_token)
        .await
        .expect("connects");
    ws.subscribe("inbox", INBOX, json!({})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let count = "{ conversations(first: 5) { totalCount } }";
    for i in 0..3 {
        let body = format!("turn {i}");
        admin
            .receive("SMS", &format!("+1415555060{i}"), &body, None)
            .await;
        let event = ws.next("inbox").await;
        assert_eq!(
            event["data"]["inboxEvents"]["message"]["body"], body,
            "{event}"
        );
        let id = format!("count {i}");
        ws.subscribe(&id, count, json!({})).await;
        let on_socket = ws.next(&id).await;
        assert_eq!(
            on_socket["data"]["conversations"]["totalCount"],
            i + 1,
            "{on_socket}"
        );
        let over_http = admin.ok(count, json!({})).await;
        assert_eq!(over_http["conversations"]["totalCount"], i + 1);
    }
}
