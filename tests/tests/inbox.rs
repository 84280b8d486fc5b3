//! The inbox list: filters, ordering, cursor pages, and concurrent first contact.
use confab_tests::TestServer;
use serde_json::{Value, json};

/// One string field of every node of a connection, in order.
fn nodes(conn: &Value, field: &str) -> Vec<String> {
    conn["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"][field].as_str().unwrap().to_string())
        .collect()
}

fn ids(conn: &Value) -> Vec<String> {
    nodes(conn, "id")
}

#[tokio::test]
async fn inbox_filters_by_star_unread_channel_and_text() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let sms = admin
        .receive("SMS", "+14155550201", "hello from sms", None)
        .await;
    let mail = admin
        .receive("EMAIL", "zoe@example.test", "hello from email", None)
        .await;
    let wa = admin
        .receive("WHATSAPP", "+4915112345678", "hallo", None)
        .await;
    let (sms_id, mail_id, wa_id) = (
        sms["conversation"]["id"].clone(),
        mail["conversation"]["id"].clone(),
        wa["conversation"]["id"].clone(),
    );

    admin.ok("mutation($id: ID!) { starConversation(input: {conversationId: $id, starred: true}) { conversation { starred } } }", json!({ "id": mail_id })).await;
    admin.ok("mutation($id: ID!) { markConversationRead(input: {conversationId: $id}) { conversation { id } } }", json!({ "id": sms_id })).await;

    let all = admin
        .ok("{ conversations { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(
        ids(&all["conversations"]),
        [
            wa_id.as_str().unwrap(),
            mail_id.as_str().unwrap(),
            sms_id.as_str().unwrap()
        ],
        "newest message first"
    );

    let q = "query($f: ConversationFilter) { conversations(filter: $f) { totalCount edges { node { id } } } }";
    let starred = admin.ok(q, json!({ "f": { "starred": true } })).await;
    assert_eq!(ids(&starred["conversations"]), [mail_id.as_str().unwrap()]);
    assert_eq!(starred["conversations"]["totalCount"], 1);
    let unstarred = admin.ok(q, json!({ "f": { "starred": false } })).await;
    assert_eq!(
        ids(&unstarred["conversations"]),
        [wa_id.as_str().unwrap(), sms_id.as_str().unwrap()]
    );
    let starred_unread = admin
        .ok(q, json!({ "f": { "starred": true, "unread": true } }))
        .await;
    assert_eq!(
        ids(&starred_unread["conversations"]),
        [mail_id.as_str().unwrap()]
    );
    let unread = admin.ok(q, json!({ "f": { "unread": true } })).await;
    assert_eq!(unread["conversations"]["totalCount"], 2);
    assert_eq!(
        ids(&unread["conversations"]),
        [wa_id.as_str().unwrap(), mail_id.as_str().unwrap()]
    );
    let read = admin.ok(q, json!({ "f": { "unread": false } })).await;
    assert_eq!(ids(&read["conversations"]), [sms_id.as_str().unwrap()]);
    assert_eq!(read["conversations"]["totalCount"], 1);
    let whatsapp = admin.ok(q, json!({ "f": { "channel": "WHATSAPP" } })).await;
    assert_eq!(ids(&whatsapp["conversations"]), [wa_id.as_str().unwrap()]);
    let by_contact = admin.ok(q, json!({ "f": { "search": "ZOE@" } })).await;
    assert_eq!(
        ids(&by_contact["conversations"]),
        [mail_id.as_str().unwrap()]
    );
    let by_phone = admin.ok(q, json!({ "f": { "search": "4915112" } })).await;
    assert_eq!(ids(&by_phone["conversations"]), [wa_id.as_str().unwrap()]);
    let by_text = admin.ok(q, json!({ "f": { "search": "hello" } })).await;
    assert_eq!(by_text["conversations"]["totalCount"], 2);
    let active = admin
        .ok(
            q,
            json!({ "f": { "contactStatus": "ACTIVE", "status": "OPEN" } }),
        )
        .await;
    assert_eq!(active["conversations"]["totalCount"], 3);
    let tagged = admin.ok(q, json!({ "f": { "tag": "vip" } })).await;
    assert_eq!(tagged["conversations"]["totalCount"], 0);
}

