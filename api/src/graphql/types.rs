//! The GraphQL object types of the contract, each a thin wrapper over its row; relations load
//! through the request's DataLoaders, or come from what a list fetched ahead (`prefetch`).
use async_graphql::dataloader::Loader;
use async_graphql::{ComplexObject, Context, ID, Interface, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::sea_query::Order;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use entity::positional::Positional;
use entity::{
    activity, appointment, contact, conversation, custom_field_definition, job, message,
    message_template, note, notification, opportunity, pipeline, plugin, plugin_run, stage, task,
    user, workspace,
};

use super::connection::{Total, connection};
use super::loaders::{AppointmentsKey, Relation, TasksKey};
use super::{ctx_db, ctx_loaders, ctx_scope};
use crate::domain::page::{Cursor, Keyset, PageArgs, Window};
use crate::domain::{
    ActivityKind, ActorKind, AppointmentStatus, Channel, ContactStatus, ConversationStatus,
    CustomFieldType, Direction, JobStatus, MessageStatus, NotificationKind, OpportunityStatus,
    PluginRunOutcome, Role, TaskStatus, TimeWindow, messages,
};
use crate::error::DomainError;
use crate::ids;

type Res<T> = async_graphql::Result<T>;

macro_rules! wrapper {
    ($($name:ident($model:ty)),+ $(,)?) => {$(
        #[derive(Clone)]
        pub struct $name(pub $model);
        impl From<$model> for $name {
            fn from(m: $model) -> Self { $name(m) }
        }
    )+};
}

wrapper!(
    User(user::Model),
    Workspace(workspace::Model),
    Contact(contact::Model),
    Conversation(conversation::Model),
    Message(message::Model),
    Note(note::Model),
    Task(task::Model),
    Appointment(appointment::Model),
    Pipeline(pipeline::Model),
    Stage(stage::Model),
    Opportunity(opportunity::Model),
    Activity(activity::Model),
    Job(job::Model),
    MessageTemplate(message_template::Model),
    Plugin(plugin::Model),
    PluginRun(plugin_run::Model),
    Notification(notification::Model),
    CustomFieldDefinition(custom_field_definition::Model),
);

connection!(ConversationConnection, ConversationEdge, Conversation);
connection!(MessageConnection, MessageEdge, Message);
connection!(NoteConnection, NoteEdge, Note);
connection!(ContactConnection, ContactEdge, Contact);
connection!(TaskConnection, TaskEdge, Task, serial);
connection!(AppointmentConnection, AppointmentEdge, Appointment, serial);
connection!(OpportunityConnection, OpportunityEdge, Opportunity);
connection!(ActivityConnection, ActivityEdge, Activity);
connection!(PluginRunConnection, PluginRunEdge, PluginRun);
connection!(NotificationConnection, NotificationEdge, Notification);
connection!(JobConnection, JobEdge, Job);

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Conversation(Conversation),
    Message(Message),
    Note(Note),
    Contact(Contact),
    Task(Task),
    Appointment(Appointment),
    Pipeline(Pipeline),
    Opportunity(Opportunity),
    Activity(Activity),
    User(User),
    Workspace(Workspace),
    Job(Job),
    MessageTemplate(MessageTemplate),
    Plugin(Plugin),
    PluginRun(PluginRun),
    Notification(Notification),
}

pub(super) fn load_err(e: std::sync::Arc<sea_orm::DbErr>) -> async_graphql::Error {
    DomainError::Internal(e.to_string()).into()
}

/// One key's value through a request loader: at once when a list fetched it ahead.
///
/// Boxed, like every large wait in a resolver: async-graphql allocates and copies a future
/// per field of an object, as large as the largest of the object's resolver futures, and a
/// loader's wait inline would make each field of `Conversation` (its `id` too) carry it.
fn load<'a, L, K>(relation: &'a Relation<L, K>, key: K) -> BoxFuture<'a, Res<Option<L::Value>>>
where
    L: Loader<K, Error = std::sync::Arc<sea_orm::DbErr>>,
    K: super::loaders::Key,
{
    match relation.get_kept(&key) {
        Some(kept) => Box::pin(std::future::ready(Ok(kept))),
        None => Box::pin(async move { relation.batched(key).await.map_err(load_err) }),
    }
}

