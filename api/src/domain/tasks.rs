//! Tasks: follow-ups on a conversation, assigned to a teammate, OPEN -> IN_PROGRESS -> COMPLETED.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, Select, Set,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{conversation, task, user};

use crate::db::begin_write;
use crate::domain::notifications::{self, About};
use crate::domain::scoped;
use crate::domain::{
    ActivityKind, NotificationKind, Role, Scope, TaskStatus, activities, conversations, now,
    truncate,
};
use crate::error::{DomainError, DomainResult};

#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub assignee_id: Option<i64>,
    pub overdue: Option<bool>,
    pub conversation_id: Option<i64>,
}

pub fn scoped(scope: &Scope) -> Select<task::Entity> {
    task::Entity::find()
        .filter(task::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(task::Column::DeletedAt.is_null())
}

/// Tasks across conversations; `overdue` means due before now and not completed.
pub fn filtered(scope: &Scope, f: &TaskFilter) -> DomainResult<Select<task::Entity>> {
    scope.require_member("read tasks")?;
    let mut q = scoped(scope);
    if let Some(s) = f.status {
        q = q.filter(task::Column::Status.eq(s.as_str()));
    }
    if let Some(a) = f.assignee_id {
        q = q.filter(task::Column::AssigneeId.eq(a));
    }
    if let Some(c) = f.conversation_id {
        q = q.filter(task::Column::ConversationId.eq(c));
    }
    match f.overdue {
        Some(true) => {
            q = q
                .filter(task::Column::DueAt.lt(now()))
                .filter(task::Column::Status.ne(TaskStatus::Completed.as_str()));
        }
        Some(false) => {
            q = q.filter(
                sea_orm::Condition::any()
                    .add(task::Column::DueAt.is_null())
                    .add(task::Column::DueAt.gte(now()))
                    .add(task::Column::Status.eq(TaskStatus::Completed.as_str())),
            );
        }
        None => {}
    }
    Ok(q)
}

pub struct NewTask {
    pub conversation_id: i64,
    pub title: String,
    pub description: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub remind_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<i64>,
}

fn check_title(title: &str) -> DomainResult<String> {
    crate::domain::required_text("title", title, 200)
}

fn check_description(d: Option<String>) -> DomainResult<Option<String>> {
    match d {
        Some(d) if d.len() > 8000 => Err(DomainError::invalid("description", "at most 8000 bytes")),
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

async fn assignee(txn: &DatabaseTransaction, scope: &Scope, id: i64) -> DomainResult<user::Model> {
    user::Entity::find_by_id(id)
        .filter(user::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(user::Column::Role.ne(Role::Integration.as_str()))
        .row(txn)
        .await?
        .ok_or(DomainError::NotFound("user"))
}

async fn tell_assignee(
    txn: &DatabaseTransaction,
    scope: &Scope,
    t: &task::Model,
) -> DomainResult<()> {
    match t.assignee_id {
        // Assigning yourself needs no notification.
        Some(uid) if uid != scope.user_id => {
            notifications::notify(
                txn,
                scope.workspace_id,
                uid,
                NotificationKind::TaskAssigned,
                format!("{} assigned you: {}", scope.label, t.title),
                About {
                    conversation_id: Some(t.conversation_id),
                    task_id: Some(t.id),
                    ..Default::default()
                },
            )
            .await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

pub async fn create(
    db: &DatabaseConnection,
    scope: &Scope,
    n: NewTask,
) -> DomainResult<task::Model> {
    scope.require_member("create tasks")?;
    let title = check_title(&n.title)?;
    let description = check_description(n.description)?;
    let txn = begin_write(db).await?;
    let conversation = conversations::scoped(scope)
        .filter(conversation::Column::Id.eq(n.conversation_id))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("conversation"))?;
    if let Some(a) = n.assignee_id {
        assignee(&txn, scope, a).await?;
    }
    let at = now();
    let created = task::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        conversation_id: Set(conversation.id),
        title: Set(title),
        description: Set(description),
        status: Set(TaskStatus::Open.as_str().into()),
        due_at: Set(n.due_at.map(truncate)),
        remind_at: Set(n.remind_at.map(truncate)),
        assignee_id: Set(n.assignee_id),
        created_by_id: Set(Some(scope.user_id)),
        auto_created: Set(false),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    tell_assignee(&txn, scope, &created).await?;
    crate::scheduler::jobs::schedule_task(&txn, &created).await?;
    activities::by_user(
        &txn,
        scope,
        Some(conversation.id),
        ActivityKind::TaskCreated,
        format!("Task created: {}", created.title),
        json!({ "taskId": created.id, "assigneeId": created.assignee_id, "dueAt": created.due_at }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// A change to a task; the outer `Option` says whether to touch the field.
#[derive(Default)]
pub struct TaskUpdate {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<TaskStatus>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub remind_at: Option<Option<DateTime<Utc>>>,
    pub assignee_id: Option<Option<i64>>,
}

pub async fn update(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    u: TaskUpdate,
) -> DomainResult<task::Model> {
    scope.require_member("change tasks")?;
    let title = u.title.as_deref().map(check_title).transpose()?;
    let description = u.description.map(check_description).transpose()?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    if let Some(Some(a)) = u.assignee_id {
        assignee(&txn, scope, a).await?;
    }
    let mut changes = serde_json::Map::new();
    let mut m = current.clone().into_active_model();
    if let Some(t) = title.filter(|t| *t != current.title) {
        changes.insert("title".into(), json!({ "old": current.title, "new": t }));
        m.title = Set(t);
    }
    if let Some(d) = description.filter(|d| *d != current.description) {
        changes.insert(
            "description".into(),
            json!({ "old": current.description, "new": d }),
        );
        m.description = Set(d);
    }
    if let Some(d) = u
        .due_at
        .map(|d| d.map(truncate))
        .filter(|d| *d != current.due_at)
    {
        changes.insert("dueAt".into(), json!({ "old": current.due_at, "new": d }));
        m.due_at = Set(d);
    }
    if let Some(r) = u
        .remind_at
        .map(|r| r.map(truncate))
        .filter(|r| *r != current.remind_at)
    {
        changes.insert(
            "remindAt".into(),
            json!({ "old": current.remind_at, "new": r }),
        );
        m.remind_at = Set(r);
    }
    let reassigned = u.assignee_id.filter(|a| *a != current.assignee_id);
    if let Some(a) = reassigned {
        changes.insert(
            "assigneeId".into(),
            json!({ "old": current.assignee_id, "new": a }),
        );
        m.assignee_id = Set(a);
    }
    let old_status = TaskStatus::from_db(&current.status);
    let new_status = u.status.filter(|s| *s != old_status);
    if let Some(s) = new_status {
        changes.insert(
            "status".into(),
            json!({ "old": old_status.as_str(), "new": s.as_str() }),
        );
        m.status = Set(s.as_str().into());
        // Completing stamps the time; reopening clears it.
        m.completed_at = Set((s == TaskStatus::Completed).then(now));
    }
    if changes.is_empty() {
        return Ok(current);
    }
    m.updated_at = Set(now());
    let updated = m.update(&txn).await?;
    if reassigned.is_some() {
        tell_assignee(&txn, scope, &updated).await?;
    }
    crate::scheduler::jobs::reschedule_task(&txn, &updated).await?;
    let (kind, summary) = match new_status {
        Some(TaskStatus::Completed) => (
            ActivityKind::TaskCompleted,
            format!("Task completed: {}", updated.title),
        ),
        _ => (
            ActivityKind::TaskUpdated,
            format!("Task updated: {}", updated.title),
        ),
    };
    activities::by_user(
        &txn,
        scope,
        Some(updated.conversation_id),
        kind,
        summary,
        json!({ "taskId": id, "changes": changes }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Soft delete.
pub async fn delete(db: &DatabaseConnection, scope: &Scope, id: i64) -> DomainResult<i64> {
    scope.require_member("delete tasks")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    let mut m = current.clone().into_active_model();
    m.deleted_at = Set(Some(now()));
    m.updated_at = Set(now());
    let deleted = m.update(&txn).await?;
    crate::scheduler::jobs::reschedule_task(&txn, &deleted).await?;
    activities::by_user(
        &txn,
        scope,
        Some(current.conversation_id),
        ActivityKind::TaskUpdated,
        format!("Task deleted: {}", current.title),
        json!({ "taskId": id, "deleted": true }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}
