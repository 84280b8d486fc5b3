//! The workspace as a running plugin sees it: conversation snapshots and teammate checks,
//! read from the database within the plugin's own workspace only.
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};

use confab_plugins::Workspace;
use confab_plugins::wit::{AppointmentInfo, ContactInfo, Conversation, TaskInfo};
use entity::positional::SelectRows;
use entity::{appointment, contact, conversation, task, user};

use crate::domain::scoped::one_of;
use crate::domain::{AppointmentStatus, TaskStatus, now, scoped};
use crate::error::DomainResult;
use crate::ids;

/// The most open tasks and upcoming appointments a snapshot carries.
const OPEN_TASKS_SHOWN: usize = 100;
const APPOINTMENTS_SHOWN: usize = 50;

pub struct DbWorkspace {
    db: DatabaseConnection,
    workspace_id: i64,
    runtime: tokio::runtime::Handle,
    /// Snapshots read for the whole wave before it ran, by conversation row id.
    read_ahead: Arc<HashMap<i64, Conversation>>,
}

impl DbWorkspace {
    /// Must be created on the async runtime; its calls then run on a blocking thread.
    pub fn new(
        db: DatabaseConnection,
        workspace_id: i64,
        read_ahead: Arc<HashMap<i64, Conversation>>,
    ) -> Self {
        DbWorkspace {
            db,
            workspace_id,
            runtime: tokio::runtime::Handle::current(),
            read_ahead,
        }
    }
}

/// The snapshots of the workspace's conversations `ids` (those that exist), by row id: five
/// statements however many there are.
pub async fn snapshots(
    db: &impl ConnectionTrait,
    ws: i64,
    ids: &[i64],
) -> DomainResult<HashMap<i64, Conversation>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let conversations = scoped::rows::<conversation::Entity>(ws)
        .filter(one_of(db, conversation::Column::Id, ids.iter().copied()))
        .rows(db)
        .await?;
    let contact_ids: Vec<i64> = conversations.iter().map(|c| c.contact_id).collect();
    let mut people: HashMap<i64, contact::Model> = scoped::rows::<contact::Entity>(ws)
        .filter(one_of(db, contact::Column::Id, contact_ids.iter().copied()))
        .rows(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for (contact_id, name) in crate::domain::contacts::tags::names(db, ws, &contact_ids).await? {
        tags.entry(contact_id).or_default().push(name);
    }
    let tasks = task::Entity::find()
        .filter(task::Column::WorkspaceId.eq(ws))
        .filter(one_of(
            db,
            task::Column::ConversationId,
            ids.iter().copied(),
        ))
        .filter(task::Column::DeletedAt.is_null())
        .filter(task::Column::Status.ne(TaskStatus::Completed.as_str()))
        .order_by_asc(task::Column::Id)
        .rows(db)
        .await?;
    let mut open_tasks = capped(tasks, OPEN_TASKS_SHOWN, |t| {
        let info = TaskInfo {
            id: ids::encode("Task", t.id).0,
            title: t.title,
            status: t.status,
            due_at: t.due_at.map(ms),
            auto_created: t.auto_created,
        };
        (t.conversation_id, info)
    });
    let appointments = appointment::Entity::find()
        .filter(appointment::Column::WorkspaceId.eq(ws))
        .filter(one_of(
            db,
            appointment::Column::ConversationId,
            ids.iter().copied(),
        ))
        .filter(appointment::Column::Status.eq(AppointmentStatus::Scheduled.as_str()))
        .filter(appointment::Column::StartsAt.gt(now()))
        .order_by_asc(appointment::Column::StartsAt)
        .order_by_asc(appointment::Column::Id)
        .rows(db)
        .await?;
    let mut upcoming = capped(appointments, APPOINTMENTS_SHOWN, |a| {
        let info = AppointmentInfo {
            id: ids::encode("Appointment", a.id).0,
            title: a.title,
            starts_at: ms(a.starts_at),
            ends_at: ms(a.ends_at),
        };
        (a.conversation_id, info)
    });
    let mut out = HashMap::with_capacity(conversations.len());
    for c in conversations {
        let Some(person) = people.remove(&c.contact_id) else {
            continue;
        };
        let mut contact_tags = tags.remove(&person.id).unwrap_or_default();
        contact_tags.sort();
        out.insert(
            c.id,
            Conversation {
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
                    tags: contact_tags,
                    status: person.status,
                },
                open_tasks: open_tasks.remove(&c.id).unwrap_or_default(),
                upcoming_appointments: upcoming.remove(&c.id).unwrap_or_default(),
            },
        );
    }
    Ok(out)
}

/// `rows` as `each` turns them into (conversation, item), grouped by conversation in the
/// order read, at most `cap` per conversation.
fn capped<R, T>(rows: Vec<R>, cap: usize, each: impl Fn(R) -> (i64, T)) -> HashMap<i64, Vec<T>> {
    let mut out: HashMap<i64, Vec<T>> = HashMap::new();
    for (conversation, item) in rows.into_iter().map(each) {
        let shown = out.entry(conversation).or_default();
        if shown.len() < cap {
            shown.push(item);
        }
    }
    out
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn decode(id: &str, kind: &str) -> Result<i64, String> {
    super::row_id(id, kind).map_err(|_| format!("{id:?} is not a {kind} id"))
}

impl Workspace for DbWorkspace {
    fn conversation(&self, id: &str) -> Result<Conversation, String> {
        let row = decode(id, "Conversation")?;
        if let Some(c) = self.read_ahead.get(&row) {
            return Ok(c.clone());
        }
        let read = self
            .runtime
            .block_on(snapshots(&self.db, self.workspace_id, &[row]));
        match read.map(|mut found| found.remove(&row)) {
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
                .row(&self.db),
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