async fn user_opt(ctx: &Context<'_>, id: Option<i64>) -> Res<Option<User>> {
    match id {
        Some(id) => Ok(load(&ctx_loaders(ctx)?.users, id).await?.map(User)),
        None => Ok(None),
    }
}

async fn conversation_of(ctx: &Context<'_>, id: i64) -> Res<Conversation> {
    load(&ctx_loaders(ctx)?.conversations, id)
        .await?
        .map(Conversation)
        .ok_or_else(|| DomainError::NotFound("conversation").into())
}

/// A newest-first list keyed by id, for the lists hanging under a conversation. Boxed, as
/// `load` is.
fn newest_first<'a, E, C>(
    ctx: &'a Context<'_>,
    select: sea_orm::Select<E>,
    id: E::Column,
    args: PageArgs,
    build: impl FnOnce(crate::domain::page::Page<E::Model>, Total) -> C + Send + 'a,
) -> BoxFuture<'a, Res<C>>
where
    E: EntityTrait,
    E::Model: Positional + HasId,
{
    Box::pin(async move {
        let db = ctx_db(ctx)?;
        let window = Window::new(&args)?;
        let keyset = Keyset {
            at: None,
            id,
            order: Order::Desc,
        };
        let page = keyset
            .fetch(db, select.clone(), &window, |m| Cursor {
                at: None,
                id: m.row_id(),
            })
            .await?;
        Ok(build(page, Total::of(db, select)))
    })
}

/// The first page of a list a loader brought in whole; its length is the total.
fn first_page<M>(
    rows: Vec<M>,
    window: &Window,
    cursor: impl Fn(&M) -> Cursor,
) -> (crate::domain::page::Page<M>, Total) {
    let total = Total::known(rows.len() as u64);
    let has_next = rows.len() as u64 > window.limit;
    let items = rows
        .into_iter()
        .take(window.limit as usize)
        .map(|m| (cursor(&m), m))
        .collect();
    (
        crate::domain::page::Page {
            items,
            has_next,
            has_previous: false,
        },
        total,
    )
}

pub trait HasId {
    fn row_id(&self) -> i64;
}

macro_rules! has_id {
    ($($m:ident),+) => {$( impl HasId for $m::Model { fn row_id(&self) -> i64 { self.id } } )+};
}
has_id!(
    note,
    task,
    appointment,
    opportunity,
    activity,
    plugin_run,
    notification,
    job,
    contact
);

