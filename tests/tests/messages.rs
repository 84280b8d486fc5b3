//! Messages as the team and the integrations see them: one contact per address, one
//! conversation per contact, idempotent inbound, receipts that never go backwards.
use confab_tests::TestServer;
use serde_json::{Value, json};

const TIMELINE: &str = "query($id: ID!, $deleted: Boolean) { conversation(id: $id) {
    id unreadCount status lastMessage { body }
    messages(includeDeleted: $deleted) { totalCount edges { node { id body channel deletedAt } } }
} }";

fn bodies(conversation: &Value) -> Vec<String> {
    conversation["messages"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["body"].as_str().expect("body").to_string())
        .collect()
}

#[tokio::test]
async fn first_message_from_a_new_number_opens_one_conversation() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let first = admin
        .receive(
            "SMS",
            "+1 (415) 555-0101",
            "Hi, is my order ready?",
            Some("sms-1"),
        )
        .await;
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["contact"]["phone"], "+14155550101");
    assert_eq!(first["conversation"]["unreadCount"], 1);
    assert_eq!(first["message"]["direction"], "INBOUND");
    assert_eq!(first["message"]["status"], "RECEIVED");

    // Same number, other spelling, other channel: same contact, same conversation.
    let second = admin.receive("SMS", "+14155550101", "Hello?", None).await;
    let third = admin
        .receive("WHATSAPP", "14155550101", "Also on WhatsApp", None)
        .await;
    assert_eq!(second["contact"]["id"], first["contact"]["id"]);
    assert_eq!(third["conversation"]["id"], first["conversation"]["id"]);
    assert_eq!(third["contact"]["whatsapp"], "14155550101");
    assert_eq!(third["conversation"]["unreadCount"], 3);

    let data = admin
        .ok(TIMELINE, json!({ "id": first["conversation"]["id"] }))
        .await;
    assert_eq!(
        bodies(&data["conversation"]),
        ["Hi, is my order ready?", "Hello?", "Also on WhatsApp"]
    );
    let channels: Vec<&str> = data["conversation"]["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["SMS", "SMS", "WHATSAPP"]);
    assert_eq!(
        data["conversation"]["lastMessage"]["body"],
        "Also on WhatsApp"
    );

    let contacts = admin
        .ok(
            "{ contacts { totalCount } conversations { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(contacts["contacts"]["totalCount"], 1);
    assert_eq!(contacts["conversations"]["totalCount"], 1);
}

#[tokio::test]
async fn email_addresses_match_whatever_their_case() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let a = admin
        .receive("EMAIL", "Ana@Example.com", "First", None)
        .await;
    let b = admin
        .receive("EMAIL", "Ana Lima <ana@example.com>", "Second", None)
        .await;
    assert_eq!(a["contact"]["id"], b["contact"]["id"]);
    assert_eq!(a["contact"]["email"], "ana@example.com");
    let bad = admin
        .gql(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "EMAIL", "from": "not-an-address", "body": "x" } }),
        )
        .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
    let bad = admin
        .gql(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "SMS", "from": "call me", "body": "x" } }),
        )
        .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn repeated_external_id_returns_the_first_message_and_changes_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let first = admin
        .receive("WHATSAPP", "+447911123456", "Original", Some("wamid.1"))
        .await;
    let again = admin
        .receive(
            "WHATSAPP",
            "+447911123456",
            "Retry with other text",
            Some("wamid.1"),
        )
        .await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["message"]["id"], first["message"]["id"]);
    assert_eq!(again["message"]["body"], "Original");
    assert_eq!(again["conversation"]["unreadCount"], 1);
    let data = admin
        .ok(TIMELINE, json!({ "id": first["conversation"]["id"] }))
        .await;
    assert_eq!(data["conversation"]["messages"]["totalCount"], 1);
    // The same id on another channel is another message.
    let sms = admin
        .receive("SMS", "+447911123456", "Different channel", Some("wamid.1"))
        .await;
    assert_eq!(sms["duplicate"], false);
}

