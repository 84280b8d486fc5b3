//! Inbound messages from the channels. Each finds or creates the contact that owns its
//! address and the contact's one conversation, stores the message, bumps the counters and
//! writes the trail. `receive` stores one message in its own transaction; `receive_batch`
//! stores many in one transaction with a fixed number of statements, which is how the ingest
//! combiner (`crate::ingest`) keeps up with integrations pouring messages in.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, Value,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{contact, contact_identity, conversation, message};

use crate::db::begin_write;
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::addresses::{self, Address, IdentityKind};
use crate::domain::messages::{channel_label, check_text, contact_label};
use crate::domain::scoped::one_of;
use crate::domain::{
    ActivityKind, Channel, ContactStatus, ConversationStatus, Direction, MessageStatus, Role,
    Scope, now,
};
use crate::error::{DomainError, DomainResult};

/// Concurrent first messages from one address race to create its contact; losers retry and
/// find the winner's rows. A handful of rounds is plenty: each round has a new winner.
const CREATE_RETRIES: usize = 5;

pub struct Inbound {
    pub channel: Channel,
    pub from: String,
    pub body: String,
    pub subject: Option<String>,
    pub external_id: Option<String>,
    pub contact_name: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub message: message::Model,
    pub conversation: conversation::Model,
    pub contact: contact::Model,
    pub duplicate: bool,
}

/// An inbound message that passed every check, with its address in canonical form.
#[derive(Clone, Debug)]
pub struct Checked {
    pub scope: Scope,
    pub channel: Channel,
    pub address: Address,
    pub body: String,
    pub subject: Option<String>,
    pub external_id: Option<String>,
    pub contact_name: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Everything about an inbound message that can be refused without the database.
pub fn check(scope: &Scope, input: Inbound) -> DomainResult<Checked> {
    scope.require_role(&[Role::Admin, Role::Integration], "receive messages")?;
    let address = addresses::normalize(input.channel, &input.from, "from")?;
    check_text(&input.body, input.subject.as_deref())?;
    if input.body.trim().is_empty() && input.subject.as_deref().is_none_or(|s| s.trim().is_empty())
    {
        return Err(DomainError::invalid(
            "body",
            "an inbound message needs a body or a subject",
        ));
    }
    let external_id = input
        .external_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if external_id.is_some_and(|e| e.len() > 255) {
        return Err(DomainError::invalid("externalId", "at most 255 characters"));
    }
    let at = now();
    let received_at = match input.received_at {
        Some(t) if t > at + Duration::minutes(5) => {
            return Err(DomainError::invalid(
                "receivedAt",
                "must not be in the future",
            ));
        }
        Some(t) => crate::domain::truncate(t),
        None => at,
    };
    Ok(Checked {
        scope: scope.clone(),
        channel: input.channel,
        address,
        external_id: external_id.map(str::to_string),
        body: input.body,
        subject: input.subject,
        contact_name: input.contact_name,
        received_at,
    })
}

/// Checks and stores one inbound message in its own transaction.
pub async fn receive(
    db: &DatabaseConnection,
    scope: &Scope,
    input: Inbound,
) -> DomainResult<Received> {
    receive_checked(db, &check(scope, input)?).await
}

/// Stores one checked message in its own transaction, retrying a lost race to create the
/// contact.
pub async fn receive_checked(db: &DatabaseConnection, m: &Checked) -> DomainResult<Received> {
    let mut last_error = None;
    for _ in 0..CREATE_RETRIES {
        let txn = begin_write(db).await?;
        let mut result = [None];
        match store_batch(
            &txn,
            m.scope.workspace_id,
            std::slice::from_ref(m),
            &[0],
            &mut result,
        )
        .await
        {
            Ok(()) => {
                txn.commit().await?;
                return result[0]
                    .take()
                    .ok_or_else(|| DomainError::Internal("the message went unstored".into()));
            }
            Err(e) if e.is_unique_violation() => {
                txn.rollback().await?;
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| DomainError::Internal("receive retries exhausted".into())))
}

/// Stores `batch` in one transaction: all of it, or none of it and the error. Messages from
/// one contact apply in order, as if received one after another; a repeated (channel,
/// external id) is a duplicate of its first occurrence, in the batch or stored.
pub async fn receive_batch(
    db: &DatabaseConnection,
    batch: &[Checked],
) -> DomainResult<Vec<Received>> {
    let (txn, received) = stage_batch(db, batch).await?;
    txn.commit().await?;
    Ok(received)
}

/// Writes `batch` as `receive_batch` does, in a transaction left open: the caller commits it
/// (the answers hold once it has) or drops it (and nothing was stored).
pub async fn stage_batch(
    db: &DatabaseConnection,
    batch: &[Checked],
) -> DomainResult<(DatabaseTransaction, Vec<Received>)> {
    let txn = begin_write(db).await?;
    let mut results: Vec<Option<Received>> = vec![None; batch.len()];
    let mut workspaces: Vec<i64> = batch.iter().map(|m| m.scope.workspace_id).collect();
    workspaces.sort_unstable();
    workspaces.dedup();
    for ws in workspaces {
        let members: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].scope.workspace_id == ws)
            .collect();
        store_batch(&txn, ws, batch, &members, &mut results).await?;
    }
    let received = results
        .into_iter()
        .map(|r| r.ok_or_else(|| DomainError::Internal("a batched message went unstored".into())))
        .collect::<DomainResult<_>>()?;
    Ok((txn, received))
}

