//! The workspace as a running plugin sees it: conversation snapshots and teammate checks,
//! read from the database within the plugin's own workspace only.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use confab_plugins::Workspace;
use confab_plugins::wit::{AppointmentInfo, ContactInfo, Conversation, TaskInfo};
use entity::{appointment, contact, contact_tag, conversation, tag, task, user};

use crate::domain::{AppointmentStatus, TaskStatus, now, scoped};
use crate::error::DomainResult;
use crate::ids;

pub struct DbWorkspace {
    db: DatabaseConnection,
    workspace_id: i64,
    runtime: tokio::runtime::Handle,
}

impl DbWorkspace {
    /// Must be created on the async runtime; its calls then run on a blocking thread.
    pub fn new(db: DatabaseConnection, workspace_id: i64) -> Self {
        DbWorkspace {
            db,
            workspace_id,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    async fn snapshot(&self, id: i64) -> DomainResult<Option<Conversation>> {
        let ws = self.workspace_id;
        let Some(c) = scoped::find::<conversation::Entity>(&self.db, ws, id).await? else {
            return Ok(None);
        };
        let Some(person) = scoped::find::<contact::Entity>(&self.db, ws, c.contact_id).await?
        else {
            return Ok(None);
        };
        let tags: Vec<String> = tag::Entity::find()
            .select_only()
            .column(tag::Column::Name)
            .inner_join_on_tags(c.contact_id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let open_tasks = task::Entity::find()
            .filter(task::Column::WorkspaceId.eq(ws))
            .filter(task::Column::ConversationId.eq(c.id))
            .filter(task::Column::DeletedAt.is_null())
            .filter(task::Column::Status.ne(TaskStatus::Completed.as_str()))
            .order_by_asc(task::Column::Id)
            .limit(100)
            .all(&self.db)
            .await?;
        let upcoming = appointment::Entity::find()
            .filter(appointment::Column::WorkspaceId.eq(ws))
            .filter(appointment::Column::ConversationId.eq(c.id))
            .filter(appointment::Column::Status.eq(AppointmentStatus::Scheduled.as_str()))
            .filter(appointment::Column::StartsAt.gt(now()))
            .order_by_asc(appointment::Column::StartsAt)
            .limit(50)
            .all(&self.db)
            .await?;
        let ms = |t: DateTime<Utc>| t.timestamp_millis();
        Ok(Some(Conversation {
            id: ids::encode("Conversation", c.id).0,
            status: c.status,
            starred: c.starred,
            unread_count: u32::try_from(c.unread_count).unwrap_or(0),
            last_message_at: c.last_message_at.map(ms),
            contact: ContactInfo {
                id: ids::encode("Contact", person.id).0,
                name: crate::domain::messages::contact_label(&person),
                email: person.email,
                phone: person.phone,
                tags,
                status: person.status,
            },
            open_tasks: open_tasks
                .into_iter()
                .map(|t| TaskInfo {
                    id: ids::encode("Task", t.id).0,
                    title: t.title,
                    status: t.status,
                    due_at: t.due_at.map(ms),
                    auto_created: t.auto_created,
                })
                .collect(),
            upcoming_appointments: upcoming
                .into_iter()
                .map(|a| AppointmentInfo {
                    id: ids::encode("Appointment", a.id).0,
                    title: a.title,
                    starts_at: ms(a.starts_at),
                    ends_at: ms(a.ends_at),
                })
                .collect(),
        }))
    }
}

trait TagsOf {
    fn inner_join_on_tags(self, contact_id: i64) -> Self;
}

impl TagsOf for sea_orm::Select<tag::Entity> {
    /// The tags of one contact.
    fn inner_join_on_tags(self, contact_id: i64) -> Self {
        use sea_orm::sea_query::{Expr, ExprTrait, Query};
        self.filter(
            tag::Column::Id.in_subquery(
                Query::select()
                    .column(contact_tag::Column::TagId)
                    .from(contact_tag::Entity)
                    .and_where(Expr::col(contact_tag::Column::ContactId).eq(contact_id))
                    .to_owned(),
            ),
        )
        .order_by_asc(tag::Column::Name)
    }
}

fn decode(id: &str, kind: &str) -> Result<i64, String> {
    super::row_id(id, kind).map_err(|_| format!("{id:?} is not a {kind} id"))
}

impl Workspace for DbWorkspace {
    fn conversation(&self, id: &str) -> Result<Conversation, String> {
        let row = decode(id, "Conversation")?;
        match self.runtime.block_on(self.snapshot(row)) {
            Ok(Some(c)) => Ok(c),
            Ok(None) => Err(format!("no conversation {id} in this workspace")),
            Err(e) => {
                tracing::warn!(error = %e, "plugin host: reading a conversation failed");
                Err("the conversation could not be read; try again later".into())
            }
        }
    }

    fn teammate(&self, id: &str) -> Result<(), String> {
        let row = decode(id, "User")?;
        let found = self.runtime.block_on(
            user::Entity::find_by_id(row)
                .filter(user::Column::WorkspaceId.eq(self.workspace_id))
                .one(&self.db),
        );
        match found {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!("no teammate {id} in this workspace")),
            Err(e) => {
                tracing::warn!(error = %e, "plugin host: reading a user failed");
                Err("the teammate could not be read; try again later".into())
            }
        }
    }
}
