//! The team's work on a conversation: notes, profile, tasks, appointments, deals, templates,
//! notifications and settings, all in one nested query.
use confab_tests::TestServer;
use serde_json::{Value, json};

struct Team {
    server: TestServer,
    admin: confab_tests::Client,
    bo: confab_tests::Client,
    bo_id: Value,
    conversation: Value,
    contact: Value,
}

async fn team() -> Team {
    let server = TestServer::start().await;
    let admin = server.admin();
    let bo = server.client(&server.token("acme", "bo@acme.test", "agent"));
    let bo_id = bo.ok("{ me { id } }", json!({})).await["me"]["id"].clone();
    let r = admin
        .receive("SMS", "+14155550401", "I'd like a quote", None)
        .await;
    Team {
        conversation: r["conversation"]["id"].clone(),
        contact: r["contact"]["id"].clone(),
        server,
        admin,
        bo,
        bo_id,
    }
}

async fn activity_kinds(client: &confab_tests::Client, conversation: &Value) -> Vec<String> {
    let d = client
        .ok("query($id: ID!) { conversation(id: $id) { activities(first: 100) { edges { node { kind } } } } }", json!({ "id": conversation }))
        .await;
    d["conversation"]["activities"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["kind"].as_str().unwrap().to_string())
        .collect()
}

const ADD_NOTE: &str = "mutation($c: ID!, $b: String!, $p: ID) { addNote(input: {conversationId: $c, body: $b, parentId: $p}) { note { id body bodyHtml mentions { email } parent { id } author { email } } } }";