#[tokio::test]
async fn pages_walk_forward_and_backward_without_gaps() {
    let server = TestServer::start().await;
    let admin = server.admin();
    for i in 0..7 {
        admin
            .receive(
                "SMS",
                &format!("+1415555030{i}"),
                &format!("message {i}"),
                None,
            )
            .await;
    }
    let q = "query($first: Int, $after: String, $last: Int, $before: String) {
        conversations(first: $first, after: $after, last: $last, before: $before) {
            totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
            edges { cursor node { id lastMessage { body } } } } }";
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page =
            admin.ok(q, json!({ "first": 3, "after": after })).await["conversations"].clone();
        assert_eq!(page["totalCount"], 7);
        seen.extend(page["edges"].as_array().unwrap().iter().map(|e| {
            e["node"]["lastMessage"]["body"]
                .as_str()
                .unwrap()
                .to_string()
        }));
        if page["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(seen, expected);

    let tail = admin.ok(q, json!({ "last": 2 })).await["conversations"].clone();
    let tail_bodies: Vec<&str> = tail["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["lastMessage"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(tail_bodies, ["message 1", "message 0"]);
    assert_eq!(tail["pageInfo"]["hasPreviousPage"], true);
    let before = admin
        .ok(
            q,
            json!({ "last": 2, "before": tail["pageInfo"]["startCursor"] }),
        )
        .await["conversations"]
        .clone();
    let before_bodies: Vec<&str> = before["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["lastMessage"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(before_bodies, ["message 3", "message 2"]);

    let too_many = admin.gql(q, json!({ "first": 101 })).await;
    assert_eq!(too_many.code(), "BAD_USER_INPUT");
    let bad_cursor = admin
        .gql(q, json!({ "first": 1, "after": "not-a-cursor" }))
        .await;
    assert_eq!(bad_cursor.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn fifty_concurrent_first_messages_create_one_contact() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let sends = (0..50).map(|i| {
        let admin = admin.clone();
        async move {
            let spelling = if i % 2 == 0 { "+1 (415) 555-0199" } else { "14155550199" };
            let channel = if i % 3 == 0 { "WHATSAPP" } else { "SMS" };
            admin
                .gql(
                    confab_tests::RECEIVE,
                    json!({ "input": { "channel": channel, "from": spelling, "body": format!("burst {i}"), "externalId": format!("burst-{i}") } }),
                )
                .await
        }
    });
    let results = futures::future::join_all(sends).await;
    let mut conversations = std::collections::HashSet::new();
    for r in &results {
        let data = r.data();
        conversations.insert(
            data["receiveMessage"]["conversation"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(conversations.len(), 1, "one conversation for one number");
    let data = admin.ok("{ contacts { totalCount } conversations { totalCount edges { node { unreadCount messages { totalCount } } } } }", json!({})).await;
    assert_eq!(data["contacts"]["totalCount"], 1);
    assert_eq!(data["conversations"]["totalCount"], 1);
    let node = &data["conversations"]["edges"][0]["node"];
    assert_eq!(node["messages"]["totalCount"], 50);
    assert_eq!(node["unreadCount"], 50);
}

/// The ingest writer stores one batch while the one before it commits when they share no
/// address: a contact known by two addresses, written to through both at once alongside a
/// crowd of strangers, still counts every message once and shows the newest last.
#[tokio::test]
async fn a_contact_written_to_at_two_addresses_at_once_counts_every_message() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let first = admin
        .ok(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "EMAIL", "from": "both@example.com", "body": "hello",
                "receivedAt": "2025-12-31T23:00:00Z" } }),
        )
        .await["receiveMessage"]
        .clone();
    let conversation = first["conversation"]["id"].clone();
    admin
        .ok(
            "mutation($id: ID!) { updateContact(input: {contactId: $id, phone: \"+14155550142\"}) { contact { phone } } }",
            json!({ "id": first["contact"]["id"] }),
        )
        .await;

    let sends = (0..60).map(|i| {
        let admin = admin.clone();
        async move {
            let (channel, from) = match i % 3 {
                0 => ("EMAIL", "both@example.com".to_string()),
                1 => ("SMS", "+1 415 555 0142".to_string()),
                _ => ("EMAIL", format!("stranger{i}@example.com")),
            };
            admin
                .ok(
                    confab_tests::RECEIVE,
                    json!({ "input": { "channel": channel, "from": from, "body": format!("m{i}"),
                        "receivedAt": format!("2026-01-01T00:{:02}:00Z", i) } }),
                )
                .await["receiveMessage"]
                .clone()
        }
    });
    let answers = futures::future::join_all(sends).await;
    let ours: Vec<&Value> = answers
        .iter()
        .filter(|a| a["conversation"]["id"] == conversation)
        .collect();
    assert_eq!(ours.len(), 40, "both addresses reach the one contact");

    let data = admin
        .ok(
            "query($id: ID!) { contacts { totalCount } conversation(id: $id) { unreadCount
               lastMessage { body } messages { totalCount }
               received: activities(kinds: [MESSAGE_RECEIVED]) { totalCount } } }",
            json!({ "id": conversation }),
        )
        .await;
    assert_eq!(data["contacts"]["totalCount"], 21);
    let c = &data["conversation"];
    assert_eq!(c["messages"]["totalCount"], 41);
    assert_eq!(c["received"]["totalCount"], 41);
    assert_eq!(c["unreadCount"], 41);
    // The newest by date, whichever batch committed last.
    assert_eq!(c["lastMessage"]["body"], "m58");
}