/// Stores the messages `members` of `batch`, all in workspace `ws`.
async fn store_batch(
    txn: &DatabaseTransaction,
    ws: i64,
    batch: &[Checked],
    members: &[usize],
    results: &mut [Option<Received>],
) -> DomainResult<()> {
    // Repeats of stored messages answer with what is stored; repeats within the batch with
    // their first occurrence, once it is stored.
    let stored = stored_duplicates(txn, ws, batch, members).await?;
    let mut first_of: HashMap<(Channel, &str), usize> = HashMap::new();
    let mut fresh = Vec::new();
    let mut repeats = Vec::new();
    for &i in members {
        let m = &batch[i];
        match m.external_id.as_deref() {
            Some(ext) => {
                if let Some(r) = stored.get(&(m.channel, ext)) {
                    results[i] = Some(r.clone());
                } else if let Some(&first) = first_of.get(&(m.channel, ext)) {
                    repeats.push((i, first));
                } else {
                    first_of.insert((m.channel, ext), i);
                    fresh.push(i);
                }
            }
            None => fresh.push(i),
        }
    }
    if fresh.is_empty() {
        return Ok(());
    }

    // The contacts behind the addresses and their conversations, locked in id order (so two
    // batches never wait on each other in a circle), then whatever is missing, created.
    let mut values: Vec<&str> = fresh
        .iter()
        .map(|&i| batch[i].address.value.as_str())
        .collect();
    values.sort_unstable();
    values.dedup();
    // Both lists, so the lookup walks the (workspace, kind, value) index.
    let mut kinds: Vec<&str> = fresh
        .iter()
        .map(|&i| batch[i].address.kind.as_str())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    let owners: Vec<(i64, String, String)> = contact_identity::Entity::find()
        .select_only()
        .column(contact_identity::Column::ContactId)
        .column(contact_identity::Column::Kind)
        .column(contact_identity::Column::Value)
        .filter(contact_identity::Column::WorkspaceId.eq(ws))
        .filter(one_of(
            txn,
            contact_identity::Column::Kind,
            kinds.into_iter().map(str::to_owned),
        ))
        .filter(one_of(
            txn,
            contact_identity::Column::Value,
            values.into_iter().map(str::to_owned),
        ))
        .into_tuple()
        .all(txn)
        .await?;
    let mut owner_of: HashMap<Address, i64> = owners
        .into_iter()
        .filter_map(|(id, kind, value)| {
            let kind = [IdentityKind::Phone, IdentityKind::Email]
                .into_iter()
                .find(|k| k.as_str() == kind)?;
            Some((Address { kind, value }, id))
        })
        .collect();
    let known: Vec<i64> = owner_of.values().copied().collect();
    let mut contacts: HashMap<i64, contact::Model> = if known.is_empty() {
        HashMap::new()
    } else {
        contact::Entity::find()
            .filter(one_of(txn, contact::Column::Id, known.iter().copied()))
            .order_by_asc(contact::Column::Id)
            .lock_exclusive()
            .rows(txn)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect()
    };
    // An identity whose contact is gone is not an owner (the insert below then collides
    // with it, and the messages are stored one by one).
    owner_of.retain(|_, id| contacts.contains_key(id));
    let mut conversations: HashMap<i64, conversation::Model> = if contacts.is_empty() {
        HashMap::new()
    } else {
        conversation::Entity::find()
            .filter(one_of(
                txn,
                conversation::Column::ContactId,
                contacts.keys().copied(),
            ))
            .order_by_asc(conversation::Column::Id)
            .lock_exclusive()
            .rows(txn)
            .await?
            .into_iter()
            .map(|c| (c.contact_id, c))
            .collect()
    };

    let mut creators: Vec<&Checked> = Vec::new();
    let mut seen: HashSet<&Address> = HashSet::new();
    for &i in &fresh {
        let m = &batch[i];
        if !owner_of.contains_key(&m.address) && seen.insert(&m.address) {
            creators.push(m);
        }
    }
    if !creators.is_empty() {
        let created = contact::Entity::insert_many(creators.iter().map(|m| contact_row(m)))
            .exec_with_returning(txn)
            .await?;
        // Each new contact carries its address as its email or phone: that pairs them up.
        for c in created {
            let address = match (&c.email, &c.phone) {
                (Some(email), None) => Address {
                    kind: IdentityKind::Email,
                    value: email.clone(),
                },
                (None, Some(phone)) => Address {
                    kind: IdentityKind::Phone,
                    value: phone.clone(),
                },
                _ => {
                    return Err(DomainError::Internal(
                        "a new contact without its address".into(),
                    ));
                }
            };
            owner_of.insert(address, c.id);
            contacts.insert(c.id, c);
        }
        contact_identity::Entity::insert_many(
            creators
                .iter()
                .map(|m| identity_row(ws, owner_of[&m.address], &m.address, m.received_at)),
        )
        .exec_without_returning(txn)
        .await?;
    }
    let mut missing: Vec<(i64, DateTime<Utc>)> = Vec::new();
    for &i in &fresh {
        let m = &batch[i];
        let contact_id = *owner_of
            .get(&m.address)
            .ok_or_else(|| DomainError::Internal("an address without its contact".into()))?;
        if !conversations.contains_key(&contact_id)
            && !missing.iter().any(|(c, _)| *c == contact_id)
        {
            missing.push((contact_id, m.received_at));
        }
    }
    if !missing.is_empty() {
        let opened = conversation::Entity::insert_many(
            missing.iter().map(|&(c, at)| conversation_row(ws, c, at)),
        )
        .exec_with_returning(txn)
        .await?;
        conversations.extend(opened.into_iter().map(|c| (c.contact_id, c)));
    }

    // The messages, in batch order; the rows come back in the order they went in, which is
    // checked rather than trusted.
    let conversation_of = |m: &Checked| conversations[&owner_of[&m.address]].id;
    let messages = message::Entity::insert_many(
        fresh
            .iter()
            .map(|&i| message_row(&batch[i], conversation_of(&batch[i]))),
    )
    .exec_with_returning(txn)
    .await?;
    super::returned_in_order(
        &messages,
        fresh.iter().map(|&i| &batch[i]),
        |row, m| {
            row.conversation_id == conversation_of(m)
                && row.created_at == m.received_at
                && row.external_id == m.external_id
                && row.body == m.body
        },
        "messages",
    )?;

    // Each message applied in turn to its conversation and contact, as one at a time would.
    let mut arrivals: HashMap<i64, Arrival> = HashMap::new();
    let mut trail = Vec::new();
    for (&i, message) in fresh.iter().zip(&messages) {
        let m = &batch[i];
        let contact_id = owner_of[&m.address];
        let state = arrivals.entry(contact_id).or_insert_with(|| {
            Arrival::new(
                conversations[&contact_id].clone(),
                contacts[&contact_id].clone(),
            )
        });
        trail.extend(
            state
                .apply(m, message)
                .into_iter()
                .map(|t| (state.conversation.id, t)),
        );
    }
    update_conversations(txn, &arrivals).await?;
    update_contacts(txn, &arrivals).await?;
    activities::record_many(
        txn,
        trail
            .iter_mut()
            .map(|(conversation_id, t)| {
                let Trail {
                    actor,
                    kind,
                    summary,
                    data,
                } = t;
                NewActivity {
                    workspace_id: ws,
                    conversation_id: Some(*conversation_id),
                    kind: *kind,
                    actor: &*actor,
                    summary: std::mem::take(summary),
                    data: data.take(),
                }
            })
            .collect(),
    )
    .await?;

    for (&i, message) in fresh.iter().zip(&messages) {
        let state = &arrivals[&owner_of[&batch[i].address]];
        results[i] = Some(Received {
            message: message.clone(),
            conversation: state.conversation.clone(),
            contact: state.contact.clone(),
            duplicate: false,
        });
    }
    for (i, first) in repeats {
        let mut r = results[first]
            .clone()
            .ok_or_else(|| DomainError::Internal("a repeat before its first".into()))?;
        r.duplicate = true;
        results[i] = Some(r);
    }
    Ok(())
}