#[tokio::test]
async fn notes_render_safely_mention_teammates_and_thread() {
    let t = team().await;
    let note = t
        .admin
        .ok(ADD_NOTE, json!({ "c": t.conversation, "b": "**Quote** for @bo <script>alert(1)</script> [x](javascript:alert(1))" }))
        .await["addNote"]["note"]
        .clone();
    let html = note["bodyHtml"].as_str().unwrap();
    assert!(html.contains("<strong>Quote</strong>"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("javascript:"),
        "{html}"
    );
    assert_eq!(note["mentions"], json!([{ "email": "bo@acme.test" }]));
    let told =
        t.bo.ok(
            "{ notifications { edges { node { kind note { id } conversation { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(told["notifications"]["edges"][0]["node"]["kind"], "MENTION");
    assert_eq!(
        told["notifications"]["edges"][0]["node"]["note"]["id"],
        note["id"]
    );
    let self_told = t
        .admin
        .ok("{ notifications { totalCount } }", json!({}))
        .await;
    assert_eq!(
        self_told["notifications"]["totalCount"], 0,
        "authors are not told of their own mentions"
    );

    let reply =
        t.bo.ok(
            ADD_NOTE,
            json!({ "c": t.conversation, "b": "on it", "p": note["id"] }),
        )
        .await["addNote"]["note"]
            .clone();
    let nested = t
        .admin
        .ok(
            ADD_NOTE,
            json!({ "c": t.conversation, "b": "thanks", "p": reply["id"] }),
        )
        .await["addNote"]["note"]
        .clone();
    assert_eq!(
        nested["parent"]["id"], note["id"],
        "a reply to a reply joins the root's thread"
    );
    let thread = t
        .admin
        .ok("query($id: ID!) { conversation(id: $id) { notes { totalCount edges { node { id replies { totalCount } } } } } }", json!({ "id": t.conversation }))
        .await;
    assert_eq!(thread["conversation"]["notes"]["totalCount"], 1);
    assert_eq!(
        thread["conversation"]["notes"]["edges"][0]["node"]["replies"]["totalCount"],
        2
    );

    // Only the author or an admin edits; edits keep the old body in the trail.
    let edit = "mutation($id: ID!, $b: String!) { editNote(input: {noteId: $id, body: $b}) { note { body editedAt } } }";
    assert_eq!(
        t.bo.gql(edit, json!({ "id": note["id"], "b": "hijack" }))
            .await
            .code(),
        "FORBIDDEN"
    );
    let edited = t
        .admin
        .ok(edit, json!({ "id": note["id"], "b": "Quote sent" }))
        .await;
    assert!(edited["editNote"]["note"]["editedAt"].is_string());
    let trail = t
        .admin
        .ok("query($id: ID!) { conversation(id: $id) { activities(kinds: [NOTE_EDITED]) { edges { node { data } } } } }", json!({ "id": t.conversation }))
        .await;
    assert_eq!(
        trail["conversation"]["activities"]["edges"][0]["node"]["data"]["body"]["old"],
        note["body"]
    );
    let del =
        t.bo.ok(
            "mutation($id: ID!) { deleteNote(input: {noteId: $id}) { deletedId } }",
            json!({ "id": reply["id"] }),
        )
        .await;
    assert_eq!(del["deleteNote"]["deletedId"], reply["id"]);
    let after = t
        .admin
        .ok("query($id: ID!) { conversation(id: $id) { notes { edges { node { replies { totalCount } } } } } }", json!({ "id": t.conversation }))
        .await;
    assert_eq!(
        after["conversation"]["notes"]["edges"][0]["node"]["replies"]["totalCount"],
        1
    );
    let other = t.server.client(&t.server.other_workspace("globex"));
    let foreign = other
        .gql(ADD_NOTE, json!({ "c": t.conversation, "b": "peek" }))
        .await;
    assert_eq!(foreign.code(), "NOT_FOUND");
}

const UPDATE: &str = "mutation($input: UpdateContactInput!) { updateContact(input: $input) { contact { name email phone status tags customFields { key value } } } }";

#[tokio::test]
async fn profile_updates_are_validated_logged_and_dnd_blocks_sending() {
    let t = team().await;
    let define = "mutation($i: DefineCustomFieldInput!) { defineCustomField(input: $i) { field { key type options } } }";
    t.admin.ok(define, json!({ "i": { "key": "plan", "label": "Plan", "type": "SELECT", "options": ["free", "pro"] } })).await;
    t.admin
        .ok(
            define,
            json!({ "i": { "key": "seats", "label": "Seats", "type": "NUMBER" } }),
        )
        .await;
    assert_eq!(
        t.bo.gql(
            define,
            json!({ "i": { "key": "x", "label": "X", "type": "TEXT" } })
        )
        .await
        .code(),
        "FORBIDDEN"
    );

    let updated = t
        .admin
        .ok(UPDATE, json!({ "input": { "contactId": t.contact, "name": "Ana Lima", "email": "Ana@Example.COM", "addTags": ["VIP", "lead"],
            "customFields": [{ "key": "plan", "value": "pro" }, { "key": "seats", "value": 12 }] } }))
        .await["updateContact"]["contact"]
        .clone();
    assert_eq!(updated["email"], "ana@example.com");
    assert_eq!(updated["tags"], json!(["lead", "vip"]));
    assert_eq!(
        updated["customFields"],
        json!([{ "key": "plan", "value": "pro" }, { "key": "seats", "value": 12 }])
    );
    // Adding a tag twice changes nothing.
    t.admin.ok(UPDATE, json!({ "input": { "contactId": t.contact, "addTags": ["vip"], "removeTags": ["lead"] } })).await;

    for (input, field) in [
        (json!({ "contactId": t.contact, "email": "nope" }), "email"),
        (json!({ "contactId": t.contact, "phone": "12" }), "phone"),
        (
            json!({ "contactId": t.contact, "customFields": [{ "key": "plan", "value": "gold" }] }),
            "customFields.plan",
        ),
        (
            json!({ "contactId": t.contact, "customFields": [{ "key": "seats", "value": "many" }] }),
            "customFields.seats",
        ),
        (
            json!({ "contactId": t.contact, "customFields": [{ "key": "unknown", "value": 1 }] }),
            "customFields",
        ),
    ] {
        let r = t.admin.gql(UPDATE, json!({ "input": input })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{input}");
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field);
    }
    let still = t
        .admin
        .ok(
            "query($id: ID!) { contact(id: $id) { name tags } }",
            json!({ "id": t.contact }),
        )
        .await;
    assert_eq!(
        still["contact"]["tags"],
        json!(["vip"]),
        "a refused update stores nothing"
    );

    let kinds = activity_kinds(&t.admin, &t.conversation).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "FIELD_UPDATED").count(),
        4,
        "name, email, plan, seats: {kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "TAG_ADDED").count(), 2);
    assert_eq!(kinds.iter().filter(|k| *k == "TAG_REMOVED").count(), 1);

    let owner = t
        .admin
        .ok("mutation($c: ID!, $o: ID) { assignOwner(input: {contactId: $c, ownerId: $o}) { contact { owner { email } } } }", json!({ "c": t.contact, "o": t.bo_id }))
        .await;
    assert_eq!(
        owner["assignOwner"]["contact"]["owner"]["email"],
        "bo@acme.test"
    );
    let mine = t.admin.ok("query($o: ID) { conversations(filter: {ownerId: $o, tag: \"VIP\"}) { totalCount edges { node { owner { email } } } } }", json!({ "o": t.bo_id })).await;
    assert_eq!(mine["conversations"]["totalCount"], 1);
    assert!(
        activity_kinds(&t.admin, &t.conversation)
            .await
            .contains(&"OWNER_CHANGED".to_string())
    );

    t.admin
        .ok(
            UPDATE,
            json!({ "input": { "contactId": t.contact, "status": "DND" } }),
        )
        .await;
    let send = "mutation($id: ID!) { sendMessage(input: {conversationId: $id, channel: SMS, body: \"promo\"}) { message { id } } }";
    assert_eq!(
        t.admin
            .gql(send, json!({ "id": t.conversation }))
            .await
            .code(),
        "CONTACT_DND"
    );
    let count = t
        .admin
        .ok(
            "query($id: ID!) { conversation(id: $id) { messages { totalCount } } }",
            json!({ "id": t.conversation }),
        )
        .await;
    assert_eq!(
        count["conversation"]["messages"]["totalCount"], 1,
        "nothing was queued"
    );
    let engagement = t.admin.ok("query($id: ID!) { contact(id: $id) { lastActivityAt engagement { inboundCount outboundCount score } } }", json!({ "id": t.contact })).await;
    assert_eq!(engagement["contact"]["engagement"]["inboundCount"], 1);
    let score = engagement["contact"]["engagement"]["score"]
        .as_i64()
        .unwrap();
    assert!((1..=100).contains(&score), "{score}");
}

#[tokio::test]
async fn tasks_are_assigned_completed_reopened_and_found_across_conversations() {
    let t = team().await;
    let create = "mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id status overdue assignee { email } completedAt autoCreated } } }";
    let task = t
        .admin
        .ok(create, json!({ "i": { "conversationId": t.conversation, "title": "Send quote", "assigneeId": t.bo_id, "dueAt": "2020-01-01T09:00:00Z" } }))
        .await["createTask"]["task"]
        .clone();
    assert_eq!(task["status"], "OPEN");
    assert_eq!(task["overdue"], true);
    assert_eq!(task["autoCreated"], false);
    let told =
        t.bo.ok(
            "{ notifications(unreadOnly: true) { edges { node { id kind task { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        told["notifications"]["edges"][0]["node"]["kind"],
        "TASK_ASSIGNED"
    );
    assert_eq!(
        told["notifications"]["edges"][0]["node"]["task"]["id"],
        task["id"]
    );

    let mine = "query($a: ID) { tasks(filter: {assigneeId: $a, overdue: true}) { totalCount } }";
    assert_eq!(
        t.bo.ok(mine, json!({ "a": t.bo_id })).await["tasks"]["totalCount"],
        1
    );

    let update = "mutation($i: UpdateTaskInput!) { updateTask(input: $i) { task { status completedAt overdue dueAt } } }";
    let done =
        t.bo.ok(
            update,
            json!({ "i": { "taskId": task["id"], "status": "COMPLETED" } }),
        )
        .await["updateTask"]["task"]
            .clone();
    assert_eq!(done["status"], "COMPLETED");
    assert!(done["completedAt"].is_string());
    assert_eq!(done["overdue"], false);
    assert_eq!(
        t.bo.ok(mine, json!({ "a": t.bo_id })).await["tasks"]["totalCount"],
        0
    );
    let reopened =
        t.bo.ok(
            update,
            json!({ "i": { "taskId": task["id"], "status": "IN_PROGRESS", "dueAt": null } }),
        )
        .await["updateTask"]["task"]
            .clone();
    assert!(
        reopened["completedAt"].is_null(),
        "reopening clears completedAt"
    );
    assert!(reopened["dueAt"].is_null(), "an explicit null clears dueAt");

    let kinds = activity_kinds(&t.admin, &t.conversation).await;
    for k in ["TASK_CREATED", "TASK_COMPLETED", "TASK_UPDATED"] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
    let del = t
        .admin
        .ok(
            "mutation($id: ID!) { deleteTask(input: {taskId: $id}) { deletedId } }",
            json!({ "id": task["id"] }),
        )
        .await;
    assert_eq!(del["deleteTask"]["deletedId"], task["id"]);
    let left = t
        .admin
        .ok(
            "query($c: ID) { tasks(filter: {conversationId: $c}) { totalCount } }",
            json!({ "c": t.conversation }),
        )
        .await;
    assert_eq!(left["tasks"]["totalCount"], 0);
    let blank = t
        .admin
        .gql(
            create,
            json!({ "i": { "conversationId": t.conversation, "title": "  " } }),
        )
        .await;
    assert_eq!(blank.code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn appointments_are_validated_windowed_and_cancelled() {
    let t = team().await;
    let create = "mutation($i: CreateAppointmentInput!) { createAppointment(input: $i) { appointment { id status organizer { email } attendees } } }";
    let future = json!({ "conversationId": t.conversation, "title": "Demo", "startsAt": "2099-05-01T10:00:00Z", "endsAt": "2099-05-01T11:00:00Z",
        "videoUrl": "https://meet.example/abc", "attendees": ["Ana", "Bo"] });
    let a = t.admin.ok(create, json!({ "i": future })).await["createAppointment"]["appointment"]
        .clone();
    assert_eq!(a["status"], "SCHEDULED");
    assert_eq!(a["attendees"], json!(["Ana", "Bo"]));
    t.admin
        .ok(create, json!({ "i": { "conversationId": t.conversation, "title": "Intro", "startsAt": "2020-05-01T10:00:00Z", "endsAt": "2020-05-01T10:30:00Z" } }))
        .await;
    for bad in [
        json!({ "conversationId": t.conversation, "title": "Backwards", "startsAt": "2099-05-01T10:00:00Z", "endsAt": "2099-05-01T09:00:00Z" }),
        json!({ "conversationId": t.conversation, "title": "Too long", "startsAt": "2099-05-01T10:00:00Z", "endsAt": "2099-05-03T10:00:00Z" }),
        json!({ "conversationId": t.conversation, "title": "Bad link", "startsAt": "2099-05-01T10:00:00Z", "endsAt": "2099-05-01T11:00:00Z", "videoUrl": "javascript:alert(1)" }),
    ] {
        assert_eq!(
            t.admin.gql(create, json!({ "i": bad })).await.code(),
            "BAD_USER_INPUT"
        );
    }
    let window = "query($id: ID!, $w: TimeWindow) { conversation(id: $id) { appointments(when: $w) { totalCount edges { node { title } } } } }";
    let upcoming = t
        .admin
        .ok(window, json!({ "id": t.conversation, "w": "UPCOMING" }))
        .await;
    assert_eq!(
        upcoming["conversation"]["appointments"]["edges"][0]["node"]["title"],
        "Demo"
    );
    assert_eq!(upcoming["conversation"]["appointments"]["totalCount"], 1);
    let past = t
        .admin
        .ok(window, json!({ "id": t.conversation, "w": "PAST" }))
        .await;
    assert_eq!(
        past["conversation"]["appointments"]["edges"][0]["node"]["title"],
        "Intro"
    );
    assert_eq!(
        t.admin.ok(window, json!({ "id": t.conversation })).await["conversation"]["appointments"]["totalCount"],
        2
    );

    let moved = t
        .admin
        .ok("mutation($id: ID!) { updateAppointment(input: {appointmentId: $id, startsAt: \"2099-05-01T12:00:00Z\", endsAt: \"2099-05-01T13:00:00Z\"}) { appointment { startsAt } } }", json!({ "id": a["id"] }))
        .await;
    assert_eq!(
        moved["updateAppointment"]["appointment"]["startsAt"],
        "2099-05-01T12:00:00+00:00"
    );
    let cancelled = t
        .admin
        .ok("mutation($id: ID!) { cancelAppointment(input: {appointmentId: $id}) { appointment { status } } }", json!({ "id": a["id"] }))
        .await;
    assert_eq!(
        cancelled["cancelAppointment"]["appointment"]["status"],
        "CANCELLED"
    );
    let kinds = activity_kinds(&t.admin, &t.conversation).await;
    for k in [
        "APPOINTMENT_BOOKED",
        "APPOINTMENT_UPDATED",
        "APPOINTMENT_CANCELLED",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
}

#[tokio::test]
async fn opportunities_move_through_their_own_pipeline() {
    let t = team().await;
    let pipe = "mutation($n: String!, $s: [String!]!) { createPipeline(input: {name: $n, stages: $s}) { pipeline { id stages { id name position } } } }";
    let sales = t
        .admin
        .ok(
            pipe,
            json!({ "n": "Sales", "s": ["Lead", "Proposal", "Won"] }),
        )
        .await["createPipeline"]["pipeline"]
        .clone();
    let other = t
        .admin
        .ok(pipe, json!({ "n": "Renewals", "s": ["Due"] }))
        .await["createPipeline"]["pipeline"]
        .clone();
    assert_eq!(sales["stages"][1]["position"], 1);
    let create = "mutation($i: CreateOpportunityInput!) { createOpportunity(input: $i) { opportunity { id stage { name } value { amountMinor currency } status pipeline { id } } } }";
    let opp = t
        .admin
        .ok(create, json!({ "i": { "conversationId": t.conversation, "name": "Annual plan", "pipelineId": sales["id"], "amountMinor": 120000, "currency": "eur" } }))
        .await["createOpportunity"]["opportunity"]
        .clone();
    assert_eq!(opp["stage"]["name"], "Lead", "the first stage by default");
    assert_eq!(
        opp["value"],
        json!({ "amountMinor": 120000, "currency": "EUR" })
    );
    let foreign_stage = t
        .admin
        .gql(create, json!({ "i": { "conversationId": t.conversation, "name": "x", "pipelineId": sales["id"], "stageId": other["stages"][0]["id"] } }))
        .await;
    assert_eq!(foreign_stage.code(), "BAD_USER_INPUT");
    let bad_currency = t
        .admin
        .gql(create, json!({ "i": { "conversationId": t.conversation, "name": "x", "pipelineId": sales["id"], "amountMinor": 5, "currency": "euros" } }))
        .await;
    assert_eq!(bad_currency.code(), "BAD_USER_INPUT");
    let update = "mutation($i: UpdateOpportunityInput!) { updateOpportunity(input: $i) { opportunity { stage { name } status } } }";
    let won = t.bo.ok(update, json!({ "i": { "opportunityId": opp["id"], "stageId": sales["stages"][2]["id"], "status": "WON" } })).await;
    assert_eq!(
        won["updateOpportunity"]["opportunity"],
        json!({ "stage": { "name": "Won" }, "status": "WON" })
    );
    let list = t.admin.ok("query($id: ID!) { conversation(id: $id) { opportunities(status: WON) { totalCount } } pipelines { name } }", json!({ "id": t.conversation })).await;
    assert_eq!(list["conversation"]["opportunities"]["totalCount"], 1);
    assert_eq!(
        list["pipelines"],
        json!([{ "name": "Sales" }, { "name": "Renewals" }])
    );
    let kinds = activity_kinds(&t.admin, &t.conversation).await;
    assert!(
        kinds.contains(&"OPPORTUNITY_CREATED".to_string())
            && kinds.contains(&"OPPORTUNITY_UPDATED".to_string())
    );
}

#[tokio::test]
async fn templates_render_on_send_and_missing_variables_queue_nothing() {
    let t = team().await;
    t.admin
        .ok(
            UPDATE,
            json!({ "input": { "contactId": t.contact, "name": "Ana" } }),
        )
        .await;
    let tpl = t
        .admin
        .ok("mutation { createTemplate(input: {name: \"confirm\", body: \"Hi {{contact.name}}, see you at {{time}}.\", channel: SMS}) { template { id variables channel } } }", json!({}))
        .await["createTemplate"]["template"]
        .clone();
    assert_eq!(tpl["variables"], json!(["contact.name", "time"]));
    let send = "mutation($c: ID!, $t: ID!, $v: JSON) { sendMessage(input: {conversationId: $c, channel: SMS, templateId: $t, variables: $v}) { message { body } } }";
    let missing = t
        .admin
        .gql(
            send,
            json!({ "c": t.conversation, "t": tpl["id"], "v": {} }),
        )
        .await;
    assert_eq!(missing.code(), "BAD_USER_INPUT");
    assert!(
        missing.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("time")
    );
    let count = t
        .admin
        .ok(
            "query($id: ID!) { conversation(id: $id) { messages { totalCount } } }",
            json!({ "id": t.conversation }),
        )
        .await;
    assert_eq!(count["conversation"]["messages"]["totalCount"], 1);
    let sent = t
        .admin
        .ok(
            send,
            json!({ "c": t.conversation, "t": tpl["id"], "v": { "time": "10:00" } }),
        )
        .await;
    assert_eq!(
        sent["sendMessage"]["message"]["body"],
        "Hi Ana, see you at 10:00."
    );
    let listed = t.bo.ok("{ templates { name } }", json!({})).await;
    assert_eq!(listed["templates"], json!([{ "name": "confirm" }]));
}

#[tokio::test]
async fn notifications_are_read_and_settings_are_admin_only() {
    let t = team().await;
    let create = "mutation($i: CreateTaskInput!) { createTask(input: $i) { task { id } } }";
    for title in ["one", "two"] {
        t.admin.ok(create, json!({ "i": { "conversationId": t.conversation, "title": title, "assigneeId": t.bo_id } })).await;
    }
    let list =
        t.bo.ok(
            "{ notifications { edges { node { id text } } } }",
            json!({}),
        )
        .await;
    let first = list["notifications"]["edges"][0]["node"]["id"].clone();
    assert!(
        list["notifications"]["edges"][0]["node"]["text"]
            .as_str()
            .unwrap()
            .contains("two"),
        "newest first"
    );
    let mark =
        "mutation($ids: [ID!]) { markNotificationsRead(input: {ids: $ids}) { unreadCount } }";
    assert_eq!(
        t.bo.ok(mark, json!({ "ids": [first] })).await["markNotificationsRead"]["unreadCount"],
        1
    );
    assert_eq!(
        t.bo.ok(mark, json!({})).await["markNotificationsRead"]["unreadCount"],
        0
    );

    let settings = "mutation($i: UpdateWorkspaceInput!) { updateWorkspace(input: $i) { workspace { name timeZone appointmentReminderMinutes } } }";
    assert_eq!(
        t.bo.gql(settings, json!({ "i": { "timeZone": "Europe/Berlin" } }))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        t.admin
            .gql(settings, json!({ "i": { "timeZone": "Mars/Olympus" } }))
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        t.admin
            .gql(
                settings,
                json!({ "i": { "appointmentReminderMinutes": [60, 0] } })
            )
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    let ws = t.admin.ok(settings, json!({ "i": { "timeZone": "Europe/Berlin", "appointmentReminderMinutes": [30, 1440] } })).await;
    assert_eq!(
        ws["updateWorkspace"]["workspace"]["timeZone"],
        "Europe/Berlin"
    );
    assert_eq!(
        ws["updateWorkspace"]["workspace"]["appointmentReminderMinutes"],
        json!([1440, 30])
    );
    let read =
        t.bo.ok(
            "{ workspace { timeZone appointmentReminderMinutes } }",
            json!({}),
        )
        .await;
    assert_eq!(read["workspace"]["timeZone"], "Europe/Berlin");
}
