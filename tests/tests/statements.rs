//! The inbox costs a fixed number of SQL statements, however many conversations it shows.
use confab_tests::{Client, TestServer};
use serde_json::json;

const INBOX: &str = "{ conversations(first: 50, filter: {status: OPEN}) { totalCount edges { node {
    id unreadCount lastMessageAt
    contact { name tags owner { name } }
    owner { email }
    lastMessage { body channel sender { name } }
    tasks(status: OPEN, first: 3) { totalCount edges { node { title dueAt assignee { name } } } }
    appointments(when: UPCOMING, first: 1) { edges { node { title startsAt } } }
} } } }";

/// Adds conversations `from..to`, each with a tag, an owner, an open task and an appointment.
async fn populate(admin: &Client, owner: &serde_json::Value, from: usize, to: usize) {
    for i in from..to {
        let r = admin
            .receive(
                "SMS",
                &format!("+1415555{:04}", 1000 + i),
                &format!("hello {i}"),
                None,
            )
            .await;
        let (conv, contact) = (r["conversation"]["id"].clone(), r["contact"]["id"].clone());
        admin
            .ok(
                "mutation($c: ID!, $o: ID, $k: ID!) {
                    updateContact(input: {contactId: $c, name: \"Contact\", addTags: [\"lead\"]}) { contact { id } }
                    assignOwner(input: {contactId: $c, ownerId: $o}) { contact { id } }
                    createTask(input: {conversationId: $k, title: \"Follow up\", assigneeId: $o, dueAt: \"2099-01-01T00:00:00Z\"}) { task { id } }
                    createAppointment(input: {conversationId: $k, title: \"Call\", startsAt: \"2099-02-01T10:00:00Z\", endsAt: \"2099-02-01T10:30:00Z\"}) { appointment { id } }
                }",
                json!({ "c": contact, "o": owner, "k": conv }),
            )
            .await;
    }
}

async fn inbox_cost(server: &TestServer, admin: &Client, expect: usize) -> u64 {
    let before = server.statements().await;
    let data = admin.ok(INBOX, json!({})).await;
    let after = server.statements().await;
    let edges = data["conversations"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), expect);
    let row = &edges[0]["node"];
    assert_eq!(row["contact"]["tags"], json!(["lead"]));
    assert_eq!(row["tasks"]["totalCount"], 1);
    assert_eq!(row["appointments"]["edges"][0]["node"]["title"], "Call");
    assert!(row["owner"]["email"].is_string() && row["lastMessage"]["body"].is_string());
    after - before
}

#[tokio::test]
async fn the_inbox_query_does_not_grow_with_the_number_of_conversations() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let owner = admin.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    populate(&admin, &owner, 0, 5).await;
    let small = inbox_cost(&server, &admin, 5).await;
    populate(&admin, &owner, 5, 50).await;
    let large = inbox_cost(&server, &admin, 50).await;
    eprintln!("inbox query: {small} statements at 5 conversations, {large} at 50");
    assert!(small > 0, "the counter counts");
    assert_eq!(
        small, large,
        "5 conversations cost {small} statements, 50 cost {large}"
    );
}
