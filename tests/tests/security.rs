//! Who may do what: tokens, workspace isolation, roles, and hostile requests.
use confab_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn missing_or_wrong_tokens_are_unauthenticated() {
    let server = TestServer::start().await;
    let anon = server.anonymous().gql("{ me { id } }", json!({})).await;
    assert_eq!(anon.code(), "UNAUTHENTICATED");
    let wrong = server
        .client("cfb_0000")
        .gql("{ conversations { totalCount } }", json!({}))
        .await;
    assert_eq!(wrong.code(), "UNAUTHENTICATED");
    assert!(wrong.body["data"].is_null());
    let write = server
        .anonymous()
        .gql(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "SMS", "from": "+14155550301", "body": "x" } }),
        )
        .await;
    assert_eq!(write.code(), "UNAUTHENTICATED");
    let check = server
        .admin()
        .ok("{ contacts { totalCount } }", json!({}))
        .await;
    assert_eq!(
        check["contacts"]["totalCount"], 0,
        "nothing was stored by the anonymous call"
    );
}

#[tokio::test]
async fn another_workspace_sees_nothing_of_ours() {
    let server = TestServer::start().await;
    let ours = server.admin();
    let theirs = server.client(&server.other_workspace("globex"));
    let r = ours
        .receive("SMS", "+14155550302", "our secret", Some("ext-1"))
        .await;
    let conv = r["conversation"]["id"].clone();
    let msg = r["message"]["id"].clone();

    let read = theirs
        .ok(
            "query($id: ID!) { conversation(id: $id) { id } node(id: $id) { id } }",
            json!({ "id": conv }),
        )
        .await;
    assert!(read["conversation"].is_null() && read["node"].is_null());
    let msg_node = theirs
        .ok(
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": msg }),
        )
        .await;
    assert!(msg_node["node"].is_null());
    let lists = theirs.ok("{ conversations { totalCount } contacts { totalCount } searchMessages(query: \"secret\") { totalCount } }", json!({})).await;
    assert_eq!(lists["conversations"]["totalCount"], 0);
    assert_eq!(lists["contacts"]["totalCount"], 0);
    assert_eq!(lists["searchMessages"]["totalCount"], 0);

    for (mutation, vars) in [
        (
            "mutation($id: ID!) { markConversationRead(input: {conversationId: $id}) { conversation { id } } }",
            json!({ "id": conv }),
        ),
        (
            "mutation($id: ID!) { starConversation(input: {conversationId: $id, starred: true}) { conversation { id } } }",
            json!({ "id": conv }),
        ),
        (
            "mutation($id: ID!) { sendMessage(input: {conversationId: $id, channel: SMS, body: \"hi\"}) { message { id } } }",
            json!({ "id": conv }),
        ),
        (
            "mutation($id: ID!) { deleteMessage(input: {messageId: $id}) { message { id } } }",
            json!({ "id": msg }),
        ),
        (
            "mutation($id: ID!) { updateMessageStatus(input: {messageId: $id, status: READ}) { message { id } } }",
            json!({ "id": msg }),
        ),
    ] {
        let r = theirs.gql(mutation, vars).await;
        assert_eq!(r.code(), "NOT_FOUND", "{mutation}");
    }
    // The same address in another workspace is another contact there.
    let mirror = theirs
        .receive("SMS", "+14155550302", "hello", Some("ext-1"))
        .await;
    assert_eq!(mirror["duplicate"], false);
    assert_ne!(mirror["conversation"]["id"], conv);
    let still = ours.ok("query($id: ID!) { conversation(id: $id) { unreadCount starred messages { totalCount } } }", json!({ "id": conv })).await;
    assert_eq!(still["conversation"]["unreadCount"], 1);
    assert_eq!(still["conversation"]["starred"], false);
    assert_eq!(still["conversation"]["messages"]["totalCount"], 1);
}