/// The stored messages the batch's external ids repeat, by (channel, external id), with the
/// conversation and contact each belongs to.
async fn stored_duplicates<'a>(
    txn: &DatabaseTransaction,
    ws: i64,
    batch: &'a [Checked],
    members: &[usize],
) -> DomainResult<HashMap<(Channel, &'a str), Received>> {
    let mut externals: Vec<&str> = members
        .iter()
        .filter_map(|&i| batch[i].external_id.as_deref())
        .collect();
    if externals.is_empty() {
        return Ok(HashMap::new());
    }
    externals.sort_unstable();
    externals.dedup();
    // The channels too, so the lookup walks the (workspace, channel, external id) index.
    let mut channels: Vec<&str> = members
        .iter()
        .filter(|&&i| batch[i].external_id.is_some())
        .map(|&i| batch[i].channel.as_str())
        .collect();
    channels.sort_unstable();
    channels.dedup();
    let stored = message::Entity::find()
        .filter(message::Column::WorkspaceId.eq(ws))
        .filter(one_of(
            txn,
            message::Column::Channel,
            channels.into_iter().map(str::to_owned),
        ))
        .filter(one_of(
            txn,
            message::Column::ExternalId,
            externals.into_iter().map(str::to_owned),
        ))
        .rows(txn)
        .await?;
    if stored.is_empty() {
        return Ok(HashMap::new());
    }
    let conversations: HashMap<i64, conversation::Model> = conversation::Entity::find()
        .filter(one_of(
            txn,
            conversation::Column::Id,
            stored.iter().map(|m| m.conversation_id),
        ))
        .rows(txn)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let contacts: HashMap<i64, contact::Model> = contact::Entity::find()
        .filter(one_of(
            txn,
            contact::Column::Id,
            conversations.values().map(|c| c.contact_id),
        ))
        .rows(txn)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut out = HashMap::new();
    for &i in members {
        let m = &batch[i];
        let Some(ext) = m.external_id.as_deref() else {
            continue;
        };
        let found = stored
            .iter()
            .find(|s| s.channel == m.channel.as_str() && s.external_id.as_deref() == Some(ext));
        if let Some(message) = found {
            let conversation = conversations
                .get(&message.conversation_id)
                .ok_or(DomainError::Internal("message without conversation".into()))?;
            let contact = contacts
                .get(&conversation.contact_id)
                .ok_or(DomainError::Internal("conversation without contact".into()))?;
            out.insert(
                (m.channel, ext),
                Received {
                    message: message.clone(),
                    conversation: conversation.clone(),
                    contact: contact.clone(),
                    duplicate: true,
                },
            );
        }
    }
    Ok(out)
}

