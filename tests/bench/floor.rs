//! The framework's floor for the inbox: the response the server just sent, rebuilt from memory
//! by async-graphql alone, for the same query text. No database, no DataLoader, no HTTP, no
//! token: the rows are already in memory, and each field only reads its part of them. What
//! remains is the part of a response every async-graphql server pays for: validating the
//! document (parsed once, as the server keeps it), executing ~1,300 fields into the response
//! tree, and writing the JSON. Its CPU per response, on one thread of an otherwise idle driver,
//! bounds from below what the server's CPU per request can fall to on this machine.
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Context, EmptyMutation, EmptySubscription, Enum, ID, InputObject, Object};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::load::cpu_seconds;

/// The rows of one inbox response, read back from its JSON.
struct Inbox {
    total: i64,
    rows: Vec<Arc<Row>>,
}

struct Row {
    id: String,
    unread: i32,
    last_message_at: Option<DateTime<Utc>>,
    contact: Contact,
    last_message: Option<Message>,
    open_tasks: i64,
    tasks: Vec<Task>,
    appointments: Vec<Appointment>,
}

#[derive(Clone)]
struct User {
    name: String,
    email: Option<String>,
}

#[derive(Clone)]
struct Contact {
    name: String,
    tags: Vec<String>,
    owner: Option<User>,
}

#[derive(Clone)]
struct Message {
    body: String,
    channel: Channel,
    sender: Option<User>,
}

#[derive(Clone)]
struct Task {
    title: String,
    due_at: Option<DateTime<Utc>>,
    assignee: Option<User>,
}

#[derive(Clone)]
struct Appointment {
    title: String,
    starts_at: DateTime<Utc>,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Whatsapp,
    Email,
    Sms,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum ConversationStatus {
    Open,
    Completed,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum TaskStatus {
    Open,
    InProgress,
    Completed,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
enum TimeWindow {
    Upcoming,
    Past,
    All,
}

#[derive(InputObject)]
struct ConversationFilter {
    status: Option<ConversationStatus>,
}

struct Query;

#[Object]
impl Query {
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConversationFilter>,
        first: Option<i32>,
    ) -> ConversationConnection {
        let inbox = ctx.data_unchecked::<Arc<Inbox>>().clone();
        // The rows are the open conversations (the filter the inbox asks for).
        let _ = filter.and_then(|f| f.status);
        ConversationConnection {
            first: first.map_or(usize::MAX, |n| n.max(0) as usize),
            inbox,
        }
    }
}

struct ConversationConnection {
    first: usize,
    inbox: Arc<Inbox>,
}

#[Object]
impl ConversationConnection {
    async fn total_count(&self) -> i64 {
        self.inbox.total
    }
    async fn edges(&self) -> Vec<ConversationEdge> {
        let rows = self.inbox.rows.iter().take(self.first);
        rows.map(|r| ConversationEdge(r.clone())).collect()
    }
}

struct ConversationEdge(Arc<Row>);

#[Object]
impl ConversationEdge {
    async fn node(&self) -> Conversation {
        Conversation(self.0.clone())
    }
}

struct Conversation(Arc<Row>);

#[Object]
impl Conversation {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn unread_count(&self) -> i32 {
        self.0.unread
    }
    async fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_message_at
    }
    async fn contact(&self) -> Contact {
        self.0.contact.clone()
    }
    async fn last_message(&self) -> Option<Message> {
        self.0.last_message.clone()
    }
    async fn tasks(&self, status: Option<TaskStatus>, first: Option<i32>) -> TaskConnection {
        // The rows are the open tasks (the status the inbox asks for).
        let _ = status;
        let first = first.map_or(usize::MAX, |n| n.max(0) as usize);
        TaskConnection {
            total: self.0.open_tasks,
            tasks: self.0.tasks.iter().take(first).cloned().collect(),
        }
    }
    async fn appointments(&self, when: Option<TimeWindow>, first: Option<i32>) -> Appointments {
        // The rows are the upcoming appointments (the window the inbox asks for).
        let _ = when;
        let first = first.map_or(usize::MAX, |n| n.max(0) as usize);
        Appointments(self.0.appointments.iter().take(first).cloned().collect())
    }
}

#[Object]
impl Contact {
    async fn name(&self) -> &str {
        &self.name
    }
    async fn tags(&self) -> &[String] {
        &self.tags
    }
    async fn owner(&self) -> Option<&User> {
        self.owner.as_ref()
    }
}

#[Object]
impl User {
    async fn name(&self) -> &str {
        &self.name
    }
    async fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
}

#[Object]
impl Message {
    async fn body(&self) -> &str {
        &self.body
    }
    async fn channel(&self) -> Channel {
        self.channel
    }
    async fn sender(&self) -> Option<&User> {
        self.sender.as_ref()
    }
}

struct TaskConnection {
    total: i64,
    tasks: Vec<Task>,
}

#[Object]
impl TaskConnection {
    async fn total_count(&self) -> i64 {
        self.total
    }
    async fn edges(&self) -> Vec<TaskEdge<'_>> {
        self.tasks.iter().map(TaskEdge).collect()
    }
}

struct TaskEdge<'a>(&'a Task);

#[Object]
impl TaskEdge<'_> {
    async fn node(&self) -> &Task {
        self.0
    }
}

