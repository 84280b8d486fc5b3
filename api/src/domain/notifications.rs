//! Notifications: what one teammate is told (mentions, assignments, forwards, reminders).
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Select, Set,
};

use entity::notification;

use crate::domain::scoped::one_of;
use crate::domain::{NotificationKind, Scope, now};
use crate::error::DomainResult;

/// The caller's own notifications; nobody reads another user's.
pub fn mine(scope: &Scope, unread_only: bool) -> Select<notification::Entity> {
    let mut q = notification::Entity::find()
        .filter(notification::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(notification::Column::UserId.eq(scope.user_id));
    if unread_only {
        q = q.filter(notification::Column::ReadAt.is_null());
    }
    q
}

/// What a notification points at; all optional.
#[derive(Default)]
pub struct About {
    pub conversation_id: Option<i64>,
    pub note_id: Option<i64>,
    pub task_id: Option<i64>,
    pub message_id: Option<i64>,
    pub appointment_id: Option<i64>,
}

/// One notification to write with [`notify_many`].
pub struct NewNotification {
    pub workspace_id: i64,
    pub user_id: i64,
    pub kind: NotificationKind,
    pub text: String,
    pub about: About,
}

/// Writes many notifications with one insert; inside the transaction of their cause.
pub async fn notify_many(db: &impl ConnectionTrait, all: Vec<NewNotification>) -> DomainResult<()> {
    if all.is_empty() {
        return Ok(());
    }
    notification::Entity::insert_many(all.into_iter().map(|n| notification::ActiveModel {
        workspace_id: Set(n.workspace_id),
        user_id: Set(n.user_id),
        kind: Set(n.kind.as_str().into()),
        text: Set(n.text),
        conversation_id: Set(n.about.conversation_id),
        note_id: Set(n.about.note_id),
        task_id: Set(n.about.task_id),
        message_id: Set(n.about.message_id),
        appointment_id: Set(n.about.appointment_id),
        created_at: Set(now()),
        ..Default::default()
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Tells `user_id`; call inside the transaction of the change that causes it.
pub async fn notify(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    user_id: i64,
    kind: NotificationKind,
    text: String,
    about: About,
) -> DomainResult<notification::Model> {
    Ok(notification::ActiveModel {
        workspace_id: Set(workspace_id),
        user_id: Set(user_id),
        kind: Set(kind.as_str().into()),
        text: Set(text),
        conversation_id: Set(about.conversation_id),
        note_id: Set(about.note_id),
        task_id: Set(about.task_id),
        message_id: Set(about.message_id),
        appointment_id: Set(about.appointment_id),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Marks the given notifications (or all) of the caller read; returns how many stay unread.
pub async fn mark_read(
    db: &DatabaseConnection,
    scope: &Scope,
    ids: Option<Vec<i64>>,
) -> DomainResult<u64> {
    let mut q = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(now()))
        .filter(notification::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(notification::Column::UserId.eq(scope.user_id))
        .filter(notification::Column::ReadAt.is_null());
    if let Some(ids) = ids {
        q = q.filter(one_of(db, notification::Column::Id, ids));
    }
    q.exec(db).await?;
    Ok(mine(scope, true).count(db).await?)
}
