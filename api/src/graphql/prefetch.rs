//! A page of conversations fetches what its query selects under each row before the rows'
//! fields ask.
//!
//! Through the loaders alone, an inbox page of 50 conversations is ~400 single-key waits (each
//! row's contact, owner, tags, last message, sender, tasks and their assignees, appointments),
//! batched into one statement per relation and depth. Each wait costs its allocations, a
//! channel and a wake-up, and the response is built over three rounds of waking. Here the
//! conversations list looks ahead at its selection, fetches each selected relation for the
//! whole page with the loader's own statement, and keeps the rows in the request's loaders
//! (`Relation::keep`): the fields then answer from memory in one pass. The statements are the
//! same ones, in the same two rounds after the page.
use std::collections::BTreeSet;

use async_graphql::{Context, InputType, Lookahead, SelectionField};
use futures::future::{BoxFuture, try_join_all};

use entity::conversation;

use super::ctx_loaders;
use super::loaders::{AppointmentsKey, Loaders, TasksKey};
use super::types::load_err;
use crate::domain::{TaskStatus, TimeWindow};

type Res<T> = async_graphql::Result<T>;
type Fetch<'a> = BoxFuture<'a, Res<()>>;

/// Fetches and keeps the relations `node` (the rows' selection) asks for, for `rows`.
pub async fn conversations(
    ctx: &Context<'_>,
    node: &Lookahead<'_>,
    rows: &[&conversation::Model],
) -> Res<()> {
    let loaders = ctx_loaders(ctx)?;
    if rows.is_empty() || !loaders.contacts.keeps() {
        return Ok(());
    }
    let wants = Wants::of(node)?;
    let conversation_ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let contact_ids: Vec<i64> = distinct(rows.iter().map(|c| Some(c.contact_id)));
    let message_ids: Vec<i64> = distinct(rows.iter().map(|c| c.last_message_id));

    // First round: the rows' own relations.
    let mut first: Vec<Fetch> = Vec::new();
    if wants.contact {
        first.push(Box::pin(fetch_keep(&loaders.contacts, contact_ids.clone())));
    }
    if wants.last_message {
        first.push(Box::pin(fetch_keep(&loaders.messages, message_ids.clone())));
    }
    for &status in &wants.tasks {
        let keys = conversation_ids
            .iter()
            .map(|&conversation_id| TasksKey {
                conversation_id,
                status,
            })
            .collect();
        first.push(Box::pin(fetch_keep(&loaders.tasks_by_conversation, keys)));
    }
    for &when in &wants.appointments {
        let keys = conversation_ids
            .iter()
            .map(|&conversation_id| AppointmentsKey {
                conversation_id,
                when,
            })
            .collect();
        first.push(Box::pin(fetch_keep(
            &loaders.appointments_by_conversation,
            keys,
        )));
    }
    try_join_all(first).await?;

    // Second round: what hangs under those: the contacts' tags, and the users they all name.
    let mut second: Vec<Fetch> = Vec::new();
    if wants.tags {
        second.push(Box::pin(fetch_keep(&loaders.tags_by_contact, contact_ids)));
    }
    let users = wants.users(loaders, rows);
    if !users.is_empty() {
        second.push(Box::pin(fetch_keep(&loaders.users, users)));
    }
    try_join_all(second).await?;
    Ok(())
}

async fn fetch_keep<L, K>(relation: &super::loaders::Relation<L, K>, keys: Vec<K>) -> Res<()>
where
    L: async_graphql::dataloader::Loader<K, Error = std::sync::Arc<sea_orm::DbErr>>,
    K: super::loaders::Key,
{
    if keys.is_empty() {
        return Ok(());
    }
    let found = relation.fetch(&keys).await.map_err(load_err)?;
    relation.keep(keys.into_iter(), found);
    Ok(())
}

fn distinct(ids: impl Iterator<Item = Option<i64>>) -> Vec<i64> {
    ids.flatten().collect::<BTreeSet<_>>().into_iter().collect()
}