/// `confab serve FLAG 0` is refused before the server starts, with an error naming the flag.
fn refuses_zero(db: &confab_tests::TestDb, flag: &str) {
    let refused = confab_tests::cli(db, &["serve", flag, "0"]);
    assert!(!refused.success, "{flag} 0 is refused");
    assert!(
        refused.stderr.contains(flag),
        "the error names the flag: {}",
        refused.stderr
    );
}

/// With one database connection, concurrent writes and inbox reads (whose nested fields load
/// side by side) all complete, and a pool of zero is refused before the server starts.
#[tokio::test]
async fn a_one_connection_pool_serves_concurrent_writes_and_reads() {
    let db = confab_tests::TestDb::new().await;
    refuses_zero(&db, "--db-pool-size");

    let server = TestServer::start_with(db, &["--db-pool-size", "1"]).await;
    let admin = server.admin();
    let inbox = "{ conversations(first: 50, filter: {status: OPEN}) { totalCount edges { node {
        unreadCount contact { name tags owner { name } }
        lastMessage { body sender { name } }
        tasks(status: OPEN, first: 3) { totalCount edges { node { title assignee { name } } } }
        appointments(when: UPCOMING, first: 1) { edges { node { title } } }
    } } } }";
    let writes = (0..12).map(|i| {
        let admin = admin.clone();
        async move {
            admin
                .receive("SMS", &format!("+1415555{i:04}"), &format!("m{i}"), None)
                .await
        }
    });
    let reads = (0..12).map(|_| {
        let admin = admin.clone();
        async move { admin.ok(inbox, json!({})).await }
    });
    let (written, read) = tokio::join!(
        futures::future::join_all(writes),
        futures::future::join_all(reads)
    );
    assert!(
        written.iter().all(|r| r["message"]["id"].is_string()),
        "every write stored its message"
    );
    for page in &read {
        // The page and its total are separate statements; writes may land between them.
        let total = page["conversations"]["totalCount"]
            .as_i64()
            .expect("a count");
        let edges = page["conversations"]["edges"].as_array().expect("edges");
        assert!(edges.len() <= 12 && total <= 12, "no more than was written");
    }
    let last = admin.ok(inbox, json!({})).await;
    assert_eq!(last["conversations"]["totalCount"], 12);
    let mut bodies: Vec<&str> = last["conversations"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["lastMessage"]["body"].as_str().expect("a body"))
        .collect();
    bodies.sort_unstable();
    let mut expected: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    expected.sort_unstable();
    assert_eq!(bodies, expected);
}