#[tokio::test]
async fn reading_a_conversation_clears_unread_and_unread_marks_it_again() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin.receive("SMS", "+14155550102", "one", None).await;
    admin.receive("SMS", "+14155550102", "two", None).await;
    let id = r["conversation"]["id"].clone();
    let read = admin
        .ok("mutation($id: ID!) { markConversationRead(input: {conversationId: $id}) { conversation { unreadCount } } }", json!({ "id": id }))
        .await;
    assert_eq!(
        read["markConversationRead"]["conversation"]["unreadCount"],
        0
    );
    let unread = admin
        .ok("mutation($id: ID!) { markConversationUnread(input: {conversationId: $id}) { conversation { unreadCount } } }", json!({ "id": id }))
        .await;
    assert_eq!(
        unread["markConversationUnread"]["conversation"]["unreadCount"],
        1
    );
    let kinds = admin
        .ok(
            "query($id: ID!) { conversation(id: $id) { activities(kinds: [CONVERSATION_READ, CONVERSATION_UNREAD]) { edges { node { kind actor { kind user { email } } } } } } }",
            json!({ "id": id }),
        )
        .await;
    let edges = kinds["conversation"]["activities"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    let seen: Vec<&str> = edges
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        ["CONVERSATION_UNREAD", "CONVERSATION_READ"],
        "newest first"
    );
    assert_eq!(edges[0]["node"]["actor"]["kind"], "USER");
    assert_eq!(
        edges[0]["node"]["actor"]["user"]["email"],
        "admin@acme.test"
    );
}