/// A conversation and its contact as the messages arriving in one transaction leave them,
/// beside what they were when read (so the write sets only the difference).
struct Arrival {
    conversation: conversation::Model,
    contact: contact::Model,
    unread_before: i32,
    inbound_before: i32,
}

/// One activity a message's arrival writes.
struct Trail {
    actor: Actor,
    kind: ActivityKind,
    summary: String,
    data: serde_json::Value,
}

impl Arrival {
    fn new(conversation: conversation::Model, contact: contact::Model) -> Arrival {
        Arrival {
            unread_before: conversation.unread_count,
            inbound_before: contact.inbound_count,
            conversation,
            contact,
        }
    }

    /// Applies one stored message; returns the activities its arrival writes.
    fn apply(&mut self, m: &Checked, message: &message::Model) -> Vec<Trail> {
        let at = m.received_at;
        let updated_at = now();
        let conversation = &mut self.conversation;
        let reopened = conversation.status == ConversationStatus::Completed.as_str();
        conversation.unread_count += 1;
        conversation.status = ConversationStatus::Open.as_str().into();
        conversation.updated_at = updated_at;
        if conversation.last_message_at.is_none_or(|t| at >= t) {
            conversation.last_message_at = Some(at);
            conversation.last_message_id = Some(message.id);
        }
        let contact = &mut self.contact;
        contact.inbound_count += 1;
        contact.last_inbound_at = Some(contact.last_inbound_at.map_or(at, |t| Ord::max(t, at)));
        contact.last_activity_at = Some(contact.last_activity_at.map_or(at, |t| Ord::max(t, at)));
        if contact.name.is_none() {
            contact.name = clean_name(m.contact_name.as_deref());
        }
        if m.channel == Channel::Whatsapp && contact.whatsapp.is_none() {
            contact.whatsapp = Some(addresses::whatsapp_id(&m.address.value));
        }
        contact.updated_at = updated_at;

        let actor = Actor::Contact {
            label: contact_label(contact),
        };
        let mut trail = Vec::with_capacity(2);
        if reopened {
            trail.push(Trail {
                actor: actor.clone(),
                kind: ActivityKind::ConversationStatusChanged,
                summary: "Reopened by a new message".into(),
                data: json!({ "status": { "old": "COMPLETED", "new": "OPEN" }, "messageId": message.id }),
            });
        }
        trail.push(Trail {
            actor,
            kind: ActivityKind::MessageReceived,
            summary: format!("{} message received", channel_label(m.channel)),
            data: json!({ "messageId": message.id, "channel": m.channel.as_str() }),
        });
        trail
    }
}