/// Queries take turns (`--max-concurrent-queries`): with one at a time, reads that overlap
/// writes, and queries that fail in validation or in a resolver, all answer, each failure
/// gives its turn back, and a limit of zero is refused before the server starts.
#[tokio::test]
async fn one_query_at_a_time_answers_reads_writes_and_failures_alike() {
    let db = confab_tests::TestDb::new().await;
    refuses_zero(&db, "--max-concurrent-queries");

    let server = TestServer::start_with(db, &["--max-concurrent-queries", "1"]).await;
    let admin = server.admin();
    let list =
        "{ conversations(first: 20) { totalCount edges { node { lastMessage { body } } } } }";
    let writes = (0..8).map(|i| {
        let admin = admin.clone();
        async move {
            let written = admin
                .receive("SMS", &format!("+1415556{i:04}"), &format!("w{i}"), None)
                .await;
            written["message"]["id"].is_string()
        }
    });
    // A validation failure, a resolver's failure and a valid list, side by side.
    let queries = [
        "{ conversations { nope } }",
        "{ conversation(id: \"bogus\") { id } }",
        list,
    ];
    let asked = (0..24).map(|i| {
        let admin = admin.clone();
        async move { admin.gql(queries[i % 3], json!({})).await }
    });
    let (written, answers) = tokio::join!(
        futures::future::join_all(writes),
        futures::future::join_all(asked)
    );
    assert!(
        written.iter().all(|ok| *ok),
        "every write stored its message"
    );
    for (i, answer) in answers.iter().enumerate() {
        if i % 3 == 2 {
            let total = answer.data()["conversations"]["totalCount"].as_i64();
            assert!(total.expect("a count") <= 8, "no more than was written");
        } else {
            assert_eq!(
                answer.code(),
                "BAD_USER_INPUT",
                "query {i}: {}",
                answer.body
            );
        }
    }
    let after = admin.ok(list, json!({})).await;
    assert_eq!(
        after["conversations"]["totalCount"], 8,
        "the turns all came back"
    );
}