#[tokio::test]
async fn completed_conversations_leave_the_open_inbox_stay_searchable_and_reopen_on_inbound() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin
        .receive(
            "EMAIL",
            "client@corp.test",
            "Please send the quarterly invoice",
            None,
        )
        .await;
    let id = r["conversation"]["id"].clone();
    let done = admin
        .ok(
            "mutation($id: ID!) { setConversationStatus(input: {conversationId: $id, status: COMPLETED}) { conversation { status } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        done["setConversationStatus"]["conversation"]["status"],
        "COMPLETED"
    );
    let open = admin
        .ok(
            "{ conversations(filter: {status: OPEN}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(open["conversations"]["totalCount"], 0);
    let found = admin
        .ok(
            "{ searchMessages(query: \"quarterly\") { totalCount edges { node { body } } } }",
            json!({}),
        )
        .await;
    assert_eq!(found["searchMessages"]["totalCount"], 1);
    let by_text = admin
        .ok(
            "{ conversations(filter: {search: \"invoice\"}) { edges { node { id status } } } }",
            json!({}),
        )
        .await;
    assert_eq!(by_text["conversations"]["edges"][0]["node"]["id"], id);

    let again = admin
        .receive("EMAIL", "client@corp.test", "Any news?", None)
        .await;
    assert_eq!(again["conversation"]["status"], "OPEN");
    let open = admin
        .ok(
            "{ conversations(filter: {status: OPEN}) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(open["conversations"]["edges"][0]["node"]["id"], id);
    let trail = admin
        .ok(
            "query($id: ID!) { conversation(id: $id) { activities(kinds: [CONVERSATION_STATUS_CHANGED]) { edges { node { actor { kind } data } } } } }",
            json!({ "id": id }),
        )
        .await;
    let edges = trail["conversation"]["activities"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(edges.len(), 2);
    assert_eq!(
        edges[0]["node"]["actor"]["kind"], "CONTACT",
        "the reopening is the contact's doing"
    );
    assert_eq!(edges[0]["node"]["data"]["status"]["new"], "OPEN");
}

#[tokio::test]
async fn sent_messages_are_queued_then_dispatched() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let r = admin
        .receive("SMS", "+14155550103", "Can you call me?", None)
        .await;
    let sent = admin
        .ok(
            "mutation($id: ID!) { sendMessage(input: {conversationId: $id, channel: SMS, body: \"Calling in 5\"}) { message { id status direction sender { email } } conversation { lastMessage { body } } } }",
            json!({ "id": r["conversation"]["id"] }),
        )
        .await;
    let m = &sent["sendMessage"]["message"];
    assert_eq!(m["direction"], "OUTBOUND");
    assert_eq!(m["sender"]["email"], "admin@acme.test");
    assert!(m["status"] == "QUEUED" || m["status"] == "SENT", "{m}");
    assert_eq!(
        sent["sendMessage"]["conversation"]["lastMessage"]["body"],
        "Calling in 5"
    );

    // The development adapter accepts it; the dispatcher marks it SENT shortly after.
    let mut status = Value::Null;
    for _ in 0..100 {
        let data = admin
            .ok(
                "query($id: ID!) { node(id: $id) { ... on Message { status sentAt externalId } } }",
                json!({ "id": m["id"] }),
            )
            .await;
        status = data["node"].clone();
        if status["status"] == "SENT" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "SENT", "{status}");
    assert!(status["sentAt"].is_string());
    assert!(
        status["externalId"].is_string(),
        "the provider's id is kept for receipts"
    );

    // An email to a contact we only know by phone is refused, with nothing queued.
    let no_email = admin
        .gql(
            "mutation($id: ID!) { sendMessage(input: {conversationId: $id, channel: EMAIL, body: \"x\"}) { message { id } } }",
            json!({ "id": r["conversation"]["id"] }),
        )
        .await;
    assert_eq!(no_email.code(), "BAD_USER_INPUT");
    let count = admin
        .ok(
            "query($id: ID!) { conversation(id: $id) { messages { totalCount } } }",
            json!({ "id": r["conversation"]["id"] }),
        )
        .await;
    assert_eq!(count["conversation"]["messages"]["totalCount"], 2);
}

const STATUS: &str = "mutation($input: UpdateMessageStatusInput!) { updateMessageStatus(input: $input) { message { status readAt deliveredAt failedReason } } }";

#[tokio::test]
async fn late_delivery_receipt_does_not_undo_read() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let integration = server.client(&server.token("acme", "gateway@acme.test", "integration"));
    let r = admin.receive("SMS", "+14155550104", "hi", None).await;
    let sent = admin
        .ok(
            "mutation($id: ID!) { sendMessage(input: {conversationId: $id, channel: SMS, body: \"hello\"}) { message { id } } }",
            json!({ "id": r["conversation"]["id"] }),
        )
        .await;
    let id = sent["sendMessage"]["message"]["id"].clone();
    let read = integration
        .ok(
            STATUS,
            json!({ "input": { "messageId": id, "status": "READ" } }),
        )
        .await;
    assert_eq!(read["updateMessageStatus"]["message"]["status"], "READ");
    assert!(read["updateMessageStatus"]["message"]["readAt"].is_string());
    let late = integration
        .ok(
            STATUS,
            json!({ "input": { "messageId": id, "status": "DELIVERED" } }),
        )
        .await;
    assert_eq!(late["updateMessageStatus"]["message"]["status"], "READ");
    let late = integration
        .ok(
            STATUS,
            json!({ "input": { "messageId": id, "status": "FAILED" } }),
        )
        .await;
    assert_eq!(late["updateMessageStatus"]["message"]["status"], "READ");

    // Receipts by the provider's id, once the dispatcher stored it.
    let mut ext = None;
    for _ in 0..100 {
        let d = admin
            .ok(
                "query($id: ID!) { node(id: $id) { ... on Message { externalId } } }",
                json!({ "id": id }),
            )
            .await;
        if let Some(e) = d["node"]["externalId"].as_str() {
            ext = Some(e.to_string());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ext = ext.expect("the dispatcher stores the provider's id even after a READ receipt");
    let by_ext = integration
        .ok(
            STATUS,
            json!({ "input": { "channel": "SMS", "externalId": ext, "status": "DELIVERED" } }),
        )
        .await;
    assert_eq!(by_ext["updateMessageStatus"]["message"]["status"], "READ");

    let inbound = integration
        .gql(
            STATUS,
            json!({ "input": { "messageId": r["message"]["id"], "status": "READ" } }),
        )
        .await;
    assert_eq!(
        inbound.code(),
        "BAD_USER_INPUT",
        "receipts are for outbound messages"
    );
    let neither = integration
        .gql(STATUS, json!({ "input": { "status": "READ" } }))
        .await;
    assert_eq!(neither.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn soft_deleted_messages_vanish_from_timeline_and_search() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let keep = admin
        .receive("SMS", "+14155550105", "keep this pineapple", None)
        .await;
    let gone = admin
        .receive("SMS", "+14155550105", "delete this pineapple", None)
        .await;
    let del = admin
        .ok("mutation($id: ID!) { deleteMessage(input: {messageId: $id}) { message { deletedAt } } }", json!({ "id": gone["message"]["id"] }))
        .await;
    assert!(del["deleteMessage"]["message"]["deletedAt"].is_string());
    let conv = keep["conversation"]["id"].clone();
    let data = admin.ok(TIMELINE, json!({ "id": conv })).await;
    assert_eq!(bodies(&data["conversation"]), ["keep this pineapple"]);
    assert_eq!(
        data["conversation"]["lastMessage"]["body"],
        "keep this pineapple"
    );
    let with_deleted = admin
        .ok(TIMELINE, json!({ "id": conv, "deleted": true }))
        .await;
    assert_eq!(bodies(&with_deleted["conversation"]).len(), 2);
    let found = admin
        .ok(
            "{ searchMessages(query: \"pineapple\") { totalCount edges { node { body } } } }",
            json!({}),
        )
        .await;
    assert_eq!(found["searchMessages"]["totalCount"], 1);
    assert_eq!(
        found["searchMessages"]["edges"][0]["node"]["body"],
        "keep this pineapple"
    );
    let trail = admin
        .ok("query($id: ID!) { conversation(id: $id) { activities(kinds: [MESSAGE_DELETED]) { totalCount } } }", json!({ "id": conv }))
        .await;
    assert_eq!(trail["conversation"]["activities"]["totalCount"], 1);
}

#[tokio::test]
async fn search_ignores_query_syntax_and_needs_a_word() {
    let server = TestServer::start().await;
    let admin = server.admin();
    admin
        .receive("EMAIL", "a@b.test", "Refund for order 1234", None)
        .await;
    let hostile = admin
        .ok(
            "{ searchMessages(query: \"refund\\\" OR body:* NEAR(\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        hostile["searchMessages"]["totalCount"], 0,
        "every word must match; none of it is syntax"
    );
    let words = admin
        .ok(
            "{ searchMessages(query: \"ORDER refund\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(words["searchMessages"]["totalCount"], 1);
    let empty = admin
        .gql(
            "{ searchMessages(query: \"  *** \") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(empty.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn flags_and_forwarding_reach_the_teammate() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let agent_token = server.token("acme", "bo@acme.test", "agent");
    let agent = server.client(&agent_token);
    let bo = agent.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    let r = admin
        .receive("SMS", "+14155550106", "Urgent: contract question", None)
        .await;
    let mid = r["message"]["id"].clone();
    let marked = admin
        .ok("mutation($id: ID!) { markMessage(input: {messageId: $id, important: true}) { message { important spam } } }", json!({ "id": mid }))
        .await;
    assert_eq!(marked["markMessage"]["message"]["important"], true);
    assert_eq!(marked["markMessage"]["message"]["spam"], false);
    admin
        .ok(
            "mutation($id: ID!, $to: ID!) { forwardMessage(input: {messageId: $id, toUserId: $to, comment: \"Can you take this?\"}) { message { id } } }",
            json!({ "id": mid, "to": bo }),
        )
        .await;
    let inbox = agent
        .ok("{ notifications(unreadOnly: true) { totalCount edges { node { kind text message { body } conversation { id } } } } }", json!({}))
        .await;
    let n = &inbox["notifications"]["edges"][0]["node"];
    assert_eq!(inbox["notifications"]["totalCount"], 1);
    assert_eq!(n["kind"], "MESSAGE_FORWARDED");
    assert!(n["text"].as_str().unwrap().contains("Can you take this?"));
    assert_eq!(n["message"]["body"], "Urgent: contract question");
    let mine = admin
        .ok("{ notifications { totalCount } }", json!({}))
        .await;
    assert_eq!(
        mine["notifications"]["totalCount"], 0,
        "only the recipient is told"
    );
}

/// Integrations send in bursts: messages that arrive together are stored together, and each
/// lands whole, with its counters, its trail and its duplicate flag as if it came alone.
#[tokio::test]
async fn a_burst_of_inbound_messages_lands_whole_and_costs_less_than_one_at_a_time() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let first = admin.receive("SMS", "+14155550100", "first", None).await;
    let known = first["conversation"]["id"].clone();
    admin
        .ok(
            "mutation($id: ID!) { setConversationStatus(input: {conversationId: $id, status: COMPLETED}) { conversation { status } } }",
            json!({ "id": known }),
        )
        .await;
    let before = server.statements().await;
    admin.receive("SMS", "+14155550100", "alone", None).await;
    let one = server.statements().await - before;

    // 20 from the known contact, 15 first messages, one external id sent 5 times.
    let inputs: Vec<Value> = (0..40)
        .map(|i| match i % 8 {
            0..=3 => json!({ "channel": "SMS", "from": "+1 415 555 0100", "body": format!("known {i}") }),
            4 | 5 | 7 => json!({ "channel": "EMAIL", "from": format!("new{i}@example.com"), "body": "hello" }),
            _ => json!({ "channel": "EMAIL", "from": "repeat@example.com", "body": "once", "externalId": "ext-1" }),
        })
        .collect();
    let before = server.statements().await;
    let answers = futures::future::join_all(inputs.iter().map(|input| {
        let admin = admin.clone();
        async move {
            admin
                .ok(confab_tests::RECEIVE, json!({ "input": input }))
                .await["receiveMessage"]
                .clone()
        }
    }))
    .await;
    let burst = server.statements().await - before;
    eprintln!("one message: {one} statements; a burst of 40: {burst}");
    assert!(
        burst < 40 * one,
        "a burst of 40 cost {burst} statements, one message {one}"
    );

    for (input, answer) in inputs.iter().zip(&answers) {
        assert_eq!(answer["message"]["body"], input["body"]);
    }
    let repeats: Vec<&Value> = answers
        .iter()
        .filter(|a| a["message"]["externalId"] == "ext-1")
        .collect();
    assert_eq!(repeats.len(), 5);
    assert_eq!(
        repeats.iter().filter(|a| a["duplicate"] == false).count(),
        1
    );
    assert!(
        repeats
            .iter()
            .all(|a| a["message"]["id"] == repeats[0]["message"]["id"])
    );

    let data = admin
        .ok(
            "query($id: ID!) { contacts { totalCount } conversations { totalCount }
               conversation(id: $id) { status unreadCount lastMessage { id }
                 messages(last: 1) { totalCount edges { node { id } } }
                 reopened: activities(kinds: [CONVERSATION_STATUS_CHANGED]) { totalCount }
                 received: activities(kinds: [MESSAGE_RECEIVED]) { totalCount } } }",
            json!({ "id": known }),
        )
        .await;
    assert_eq!(data["contacts"]["totalCount"], 17);
    assert_eq!(data["conversations"]["totalCount"], 17);
    let c = &data["conversation"];
    assert_eq!(c["status"], "OPEN");
    assert_eq!(c["messages"]["totalCount"], 22);
    assert_eq!(c["received"]["totalCount"], 22);
    // Completed by hand, reopened by "alone", then never again: the burst found it open.
    assert_eq!(c["reopened"]["totalCount"], 2);
    assert_eq!(c["unreadCount"], 22);
    assert_eq!(
        c["lastMessage"]["id"],
        c["messages"]["edges"][0]["node"]["id"]
    );
}
