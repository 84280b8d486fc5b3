//! The audit trail: every state change writes one activity row inside its own transaction.
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use serde_json::Value;

use entity::activity;

use crate::domain::{ActivityKind, ActorKind, now};
use crate::error::DomainResult;

/// Who caused a change.
#[derive(Clone, Debug)]
pub enum Actor {
    User {
        id: i64,
        label: String,
    },
    Contact {
        label: String,
    },
    /// A plugin run; `depth` counts the plugin runs that led to it (1 for a run caused by a
    /// person's change), so cascades can be cut off.
    Plugin {
        id: i64,
        label: String,
        depth: i64,
    },
    System,
}

impl Actor {
    /// The plugin run this change came from, if any, and how deep in a cascade it is.
    pub fn cascade(&self) -> (Option<i64>, i64) {
        match self {
            Actor::Plugin { id, depth, .. } => (Some(*id), *depth),
            _ => (None, 0),
        }
    }

    fn parts(&self) -> (ActorKind, Option<i64>, Option<i64>, String) {
        match self {
            Actor::User { id, label } => (ActorKind::User, Some(*id), None, label.clone()),
            Actor::Contact { label } => (ActorKind::Contact, None, None, label.clone()),
            Actor::Plugin { id, label, .. } => (ActorKind::Plugin, None, Some(*id), label.clone()),
            Actor::System => (ActorKind::System, None, None, "Confab".to_string()),
        }
    }
}

pub struct NewActivity<'a> {
    pub workspace_id: i64,
    pub conversation_id: Option<i64>,
    pub kind: ActivityKind,
    pub actor: &'a Actor,
    pub summary: String,
    pub data: Value,
}

pub async fn record(
    db: &impl ConnectionTrait,
    a: NewActivity<'_>,
) -> DomainResult<activity::Model> {
    let actor = a.actor;
    let row = row(a).insert(db).await?;
    // Plugins that asked for this kind of event run after this transaction commits.
    crate::domain::plugins::enqueue_runs(db, &[(&row, actor)]).await?;
    Ok(row)
}

/// Records many changes with one insert (a batch of scheduled jobs, of inbound messages, or
/// of plugin runs' effects), in the order given; plugins follow each as its own actor's
/// cascade allows.
pub async fn record_many(
    db: &impl ConnectionTrait,
    changes: Vec<NewActivity<'_>>,
) -> DomainResult<Vec<activity::Model>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let actors: Vec<&Actor> = changes.iter().map(|c| c.actor).collect();
    let expected: Vec<(ActivityKind, Option<i64>)> = changes
        .iter()
        .map(|c| (c.kind, c.conversation_id))
        .collect();
    let rows = activity::Entity::insert_many(changes.into_iter().map(row))
        .exec_with_returning(db)
        .await?;
    super::returned_in_order(
        &rows,
        expected.iter(),
        |r, (kind, conversation)| r.kind == kind.as_str() && r.conversation_id == *conversation,
        "activities",
    )?;
    let caused: Vec<(&activity::Model, &Actor)> = rows.iter().zip(actors).collect();
    crate::domain::plugins::enqueue_runs(db, &caused).await?;
    Ok(rows)
}

fn row(a: NewActivity<'_>) -> activity::ActiveModel {
    let (actor_kind, user, plugin, label) = a.actor.parts();
    activity::ActiveModel {
        workspace_id: Set(a.workspace_id),
        conversation_id: Set(a.conversation_id),
        kind: Set(a.kind.as_str().to_string()),
        actor_kind: Set(actor_kind.as_str().to_string()),
        actor_user_id: Set(user),
        actor_plugin_id: Set(plugin),
        actor_label: Set(label),
        summary: Set(a.summary),
        data: Set(a.data),
        occurred_at: Set(now()),
        ..Default::default()
    }
}

impl Actor {
    /// The caller, as the trail shows them.
    pub fn user(scope: &crate::domain::Scope) -> Actor {
        Actor::User {
            id: scope.user_id,
            label: scope.label.to_string(),
        }
    }
}

/// Records what `scope`'s user did to `conversation_id`.
pub async fn by_user(
    db: &impl ConnectionTrait,
    scope: &crate::domain::Scope,
    conversation_id: Option<i64>,
    kind: ActivityKind,
    summary: String,
    data: Value,
) -> DomainResult<activity::Model> {
    record(
        db,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id,
            kind,
            actor: &Actor::user(scope),
            summary,
            data,
        },
    )
    .await
}
