//! Notifications: what one teammate is told (mentions, assignments, forwards, reminders).
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

use entity::notification;

use crate::domain::Scope;

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