// `serial` (here and on Message, Task, Appointment): these objects' fields are in memory
// or each wait on a loader, and a list usually asks for one of those (a sender, an
// assignee). Resolving the fields one after the other skips the task set a parallel object
// builds for every row; a query asking for two loaded fields waits for them in turn.
#[Object(serial)]
impl User {
    async fn id(&self) -> ID {
        ids::encode("User", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> Role {
        Role::from_db(&self.0.role)
    }
    /// The @handle teammates use to mention this user in notes.
    async fn handle(&self) -> &str {
        &self.0.handle
    }
}

#[Object]
impl Workspace {
    async fn id(&self) -> ID {
        ids::encode("Workspace", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// IANA time zone, e.g. Europe/Berlin; cron schedules and digests are evaluated in it.
    async fn time_zone(&self) -> &str {
        &self.0.time_zone
    }
    /// Appointment reminders are sent this many minutes before startsAt (default [1440, 60]).
    async fn appointment_reminder_minutes(&self) -> Vec<i32> {
        serde_json::from_value(self.0.appointment_reminder_minutes.clone()).unwrap_or_default()
    }
}

#[derive(SimpleObject)]
pub struct Engagement {
    pub inbound_count: i32,
    pub outbound_count: i32,
    pub last_inbound_at: Option<DateTime<Utc>>,
    pub last_outbound_at: Option<DateTime<Utc>>,
    /// 0..100: see `domain::engagement_score`.
    pub score: i32,
}

#[derive(SimpleObject)]
pub struct CustomFieldValue {
    pub key: String,
    pub value: Option<Json<serde_json::Value>>,
}

#[Object]
impl Contact {
    async fn id(&self) -> ID {
        ids::encode("Contact", self.0.id)
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// E.164
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    async fn whatsapp(&self) -> Option<&str> {
        self.0.whatsapp.as_deref()
    }
    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }
    async fn status(&self) -> ContactStatus {
        ContactStatus::from_db(&self.0.status)
    }
    async fn tags(&self, ctx: &Context<'_>) -> Res<Vec<String>> {
        Ok(load(&ctx_loaders(ctx)?.tags_by_contact, self.0.id)
            .await?
            .unwrap_or_default())
    }
    async fn custom_fields(&self, ctx: &Context<'_>) -> Res<Vec<CustomFieldValue>> {
        let values = load(&ctx_loaders(ctx)?.custom_fields_by_contact, self.0.id).await?;
        Ok(values
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| CustomFieldValue {
                key,
                value: (!value.is_null()).then_some(Json(value)),
            })
            .collect())
    }
    async fn owner(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        user_opt(ctx, self.0.owner_id).await
    }
    async fn last_activity_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_activity_at
    }
    async fn engagement(&self) -> Engagement {
        let c = &self.0;
        Engagement {
            inbound_count: c.inbound_count,
            outbound_count: c.outbound_count,
            last_inbound_at: c.last_inbound_at,
            last_outbound_at: c.last_outbound_at,
            score: crate::domain::engagement_score(c, crate::domain::now()),
        }
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Option<Conversation>> {
        let loaded = load(&ctx_loaders(ctx)?.conversation_by_contact, self.0.id).await?;
        Ok(loaded.map(Conversation))
    }
}

#[Object]
impl Conversation {
    async fn id(&self) -> ID {
        ids::encode("Conversation", self.0.id)
    }
    async fn contact(&self, ctx: &Context<'_>) -> Res<Contact> {
        load(&ctx_loaders(ctx)?.contacts, self.0.contact_id)
            .await?
            .map(Contact)
            .ok_or_else(|| DomainError::Internal("conversation without contact".into()).into())
    }
    async fn status(&self) -> ConversationStatus {
        ConversationStatus::from_db(&self.0.status)
    }
    async fn starred(&self) -> bool {
        self.0.starred
    }
    /// Inbound messages not yet read by the team; 0 after markConversationRead.
    async fn unread_count(&self) -> i32 {
        self.0.unread_count
    }
    async fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_message_at
    }
    async fn last_message(&self, ctx: &Context<'_>) -> Res<Option<Message>> {
        match self.0.last_message_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.messages, id).await?.map(Message)),
            None => Ok(None),
        }
    }
    /// The contact's owner: the teammate responsible for this conversation.
    async fn owner(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        let contact = load(&ctx_loaders(ctx)?.contacts, self.0.contact_id).await?;
        user_opt(ctx, contact.and_then(|c| c.owner_id)).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Chronological (oldest first) unified timeline of all channels.
    #[graphql(complexity = "super::list_cost(first.or(last), child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        channel: Option<Channel>,
        #[graphql(default_with = "Some(false)")] include_deleted: Option<bool>,
    ) -> Res<MessageConnection> {
        let scope = ctx_scope(ctx)?;
        let db = ctx_db(ctx)?;
        let window = Window::new(&PageArgs {
            first,
            after,
            last,
            before,
        })?;
        let q = messages::timeline(scope, self.0.id, channel, include_deleted.unwrap_or(false));
        // Boxed, as `load` is: the query is held across the wait.
        Box::pin(async move {
            let page = messages::timeline_keyset()
                .fetch(db, q.clone(), &window, messages::timeline_cursor)
                .await?;
            Ok(MessageConnection::new(page, Total::of(db, q)))
        })
        .await
    }
    /// Top-level notes, newest first; replies hang under each note.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<NoteConnection> {
        let q = note::Entity::find()
            .filter(note::Column::ConversationId.eq(self.0.id))
            .filter(note::Column::ParentId.is_null())
            .filter(note::Column::DeletedAt.is_null());
        newest_first(
            ctx,
            q,
            note::Column::Id,
            PageArgs::forward(first, after),
            NoteConnection::new,
        )
        .await
    }
    /// Newest first.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        status: Option<TaskStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<TaskConnection> {
        if after.is_none() {
            // The first page loads for every conversation of a list at once.
            let window = Window::new(&PageArgs::forward(first, None))?;
            let key = TasksKey {
                conversation_id: self.0.id,
                status,
            };
            let rows = load(&ctx_loaders(ctx)?.tasks_by_conversation, key).await?;
            let (page, total) = first_page(rows.unwrap_or_default(), &window, |t| Cursor {
                at: None,
                id: t.id,
            });
            return Ok(TaskConnection::new(page, total));
        }
        let mut q = task::Entity::find()
            .filter(task::Column::ConversationId.eq(self.0.id))
            .filter(task::Column::DeletedAt.is_null());
        if let Some(s) = status {
            q = q.filter(task::Column::Status.eq(s.as_str()));
        }
        newest_first(
            ctx,
            q,
            task::Column::Id,
            PageArgs::forward(first, after),
            TaskConnection::new,
        )
        .await
    }
    /// UPCOMING: not yet over, soonest first; PAST: most recent first; ALL: by start time.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn appointments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(TimeWindow::All)")] when: Option<TimeWindow>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<AppointmentConnection> {
        let when = when.unwrap_or(TimeWindow::All);
        let cursor = |a: &appointment::Model| Cursor {
            at: Some(a.starts_at.timestamp_micros()),
            id: a.id,
        };
        let window = Window::new(&PageArgs::forward(first, after.clone()))?;
        if after.is_none() {
            let key = AppointmentsKey {
                conversation_id: self.0.id,
                when,
            };
            let rows = load(&ctx_loaders(ctx)?.appointments_by_conversation, key).await?;
            let (page, total) = first_page(rows.unwrap_or_default(), &window, cursor);
            return Ok(AppointmentConnection::new(page, total));
        }
        let db = ctx_db(ctx)?;
        let at = crate::domain::now();
        let q =
            appointment::Entity::find().filter(appointment::Column::ConversationId.eq(self.0.id));
        let q = match crate::domain::appointments::window_condition(when, at) {
            Some(condition) => q.filter(condition),
            None => q,
        };
        let order = if when == TimeWindow::Past {
            Order::Desc
        } else {
            Order::Asc
        };
        let keyset = Keyset {
            at: Some(appointment::Column::StartsAt),
            id: appointment::Column::Id,
            order,
        };
        // Boxed, as `load` is: the query is held across the wait.
        Box::pin(async move {
            let page = keyset.fetch(db, q.clone(), &window, cursor).await?;
            Ok(AppointmentConnection::new(page, Total::of(db, q)))
        })
        .await
    }
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        status: Option<OpportunityStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<OpportunityConnection> {
        let mut q =
            opportunity::Entity::find().filter(opportunity::Column::ConversationId.eq(self.0.id));
        if let Some(s) = status {
            q = q.filter(opportunity::Column::Status.eq(s.as_str()));
        }
        newest_first(
            ctx,
            q,
            opportunity::Column::Id,
            PageArgs::forward(first, after),
            OpportunityConnection::new,
        )
        .await
    }
    /// Audit trail, newest first.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        kinds: Option<Vec<ActivityKind>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<ActivityConnection> {
        let mut q = activity::Entity::find().filter(activity::Column::ConversationId.eq(self.0.id));
        if let Some(kinds) = kinds {
            q = q.filter(activity::Column::Kind.is_in(kinds.iter().map(|k| k.as_str())));
        }
        newest_first(
            ctx,
            q,
            activity::Column::Id,
            PageArgs::forward(first, after),
            ActivityConnection::new,
        )
        .await
    }
}