#[tokio::test]
async fn integration_tokens_only_receive_and_report_status() {
    let server = TestServer::start().await;
    let integration = server.client(&server.token("acme", "gateway@acme.test", "integration"));
    let r = integration
        .receive("SMS", "+14155550303", "via gateway", None)
        .await;
    assert_eq!(r["duplicate"], false);
    for query in [
        "{ conversations { totalCount } }",
        "{ contacts { totalCount } }",
        "{ users { id } }",
        "{ searchMessages(query: \"gateway\") { totalCount } }",
    ] {
        assert_eq!(
            integration.gql(query, json!({})).await.code(),
            "FORBIDDEN",
            "{query}"
        );
    }
    let star = integration
        .gql("mutation($id: ID!) { starConversation(input: {conversationId: $id, starred: true}) { conversation { id } } }", json!({ "id": r["conversation"]["id"] }))
        .await;
    assert_eq!(star.code(), "FORBIDDEN");
    let agent = server.client(&server.token("acme", "agent@acme.test", "agent"));
    let inbound = agent
        .gql(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "SMS", "from": "+14155550303", "body": "x" } }),
        )
        .await;
    assert_eq!(
        inbound.code(),
        "FORBIDDEN",
        "agents do not impersonate channels"
    );
}

#[tokio::test]
async fn hostile_requests_are_refused_before_they_run() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let mut deep = String::from("{ conversations { edges { node { ");
    for _ in 0..12 {
        deep.push_str("lastMessage { conversation { ");
    }
    deep.push_str("id");
    for _ in 0..12 {
        deep.push_str(" } }");
    }
    deep.push_str(" } } } }");
    assert_eq!(
        admin.gql(&deep, json!({})).await.code(),
        "QUERY_TOO_COMPLEX"
    );

    let wide = "{ conversations(first: 100) { edges { node { messages(first: 100) { edges { node { conversation { messages(first: 100) { totalCount } } } } } } } } }";
    assert_eq!(admin.gql(wide, json!({})).await.code(), "QUERY_TOO_COMPLEX");

    let introspection = "{ __schema { types { name fields { name type { name ofType { name ofType { name ofType { name } } } } } } } }";
    let schema = admin.gql(introspection, json!({})).await;
    assert_eq!(schema.status, 200);

    // Just over the 1 MiB cap: small enough that loopback buffers take it whole, so the client
    // reads the 413 instead of a reset from a server that stopped reading.
    let huge = "x".repeat(1024 * 1024 + 64 * 1024);
    let resp = admin
        .http
        .post(&admin.url)
        .bearer_auth(admin.token.as_deref().unwrap())
        .json(&json!({ "query": "mutation($b: String!) { receiveMessage(input: {channel: SMS, from: \"+14155550304\", body: $b}) { duplicate } }", "variables": { "b": huge } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);

    let not_json = admin
        .http
        .post(&admin.url)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status().as_u16(), 400);

    let big_body = "y".repeat(70 * 1024);
    let too_long = admin
        .gql(
            confab_tests::RECEIVE,
            json!({ "input": { "channel": "SMS", "from": "+14155550304", "body": big_body } }),
        )
        .await;
    assert_eq!(too_long.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn mutations_over_get_are_refused_and_queries_work() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let token = admin.token.clone().unwrap();
    let get = |q: &str| {
        admin
            .http
            .get(&admin.url)
            .query(&[("query", q)])
            .bearer_auth(&token)
            .header("accept", "application/graphql-response+json")
            .send()
    };
    let ok = get("{ me { email } }").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["data"]["me"]["email"], "admin@acme.test");
    let mutation = get(
        "mutation { markConversationRead(input: {conversationId: \"x\"}) { conversation { id } } }",
    )
    .await
    .unwrap();
    assert_eq!(mutation.status().as_u16(), 405);
    let html = admin
        .http
        .get(&admin.url)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.status().as_u16(), 200);
    let page = html.text().await.unwrap();
    assert!(
        page.contains("/graphiql/graphiql.min.js") && !page.contains("https://"),
        "GraphiQL is served without a CDN"
    );
    let health = admin
        .http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