/// What a page's rows select, as far as fetching ahead goes.
#[derive(Default)]
struct Wants {
    /// `contact`, or `owner` (read through the contact).
    contact: bool,
    tags: bool,
    /// The contact's owner, as `owner` or `contact { owner }`.
    owners: bool,
    last_message: bool,
    senders: bool,
    /// The statuses of each first page of `tasks` (`None`: all of them).
    tasks: Vec<Option<TaskStatus>>,
    assignees: bool,
    /// The windows of each first page of `appointments`.
    appointments: Vec<TimeWindow>,
    organizers: bool,
}

impl Wants {
    fn of(node: &Lookahead<'_>) -> Res<Wants> {
        let contact = node.field("contact");
        let last_message = node.field("lastMessage");
        let mut wants = Wants {
            contact: contact.exists() || node.field("owner").exists(),
            tags: contact.field("tags").exists(),
            owners: node.field("owner").exists() || contact.field("owner").exists(),
            last_message: last_message.exists(),
            senders: last_message.field("sender").exists(),
            ..Wants::default()
        };
        // A later page (`after`) is read on its own, as before; so is an argument that does
        // not parse, which the field itself then reports.
        for field in node.field("tasks").selection_fields() {
            if let Some(status) = first_page_arg::<Option<TaskStatus>>(&field, "status")? {
                let status = status.flatten();
                if !wants.tasks.contains(&status) {
                    wants.tasks.push(status);
                }
                wants.assignees |= under_nodes(field).field("assignee").exists();
            }
        }
        for field in node.field("appointments").selection_fields() {
            if let Some(when) = first_page_arg::<Option<TimeWindow>>(&field, "when")? {
                let when = when.flatten().unwrap_or(TimeWindow::All);
                if !wants.appointments.contains(&when) {
                    wants.appointments.push(when);
                }
                wants.organizers |= under_nodes(field).field("organizer").exists();
            }
        }
        Ok(wants)
    }

    /// The users the rows and their fetched relations point at, where asked for.
    fn users(&self, loaders: &Loaders, rows: &[&conversation::Model]) -> Vec<i64> {
        let mut ids = BTreeSet::new();
        if self.owners {
            loaders.contacts.with_kept(|kept| {
                for c in rows {
                    if let Some(Some(contact)) = kept.get(&c.contact_id) {
                        ids.extend(contact.owner_id);
                    }
                }
            });
        }
        if self.senders {
            loaders.messages.with_kept(|kept| {
                for c in rows {
                    if let Some(Some(message)) = c.last_message_id.and_then(|id| kept.get(&id)) {
                        ids.extend(message.sender_id);
                    }
                }
            });
        }
        if self.assignees {
            loaders.tasks_by_conversation.with_kept(|kept| {
                for tasks in kept.values().flatten() {
                    ids.extend(tasks.iter().filter_map(|t| t.assignee_id));
                }
            });
        }
        if self.organizers {
            loaders.appointments_by_conversation.with_kept(|kept| {
                for appointments in kept.values().flatten() {
                    ids.extend(appointments.iter().filter_map(|a| a.organizer_id));
                }
            });
        }
        ids.into_iter().collect()
    }
}

/// `name`'s value when `field` asks for a first page (no `after`); `None` for a later page or
/// an argument that does not parse.
fn first_page_arg<T: InputType>(field: &SelectionField<'_>, name: &str) -> Res<Option<Option<T>>> {
    let arguments = field.arguments()?;
    let value = |key: &str| {
        arguments
            .iter()
            .find(|(n, _)| n.as_str() == key)
            .map(|(_, v)| v)
    };
    if value("after").is_some_and(|v| *v != async_graphql::Value::Null) {
        return Ok(None);
    }
    match value(name) {
        None => Ok(Some(None)),
        Some(v) => Ok(T::parse(Some(v.clone())).ok().map(Some)),
    }
}

/// A connection field's node selection.
fn under_nodes(field: SelectionField<'_>) -> Lookahead<'_> {
    Lookahead::from(field).field("edges").field("node")
}