#[Object(serial)]
impl Message {
    async fn id(&self) -> ID {
        ids::encode("Message", self.0.id)
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Conversation> {
        conversation_of(ctx, self.0.conversation_id).await
    }
    async fn channel(&self) -> Channel {
        Channel::from_db(&self.0.channel)
    }
    async fn direction(&self) -> Direction {
        Direction::from_db(&self.0.direction)
    }
    async fn status(&self) -> MessageStatus {
        MessageStatus::from_db(&self.0.status)
    }
    async fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The team member who sent an outbound message; null for inbound.
    async fn sender(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        user_opt(ctx, self.0.sender_id).await
    }
    async fn important(&self) -> bool {
        self.0.important
    }
    async fn spam(&self) -> bool {
        self.0.spam
    }
    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }
    async fn failed_reason(&self) -> Option<&str> {
        self.0.failed_reason.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

#[Object]
impl Note {
    async fn id(&self) -> ID {
        ids::encode("Note", self.0.id)
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Conversation> {
        conversation_of(ctx, self.0.conversation_id).await
    }
    async fn author(&self, ctx: &Context<'_>) -> Res<User> {
        user_opt(ctx, Some(self.0.author_id))
            .await?
            .ok_or_else(|| DomainError::Internal("note without author".into()).into())
    }
    /// Markdown source.
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// Sanitized HTML rendering of body: no script, no event handlers, no javascript: links.
    async fn body_html(&self) -> &str {
        &self.0.body_html
    }
    async fn mentions(&self, ctx: &Context<'_>) -> Res<Vec<User>> {
        let loaders = ctx_loaders(ctx)?;
        let ids = load(&loaders.mentions_by_note, self.0.id)
            .await?
            .unwrap_or_default();
        let users = loaders
            .users
            .load_many(ids.iter().copied())
            .await
            .map_err(load_err)?;
        Ok(ids
            .iter()
            .filter_map(|id| users.get(id).cloned().map(User))
            .collect())
    }
    async fn parent(&self, ctx: &Context<'_>) -> Res<Option<Note>> {
        match self.0.parent_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.notes, id).await?.map(Note)),
            None => Ok(None),
        }
    }
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn replies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<NoteConnection> {
        let q = note::Entity::find()
            .filter(note::Column::ParentId.eq(self.0.id))
            .filter(note::Column::DeletedAt.is_null());
        newest_first(
            ctx,
            q,
            note::Column::Id,
            PageArgs::forward(first, after),
            NoteConnection::new,
        )
        .await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }
}

