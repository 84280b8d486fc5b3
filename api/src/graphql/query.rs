//! The root query: reads, each scoped to the caller's workspace.
use async_graphql::{Context, ID, InputObject, Object};
use sea_orm::sea_query::Order;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use entity::positional::SelectRows;
use entity::{contact, custom_field_definition, message_template, pipeline, plugin};

use super::connection::Total;
use super::types::*;
use super::{ctx_db, ctx_scope};
use crate::domain::conversations::{self, ConversationFilter as Filter};
use crate::domain::page::{Cursor, Keyset, PageArgs, Window};
use crate::domain::{
    Channel, ContactStatus, ConversationStatus, Role, TaskStatus, contacts, messages, tasks,
    workspaces,
};
use crate::error::DomainError;
use crate::ids;

type Res<T> = async_graphql::Result<T>;

#[derive(InputObject, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    pub starred: Option<bool>,
    pub unread: Option<bool>,
    /// Has at least one message on this channel.
    pub channel: Option<Channel>,
    pub contact_status: Option<ContactStatus>,
    pub tag: Option<String>,
    pub owner_id: Option<ID>,
    /// Contact name/email/phone or message text.
    pub search: Option<String>,
}

#[derive(InputObject, Default)]
pub struct ContactFilter {
    pub status: Option<ContactStatus>,
    pub tag: Option<String>,
    pub search: Option<String>,
    pub owner_id: Option<ID>,
}

#[derive(InputObject, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub assignee_id: Option<ID>,
    pub overdue: Option<bool>,
    pub conversation_id: Option<ID>,
}

async fn find<E: super::loaders::Scoped>(ctx: &Context<'_>, id: i64) -> Res<Option<E::Model>> {
    let scope = ctx_scope(ctx)?;
    Ok(
        crate::domain::scoped::find::<E>(ctx_db(ctx)?, scope.workspace_id, id)
            .await
            .map_err(DomainError::from)?,
    )
}

pub struct Query;

