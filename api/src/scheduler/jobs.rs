//! Putting jobs on the schedule, from inside the transaction of the change that causes them.
//! Each occurrence has a unique key, so scheduling it twice has the effect of once.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::Value;

use entity::job;
use entity::positional::SelectRows;

use crate::domain::{JobStatus, now};
use crate::error::DomainResult;

pub const MAX_ATTEMPTS: i32 = 5;

/// One occurrence to schedule.
pub struct Occurrence<'a> {
    pub workspace_id: i64,
    pub kind: &'a str,
    pub key: String,
    pub due_at: DateTime<Utc>,
    pub payload: Value,
}

/// Schedules one occurrence. A key already pending stays as it is; a cancelled one is revived.
pub async fn schedule(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    kind: &str,
    key: &str,
    due_at: DateTime<Utc>,
    payload: Value,
) -> DomainResult<()> {
    schedule_many(
        db,
        vec![Occurrence {
            workspace_id,
            kind,
            key: key.to_string(),
            due_at,
            payload,
        }],
    )
    .await
}

/// Schedules occurrences with distinct keys in one statement, each as `schedule` would.
pub async fn schedule_many(
    db: &impl ConnectionTrait,
    all: Vec<Occurrence<'_>>,
) -> DomainResult<()> {
    if all.is_empty() {
        return Ok(());
    }
    let created_at = now();
    let rows = all.into_iter().map(|o| row(o, created_at));
    let on_conflict = OnConflict::column(job::Column::UniqueKey)
        .update_columns([
            job::Column::Status,
            job::Column::DueAt,
            job::Column::Attempts,
            job::Column::Payload,
        ])
        .value(job::Column::LastError, Expr::value(Option::<String>::None))
        .value(
            job::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .action_and_where(
            Expr::col((job::Entity, job::Column::Status)).eq(JobStatus::Cancelled.as_str()),
        )
        .to_owned();
    // Zero rows for a key already pending or done: that is the point.
    job::Entity::insert_many(rows)
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// A new pending job's row.
pub fn row(o: Occurrence<'_>, created_at: DateTime<Utc>) -> job::ActiveModel {
    job::ActiveModel {
        workspace_id: Set(o.workspace_id),
        kind: Set(o.kind.to_string()),
        unique_key: Set(o.key),
        payload: Set(o.payload),
        status: Set(JobStatus::Pending.as_str().into()),
        due_at: Set(o.due_at),
        attempts: Set(0),
        max_attempts: Set(MAX_ATTEMPTS),
        created_at: Set(created_at),
        ..Default::default()
    }
}

/// Cancels the pending jobs whose key starts with `prefix` (e.g. every job of one task).
pub async fn cancel(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    prefix: &str,
) -> DomainResult<()> {
    job::Entity::update_many()
        .col_expr(
            job::Column::Status,
            Expr::value(JobStatus::Cancelled.as_str()),
        )
        .col_expr(job::Column::FinishedAt, Expr::value(now()))
        .filter(job::Column::WorkspaceId.eq(workspace_id))
        .filter(job::Column::Status.eq(JobStatus::Pending.as_str()))
        .filter(job::Column::UniqueKey.starts_with(prefix))
        .exec(db)
        .await?;
    Ok(())
}

/// Puts a task's reminder and overdue alert on the schedule as the task now stands: pending
/// ones are cancelled first; completed or deleted tasks get none; times already past get none.
pub async fn reschedule_task(
    db: &impl ConnectionTrait,
    t: &entity::task::Model,
) -> DomainResult<()> {
    cancel(db, t.workspace_id, &format!("task:{}:", t.id)).await?;
    schedule_task(db, t).await
}

/// Puts a new task's reminder and overdue alert on the schedule (nothing to cancel yet).
pub async fn schedule_task(db: &impl ConnectionTrait, t: &entity::task::Model) -> DomainResult<()> {
    schedule_many(db, task_occurrences(t)).await
}

/// A task's reminder and overdue alert as it now stands: none for completed or deleted tasks,
/// nor for times already past.
pub fn task_occurrences(t: &entity::task::Model) -> Vec<Occurrence<'static>> {
    if t.deleted_at.is_some() || t.status == crate::domain::TaskStatus::Completed.as_str() {
        return Vec::new();
    }
    let at = now();
    [
        (t.remind_at, TASK_REMINDER, "remind", "remindAt"),
        (t.due_at, TASK_OVERDUE, "overdue", "dueAt"),
    ]
    .into_iter()
    .filter_map(|(when, kind, name, field)| {
        let when = when.filter(|w| *w > at)?;
        Some(Occurrence {
            workspace_id: t.workspace_id,
            kind,
            key: format!("task:{}:{name}:{}", t.id, when.timestamp_micros()),
            due_at: when,
            payload: serde_json::json!({ "taskId": t.id, field: when }),
        })
    })
    .collect()
}

pub const TASK_REMINDER: &str = "task.reminder";
pub const TASK_OVERDUE: &str = "task.overdue";

pub const APPOINTMENT_REMINDER: &str = "appointment.reminder";

/// Puts an appointment's reminders on the schedule, one per lead time of its workspace
/// (default 24 h and 1 h before it starts); cancelled appointments and past times get none.
pub async fn reschedule_appointment(
    db: &impl ConnectionTrait,
    a: &entity::appointment::Model,
) -> DomainResult<()> {
    let prefix = format!("appointment:{}:", a.id);
    cancel(db, a.workspace_id, &prefix).await?;
    if a.status != crate::domain::AppointmentStatus::Scheduled.as_str() {
        return Ok(());
    }
    let ws = entity::workspace::Entity::find_by_id(a.workspace_id)
        .row(db)
        .await?;
    let minutes = reminder_minutes(ws.as_ref());
    schedule_many(db, appointment_occurrences(a, &minutes)).await
}

/// How long before its appointments a workspace wants reminders, in minutes.
pub fn reminder_minutes(ws: Option<&entity::workspace::Model>) -> Vec<i64> {
    ws.and_then(|w| serde_json::from_value(w.appointment_reminder_minutes.clone()).ok())
        .unwrap_or_else(|| {
            crate::domain::workspaces::DEFAULT_REMINDER_MINUTES
                .iter()
                .map(|m| i64::from(*m))
                .collect()
        })
}

/// A scheduled appointment's reminders, `minutes` before it starts; none for times past.
pub fn appointment_occurrences(
    a: &entity::appointment::Model,
    minutes: &[i64],
) -> Vec<Occurrence<'static>> {
    if a.status != crate::domain::AppointmentStatus::Scheduled.as_str() {
        return Vec::new();
    }
    let at = now();
    minutes
        .iter()
        .filter_map(|&m| {
            let due = a.starts_at - chrono::Duration::minutes(m);
            (due > at).then(|| Occurrence {
                workspace_id: a.workspace_id,
                kind: APPOINTMENT_REMINDER,
                key: format!("appointment:{}:remind:{m}:{}", a.id, a.starts_at.timestamp_micros()),
                due_at: due,
                payload: serde_json::json!({ "appointmentId": a.id, "minutes": m, "startsAt": a.starts_at }),
            })
        })
        .collect()
}