/// A list of conversations asks each for its tasks by status and its appointments by time
/// window, one filter for every row or several side by side (aliases): each row answers with
/// its own tasks and appointments, in their order, whichever way the list loads them.
#[tokio::test]
async fn nested_tasks_and_appointments_keep_each_status_and_window_side_by_side() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut conversations = Vec::new();
    for (i, from) in ["+14155550100", "+14155550101", "+14155550102"]
        .iter()
        .enumerate()
    {
        let r = admin
            .receive("SMS", from, &format!("hello {i}"), None)
            .await;
        conversations.push(r["conversation"]["id"].as_str().unwrap().to_string());
    }
    let task = |c: &str, title: &str| {
        let admin = admin.clone();
        let (c, title) = (c.to_string(), title.to_string());
        async move {
            admin
                .ok(
                    "mutation($c: ID!, $t: String!) { createTask(input: {conversationId: $c, title: $t}) { task { id } } }",
                    json!({ "c": c, "t": title }),
                )
                .await["createTask"]["task"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let now = chrono::Utc::now();
    let book = |c: &str, title: &str, from_now_hours: i64| {
        let admin = admin.clone();
        let (c, title) = (c.to_string(), title.to_string());
        let starts = now + chrono::Duration::hours(from_now_hours);
        async move {
            admin
                .ok(
                    "mutation($i: CreateAppointmentInput!) { createAppointment(input: $i) { appointment { id } } }",
                    json!({ "i": {
                        "conversationId": c, "title": title,
                        "startsAt": starts.to_rfc3339(),
                        "endsAt": (starts + chrono::Duration::hours(1)).to_rfc3339(),
                    } }),
                )
                .await;
        }
    };
    task(&conversations[0], "a open").await;
    let done = task(&conversations[0], "a done").await;
    admin
        .ok(
            "mutation($t: ID!) { updateTask(input: {taskId: $t, status: COMPLETED}) { task { id } } }",
            json!({ "t": done }),
        )
        .await;
    task(&conversations[1], "b open").await;
    book(&conversations[0], "a past", -72).await;
    book(&conversations[0], "a later", 48).await;
    book(&conversations[0], "a soon", 24).await;
    book(&conversations[1], "b soon", 24).await;

    let titles = |conn: &Value| nodes(conn, "title");
    let by_id = |page: &Value| -> std::collections::HashMap<String, Value> {
        page["conversations"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| {
                (
                    e["node"]["id"].as_str().unwrap().to_string(),
                    e["node"].clone(),
                )
            })
            .collect()
    };
    let side_by_side = by_id(
        &admin
            .ok(
                "{ conversations(first: 10) { edges { node { id
                    open: tasks(status: OPEN) { totalCount edges { node { title } } }
                    done: tasks(status: COMPLETED) { totalCount edges { node { title } } }
                    all: tasks { totalCount edges { node { title } } }
                    upcoming: appointments(when: UPCOMING) { edges { node { title } } }
                    past: appointments(when: PAST) { edges { node { title } } }
                    every: appointments { edges { node { title } } }
                } } } }",
                json!({}),
            )
            .await,
    );
    let one_each = |query: &'static str| {
        let admin = admin.clone();
        async move { by_id(&admin.ok(query, json!({})).await) }
    };
    let done_only = one_each(
        "{ conversations(first: 10) { edges { node { id done: tasks(status: COMPLETED) { totalCount edges { node { title } } } } } } }",
    )
    .await;
    let past_only = one_each(
        "{ conversations(first: 10) { edges { node { id past: appointments(when: PAST) { edges { node { title } } } } } } }",
    )
    .await;
    let upcoming_only = one_each(
        "{ conversations(first: 10) { edges { node { id upcoming: appointments(when: UPCOMING, first: 1) { edges { node { title } } } } } } }",
    )
    .await;

    let expect = [
        (
            &conversations[0],
            vec!["a open"],
            vec!["a done"],
            vec!["a done", "a open"],
            vec!["a soon", "a later"],
            vec!["a past"],
            vec!["a past", "a soon", "a later"],
        ),
        (
            &conversations[1],
            vec!["b open"],
            vec![],
            vec!["b open"],
            vec!["b soon"],
            vec![],
            vec!["b soon"],
        ),
        (
            &conversations[2],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        ),
    ];
    for (id, open, done, all, upcoming, past, every) in expect {
        let row = &side_by_side[id.as_str()];
        assert_eq!(titles(&row["open"]), open, "open tasks of {id}");
        assert_eq!(row["open"]["totalCount"], open.len());
        assert_eq!(titles(&row["done"]), done, "done tasks of {id}");
        assert_eq!(titles(&row["all"]), all, "all tasks of {id}, newest first");
        assert_eq!(titles(&row["upcoming"]), upcoming, "upcoming of {id}");
        assert_eq!(titles(&row["past"]), past, "past of {id}");
        assert_eq!(titles(&row["every"]), every, "all appointments of {id}");
        // Asked alone, with one filter for the whole list, the rows answer the same.
        assert_eq!(
            done_only[id.as_str()]["done"],
            row["done"],
            "done alone, {id}"
        );
        assert_eq!(
            titles(&past_only[id.as_str()]["past"]),
            past,
            "past alone, {id}"
        );
        assert_eq!(
            titles(&upcoming_only[id.as_str()]["upcoming"]),
            upcoming.into_iter().take(1).collect::<Vec<_>>(),
            "the next appointment alone, {id}"
        );
    }
}

