//! What each kind of job does. A handler runs inside the transaction that marks its job DONE:
//! its effects and that mark commit together, or not at all.
use std::collections::HashMap;

use sea_orm::{DatabaseTransaction, EntityTrait, QueryFilter};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{job, task};

use super::jobs::{APPOINTMENT_REMINDER, OVERDUE_DIGEST, TASK_OVERDUE, TASK_REMINDER};
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::notifications::{self, About, NewNotification};
use crate::domain::scoped::one_of;
use crate::domain::{ActivityKind, NotificationKind, TaskStatus, scoped};
use crate::error::{DomainError, DomainResult};

pub async fn run(txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<()> {
    match j.kind.as_str() {
        TASK_REMINDER | TASK_OVERDUE => task_alerts(txn, &[j]).await,
        APPOINTMENT_REMINDER => appointment_reminder(txn, j).await,
        OVERDUE_DIGEST => overdue_digest(txn, j).await,
        crate::domain::plugins::REMINDER => crate::plugins::deliver_reminder(txn, j).await,
        other => Err(DomainError::Internal(format!(
            "no handler for job kind `{other}`"
        ))),
    }
}

/// Kinds that [`task_alerts`] runs many at a time.
pub fn batchable(j: &job::Model) -> bool {
    j.kind == TASK_REMINDER || j.kind == TASK_OVERDUE
}

/// Task reminders and overdue alerts, many at once: one read of their tasks, one insert of
/// the notifications and one of the activities. Each tells the task's assignee (or,
/// unassigned, its creator); a task completed, deleted or moved since its job was scheduled
/// gets nothing.
pub async fn task_alerts(txn: &DatabaseTransaction, jobs: &[&job::Model]) -> DomainResult<()> {
    let ids = jobs
        .iter()
        .map(|j| {
            j.payload
                .get("taskId")
                .and_then(serde_json::Value::as_i64)
                .ok_or_else(|| DomainError::Internal("job without taskId".into()))
        })
        .collect::<DomainResult<Vec<i64>>>()?;
    let tasks: HashMap<i64, task::Model> = task::Entity::find()
        .filter(one_of(txn, task::Column::Id, ids.clone()))
        .rows(txn)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut notes = Vec::new();
    let mut trail = Vec::new();
    for (j, id) in jobs.iter().zip(ids) {
        // A job only ever acts inside its own workspace.
        let Some(t) = tasks.get(&id).filter(|t| t.workspace_id == j.workspace_id) else {
            continue;
        };
        let reminder = j.kind == TASK_REMINDER;
        let (field, time) = if reminder {
            ("remindAt", t.remind_at)
        } else {
            ("dueAt", t.due_at)
        };
        let scheduled_for = j
            .payload
            .get(field)
            .and_then(|v| v.as_str())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        if t.deleted_at.is_some()
            || t.status == TaskStatus::Completed.as_str()
            || scheduled_for != time.map(|t| t.fixed_offset())
        {
            continue;
        }
        let Some(user) = t.assignee_id.or(t.created_by_id) else {
            continue;
        };
        let (kind, text, activity, summary) = if reminder {
            (
                NotificationKind::TaskReminder,
                format!("Reminder: {}", t.title),
                ActivityKind::ReminderSent,
                format!("Reminder sent for task: {}", t.title),
            )
        } else {
            (
                NotificationKind::TaskOverdue,
                format!("Overdue: {}", t.title),
                ActivityKind::SystemEvent,
                format!("Task overdue: {}", t.title),
            )
        };
        notes.push(NewNotification {
            workspace_id: j.workspace_id,
            user_id: user,
            kind,
            text,
            about: About {
                conversation_id: Some(t.conversation_id),
                task_id: Some(t.id),
                ..Default::default()
            },
        });
        trail.push(NewActivity {
            workspace_id: j.workspace_id,
            conversation_id: Some(t.conversation_id),
            kind: activity,
            actor: &Actor::System,
            summary,
            data: json!({ "taskId": t.id, "jobId": j.id, "userId": user }),
        });
    }
    notifications::notify_many(txn, notes).await?;
    activities::record_many(txn, trail).await?;
    Ok(())
}

/// The default reminder text when the workspace has no `appointment_reminder` template.
const DEFAULT_REMINDER: &str = "Reminder: {{appointment.title}} on {{appointment.startsAt}}.";

/// Reminds the organizer (APPOINTMENT_REMINDER) and the contact (a message on their channel,
/// through the outbox, rendered from the workspace's `appointment_reminder` template). A DND
/// contact gets nothing, and the skip is recorded.
async fn appointment_reminder(txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<()> {
    use entity::{appointment, contact, conversation, message_template, workspace};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let id = j
        .payload
        .get("appointmentId")
        .and_then(serde_json::Value::as_i64);
    let id = id.ok_or_else(|| DomainError::Internal("job without appointmentId".into()))?;
    let Some(a) = scoped::find::<appointment::Entity>(txn, j.workspace_id, id).await? else {
        return Ok(());
    };
    let starts = j
        .payload
        .get("startsAt")
        .and_then(|v| v.as_str())
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    if a.status != crate::domain::AppointmentStatus::Scheduled.as_str()
        || starts != Some(a.starts_at.fixed_offset())
    {
        return Ok(());
    }
    let tz: chrono_tz::Tz = workspace::Entity::find_by_id(j.workspace_id)
        .row(txn)
        .await?
        .and_then(|w| w.time_zone.parse().ok())
        .unwrap_or(chrono_tz::UTC);
    let when = a
        .starts_at
        .with_timezone(&tz)
        .format("%a %e %b %Y, %H:%M %Z")
        .to_string();
    if let Some(organizer) = a.organizer_id {
        notifications::notify(
            txn,
            j.workspace_id,
            organizer,
            NotificationKind::AppointmentReminder,
            format!("{} starts {when}", a.title),
            About {
                conversation_id: Some(a.conversation_id),
                appointment_id: Some(a.id),
                ..Default::default()
            },
        )
        .await?;
    }
    let conv = conversation::Entity::find_by_id(a.conversation_id)
        .row(txn)
        .await?;
    let conv =
        conv.ok_or_else(|| DomainError::Internal("appointment without conversation".into()))?;
    let person = contact::Entity::find_by_id(conv.contact_id)
        .row(txn)
        .await?;
    let person =
        person.ok_or_else(|| DomainError::Internal("conversation without contact".into()))?;
    let record = |summary: String, data: serde_json::Value| {
        let conversation_id = conv.id;
        async move {
            activities::record(
                txn,
                NewActivity {
                    workspace_id: j.workspace_id,
                    conversation_id: Some(conversation_id),
                    kind: ActivityKind::ReminderSent,
                    actor: &Actor::System,
                    summary,
                    data,
                },
            )
            .await
        }
    };
    if person.status == crate::domain::ContactStatus::Dnd.as_str() {
        record(
            format!(
                "Appointment reminder not sent to the contact: do-not-disturb ({})",
                a.title
            ),
            json!({ "appointmentId": a.id, "skipped": "CONTACT_DND", "jobId": j.id }),
        )
        .await?;
        return Ok(());
    }
    let Some(channel) = crate::domain::messages::default_channel(&person) else {
        record(
            format!(
                "Appointment reminder not sent to the contact: no address ({})",
                a.title
            ),
            json!({ "appointmentId": a.id, "skipped": "NO_ADDRESS", "jobId": j.id }),
        )
        .await?;
        return Ok(());
    };
    let template = message_template::Entity::find()
        .filter(message_template::Column::WorkspaceId.eq(j.workspace_id))
        .filter(message_template::Column::Name.eq("appointment_reminder"))
        .row(txn)
        .await?;
    let source = template.map_or(DEFAULT_REMINDER.to_string(), |t| t.body);
    let vars = json!({ "appointment": { "title": a.title, "startsAt": when, "location": a.location, "videoUrl": a.video_url } });
    let body = crate::domain::templates::render(&source, &vars, &person)?;
    let (message, _) =
        crate::domain::messages::enqueue(txn, conv.clone(), person, channel, body, None, None)
            .await?;
    record(
        format!("Appointment reminder sent: {}", a.title),
        json!({ "appointmentId": a.id, "messageId": message.id, "minutes": j.payload.get("minutes"), "jobId": j.id }),
    )
    .await?;
    Ok(())
}

/// Tells each teammate with overdue open tasks how many they have, then puts the workspace's
/// next digest on the schedule.
async fn overdue_digest(txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<()> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let overdue = task::Entity::find()
        .filter(task::Column::WorkspaceId.eq(j.workspace_id))
        .filter(task::Column::DeletedAt.is_null())
        .filter(task::Column::Status.ne(TaskStatus::Completed.as_str()))
        .filter(task::Column::DueAt.lt(crate::domain::now()))
        .filter(task::Column::AssigneeId.is_not_null())
        .rows(txn)
        .await?;
    let mut per_user: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for t in &overdue {
        if let Some(u) = t.assignee_id {
            *per_user.entry(u).or_default() += 1;
        }
    }
    for (user, n) in per_user {
        let text = if n == 1 {
            "You have 1 overdue task".to_string()
        } else {
            format!("You have {n} overdue tasks")
        };
        notifications::notify(
            txn,
            j.workspace_id,
            user,
            NotificationKind::OverdueDigest,
            text,
            About::default(),
        )
        .await?;
    }
    if let Some(ws) = entity::workspace::Entity::find_by_id(j.workspace_id)
        .row(txn)
        .await?
    {
        super::jobs::schedule_digest(txn, &ws).await?;
    }
    Ok(())
}
