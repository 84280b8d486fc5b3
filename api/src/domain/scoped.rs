//! Rows that belong to a workspace. Every lookup by id goes through here, so the workspace
//! filter cannot be forgotten.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Select};

use entity::positional::{Positional, SelectRows};
use entity::{
    activity, appointment, contact, conversation, job, message, message_template, note,
    notification, opportunity, pipeline, plugin, plugin_run, stage, tag, task, user,
};

use crate::domain::Scope;
use crate::error::{DomainError, DomainResult};

/// Entities whose rows belong to a workspace and are looked up by id.
pub trait Scoped: EntityTrait<Model: Positional> {
    /// How a missing row is named in NOT_FOUND.
    const NAME: &'static str;
    fn id_column() -> Self::Column;
    fn workspace_column() -> Self::Column;
    fn id_of(model: &Self::Model) -> i64;
}

macro_rules! scoped {
    ($($m:ident => $name:literal),+ $(,)?) => {$(
        impl Scoped for $m::Entity {
            const NAME: &'static str = $name;
            fn id_column() -> Self::Column { $m::Column::Id }
            fn workspace_column() -> Self::Column { $m::Column::WorkspaceId }
            fn id_of(model: &Self::Model) -> i64 { model.id }
        }
    )+};
}

scoped!(
    user => "user", contact => "contact", conversation => "conversation", message => "message",
    note => "note", task => "task", appointment => "appointment", pipeline => "pipeline",
    plugin => "plugin", stage => "stage", activity => "activity", job => "job",
    message_template => "template", plugin_run => "plugin run", notification => "notification",
    opportunity => "opportunity", tag => "tag",
);

/// All of the caller's rows of `E`.
pub fn rows<E: Scoped>(workspace_id: i64) -> Select<E> {
    E::find().filter(E::workspace_column().eq(workspace_id))
}

/// One row of the workspace by id.
pub async fn find<E: Scoped>(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    id: i64,
) -> Result<Option<E::Model>, sea_orm::DbErr> {
    rows::<E>(workspace_id)
        .filter(E::id_column().eq(id))
        .row(db)
        .await
}

/// Row `id` of `base` (a query already bound to the caller's workspace), locked for the rest
/// of the transaction so concurrent changes queue instead of overwriting each other.
pub async fn lock<E: Scoped>(
    txn: &impl ConnectionTrait,
    base: Select<E>,
    id: i64,
) -> DomainResult<E::Model> {
    base.filter(E::id_column().eq(id))
        .lock_exclusive()
        .row(txn)
        .await?
        .ok_or(DomainError::NotFound(E::NAME))
}

/// Row `id` of the caller's workspace, locked; NOT_FOUND when it is not theirs.
pub async fn lock_own<E: Scoped>(
    txn: &impl ConnectionTrait,
    scope: &Scope,
    id: i64,
) -> DomainResult<E::Model> {
    lock(txn, rows::<E>(scope.workspace_id), id).await
}
