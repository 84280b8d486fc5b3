//! Messages: outbound through the outbox, receipts, flags, soft delete, forwarding and
//! full-text search. Inbound messages from the channels arrive through `inbound`.
use sea_orm::sea_query::{Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{contact, conversation, message, notification, outbox, user};

use crate::db::begin_write;
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::page::{Cursor, Keyset, Page, Window};
use crate::domain::scoped;
use crate::domain::{
    ActivityKind, Channel, ContactStatus, Direction, MessageStatus, NotificationKind, Role, Scope,
    conversations, now,
};
use crate::error::{DomainError, DomainResult};

pub const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_SUBJECT_CHARS: usize = 998;

pub fn scoped(scope: &Scope) -> Select<message::Entity> {
    message::Entity::find().filter(message::Column::WorkspaceId.eq(scope.workspace_id))
}

pub(crate) fn check_text(body: &str, subject: Option<&str>) -> DomainResult<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DomainError::invalid(
            "body",
            format!("at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    if subject.is_some_and(|s| s.chars().count() > MAX_SUBJECT_CHARS) {
        return Err(DomainError::invalid(
            "subject",
            format!("at most {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    Ok(())
}

pub fn contact_label(c: &contact::Model) -> String {
    c.name
        .clone()
        .or_else(|| c.email.clone())
        .or_else(|| c.phone.clone())
        .unwrap_or_else(|| "Contact".into())
}

pub(crate) fn channel_label(c: Channel) -> &'static str {
    match c {
        Channel::Whatsapp => "WhatsApp",
        Channel::Email => "Email",
        Channel::Sms => "SMS",
    }
}

pub struct Outbound {
    pub conversation_id: i64,
    pub channel: Channel,
    pub body: Option<String>,
    pub subject: Option<String>,
    /// A template to render instead of `body`, with the values for its variables.
    pub template: Option<(i64, serde_json::Value)>,
}

/// Stores a QUEUED message and its outbox row in one transaction; the dispatcher sends it.
pub async fn send(
    db: &DatabaseConnection,
    scope: &Scope,
    out: Outbound,
) -> DomainResult<(message::Model, conversation::Model)> {
    scope.require_member("send messages")?;
    let template = match &out.template {
        Some(_) if out.body.is_some() => {
            return Err(DomainError::invalid(
                "body",
                "give either a body or a templateId",
            ));
        }
        Some((id, _)) => {
            let t = crate::domain::templates::get(db, scope, *id).await?;
            if t.channel
                .as_deref()
                .is_some_and(|c| c != out.channel.as_str())
            {
                return Err(DomainError::invalid(
                    "channel",
                    format!("the template is for {}", t.channel.unwrap_or_default()),
                ));
            }
            Some(t)
        }
        None => None,
    };
    if template.is_none() && out.body.as_deref().is_none_or(|b| b.trim().is_empty()) {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    let txn = begin_write(db).await?;
    let conversation =
        scoped::lock(&txn, conversations::scoped(scope), out.conversation_id).await?;
    let contact = contact::Entity::find_by_id(conversation.contact_id)
        .lock_exclusive()
        .row(&txn)
        .await?
        .ok_or(DomainError::Internal("conversation without contact".into()))?;
    if contact.status == ContactStatus::Dnd.as_str() {
        return Err(DomainError::ContactDnd);
    }
    let body = match (&template, &out.template) {
        (Some(t), Some((_, vars))) => crate::domain::templates::render(&t.body, vars, &contact)?,
        _ => out.body.clone().unwrap_or_default(),
    };
    check_text(&body, out.subject.as_deref())?;
    let reachable = match out.channel {
        Channel::Email => contact.email.is_some(),
        Channel::Sms => contact.phone.is_some(),
        Channel::Whatsapp => contact.whatsapp.is_some() || contact.phone.is_some(),
    };
    if !reachable {
        return Err(DomainError::invalid(
            "channel",
            format!("the contact has no {} address", channel_label(out.channel)),
        ));
    }
    let (message, conversation) = enqueue(
        &txn,
        conversation,
        contact,
        out.channel,
        body,
        out.subject.clone(),
        Some(scope.user_id),
    )
    .await?;
    activities::record(
        &txn,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: Some(conversation.id),
            kind: ActivityKind::MessageSent,
            actor: &user_actor(scope),
            summary: format!("{} message queued", channel_label(out.channel)),
            data: json!({
                "messageId": message.id,
                "channel": out.channel.as_str(),
                "templateId": template.as_ref().map(|t| t.id),
            }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok((message, conversation))
}

/// Stores a QUEUED outbound message with its outbox row and moves the conversation and the
/// contact's engagement along; the caller records the activity and commits.
pub async fn enqueue(
    txn: &DatabaseTransaction,
    conversation: conversation::Model,
    contact: contact::Model,
    channel: Channel,
    body: String,
    subject: Option<String>,
    sender: Option<i64>,
) -> DomainResult<(message::Model, conversation::Model)> {
    let at = now();
    let message = message::ActiveModel {
        workspace_id: Set(conversation.workspace_id),
        conversation_id: Set(conversation.id),
        channel: Set(channel.as_str().into()),
        direction: Set(Direction::Outbound.as_str().into()),
        status: Set(MessageStatus::Queued.as_str().into()),
        subject: Set(subject),
        body: Set(body),
        sender_id: Set(sender),
        important: Set(false),
        spam: Set(false),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    outbox::ActiveModel {
        workspace_id: Set(conversation.workspace_id),
        message_id: Set(message.id),
        channel: Set(channel.as_str().into()),
        status: Set(crate::outbox::PENDING.into()),
        attempts: Set(0),
        next_attempt_at: Set(at),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let mut conv = conversation.into_active_model();
    conv.last_message_at = Set(Some(at));
    conv.last_message_id = Set(Some(message.id));
    conv.updated_at = Set(at);
    let conversation = conv.update(txn).await?;
    let mut c = contact.into_active_model();
    c.outbound_count = Set(c.outbound_count.as_ref() + 1);
    c.last_outbound_at = Set(Some(at));
    c.last_activity_at = Set(Some(at));
    c.updated_at = Set(at);
    c.update(txn).await?;
    Ok((message, conversation))
}

/// The channel to reach a contact on when none is asked for: SMS, then WhatsApp, then email.
pub fn default_channel(contact: &contact::Model) -> Option<Channel> {
    if contact.phone.is_some() {
        Some(Channel::Sms)
    } else if contact.whatsapp.is_some() {
        Some(Channel::Whatsapp)
    } else if contact.email.is_some() {
        Some(Channel::Email)
    } else {
        None
    }
}

pub fn user_actor(scope: &Scope) -> Actor {
    Actor::User {
        id: scope.user_id,
        label: scope.label.to_string(),
    }
}

pub enum MessageRef {
    Id(i64),
    External {
        channel: Channel,
        external_id: String,
    },
}

/// Applies a delivery receipt. Receipts only move a message forward: a late DELIVERED after
/// READ is acknowledged and ignored.
pub async fn update_status(
    db: &DatabaseConnection,
    scope: &Scope,
    target: MessageRef,
    status: MessageStatus,
    failed_reason: Option<String>,
) -> DomainResult<message::Model> {
    scope.require_role(
        &[Role::Admin, Role::Integration],
        "record delivery receipts",
    )?;
    if matches!(status, MessageStatus::Received | MessageStatus::Queued) {
        return Err(DomainError::invalid(
            "status",
            "a receipt is SENT, DELIVERED, READ or FAILED",
        ));
    }
    let txn = begin_write(db).await?;
    let q = match &target {
        MessageRef::Id(id) => scoped(scope).filter(message::Column::Id.eq(*id)),
        MessageRef::External {
            channel,
            external_id,
        } => scoped(scope)
            .filter(message::Column::Channel.eq(channel.as_str()))
            .filter(message::Column::ExternalId.eq(external_id.as_str())),
    };
    let current = q
        .lock_exclusive()
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("message"))?;
    if current.direction != Direction::Outbound.as_str() {
        return Err(DomainError::invalid(
            "messageId",
            "receipts apply to outbound messages",
        ));
    }
    let old = MessageStatus::from_db(&current.status);
    if status.rank() <= old.rank() {
        return Ok(current);
    }
    let at = now();
    let mut m = current.clone().into_active_model();
    m.status = Set(status.as_str().into());
    match status {
        MessageStatus::Sent => m.sent_at = Set(Some(at)),
        MessageStatus::Delivered => {
            m.delivered_at = Set(Some(at));
            m.sent_at = Set(current.sent_at.or(Some(at)));
        }
        MessageStatus::Read => {
            m.read_at = Set(Some(at));
            m.delivered_at = Set(current.delivered_at.or(Some(at)));
            m.sent_at = Set(current.sent_at.or(Some(at)));
        }
        MessageStatus::Failed => {
            m.failed_reason =
                Set(Some(failed_reason.unwrap_or_else(|| {
                    "reported failed by the provider".into()
                })));
        }
        MessageStatus::Received | MessageStatus::Queued => {}
    }
    let updated = m.update(&txn).await?;
    let actor = if scope.role == Role::Integration {
        Actor::System
    } else {
        user_actor(scope)
    };
    activities::record(
        &txn,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: Some(current.conversation_id),
            kind: ActivityKind::MessageStatusChanged,
            actor: &actor,
            summary: format!("Message {}", status.as_str().to_lowercase()),
            data: json!({ "messageId": current.id, "status": { "old": old.as_str(), "new": status.as_str() } }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn mark(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    important: Option<bool>,
    spam: Option<bool>,
) -> DomainResult<message::Model> {
    scope.require_member("flag messages")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    let mut changes = serde_json::Map::new();
    let mut m = current.clone().into_active_model();
    if let Some(v) = important.filter(|v| *v != current.important) {
        m.important = Set(v);
        changes.insert(
            "important".into(),
            json!({ "old": current.important, "new": v }),
        );
    }
    if let Some(v) = spam.filter(|v| *v != current.spam) {
        m.spam = Set(v);
        changes.insert("spam".into(), json!({ "old": current.spam, "new": v }));
    }
    if changes.is_empty() {
        return Ok(current);
    }
    let updated = m.update(&txn).await?;
    let fields: Vec<&str> = changes.keys().map(String::as_str).collect();
    let summary = format!("Message flags changed: {}", fields.join(", "));
    activities::record(
        &txn,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: Some(current.conversation_id),
            kind: ActivityKind::FieldUpdated,
            actor: &user_actor(scope),
            summary,
            data: json!({ "messageId": current.id, "changes": changes }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Soft delete: the row stays for audit, timelines and search stop showing it.
pub async fn delete(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<message::Model> {
    scope.require_member("delete messages")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    if current.deleted_at.is_some() {
        return Ok(current);
    }
    let mut m = current.clone().into_active_model();
    m.deleted_at = Set(Some(now()));
    let updated = m.update(&txn).await?;
    // The conversation's preview moves to the newest message still visible.
    let newest = message::Entity::find()
        .filter(message::Column::ConversationId.eq(current.conversation_id))
        .filter(message::Column::DeletedAt.is_null())
        .order_by_desc(message::Column::CreatedAt)
        .order_by_desc(message::Column::Id)
        .row(&txn)
        .await?;
    conversation::Entity::update_many()
        .col_expr(
            conversation::Column::LastMessageId,
            Expr::value(newest.as_ref().map(|m| m.id)),
        )
        .filter(conversation::Column::Id.eq(current.conversation_id))
        .exec(&txn)
        .await?;
    activities::record(
        &txn,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: Some(current.conversation_id),
            kind: ActivityKind::MessageDeleted,
            actor: &user_actor(scope),
            summary: "Message deleted".into(),
            data: json!({ "messageId": current.id }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Shares a message with a teammate: they get a MESSAGE_FORWARDED notification.
pub async fn forward(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    to_user_id: i64,
    comment: Option<String>,
) -> DomainResult<message::Model> {
    scope.require_member("forward messages")?;
    let comment = comment
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    if comment.as_ref().is_some_and(|c| c.len() > 4000) {
        return Err(DomainError::invalid("comment", "at most 4000 bytes"));
    }
    let txn = begin_write(db).await?;
    let current = scoped(scope)
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::DeletedAt.is_null())
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("message"))?;
    let recipient = user::Entity::find_by_id(to_user_id)
        .filter(user::Column::WorkspaceId.eq(scope.workspace_id))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    if recipient.role == Role::Integration.as_str() {
        return Err(DomainError::invalid(
            "toUserId",
            "messages are forwarded to team members",
        ));
    }
    let text = match &comment {
        Some(c) => format!("{} forwarded a message: {c}", scope.label),
        None => format!("{} forwarded a message", scope.label),
    };
    notification::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        user_id: Set(recipient.id),
        kind: Set(NotificationKind::MessageForwarded.as_str().into()),
        text: Set(text),
        conversation_id: Set(Some(current.conversation_id)),
        message_id: Set(Some(current.id)),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    activities::record(
        &txn,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: Some(current.conversation_id),
            kind: ActivityKind::MessageForwarded,
            actor: &user_actor(scope),
            summary: format!("Message forwarded to {}", recipient.name),
            data: json!({ "messageId": current.id, "toUserId": recipient.id, "comment": comment }),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(current)
}

pub fn timeline_keyset() -> Keyset<message::Column> {
    Keyset {
        at: Some(message::Column::CreatedAt),
        id: message::Column::Id,
        order: Order::Asc,
    }
}

pub fn timeline_cursor(m: &message::Model) -> Cursor {
    Cursor {
        at: Some(m.created_at.timestamp_micros()),
        id: m.id,
    }
}

/// One conversation's messages, oldest first, across channels.
pub fn timeline(
    scope: &Scope,
    conversation_id: i64,
    channel: Option<Channel>,
    include_deleted: bool,
) -> Select<message::Entity> {
    let mut q = scoped(scope).filter(message::Column::ConversationId.eq(conversation_id));
    if let Some(c) = channel {
        q = q.filter(message::Column::Channel.eq(c.as_str()));
    }
    if !include_deleted {
        q = q.filter(message::Column::DeletedAt.is_null());
    }
    q
}

/// The words of a search, each quoted so the FTS query syntax never reaches the user.
fn search_terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}

/// The workspace's visible messages matching every word of `text` through the backend's
/// full-text index, as a subquery selecting `column`. None when `text` has no words.
fn search_select(
    backend: DbBackend,
    scope: &Scope,
    text: &str,
    column: message::Column,
) -> Option<SelectStatement> {
    let terms = search_terms(text);
    if terms.is_empty() {
        return None;
    }
    let matches = match backend {
        DbBackend::Postgres => Expr::cust_with_values(
            "messages.search_vector @@ plainto_tsquery('simple', $1)",
            [terms.join(" ")],
        ),
        _ => {
            let query: Vec<String> = terms.iter().map(|t| format!("\"{t}\"")).collect();
            Expr::cust_with_values(
                "messages.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)",
                [query.join(" ")],
            )
        }
    };
    Some(
        Query::select()
            .column((message::Entity, column))
            .from(message::Entity)
            .and_where(
                Expr::col((message::Entity, message::Column::WorkspaceId)).eq(scope.workspace_id),
            )
            .and_where(Expr::col((message::Entity, message::Column::DeletedAt)).is_null())
            .and_where(matches)
            .to_owned(),
    )
}

/// Conversation ids with a visible message matching `text`.
pub fn search_condition(backend: DbBackend, scope: &Scope, text: &str) -> Option<SelectStatement> {
    search_select(backend, scope, text, message::Column::ConversationId)
}

pub async fn search(
    db: &DatabaseConnection,
    scope: &Scope,
    text: &str,
    window: &Window,
) -> DomainResult<(Page<message::Model>, Select<message::Entity>)> {
    scope.require_member("search messages")?;
    let ids = search_select(db.get_database_backend(), scope, text, message::Column::Id)
        .ok_or_else(|| DomainError::invalid("query", "give at least one word to search for"))?;
    let q = scoped(scope).filter(message::Column::Id.in_subquery(ids));
    let keyset = Keyset {
        at: None,
        id: message::Column::Id,
        order: Order::Desc,
    };
    let page = keyset
        .fetch(db, q.clone(), window, |m| Cursor { at: None, id: m.id })
        .await?;
    Ok((page, q))
}

#[cfg(test)]
mod tests {
    use super::search_terms;

    #[test]
    fn search_terms_drop_query_syntax() {
        assert_eq!(
            search_terms(r#"invoice" OR body:* NEAR(x"#),
            vec!["invoice", "or", "body", "near", "x"]
        );
        assert!(search_terms("  *** ").is_empty());
    }
}
