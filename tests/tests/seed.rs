//! `confab seed` fills a new workspace with deterministic, realistic data the API serves.
use confab_tests::{TestServer, cli};
use serde_json::{Value, json};

async fn messages_per_conversation(client: &confab_tests::Client) -> Vec<u64> {
    let d = client
        .ok(
            "{ conversations(first: 100) { totalCount edges { node { unreadCount lastMessage { id }
               messages(last: 1) { totalCount edges { node { id } } } } } } }",
            json!({}),
        )
        .await;
    let edges = d["conversations"]["edges"].as_array().unwrap().clone();
    for e in &edges {
        let n = &e["node"];
        assert_eq!(
            n["lastMessage"]["id"], n["messages"]["edges"][0]["node"]["id"],
            "lastMessage is the newest message"
        );
    }
    let mut counts: Vec<u64> = edges
        .iter()
        .map(|e| e["node"]["messages"]["totalCount"].as_u64().unwrap())
        .collect();
    counts.sort_unstable();
    counts
}

#[tokio::test]
async fn seed_writes_a_deterministic_long_tailed_workspace_the_api_serves() {
    let server = TestServer::start().await;
    let url = server.db.url.clone();
    let seed = |name: &str| {
        let out = cli(
            &server.db,
            &[
                "seed",
                "--database-url",
                &url,
                "--workspace",
                name,
                "--contacts",
                "40",
                "--messages",
                "1000",
                "--notes",
                "30",
                "--tasks",
                "25",
                "--appointments",
                "5",
                "--tags",
                "4",
                "--opportunities",
                "6",
                "--custom-fields",
                "5",
                "--seed",
                "42",
                "--json",
            ],
        );
        assert!(out.success, "{}", out.stderr);
        out.json()
    };
    let first: Value = seed("bench");
    assert_eq!(first["messages"], 1000);
    assert_eq!(first["activities"], 1000);
    let client = server.client(first["token"].as_str().unwrap());
    let counts = messages_per_conversation(&client).await;
    assert_eq!(counts.len(), 40, "one conversation per contact");
    assert_eq!(counts.iter().sum::<u64>(), 1000);
    assert!(counts.iter().all(|&c| c >= 1));
    let median = counts[counts.len() / 2];
    assert!(
        *counts.last().unwrap() > 5 * median,
        "a long tail: {counts:?}"
    );
    let d = client
        .ok(
            "{ tasks(first: 1) { totalCount } contacts(first: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(d["tasks"]["totalCount"], 25);
    assert_eq!(d["contacts"]["totalCount"], 40);
    // Open tasks due later have their overdue alert pending, as if they had been created
    // through the API; upcoming appointments their reminders.
    let d = client
        .ok(
            "{ tasks(first: 25) { edges { node { status dueAt } } }
               jobs(status: PENDING, first: 100) { edges { node { kind dueAt } } } }",
            json!({}),
        )
        .await;
    let now = chrono::Utc::now();
    let later =
        |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap() > now;
    let open_and_later = d["tasks"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["status"] != "COMPLETED" && later(&e["node"]["dueAt"]))
        .count();
    let pending: Vec<&Value> = d["jobs"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let of = |kind: &str| pending.iter().filter(|j| j["kind"] == kind).count();
    assert!(open_and_later > 0);
    assert_eq!(of("task.overdue"), open_and_later, "{pending:?}");
    assert!(of("appointment.reminder") > 0, "{pending:?}");
    assert!(pending.iter().all(|j| later(&j["dueAt"])), "{pending:?}");
    // Deals in a pipeline, and custom fields of every type set on about half the contacts.
    let d = client
        .ok(
            "{ pipelines { name stages { name } } customFields { key type }
               conversations(first: 40) { edges { node { opportunities { totalCount } } } }
               contacts(first: 40) { edges { node { customFields { key value } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(d["pipelines"][0]["name"], "Sales");
    assert_eq!(d["pipelines"][0]["stages"].as_array().unwrap().len(), 4);
    let types: Vec<&str> = d["customFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 5);
    for t in ["TEXT", "NUMBER", "SELECT", "BOOLEAN", "DATE"] {
        assert!(types.contains(&t), "{t} in {types:?}");
    }
    let deals: u64 = d["conversations"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["opportunities"]["totalCount"].as_u64().unwrap())
        .sum();
    assert_eq!(deals, 6);
    let values: usize = d["contacts"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["customFields"].as_array().unwrap().len())
        .sum();
    assert!(
        (40..=160).contains(&values),
        "about half of 40 contacts x 5 fields: {values}"
    );

    // The same seed gives the same shape; the workspace's name must be new.
    let second = seed("bench-two");
    let again = server.client(second["token"].as_str().unwrap());
    assert_eq!(messages_per_conversation(&again).await, counts);
    let out = cli(
        &server.db,
        &[
            "seed",
            "--workspace",
            "bench",
            "--contacts",
            "1",
            "--messages",
            "1",
        ],
    );
    assert!(!out.success);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    // Nothing leaks into the first workspace.
    let acme = server
        .admin()
        .ok("{ conversations(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(acme["conversations"]["totalCount"], 0);
}