/// The inbox tabs' `totalCount` (all, open, completed) comes from counts the database keeps
/// as conversations come and move; they must agree with a filter counted row by row.
#[tokio::test]
async fn tab_counts_follow_conversations_as_they_come_close_and_reopen() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let other = server.client(&server.other_workspace("elsewhere"));
    let q = "query($f: ConversationFilter) { conversations(filter: $f) { totalCount } }";
    let counts = || async {
        let count = |f: Value| {
            let admin = &admin;
            async move { admin.ok(q, json!({ "f": f })).await["conversations"]["totalCount"].clone() }
        };
        let all = count(json!({})).await;
        let open = count(json!({ "status": "OPEN" })).await;
        let completed = count(json!({ "status": "COMPLETED" })).await;
        // `starred: false` holds for every conversation here: counted row by row.
        let open_rows = count(json!({ "status": "OPEN", "starred": false })).await;
        assert_eq!(
            open, open_rows,
            "kept count and row count of open conversations"
        );
        (all, open, completed)
    };

    let mut conversations = Vec::new();
    for i in 0..70 {
        let got = admin
            .receive("EMAIL", &format!("tab{i}@example.test"), "hello", None)
            .await;
        conversations.push(got["conversation"]["id"].clone());
    }
    for i in 0..3 {
        other
            .receive("SMS", &format!("+1415555{i:04}"), "not yours", None)
            .await;
    }
    // A second message from a known contact adds no conversation.
    admin
        .receive("EMAIL", "tab0@example.test", "again", None)
        .await;
    assert_eq!(counts().await, (json!(70), json!(70), json!(0)));

    let set = "mutation($id: ID!, $s: ConversationStatus!) {
        setConversationStatus(input: {conversationId: $id, status: $s}) { conversation { status } } }";
    for id in &conversations[..5] {
        admin.ok(set, json!({ "id": id, "s": "COMPLETED" })).await;
    }
    // Completing a completed conversation moves nothing.
    admin
        .ok(set, json!({ "id": conversations[0], "s": "COMPLETED" }))
        .await;
    assert_eq!(counts().await, (json!(70), json!(65), json!(5)));

    // A new message reopens a completed conversation.
    admin
        .receive("EMAIL", "tab1@example.test", "one more thing", None)
        .await;
    admin
        .ok(set, json!({ "id": conversations[2], "s": "OPEN" }))
        .await;
    assert_eq!(counts().await, (json!(70), json!(67), json!(3)));

    // Past 64 deltas the server folds them (in the background); the counts stay the same
    // through the fold and after it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(counts().await, (json!(70), json!(67), json!(3)));
    admin
        .ok(set, json!({ "id": conversations[3], "s": "OPEN" }))
        .await;
    assert_eq!(counts().await, (json!(70), json!(68), json!(2)));
    let theirs = other
        .ok(
            "{ conversations(filter: {status: OPEN}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(theirs["conversations"]["totalCount"], 3);
}