/// `CASE WHEN id = .. THEN .. ELSE <column> END`: a value per row in one UPDATE.
fn per_row<C: ColumnTrait + Copy, V: Into<Value>>(
    id: C,
    column: C,
    values: impl IntoIterator<Item = (i64, V)>,
) -> Option<Expr> {
    case_by_id(id, values, Expr::col(column))
}

/// `<column> + CASE WHEN id = .. THEN .. ELSE 0 END`: an amount added per row.
fn added_per_row<C: ColumnTrait + Copy>(
    id: C,
    column: C,
    amounts: impl IntoIterator<Item = (i64, i32)>,
) -> Option<Expr> {
    case_by_id(id, amounts, Expr::value(0)).map(|added| Expr::col(column).add(added))
}

fn case_by_id<C: ColumnTrait + Copy, V: Into<Value>>(
    id: C,
    values: impl IntoIterator<Item = (i64, V)>,
    otherwise: Expr,
) -> Option<Expr> {
    let mut values = values.into_iter();
    let (first, value) = values.next()?;
    let case = values.fold(
        Expr::case(id.eq(first), Expr::value(value.into())),
        |case, (row, value)| case.case(id.eq(row), Expr::value(value.into())),
    );
    Some(case.finally(otherwise).into())
}

/// Writes the batch's conversations as they now stand. The rows are locked, so setting what
/// was computed is setting what is true; the unread count adds, all the same.
async fn update_conversations(
    txn: &DatabaseTransaction,
    arrivals: &HashMap<i64, Arrival>,
) -> DomainResult<()> {
    use conversation::Column as C;
    let rows: Vec<&conversation::Model> = arrivals.values().map(|a| &a.conversation).collect();
    let Some(updated_at) = rows.iter().map(|c| c.updated_at).max() else {
        return Ok(());
    };
    let update = conversation::Entity::update_many()
        .col_expr(C::Status, Expr::value(ConversationStatus::Open.as_str()))
        .col_expr(C::UpdatedAt, Expr::value(updated_at));
    let unread = arrivals.values().map(|a| {
        (
            a.conversation.id,
            a.conversation.unread_count - a.unread_before,
        )
    });
    let columns = [
        (C::UnreadCount, added_per_row(C::Id, C::UnreadCount, unread)),
        (
            C::LastMessageAt,
            per_row(
                C::Id,
                C::LastMessageAt,
                rows.iter().map(|c| (c.id, c.last_message_at)),
            ),
        ),
        (
            C::LastMessageId,
            per_row(
                C::Id,
                C::LastMessageId,
                rows.iter().map(|c| (c.id, c.last_message_id)),
            ),
        ),
    ];
    set_columns(update, columns)
        .filter(one_of(txn, C::Id, rows.iter().map(|c| c.id)))
        .exec(txn)
        .await?;
    Ok(())
}