#[Object(serial)]
impl Task {
    async fn id(&self) -> ID {
        ids::encode("Task", self.0.id)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn status(&self) -> TaskStatus {
        TaskStatus::from_db(&self.0.status)
    }
    async fn due_at(&self) -> Option<DateTime<Utc>> {
        self.0.due_at
    }
    async fn remind_at(&self) -> Option<DateTime<Utc>> {
        self.0.remind_at
    }
    /// Past its due time and not completed.
    async fn overdue(&self) -> bool {
        self.0.status != TaskStatus::Completed.as_str()
            && self.0.due_at.is_some_and(|d| d < crate::domain::now())
    }
    async fn assignee(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        user_opt(ctx, self.0.assignee_id).await
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Conversation> {
        conversation_of(ctx, self.0.conversation_id).await
    }
    /// True when a plugin or the system created it.
    async fn auto_created(&self) -> bool {
        self.0.auto_created
    }
    async fn created_by_plugin(&self, ctx: &Context<'_>) -> Res<Option<Plugin>> {
        match self.0.plugin_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.plugins, id).await?.map(Plugin)),
            None => Ok(None),
        }
    }
    async fn completed_at(&self) -> Option<DateTime<Utc>> {
        self.0.completed_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[Object(serial)]
impl Appointment {
    async fn id(&self) -> ID {
        ids::encode("Appointment", self.0.id)
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Conversation> {
        conversation_of(ctx, self.0.conversation_id).await
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn starts_at(&self) -> DateTime<Utc> {
        self.0.starts_at
    }
    async fn ends_at(&self) -> DateTime<Utc> {
        self.0.ends_at
    }
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }
    async fn video_url(&self) -> Option<&str> {
        self.0.video_url.as_deref()
    }
    async fn agenda(&self) -> Option<&str> {
        self.0.agenda.as_deref()
    }
    async fn organizer(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        user_opt(ctx, self.0.organizer_id).await
    }
    async fn attendees(&self) -> Vec<String> {
        serde_json::from_value(self.0.attendees.clone()).unwrap_or_default()
    }
    async fn status(&self) -> AppointmentStatus {
        AppointmentStatus::from_db(&self.0.status)
    }
}

#[Object]
impl Pipeline {
    async fn id(&self) -> ID {
        ids::encode("Pipeline", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn stages(&self, ctx: &Context<'_>) -> Res<Vec<Stage>> {
        let stages = load(&ctx_loaders(ctx)?.stages_by_pipeline, self.0.id).await?;
        Ok(stages.unwrap_or_default().into_iter().map(Stage).collect())
    }
}

#[Object]
impl Stage {
    async fn id(&self) -> ID {
        ids::encode("Stage", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn position(&self) -> i32 {
        self.0.position
    }
}

#[derive(SimpleObject)]
pub struct Money {
    pub amount_minor: i32,
    pub currency: String,
}

#[Object]
impl Opportunity {
    async fn id(&self) -> ID {
        ids::encode("Opportunity", self.0.id)
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Conversation> {
        conversation_of(ctx, self.0.conversation_id).await
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn value(&self) -> Option<Money> {
        match (self.0.amount_minor, &self.0.currency) {
            (Some(amount), Some(currency)) => Some(Money {
                amount_minor: i32::try_from(amount).unwrap_or(i32::MAX),
                currency: currency.clone(),
            }),
            _ => None,
        }
    }
    async fn pipeline(&self, ctx: &Context<'_>) -> Res<Pipeline> {
        load(&ctx_loaders(ctx)?.pipelines, self.0.pipeline_id)
            .await?
            .map(Pipeline)
            .ok_or_else(|| DomainError::NotFound("pipeline").into())
    }
    async fn stage(&self, ctx: &Context<'_>) -> Res<Stage> {
        load(&ctx_loaders(ctx)?.stages, self.0.stage_id)
            .await?
            .map(Stage)
            .ok_or_else(|| DomainError::NotFound("stage").into())
    }
    async fn status(&self) -> OpportunityStatus {
        OpportunityStatus::from_db(&self.0.status)
    }
    async fn owner(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        user_opt(ctx, self.0.owner_id).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Who did it: a team member, the contact, a plugin, or the system.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Actor {
    pub kind: ActorKind,
    pub label: String,
    #[graphql(skip)]
    user_id: Option<i64>,
    #[graphql(skip)]
    plugin_id: Option<i64>,
}

#[ComplexObject]
impl Actor {
    async fn user(&self, ctx: &Context<'_>) -> Res<Option<User>> {
        user_opt(ctx, self.user_id).await
    }
    async fn plugin(&self, ctx: &Context<'_>) -> Res<Option<Plugin>> {
        match self.plugin_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.plugins, id).await?.map(Plugin)),
            None => Ok(None),
        }
    }
}

#[Object]
impl Activity {
    async fn id(&self) -> ID {
        ids::encode("Activity", self.0.id)
    }
    async fn kind(&self) -> ActivityKind {
        ActivityKind::from_db(&self.0.kind)
    }
    async fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::from_db(&self.0.actor_kind),
            label: self.0.actor_label.clone(),
            user_id: self.0.actor_user_id,
            plugin_id: self.0.actor_plugin_id,
        }
    }
    async fn summary(&self) -> &str {
        &self.0.summary
    }
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.0.data.clone())
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
}

#[Object]
impl Job {
    async fn id(&self) -> ID {
        ids::encode("Job", self.0.id)
    }
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn status(&self) -> JobStatus {
        JobStatus::from_db(&self.0.status)
    }
    async fn due_at(&self) -> DateTime<Utc> {
        self.0.due_at
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
}

#[Object]
impl MessageTemplate {
    async fn id(&self) -> ID {
        ids::encode("MessageTemplate", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn channel(&self) -> Option<Channel> {
        self.0.channel.as_deref().map(Channel::from_db)
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    async fn variables(&self) -> Vec<String> {
        serde_json::from_value(self.0.variables.clone()).unwrap_or_default()
    }
}

#[Object]
impl Plugin {
    async fn id(&self) -> ID {
        ids::encode("Plugin", self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn version(&self) -> &str {
        &self.0.version
    }
    async fn enabled(&self) -> bool {
        self.0.enabled
    }
    /// Event kinds this plugin subscribed to, as declared by the plugin itself.
    async fn events(&self) -> Vec<String> {
        serde_json::from_value(self.0.events.clone()).unwrap_or_default()
    }
    /// Cron expressions this plugin declared.
    async fn schedules(&self) -> Vec<String> {
        serde_json::from_value(self.0.schedules.clone()).unwrap_or_default()
    }
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    async fn installed_at(&self) -> DateTime<Utc> {
        self.0.installed_at
    }
    /// Why it is off, when Confab switched it off (e.g. after failing runs in a row).
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }
    /// The run limits in force (fuel, wallMs, memoryBytes, hostCalls, outputBytes).
    async fn limits(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.limits.clone())
    }
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn runs(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<PluginRunConnection> {
        let q = plugin_run::Entity::find().filter(plugin_run::Column::PluginId.eq(self.0.id));
        newest_first(
            ctx,
            q,
            plugin_run::Column::Id,
            PageArgs::forward(first, after),
            PluginRunConnection::new,
        )
        .await
    }
}

#[Object]
impl PluginRun {
    async fn id(&self) -> ID {
        ids::encode("PluginRun", self.0.id)
    }
    async fn plugin(&self, ctx: &Context<'_>) -> Res<Plugin> {
        load(&ctx_loaders(ctx)?.plugins, self.0.plugin_id)
            .await?
            .map(Plugin)
            .ok_or_else(|| DomainError::NotFound("plugin").into())
    }
    async fn trigger(&self) -> &str {
        &self.0.trigger
    }
    async fn outcome(&self) -> PluginRunOutcome {
        PluginRunOutcome::from_db(&self.0.outcome)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    /// What the plugin wrote to stdout and stderr during the run (cut at its output limit
    /// and at 4 KiB kept).
    async fn output(&self) -> Option<&str> {
        self.0.output.as_deref()
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn duration_micros(&self) -> i32 {
        i32::try_from(self.0.duration_micros).unwrap_or(i32::MAX)
    }
    /// The part of `durationMicros` spent in host lookups (`get-conversation`'s database
    /// reads); the rest is the sandbox: instantiation, the guest's own work and teardown.
    async fn host_micros(&self) -> i32 {
        i32::try_from(self.0.host_micros).unwrap_or(i32::MAX)
    }
    async fn actions(&self) -> i32 {
        self.0.actions
    }
}

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ids::encode("Notification", self.0.id)
    }
    async fn kind(&self) -> NotificationKind {
        NotificationKind::from_db(&self.0.kind)
    }
    async fn text(&self) -> &str {
        &self.0.text
    }
    async fn conversation(&self, ctx: &Context<'_>) -> Res<Option<Conversation>> {
        match self.0.conversation_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.conversations, id)
                .await?
                .map(Conversation)),
            None => Ok(None),
        }
    }
    async fn note(&self, ctx: &Context<'_>) -> Res<Option<Note>> {
        match self.0.note_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.notes, id).await?.map(Note)),
            None => Ok(None),
        }
    }
    async fn task(&self, ctx: &Context<'_>) -> Res<Option<Task>> {
        match self.0.task_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.tasks, id).await?.map(Task)),
            None => Ok(None),
        }
    }
    async fn message(&self, ctx: &Context<'_>) -> Res<Option<Message>> {
        match self.0.message_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.messages, id).await?.map(Message)),
            None => Ok(None),
        }
    }
    async fn appointment(&self, ctx: &Context<'_>) -> Res<Option<Appointment>> {
        match self.0.appointment_id {
            Some(id) => Ok(load(&ctx_loaders(ctx)?.appointments, id)
                .await?
                .map(Appointment)),
            None => Ok(None),
        }
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn read_at(&self) -> Option<DateTime<Utc>> {
        self.0.read_at
    }
}