#[Object]
impl Query {
    /// Any object by its global ID; null when it does not exist in the caller's workspace.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Res<Option<Node>> {
        let scope = ctx_scope(ctx)?;
        let Some((kind, row)) = ids::parse(&id) else {
            return Ok(None);
        };
        let loaders = super::ctx_loaders(ctx)?;
        let err = |e: std::sync::Arc<sea_orm::DbErr>| DomainError::Internal(e.to_string());
        Ok(match kind.as_str() {
            "Conversation" => loaders
                .conversations
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Conversation(m.into())),
            "Message" => loaders
                .messages
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Message(m.into())),
            "Contact" => loaders
                .contacts
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Contact(m.into())),
            "User" => loaders
                .users
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::User(m.into())),
            "Note" => loaders
                .notes
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Note(m.into())),
            "Task" => loaders
                .tasks
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Task(m.into())),
            "Appointment" => loaders
                .appointments
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Appointment(m.into())),
            "Pipeline" => loaders
                .pipelines
                .load_one(row)
                .await
                .map_err(err)?
                .map(|m| Node::Pipeline(m.into())),
            "Opportunity" => find::<entity::opportunity::Entity>(ctx, row)
                .await?
                .map(|m| Node::Opportunity(m.into())),
            "Activity" => find::<entity::activity::Entity>(ctx, row)
                .await?
                .map(|m| Node::Activity(m.into())),
            "MessageTemplate" => find::<message_template::Entity>(ctx, row)
                .await?
                .map(|m| Node::MessageTemplate(m.into())),
            "Plugin" if scope.role == Role::Admin => find::<plugin::Entity>(ctx, row)
                .await?
                .map(|m| Node::Plugin(m.into())),
            "PluginRun" if scope.role == Role::Admin => {
                find::<entity::plugin_run::Entity>(ctx, row)
                    .await?
                    .map(|m| Node::PluginRun(m.into()))
            }
            "Job" if scope.role == Role::Admin => find::<entity::job::Entity>(ctx, row)
                .await?
                .map(|m| Node::Job(m.into())),
            "Notification" => find::<entity::notification::Entity>(ctx, row)
                .await?
                .filter(|n| n.user_id == scope.user_id)
                .map(|m| Node::Notification(m.into())),
            "Workspace" if row == scope.workspace_id => Some(Node::Workspace(
                workspaces::workspace(ctx_db(ctx)?, scope).await?.into(),
            )),
            _ => None,
        })
    }

    async fn me(&self, ctx: &Context<'_>) -> Res<User> {
        let scope = ctx_scope(ctx)?;
        let users = workspaces::users(ctx_db(ctx)?, scope).await?;
        users
            .into_iter()
            .find(|u| u.id == scope.user_id)
            .map(User)
            .ok_or_else(|| DomainError::Unauthenticated.into())
    }

    async fn users(&self, ctx: &Context<'_>) -> Res<Vec<User>> {
        let scope = ctx_scope(ctx)?;
        scope.require_member("list the team")?;
        Ok(workspaces::users(ctx_db(ctx)?, scope)
            .await?
            .into_iter()
            .map(User)
            .collect())
    }

    #[graphql(complexity = "super::list_cost(first.or(last), child_complexity)")]
    async fn conversations(
        &self,
        ctx: &Context<'_>,
        filter: Option<ConversationFilter>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Res<ConversationConnection> {
        let scope = ctx_scope(ctx)?;
        let db = ctx_db(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = Filter {
            status: f.status,
            starred: f.starred,
            unread: f.unread,
            channel: f.channel,
            contact_status: f.contact_status,
            tag: f.tag,
            owner_id: ids::decode_opt(f.owner_id.as_ref(), "User", "filter.ownerId")?,
            search: f.search,
        };
        let window = Window::new(&PageArgs {
            first,
            after,
            last,
            before,
        })?;
        let (page, q) = conversations::list(db, scope, &filter, &window).await?;
        let total = match conversations::by_status_alone(&filter) {
            Some(status) => {
                let (db, workspace_id) = (db.clone(), scope.workspace_id);
                Total::with(move || {
                    let db = db.clone();
                    async move { conversations::count_by_status(&db, workspace_id, status).await }
                })
            }
            None => Total::of(db, q),
        };
        // The rows' relations are fetched ahead (and the total counted) side by side.
        let look = ctx.look_ahead();
        let rows: Vec<&entity::conversation::Model> = page.items.iter().map(|(_, c)| c).collect();
        let node = look.field("edges").field("node");
        let relations = super::prefetch::conversations(ctx, &node, &rows);
        let total = async {
            if look.field("totalCount").exists() {
                Ok::<_, async_graphql::Error>(total.counted().await?)
            } else {
                Ok(total)
            }
        };
        let ((), total) = futures::future::try_join(relations, total).await?;
        Ok(ConversationConnection::new(page, total))
    }

    async fn conversation(&self, ctx: &Context<'_>, id: ID) -> Res<Option<Conversation>> {
        let scope = ctx_scope(ctx)?;
        scope.require_member("read conversations")?;
        let id = ids::decode(&id, "Conversation", "id")?;
        match conversations::get(ctx_db(ctx)?, scope, id).await {
            Ok(c) => Ok(Some(Conversation(c))),
            Err(DomainError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        filter: Option<ContactFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<ContactConnection> {
        let scope = ctx_scope(ctx)?;
        let db = ctx_db(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = contacts::ContactFilter {
            status: f.status,
            tag: f.tag,
            search: f.search,
            owner_id: ids::decode_opt(f.owner_id.as_ref(), "User", "filter.ownerId")?,
        };
        let window = Window::new(&PageArgs::forward(first, after))?;
        let q = contacts::filtered(scope, &filter)?;
        let keyset = Keyset {
            at: None,
            id: contact::Column::Id,
            order: Order::Desc,
        };
        let page = keyset
            .fetch(db, q.clone(), &window, |c| Cursor { at: None, id: c.id })
            .await?;
        Ok(ContactConnection::new(page, Total::of(db, q)))
    }

    async fn contact(&self, ctx: &Context<'_>, id: ID) -> Res<Option<Contact>> {
        let scope = ctx_scope(ctx)?;
        scope.require_member("read contacts")?;
        let id = ids::decode(&id, "Contact", "id")?;
        Ok(contacts::find(ctx_db(ctx)?, scope, id).await?.map(Contact))
    }

    /// Full-text search over message bodies and subjects (deleted messages excluded).
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn search_messages(
        &self,
        ctx: &Context<'_>,
        query: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<MessageConnection> {
        let scope = ctx_scope(ctx)?;
        let db = ctx_db(ctx)?;
        let window = Window::new(&PageArgs::forward(first, after))?;
        let (page, q) = messages::search(db, scope, &query, &window).await?;
        Ok(MessageConnection::new(page, Total::of(db, q)))
    }

    /// Tasks across conversations, e.g. my overdue tasks.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn tasks(
        &self,
        ctx: &Context<'_>,
        filter: Option<TaskFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<TaskConnection> {
        let scope = ctx_scope(ctx)?;
        let db = ctx_db(ctx)?;
        let f = filter.unwrap_or_default();
        let filter = tasks::TaskFilter {
            status: f.status,
            assignee_id: ids::decode_opt(f.assignee_id.as_ref(), "User", "filter.assigneeId")?,
            overdue: f.overdue,
            conversation_id: ids::decode_opt(
                f.conversation_id.as_ref(),
                "Conversation",
                "filter.conversationId",
            )?,
        };
        let window = Window::new(&PageArgs::forward(first, after))?;
        let q = tasks::filtered(scope, &filter)?;
        let keyset = Keyset {
            at: None,
            id: entity::task::Column::Id,
            order: Order::Desc,
        };
        let page = keyset
            .fetch(db, q.clone(), &window, |t| Cursor { at: None, id: t.id })
            .await?;
        Ok(TaskConnection::new(page, Total::of(db, q)))
    }

    async fn pipelines(&self, ctx: &Context<'_>) -> Res<Vec<Pipeline>> {
        let scope = ctx_scope(ctx)?;
        scope.require_member("read pipelines")?;
        let rows = pipeline::Entity::find()
            .filter(pipeline::Column::WorkspaceId.eq(scope.workspace_id))
            .order_by_asc(pipeline::Column::Id)
            .rows(ctx_db(ctx)?)
            .await?;
        Ok(rows.into_iter().map(Pipeline).collect())
    }

    async fn templates(&self, ctx: &Context<'_>) -> Res<Vec<MessageTemplate>> {
        let scope = ctx_scope(ctx)?;
        scope.require_member("read templates")?;
        let rows = message_template::Entity::find()
            .filter(message_template::Column::WorkspaceId.eq(scope.workspace_id))
            .order_by_asc(message_template::Column::Name)
            .rows(ctx_db(ctx)?)
            .await?;
        Ok(rows.into_iter().map(MessageTemplate).collect())
    }

    async fn custom_fields(&self, ctx: &Context<'_>) -> Res<Vec<CustomFieldDefinition>> {
        let scope = ctx_scope(ctx)?;
        scope.require_member("read custom fields")?;
        let rows = custom_field_definition::Entity::find()
            .filter(custom_field_definition::Column::WorkspaceId.eq(scope.workspace_id))
            .order_by_asc(custom_field_definition::Column::Id)
            .rows(ctx_db(ctx)?)
            .await?;
        Ok(rows.into_iter().map(CustomFieldDefinition).collect())
    }

    /// ADMIN only.
    async fn plugins(&self, ctx: &Context<'_>) -> Res<Vec<Plugin>> {
        let scope = ctx_scope(ctx)?;
        scope.require_role(&[Role::Admin], "manage plugins")?;
        let rows = plugin::Entity::find()
            .filter(plugin::Column::WorkspaceId.eq(scope.workspace_id))
            .filter(plugin::Column::UninstalledAt.is_null())
            .order_by_asc(plugin::Column::Id)
            .rows(ctx_db(ctx)?)
            .await?;
        Ok(rows.into_iter().map(Plugin).collect())
    }

    async fn plugin(&self, ctx: &Context<'_>, id: ID) -> Res<Option<Plugin>> {
        let scope = ctx_scope(ctx)?;
        scope.require_role(&[Role::Admin], "manage plugins")?;
        let id = ids::decode(&id, "Plugin", "id")?;
        let row = plugin::Entity::find_by_id(id)
            .filter(plugin::Column::WorkspaceId.eq(scope.workspace_id))
            .filter(plugin::Column::UninstalledAt.is_null())
            .row(ctx_db(ctx)?)
            .await?;
        Ok(row.map(Plugin))
    }

    /// The caller's workspace and its settings.
    async fn workspace(&self, ctx: &Context<'_>) -> Res<Workspace> {
        let scope = ctx_scope(ctx)?;
        Ok(Workspace(workspaces::workspace(ctx_db(ctx)?, scope).await?))
    }

    /// The caller's own notifications, newest first.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Res<NotificationConnection> {
        let scope = ctx_scope(ctx)?;
        let db = ctx_db(ctx)?;
        let window = Window::new(&PageArgs::forward(first, after))?;
        let q = crate::domain::notifications::mine(scope, unread_only.unwrap_or(false));
        let keyset = Keyset {
            at: None,
            id: entity::notification::Column::Id,
            order: Order::Desc,
        };
        let page = keyset
            .fetch(db, q.clone(), &window, |n| Cursor { at: None, id: n.id })
            .await?;
        Ok(NotificationConnection::new(page, Total::of(db, q)))
    }

    /// ADMIN only: the scheduler's jobs (reminders, overdue alerts, plugin schedules), soonest due first.
    #[graphql(complexity = "super::list_cost(first, child_complexity)")]
    async fn jobs(
        &self,
        ctx: &Context<'_>,
        status: Option<crate::domain::JobStatus>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(desc = "Only jobs of this kind, e.g. task.reminder.")] kind: Option<String>,
    ) -> Res<JobConnection> {
        let scope = ctx_scope(ctx)?;
        scope.require_role(&[Role::Admin], "read the scheduler's jobs")?;
        let db = ctx_db(ctx)?;
        let window = Window::new(&PageArgs::forward(first, after))?;
        let mut q = crate::domain::scoped::rows::<entity::job::Entity>(scope.workspace_id);
        if let Some(s) = status {
            q = q.filter(entity::job::Column::Status.eq(s.as_str()));
        }
        if let Some(k) = kind {
            q = q.filter(entity::job::Column::Kind.eq(k));
        }
        let keyset = Keyset {
            at: Some(entity::job::Column::DueAt),
            id: entity::job::Column::Id,
            order: Order::Asc,
        };
        let page = keyset
            .fetch(db, q.clone(), &window, |j| Cursor {
                at: Some(j.due_at.timestamp_micros()),
                id: j.id,
            })
            .await?;
        Ok(JobConnection::new(page, Total::of(db, q)))
    }
}