/// Writes the batch's contacts as they now stand (the inbound count adds).
async fn update_contacts(
    txn: &DatabaseTransaction,
    arrivals: &HashMap<i64, Arrival>,
) -> DomainResult<()> {
    use contact::Column as C;
    let rows: Vec<&contact::Model> = arrivals.values().map(|a| &a.contact).collect();
    let Some(updated_at) = rows.iter().map(|c| c.updated_at).max() else {
        return Ok(());
    };
    let update = contact::Entity::update_many().col_expr(C::UpdatedAt, Expr::value(updated_at));
    let inbound = arrivals
        .values()
        .map(|a| (a.contact.id, a.contact.inbound_count - a.inbound_before));
    let columns = [
        (
            C::InboundCount,
            added_per_row(C::Id, C::InboundCount, inbound),
        ),
        (
            C::LastInboundAt,
            per_row(
                C::Id,
                C::LastInboundAt,
                rows.iter().map(|c| (c.id, c.last_inbound_at)),
            ),
        ),
        (
            C::LastActivityAt,
            per_row(
                C::Id,
                C::LastActivityAt,
                rows.iter().map(|c| (c.id, c.last_activity_at)),
            ),
        ),
        // Names and WhatsApp ids only fill in where there were none.
        (
            C::Name,
            per_row(
                C::Id,
                C::Name,
                rows.iter().filter_map(|c| Some((c.id, c.name.clone()?))),
            ),
        ),
        (
            C::Whatsapp,
            per_row(
                C::Id,
                C::Whatsapp,
                rows.iter()
                    .filter_map(|c| Some((c.id, c.whatsapp.clone()?))),
            ),
        ),
    ];
    set_columns(update, columns)
        .filter(one_of(txn, C::Id, rows.iter().map(|c| c.id)))
        .exec(txn)
        .await?;
    Ok(())
}

/// Adds each column that has a value to the UPDATE.
fn set_columns<E: EntityTrait>(
    mut update: sea_orm::UpdateMany<E>,
    columns: impl IntoIterator<Item = (E::Column, Option<Expr>)>,
) -> sea_orm::UpdateMany<E> {
    for (column, value) in columns.into_iter() {
        if let Some(value) = value {
            update = update.col_expr(column, value);
        }
    }
    update
}

fn message_row(m: &Checked, conversation_id: i64) -> message::ActiveModel {
    message::ActiveModel {
        workspace_id: Set(m.scope.workspace_id),
        conversation_id: Set(conversation_id),
        channel: Set(m.channel.as_str().into()),
        direction: Set(Direction::Inbound.as_str().into()),
        status: Set(MessageStatus::Received.as_str().into()),
        subject: Set(m.subject.clone()),
        body: Set(m.body.clone()),
        external_id: Set(m.external_id.clone()),
        important: Set(false),
        spam: Set(false),
        created_at: Set(m.received_at),
        ..Default::default()
    }
}