/// A page of conversations fetches what its rows select before they ask (contacts, owners,
/// tags, last messages and senders, tasks and assignees, appointments and organizers). Each
/// row must read exactly as the same conversation read alone, which goes through the loaders:
/// with fragments, aliases, arguments from variables, a later page of tasks, and rows that
/// lack each relation.
#[tokio::test]
async fn a_page_of_conversations_reads_each_row_as_the_conversation_alone_reads() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let me = admin.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    let mut conversations = Vec::new();
    for i in 0..4 {
        let r = admin
            .receive(
                "SMS",
                &format!("+1415555{:04}", 2000 + i),
                &format!("hi {i}"),
                None,
            )
            .await;
        conversations.push((r["conversation"]["id"].clone(), r["contact"]["id"].clone()));
    }
    // Row 0 has everything (one task done); row 1 an owner, a tag and a sent message; rows 2 and 3 nothing.
    let (c0, k0) = &conversations[0];
    let (c1, k1) = &conversations[1];
    admin
        .ok(
            "mutation($c0: ID!, $k0: ID!, $c1: ID!, $k1: ID!, $me: ID) {
                a: updateContact(input: {contactId: $k0, name: \"Ada\", addTags: [\"vip\", \"lead\"]}) { contact { id } }
                b: assignOwner(input: {contactId: $k0, ownerId: $me}) { contact { id } }
                c: createTask(input: {conversationId: $c0, title: \"one\", assigneeId: $me}) { task { id } }
                d: createTask(input: {conversationId: $c0, title: \"two\"}) { task { id } }
                e: createTask(input: {conversationId: $c0, title: \"three\", assigneeId: $me}) { task { id } }
                k: createTask(input: {conversationId: $c0, title: \"done\"}) { task { id } }
                f: createAppointment(input: {conversationId: $c0, title: \"call\", startsAt: \"2099-02-01T10:00:00Z\", endsAt: \"2099-02-01T10:30:00Z\"}) { appointment { id } }
                g: createAppointment(input: {conversationId: $c0, title: \"past\", startsAt: \"2001-02-01T10:00:00Z\", endsAt: \"2001-02-01T10:30:00Z\"}) { appointment { id } }
                h: updateContact(input: {contactId: $k1, addTags: [\"lead\"]}) { contact { id } }
                i: assignOwner(input: {contactId: $k1, ownerId: $me}) { contact { id } }
                j: sendMessage(input: {conversationId: $c1, channel: SMS, body: \"on it\"}) { message { id } }
            }",
            json!({ "c0": c0, "k0": k0, "c1": c1, "k1": k1, "me": me }),
        )
        .await;
    let done = admin
        .ok(
            "query($c: ID!) { conversation(id: $c) { tasks(first: 1) { edges { node { id } } } } }",
            json!({ "c": c0 }),
        )
        .await["conversation"]["tasks"]["edges"][0]["node"]["id"]
        .clone();
    admin
        .ok(
            "mutation($t: ID!) { updateTask(input: {taskId: $t, status: COMPLETED}) { task { id } } }",
            json!({ "t": done }),
        )
        .await;
    let later = admin
        .ok(
            "query($c: ID!) { conversation(id: $c) { tasks(first: 1) { pageInfo { endCursor } } } }",
            json!({ "c": c0 }),
        )
        .await["conversation"]["tasks"]["pageInfo"]["endCursor"]
        .clone();
    assert!(later.is_string(), "a cursor for the next page of tasks");

    let fields = "fragment Row on Conversation {
        id unreadCount
        contact { name tags owner { id name } ...on Contact { id } }
        owner { email }
        lastMessage { body direction sender { email } }
        open: tasks(status: $status, first: 2) { totalCount edges { node { title assignee { id } } } }
        tasks { totalCount edges { node { title } } }
        rest: tasks(first: 2, after: $after) { edges { node { title assignee { name } } } }
        appointments(when: UPCOMING, first: 1) { edges { node { title organizer { id } } } }
        every: appointments { totalCount edges { node { title } } }
    }";
    let variables = json!({ "status": "OPEN", "after": later });
    let page = admin
        .ok(
            &format!(
                "query($status: TaskStatus, $after: String) {{
                    conversations(first: 10) {{ totalCount edges {{ node {{ ...Row }} }} }}
                }} {fields}"
            ),
            variables.clone(),
        )
        .await;
    assert_eq!(page["conversations"]["totalCount"], 4);
    let rows = page["conversations"]["edges"].as_array().expect("edges");
    assert_eq!(rows.len(), 4);
    for row in rows {
        let row = &row["node"];
        let mut alone_variables = variables.clone();
        alone_variables["id"] = row["id"].clone();
        let alone = admin
            .ok(
                &format!(
                    "query($id: ID!, $status: TaskStatus, $after: String) {{
                        conversation(id: $id) {{ ...Row }}
                    }} {fields}"
                ),
                alone_variables,
            )
            .await;
        assert_eq!(
            *row, alone["conversation"],
            "the page's row and the conversation alone"
        );
    }
    // The rows hold what was made, so the comparison compared something.
    let by_id = |id: &Value| {
        rows.iter()
            .map(|r| &r["node"])
            .find(|n| n["id"] == *id)
            .expect("row")
    };
    let full = by_id(c0);
    assert_eq!(full["contact"]["tags"], json!(["lead", "vip"]));
    assert_eq!(full["contact"]["owner"]["id"], me);
    assert_eq!(full["open"]["totalCount"], 3);
    assert_eq!(nodes(&full["open"], "title"), ["three", "two"]);
    assert_eq!(full["open"]["edges"][0]["node"]["assignee"]["id"], me);
    assert_eq!(full["open"]["edges"][1]["node"]["assignee"], Value::Null);
    assert_eq!(
        nodes(&full["tasks"], "title"),
        ["done", "three", "two", "one"]
    );
    assert_eq!(nodes(&full["rest"], "title"), ["three", "two"]);
    assert_eq!(nodes(&full["appointments"], "title"), ["call"]);
    assert_eq!(full["every"]["totalCount"], 2);
    let sent = by_id(c1);
    assert_eq!(sent["lastMessage"]["direction"], "OUTBOUND");
    assert!(sent["lastMessage"]["sender"]["email"].is_string());
    assert!(sent["owner"]["email"].is_string());
    let bare = by_id(&conversations[3].0);
    assert_eq!(bare["owner"], Value::Null);
    assert_eq!(bare["contact"]["tags"], json!([]));
    assert_eq!(bare["lastMessage"]["sender"], Value::Null);
    assert_eq!(bare["open"]["totalCount"], 0);
}