#[Object]
impl CustomFieldDefinition {
    async fn key(&self) -> &str {
        &self.0.key
    }
    async fn label(&self) -> &str {
        &self.0.label
    }
    #[graphql(name = "type")]
    async fn field_type(&self) -> CustomFieldType {
        CustomFieldType::from_db(&self.0.field_type)
    }
    async fn options(&self) -> Vec<String> {
        serde_json::from_value(self.0.options.clone()).unwrap_or_default()
    }
}

/// Events pushed to subscribers. `kind` is an ActivityKind name; the object fields that apply are set.
/// The rows were loaded once when the event was published, and are shared by every subscriber.
pub struct ConversationEvent(pub std::sync::Arc<crate::realtime::LoadedActivity>);

#[Object]
impl ConversationEvent {
    async fn kind(&self) -> ActivityKind {
        ActivityKind::from_db(&self.0.activity.kind)
    }
    async fn conversation(&self) -> Res<Conversation> {
        self.0
            .conversation
            .clone()
            .map(Conversation)
            .ok_or_else(|| DomainError::NotFound("conversation").into())
    }
    async fn message(&self) -> Option<Message> {
        self.0.message.clone().map(Message)
    }
    async fn note(&self) -> Option<Note> {
        self.0.note.clone().map(Note)
    }
    async fn task(&self) -> Option<Task> {
        self.0.task.clone().map(Task)
    }
    async fn appointment(&self) -> Option<Appointment> {
        self.0.appointment.clone().map(Appointment)
    }
    async fn opportunity(&self) -> Option<Opportunity> {
        self.0.opportunity.clone().map(Opportunity)
    }
    async fn activity(&self) -> Activity {
        Activity(self.0.activity.clone())
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.activity.occurred_at
    }
}