/// A new contact for the message's address, named as the message says.
fn contact_row(m: &Checked) -> contact::ActiveModel {
    let (email, phone) = match m.address.kind {
        IdentityKind::Email => (Some(m.address.value.clone()), None),
        IdentityKind::Phone => (None, Some(m.address.value.clone())),
    };
    contact::ActiveModel {
        workspace_id: Set(m.scope.workspace_id),
        name: Set(clean_name(m.contact_name.as_deref())),
        email: Set(email),
        whatsapp: Set(
            (m.channel == Channel::Whatsapp).then(|| addresses::whatsapp_id(&m.address.value))
        ),
        phone: Set(phone),
        status: Set(ContactStatus::Active.as_str().into()),
        inbound_count: Set(0),
        outbound_count: Set(0),
        created_at: Set(m.received_at),
        updated_at: Set(m.received_at),
        ..Default::default()
    }
}

fn identity_row(
    workspace_id: i64,
    contact_id: i64,
    address: &Address,
    at: DateTime<Utc>,
) -> contact_identity::ActiveModel {
    contact_identity::ActiveModel {
        workspace_id: Set(workspace_id),
        contact_id: Set(contact_id),
        kind: Set(address.kind.as_str().into()),
        value: Set(address.value.clone()),
        created_at: Set(at),
        ..Default::default()
    }
}