pub const OVERDUE_DIGEST: &str = "cron.overdue_digest";

/// Schedules a workspace's next daily overdue digest after now, in its time zone, unless one
/// is already pending or running. Missed occurrences are not queued one by one: whatever was
/// due runs once, and the next is computed from the time it ran.
pub async fn schedule_digest(
    db: &impl ConnectionTrait,
    workspace: &entity::workspace::Model,
) -> DomainResult<()> {
    let prefix = format!("digest:{}:", workspace.id);
    let open = job::Entity::find()
        .filter(job::Column::WorkspaceId.eq(workspace.id))
        .filter(job::Column::UniqueKey.starts_with(&prefix))
        .filter(
            job::Column::Status.is_in([JobStatus::Pending.as_str(), JobStatus::Running.as_str()]),
        )
        .row(db)
        .await?;
    if open.is_some() {
        return Ok(());
    }
    let tz: chrono_tz::Tz = workspace.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let daily = super::cron::parse(super::cron::OVERDUE_DIGEST)?;
    let Some(next) = super::cron::next_after(&daily, tz, now()) else {
        return Ok(());
    };
    let key = format!("{prefix}{}", next.timestamp_micros());
    let payload = serde_json::json!({ "schedule": super::cron::OVERDUE_DIGEST, "timeZone": workspace.time_zone });
    schedule(db, workspace.id, OVERDUE_DIGEST, &key, next, payload).await
}

/// After a time-zone change: the pending digest moves to the new zone's next occurrence.
pub async fn reschedule_digest(
    db: &impl ConnectionTrait,
    workspace: &entity::workspace::Model,
) -> DomainResult<()> {
    cancel(db, workspace.id, &format!("digest:{}:", workspace.id)).await?;
    schedule_digest(db, workspace).await
}