#[Object]
impl Task {
    async fn title(&self) -> &str {
        &self.title
    }
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.due_at
    }
    async fn assignee(&self) -> Option<&User> {
        self.assignee.as_ref()
    }
}

struct Appointments(Vec<Appointment>);

#[Object(name = "AppointmentConnection")]
impl Appointments {
    async fn edges(&self) -> Vec<AppointmentEdge<'_>> {
        self.0.iter().map(AppointmentEdge).collect()
    }
}

struct AppointmentEdge<'a>(&'a Appointment);

#[Object]
impl AppointmentEdge<'_> {
    async fn node(&self) -> &Appointment {
        self.0
    }
}

#[Object]
impl Appointment {
    async fn title(&self) -> &str {
        &self.title
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.starts_at
    }
}

/// What the floor measured.
pub struct Floor {
    /// CPU per response, in microseconds.
    pub micros: f64,
    pub responses: u64,
}

/// Answers `query` from the rows of `response` (the server's answer to it) `responses` times,
/// after checking that the rebuilt answer is the server's. Err names the first difference.
pub async fn measure(query: &str, response: &Value, responses: u64) -> Result<Floor, String> {
    let inbox = Arc::new(read_inbox(response).ok_or("the response is not an inbox")?);
    // As the server: its limits, and each request takes a copy of the kept parse.
    let schema = async_graphql::Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(inbox)
        .limit_depth(12)
        .limit_complexity(5_000)
        .finish();
    let document: ExecutableDocument =
        async_graphql::parser::parse_query(query).map_err(|e| e.to_string())?;
    // Every field is ready at once: the await never waits, so the runtime's thread answers
    // one request after another and nothing else runs beside it.
    let answer = async || -> Vec<u8> {
        let mut request = async_graphql::Request::new(query);
        request.set_parsed_query(document.clone());
        let answered = schema.execute(request).await;
        serde_json::to_vec(&answered).expect("a response serializes")
    };

    let rebuilt: Value = serde_json::from_slice(&answer().await).map_err(|e| e.to_string())?;
    if rebuilt != *response {
        return Err(format!(
            "the rebuilt response differs from the server's: {}",
            first_difference(&rebuilt, response, "")
        ));
    }
    for _ in 0..responses / 10 {
        answer().await; // warm-up
    }
    let before = cpu_seconds(std::process::id());
    let mut bytes = 0;
    for _ in 0..responses {
        bytes += answer().await.len();
    }
    let cpu = cpu_seconds(std::process::id()) - before;
    assert!(bytes > 0, "responses were written");
    Ok(Floor {
        micros: cpu / responses as f64 * 1e6,
        responses,
    })
}

fn read_inbox(response: &Value) -> Option<Inbox> {
    let list = &response["data"]["conversations"];
    let rows = list["edges"]
        .as_array()?
        .iter()
        .map(|e| read_row(&e["node"]));
    Some(Inbox {
        total: list["totalCount"].as_i64()?,
        rows: rows.map(|r| r.map(Arc::new)).collect::<Option<_>>()?,
    })
}

fn read_row(n: &Value) -> Option<Row> {
    let tasks = &n["tasks"];
    Some(Row {
        id: n["id"].as_str()?.to_owned(),
        unread: i32::try_from(n["unreadCount"].as_i64()?).ok()?,
        last_message_at: time(&n["lastMessageAt"]),
        contact: Contact {
            name: n["contact"]["name"].as_str()?.to_owned(),
            tags: n["contact"]["tags"]
                .as_array()?
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
            owner: user(&n["contact"]["owner"]),
        },
        last_message: n["lastMessage"].as_object().and_then(|m| {
            Some(Message {
                body: m.get("body")?.as_str()?.to_owned(),
                channel: match m.get("channel")?.as_str()? {
                    "WHATSAPP" => Channel::Whatsapp,
                    "EMAIL" => Channel::Email,
                    "SMS" => Channel::Sms,
                    _ => return None,
                },
                sender: user(&m["sender"]),
            })
        }),
        open_tasks: tasks["totalCount"].as_i64()?,
        tasks: nodes(&tasks["edges"])?
            .map(|t| {
                Some(Task {
                    title: t["title"].as_str()?.to_owned(),
                    due_at: time(&t["dueAt"]),
                    assignee: user(&t["assignee"]),
                })
            })
            .collect::<Option<_>>()?,
        appointments: nodes(&n["appointments"]["edges"])?
            .map(|a| {
                Some(Appointment {
                    title: a["title"].as_str()?.to_owned(),
                    starts_at: time(&a["startsAt"])?,
                })
            })
            .collect::<Option<_>>()?,
    })
}

fn nodes(edges: &Value) -> Option<impl Iterator<Item = &Value>> {
    Some(edges.as_array()?.iter().map(|e| &e["node"]))
}

fn user(v: &Value) -> Option<User> {
    Some(User {
        name: v["name"].as_str()?.to_owned(),
        email: v["email"].as_str().map(str::to_owned),
    })
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The path to the first place two JSON values differ.
fn first_difference(a: &Value, b: &Value, path: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &format!("{path}.{k}")),
                    None => return format!("{path}.{k} only in the rebuilt response"),
                }
            }
            let extra = y.keys().find(|k| !x.contains_key(*k));
            extra.map_or_else(|| path.into(), |k| format!("{path}.{k} missing"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map_or_else(
                || path.into(),
                |(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]")),
            ),
        _ => format!("{path}: {a} against {b}"),
    }
}