fn conversation_row(
    workspace_id: i64,
    contact_id: i64,
    at: DateTime<Utc>,
) -> conversation::ActiveModel {
    conversation::ActiveModel {
        workspace_id: Set(workspace_id),
        contact_id: Set(contact_id),
        status: Set(ConversationStatus::Open.as_str().into()),
        starred: Set(false),
        unread_count: Set(0),
        last_message_at: Set(Some(at)),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
}

fn clean_name(name: Option<&str>) -> Option<String> {
    name.map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use sea_orm::{EntityTrait, QueryOrder};

    use super::*;
    use crate::db::testing::{TestDb, workspace};
    use crate::domain::conversations;
    use entity::activity;

    fn inbound(channel: Channel, from: &str, body: &str) -> Inbound {
        Inbound {
            channel,
            from: from.into(),
            body: body.into(),
            subject: None,
            external_id: None,
            contact_name: None,
            received_at: None,
        }
    }

    /// A workspace whose contact +14155550100 has one message and a completed conversation.
    async fn with_a_completed_conversation() -> TestDb {
        let t = workspace().await;
        let first = receive(
            &t.db,
            &t.admin,
            inbound(Channel::Sms, "+14155550100", "first"),
        )
        .await
        .expect("the first message");
        conversations::set_status(
            &t.db,
            &t.admin,
            first.conversation.id,
            ConversationStatus::Completed,
        )
        .await
        .expect("completed");
        t
    }

    /// What a burst leaves behind: known contacts, new ones, a WhatsApp number, a name, a
    /// message repeated within the burst, and one repeating a stored message.
    fn burst() -> Vec<Inbound> {
        let mut all = Vec::new();
        for i in 0..6 {
            let mut m = inbound(Channel::Sms, "+1 415 555 0100", &format!("known {i}"));
            if i == 2 {
                m.contact_name = Some("  Ana  ".into());
            }
            all.push(m);
            all.push(inbound(
                Channel::Email,
                &format!("New{i}@Example.com"),
                "hello",
            ));
        }
        all.push(inbound(Channel::Whatsapp, "+14155550177", "via whatsapp"));
        all.push(inbound(Channel::Sms, "14155550177", "via sms"));
        for _ in 0..3 {
            let mut m = inbound(Channel::Email, "repeat@example.com", "once");
            m.external_id = Some("ext-1".into());
            all.push(m);
        }
        all
    }

    /// Everything a reader could tell apart, ids and clocks aside.
    async fn snapshot(db: &DatabaseConnection) -> Vec<String> {
        let mut out = Vec::new();
        let contacts = contact::Entity::find()
            .order_by_asc(contact::Column::Id)
            .rows(db)
            .await
            .unwrap();
        for c in contacts {
            let conversation = conversation::Entity::find()
                .filter(conversation::Column::ContactId.eq(c.id))
                .row(db)
                .await
                .unwrap()
                .unwrap();
            let last = match conversation.last_message_id {
                Some(id) => message::Entity::find_by_id(id)
                    .row(db)
                    .await
                    .unwrap()
                    .map(|m| m.body),
                None => None,
            };
            out.push(format!(
                "{:?} {:?} {:?} {:?} in={} unread={} {} last={last:?}",
                c.name,
                c.email,
                c.phone,
                c.whatsapp,
                c.inbound_count,
                conversation.unread_count,
                conversation.status,
            ));
            let bodies: Vec<String> = message::Entity::find()
                .filter(message::Column::ConversationId.eq(conversation.id))
                .order_by_asc(message::Column::Id)
                .rows(db)
                .await
                .unwrap()
                .into_iter()
                .map(|m| format!("{} {:?}", m.body, m.external_id))
                .collect();
            out.push(bodies.join(" | "));
            let trail: Vec<String> = activity::Entity::find()
                .filter(activity::Column::ConversationId.eq(conversation.id))
                .order_by_asc(activity::Column::Id)
                .rows(db)
                .await
                .unwrap()
                .into_iter()
                .map(|a| format!("{} {} {}", a.kind, a.actor_label, a.summary))
                .collect();
            out.push(trail.join(" | "));
        }
        out
    }

    #[tokio::test]
    async fn a_batch_leaves_what_one_message_at_a_time_leaves() {
        let (one, many) = (
            with_a_completed_conversation().await,
            with_a_completed_conversation().await,
        );
        for t in [&one, &many] {
            let mut stored = inbound(Channel::Email, "repeat@example.com", "once");
            stored.external_id = Some("ext-1".into());
            receive(&t.db, &t.admin, stored).await.expect("stored");
        }
        let mut singly = Vec::new();
        for m in burst() {
            singly.push(
                receive(&one.db, &one.admin, m)
                    .await
                    .expect("one at a time"),
            );
        }
        let checked: Vec<Checked> = burst()
            .into_iter()
            .map(|m| check(&many.admin, m).expect("checks"))
            .collect();
        let batched = receive_batch(&many.db, &checked).await.expect("the batch");

        assert_eq!(snapshot(&one.db).await, snapshot(&many.db).await);
        let answers = |r: &[Received]| -> Vec<(String, bool, i32, i32)> {
            r.iter()
                .map(|r| {
                    (
                        r.message.body.clone(),
                        r.duplicate,
                        r.contact.inbound_count,
                        r.conversation.unread_count,
                    )
                })
                .collect()
        };
        let (singly, batched) = (answers(&singly), answers(&batched));
        // Each answer shows the message and its duplicate flag; the counters a batched answer
        // shows are those after the whole batch, so they are at least the single ones.
        for (s, b) in singly.iter().zip(&batched) {
            assert_eq!((&s.0, s.1), (&b.0, b.1));
            assert!(b.2 >= s.2 && b.3 >= s.3, "{s:?} vs {b:?}");
        }
        assert_eq!(singly.len(), batched.len());
        assert_eq!(
            batched.iter().filter(|r| r.1).count(),
            3,
            "the stored repeat answers as a duplicate three times"
        );
    }

    #[tokio::test]
    async fn a_batch_costs_the_same_statements_whatever_its_size() {
        let t = with_a_completed_conversation().await;
        let count = Arc::new(AtomicU64::new(0));
        let mut db = t.db.clone();
        let c = count.clone();
        db.set_metric_callback(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        });
        let mut cost = Vec::new();
        for (size, round) in [(2, "a"), (40, "b")] {
            let batch: Vec<Checked> = (0..size)
                .flat_map(|i| {
                    [
                        inbound(Channel::Sms, "+14155550100", "again"),
                        inbound(Channel::Email, &format!("{round}{i}@example.com"), "hi"),
                    ]
                })
                .map(|m| check(&t.admin, m).expect("checks"))
                .collect();
            let before = count.load(Ordering::Relaxed);
            let stored = receive_batch(&db, &batch).await.expect("the batch");
            assert_eq!(stored.len(), batch.len());
            cost.push(count.load(Ordering::Relaxed) - before);
        }
        assert_eq!(
            cost[0], cost[1],
            "4 messages cost {}, 80 cost {}",
            cost[0], cost[1]
        );
    }
}
