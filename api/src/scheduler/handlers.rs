//! What each kind of job does. A handler runs inside the transaction that marks its job DONE:
//! its effects and that mark commit together, or not at all.
use sea_orm::DatabaseTransaction;
use serde_json::json;

use entity::{job, task};

use super::jobs::{TASK_OVERDUE, TASK_REMINDER};
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::notifications::{self, About};
use crate::domain::{ActivityKind, NotificationKind, TaskStatus, scoped};
use crate::error::{DomainError, DomainResult};

pub async fn run(txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<()> {
    match j.kind.as_str() {
        TASK_REMINDER => task_alert(txn, j, Alert::Reminder).await,
        TASK_OVERDUE => task_alert(txn, j, Alert::Overdue).await,
        other => Err(DomainError::Internal(format!(
            "no handler for job kind `{other}`"
        ))),
    }
}

enum Alert {
    Reminder,
    Overdue,
}

/// Tells the task's assignee (or, unassigned, its creator) that it is due for attention. A task
/// completed, deleted or moved since the job was scheduled gets nothing.
async fn task_alert(txn: &DatabaseTransaction, j: &job::Model, alert: Alert) -> DomainResult<()> {
    let id = j
        .payload
        .get("taskId")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| DomainError::Internal("job without taskId".into()))?;
    let Some(t) = scoped::find::<task::Entity>(txn, j.workspace_id, id).await? else {
        return Ok(());
    };
    let (field, time) = match alert {
        Alert::Reminder => ("remindAt", t.remind_at),
        Alert::Overdue => ("dueAt", t.due_at),
    };
    let still = j
        .payload
        .get(field)
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let current = time.map(|t| t.fixed_offset());
    if t.deleted_at.is_some() || t.status == TaskStatus::Completed.as_str() || still != current {
        return Ok(());
    }
    let Some(user) = t.assignee_id.or(t.created_by_id) else {
        return Ok(());
    };
    let (kind, text, activity, summary) = match alert {
        Alert::Reminder => (
            NotificationKind::TaskReminder,
            format!("Reminder: {}", t.title),
            ActivityKind::ReminderSent,
            format!("Reminder sent for task: {}", t.title),
        ),
        Alert::Overdue => (
            NotificationKind::TaskOverdue,
            format!("Overdue: {}", t.title),
            ActivityKind::SystemEvent,
            format!("Task overdue: {}", t.title),
        ),
    };
    notifications::notify(
        txn,
        j.workspace_id,
        user,
        kind,
        text,
        About {
            conversation_id: Some(t.conversation_id),
            task_id: Some(t.id),
            ..Default::default()
        },
    )
    .await?;
    activities::record(
        txn,
        NewActivity {
            workspace_id: j.workspace_id,
            conversation_id: Some(t.conversation_id),
            kind: activity,
            actor: &Actor::System,
            summary,
            data: json!({ "taskId": t.id, "jobId": j.id, "userId": user }),
        },
    )
    .await?;
    Ok(())
}
