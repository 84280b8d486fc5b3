//! Conversations: one per contact. The inbox list with its filters, and the conversation-level
//! state a team changes (read/unread, open/completed, starred).
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    EntityTrait, IntoActiveModel, QueryFilter, Select, Set, Statement,
};
use serde_json::json;

use entity::positional::SelectRows;
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
        .row(db)
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
    // The starred and unread tabs state their partial index's condition word for word.
    if let Some(starred) = f.starred {
        q = q.filter(if starred {
            Expr::cust(migration::STARRED)
        } else {
            conversation::Column::Starred.eq(false)
        });
    }
    if let Some(unread) = f.unread {
        q = q.filter(if unread {
            Expr::cust(migration::UNREAD)
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

/// The status a filter selects by, when that is all it selects by (the inbox's tabs): such a
/// list is counted from the counts the database keeps by status, not row by row.
pub fn by_status_alone(f: &ConversationFilter) -> Option<Option<ConversationStatus>> {
    match f {
        ConversationFilter {
            status,
            starred: None,
            unread: None,
            channel: None,
            contact_status: None,
            tag: None,
            owner_id: None,
            search: None,
        } => Some(*status),
        _ => None,
    }
}

/// A workspace's delta rows are summed on every count; past this many they are folded.
const FOLD_AFTER: i64 = 64;

/// How many conversations of the workspace have `status` (all of them with `None`): the sum
/// of the deltas the database's triggers append as conversations come, move and go
/// (migration 8). A workspace whose deltas have piled up gets them folded after the count.
pub async fn count_by_status(
    db: &DatabaseConnection,
    workspace_id: i64,
    status: Option<ConversationStatus>,
) -> DomainResult<u64> {
    let deltas = Alias::new(migration::CONVERSATION_COUNT_DELTAS);
    let mut q = Query::select();
    q.expr_as(Expr::cust("CAST(COALESCE(SUM(delta), 0) AS BIGINT)"), "n")
        .expr_as(Expr::cust("COUNT(*)"), "parts")
        .from(deltas)
        .and_where(Expr::col("workspace_id").eq(workspace_id));
    if let Some(status) = status {
        q.and_where(Expr::col("status").eq(status.as_str()));
    }
    let row = db
        .query_one(&q)
        .await?
        .ok_or_else(|| DomainError::Internal("an aggregate returned no row".into()))?;
    let (n, parts): (i64, i64) = (row.try_get("", "n")?, row.try_get("", "parts")?);
    if parts > FOLD_AFTER {
        fold_counts(db, workspace_id);
    }
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Folds a workspace's count deltas into one row per status, in the background, one fold at
/// a time per process. The sums do not change: PostgreSQL deletes and re-adds what one
/// snapshot sees in one statement (deltas committed meanwhile stay as they are); SQLite
/// serializes writers, so one transaction does.
fn fold_counts(db: &DatabaseConnection, workspace_id: i64) {
    static FOLDING: AtomicBool = AtomicBool::new(false);
    if FOLDING.swap(true, AtomicOrdering::AcqRel) {
        return;
    }
    let db = db.clone();
    tokio::spawn(async move {
        if let Err(e) = fold(&db, workspace_id).await {
            tracing::warn!(workspace_id, error = %e, "folding conversation counts failed");
        }
        FOLDING.store(false, AtomicOrdering::Release);
    });
}

async fn fold(db: &DatabaseConnection, workspace_id: i64) -> Result<(), sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let ws = || sea_orm::Value::from(workspace_id);
    if backend == DbBackend::Postgres {
        let sql = "WITH gone AS (
                 DELETE FROM conversation_count_deltas WHERE workspace_id = $1
                 RETURNING status, delta)
             INSERT INTO conversation_count_deltas (workspace_id, status, delta)
             SELECT $1, status, SUM(delta) FROM gone GROUP BY status HAVING SUM(delta) <> 0";
        db.execute_raw(Statement::from_sql_and_values(backend, sql, [ws()]))
            .await?;
        return Ok(());
    }
    let txn = begin_write(db).await?;
    let last = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT MAX(id) AS last FROM conversation_count_deltas WHERE workspace_id = ?",
            [ws()],
        ))
        .await?
        .and_then(|row| row.try_get::<Option<i64>>("", "last").ok().flatten());
    let Some(last) = last else {
        return Ok(());
    };
    let upto = || sea_orm::Value::from(last);
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO conversation_count_deltas (workspace_id, status, delta)
         SELECT workspace_id, status, SUM(delta) FROM conversation_count_deltas
         WHERE workspace_id = ? AND id <= ? GROUP BY workspace_id, status
         HAVING SUM(delta) <> 0",
        [ws(), upto()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "DELETE FROM conversation_count_deltas WHERE workspace_id = ? AND id <= ?",
        [ws(), upto()],
    ))
    .await?;
    txn.commit().await
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

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, DbErr, QueryOrder, QuerySelect, QueryTrait, Statement};

    use super::*;
    use crate::db::testing;

    /// SQLite's plan for one inbox page under `f` read through `index` (`INDEXED BY`: an
    /// error if the query cannot use it), as its lines.
    async fn plan_through(
        t: &testing::TestDb,
        f: ConversationFilter,
        index: &str,
    ) -> Result<String, DbErr> {
        let page = filtered(&t.db, &t.admin, &f)
            .expect("a filter")
            .order_by_desc(conversation::Column::LastMessageAt)
            .order_by_desc(conversation::Column::Id)
            .limit(51)
            .build(DbBackend::Sqlite);
        let from = r#"FROM "conversations""#;
        assert!(page.sql.contains(from), "{}", page.sql);
        let sql = page
            .sql
            .replacen(from, &format!("{from} INDEXED BY {index}"), 1);
        let steps = testing::sqlite_plan(
            &t.db,
            Statement::from_sql_and_values(
                DbBackend::Sqlite,
                sql,
                page.values.map(|v| v.0).unwrap_or_default(),
            ),
        )
        .await?;
        Ok(steps.join("\n"))
    }

    /// A partial index serves only a query that states its condition word for word (SQLite
    /// does not look through a bound parameter); this holds the tabs' filters to it. Which
    /// index SQLite's planner then picks without statistics is its own affair.
    #[tokio::test]
    async fn the_starred_and_unread_tabs_can_read_their_partial_indexes() {
        let t = testing::workspace().await;
        let starred = ConversationFilter {
            starred: Some(true),
            ..Default::default()
        };
        let unread = ConversationFilter {
            unread: Some(true),
            ..Default::default()
        };
        let read = ConversationFilter {
            unread: Some(false),
            ..Default::default()
        };
        for (tab, index) in [
            (starred, "idx_conversations_starred"),
            (unread, "idx_conversations_unread"),
        ] {
            let plan = plan_through(&t, tab, index).await.expect("a plan");
            assert!(plan.contains(index), "expected {index} in: {plan}");
        }
        // And the check can fail: read conversations are not in the unread index.
        assert!(
            plan_through(&t, read, "idx_conversations_unread")
                .await
                .is_err()
        );
    }
}
