//! Conversations: one per contact. The inbox list with its filters, and the conversation-level
//! state a team changes (read/unread, open/completed, starred).
use sea_orm::sea_query::{Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, Select, Set,
};
use serde_json::json;

use entity::{contact, conversation, message};

use crate::db::begin_write;
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::page::{Cursor, Keyset, Page, Window};
use crate::domain::scoped;
use crate::domain::{
    ActivityKind, Channel, ContactStatus, ConversationStatus, Scope, contacts, now,
};
use crate::error::{DomainError, DomainResult};

#[derive(Clone, Debug, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    pub starred: Option<bool>,
    pub unread: Option<bool>,
    pub channel: Option<Channel>,
    pub contact_status: Option<ContactStatus>,
    pub tag: Option<String>,
    pub owner_id: Option<i64>,
    pub search: Option<String>,
}

pub fn scoped(scope: &Scope) -> Select<conversation::Entity> {
    conversation::Entity::find().filter(conversation::Column::WorkspaceId.eq(scope.workspace_id))
}

pub async fn get(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<conversation::Model> {
    scoped(scope)
        .filter(conversation::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("conversation"))
}

/// The inbox: newest activity first, every `ConversationFilter` applied in SQL.
pub fn filtered(
    db: &DatabaseConnection,
    scope: &Scope,
    f: &ConversationFilter,
) -> DomainResult<Select<conversation::Entity>> {
    let mut q = scoped(scope);
    if let Some(status) = f.status {
        q = q.filter(conversation::Column::Status.eq(status.as_str()));
    }
    if let Some(starred) = f.starred {
        q = q.filter(conversation::Column::Starred.eq(starred));
    }
    if let Some(unread) = f.unread {
        q = q.filter(if unread {
            conversation::Column::UnreadCount.gt(0)
        } else {
            conversation::Column::UnreadCount.eq(0)
        });
    }
    if let Some(channel) = f.channel {
        q = q.filter(
            conversation::Column::Id.in_subquery(
                Query::select()
                    .column(message::Column::ConversationId)
                    .from(message::Entity)
                    .and_where(message::Column::WorkspaceId.eq(scope.workspace_id))
                    .and_where(message::Column::Channel.eq(channel.as_str()))
                    .to_owned(),
            ),
        );
    }
    let mut contact_cond = Condition::all();
    let mut contact_filtered = false;
    if let Some(status) = f.contact_status {
        contact_cond = contact_cond.add(contact::Column::Status.eq(status.as_str()));
        contact_filtered = true;
    }
    if let Some(owner) = f.owner_id {
        contact_cond = contact_cond.add(contact::Column::OwnerId.eq(owner));
        contact_filtered = true;
    }
    if let Some(t) = f.tag.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        contact_cond =
            contact_cond.add(contact::Column::Id.in_subquery(contacts::tagged(scope, t)));
        contact_filtered = true;
    }
    if contact_filtered {
        q = q.filter(
            conversation::Column::ContactId.in_subquery(
                Query::select()
                    .column(contact::Column::Id)
                    .from(contact::Entity)
                    .and_where(contact::Column::WorkspaceId.eq(scope.workspace_id))
                    .cond_where(contact_cond)
                    .to_owned(),
            ),
        );
    }
    if let Some(text) = f.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let contact_match = Query::select()
            .column(contact::Column::Id)
            .from(contact::Entity)
            .and_where(contact::Column::WorkspaceId.eq(scope.workspace_id))
            .cond_where(contacts::matching(text))
            .to_owned();
        let mut any =
            Condition::any().add(conversation::Column::ContactId.in_subquery(contact_match));
        if let Some(fts) =
            crate::domain::messages::search_condition(db.get_database_backend(), scope, text)
        {
            any = any.add(conversation::Column::Id.in_subquery(fts));
        }
        q = q.filter(any);
    }
    Ok(q)
}

pub fn inbox_keyset() -> Keyset<conversation::Column> {
    Keyset {
        at: Some(conversation::Column::LastMessageAt),
        id: conversation::Column::Id,
        order: Order::Desc,
    }
}

pub fn cursor(c: &conversation::Model) -> Cursor {
    Cursor {
        at: Some(c.last_message_at.unwrap_or(c.created_at).timestamp_micros()),
        id: c.id,
    }
}

pub async fn list(
    db: &DatabaseConnection,
    scope: &Scope,
    filter: &ConversationFilter,
    window: &Window,
) -> DomainResult<(Page<conversation::Model>, Select<conversation::Entity>)> {
    scope.require_member("read conversations")?;
    let q = filtered(db, scope, filter)?;
    let page = inbox_keyset().fetch(db, q.clone(), window, cursor).await?;
    Ok((page, q))
}

pub fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A change to one conversation's own state, with the activity that records it.
async fn change(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    kind: ActivityKind,
    apply: impl FnOnce(
        &conversation::Model,
    ) -> Option<(conversation::ActiveModel, String, serde_json::Value)>,
) -> DomainResult<conversation::Model> {
    scope.require_member("change conversations")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    let Some((mut update, summary, data)) = apply(&current) else {
        // Nothing changes, so nothing is recorded.
        return Ok(current);
    };
    update.updated_at = Set(now());
    let updated = update.update(&txn).await?;
    activities::record(
        &txn,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: Some(id),
            kind,
            actor: &Actor::User {
                id: scope.user_id,
                label: scope.label.to_string(),
            },
            summary,
            data,
        },
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn mark_read(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<conversation::Model> {
    change(db, scope, id, ActivityKind::ConversationRead, |c| {
        (c.unread_count != 0).then(|| {
            let mut m = c.clone().into_active_model();
            m.unread_count = Set(0);
            (
                m,
                "Marked as read".into(),
                json!({ "unreadCount": { "old": c.unread_count, "new": 0 } }),
            )
        })
    })
    .await
}

pub async fn mark_unread(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<conversation::Model> {
    change(db, scope, id, ActivityKind::ConversationUnread, |c| {
        (c.unread_count == 0).then(|| {
            let mut m = c.clone().into_active_model();
            m.unread_count = Set(1);
            (
                m,
                "Marked as unread".into(),
                json!({ "unreadCount": { "old": 0, "new": 1 } }),
            )
        })
    })
    .await
}

pub async fn set_status(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    status: ConversationStatus,
) -> DomainResult<conversation::Model> {
    change(
        db,
        scope,
        id,
        ActivityKind::ConversationStatusChanged,
        |c| {
            (c.status != status.as_str()).then(|| {
                let mut m = c.clone().into_active_model();
                m.status = Set(status.as_str().to_string());
                (
                    m,
                    format!("Status changed to {}", status.as_str().to_lowercase()),
                    json!({ "status": { "old": c.status, "new": status.as_str() } }),
                )
            })
        },
    )
    .await
}

pub async fn star(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    starred: bool,
) -> DomainResult<conversation::Model> {
    change(db, scope, id, ActivityKind::ConversationStarred, |c| {
        (c.starred != starred).then(|| {
            let mut m = c.clone().into_active_model();
            m.starred = Set(starred);
            (
                m,
                if starred {
                    "Starred".into()
                } else {
                    "Unstarred".into()
                },
                json!({ "starred": { "old": c.starred, "new": starred } }),
            )
        })
    })
    .await
}
