//! Appointments: meetings with a contact, booked on their conversation.
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    Select, Set,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{appointment, conversation};

use crate::db::begin_write;
use crate::domain::scoped;
use crate::domain::{
    ActivityKind, AppointmentStatus, Scope, activities, conversations, now, truncate,
};
use crate::error::{DomainError, DomainResult};

/// The longest appointment accepted: a full day.
pub const MAX_LENGTH: Duration = Duration::hours(24);
const MAX_ATTENDEES: usize = 50;

/// UPCOMING: not yet over (soonest first); PAST: over (most recent first); ALL: by start time.
pub fn in_window(
    a: &appointment::Model,
    when: crate::domain::TimeWindow,
    at: DateTime<Utc>,
) -> bool {
    match when {
        crate::domain::TimeWindow::Upcoming => a.ends_at >= at,
        crate::domain::TimeWindow::Past => a.ends_at < at,
        crate::domain::TimeWindow::All => true,
    }
}

/// `in_window` for the database: the condition to add to a query, if the window has one.
pub fn window_condition(
    when: crate::domain::TimeWindow,
    at: DateTime<Utc>,
) -> Option<sea_orm::sea_query::SimpleExpr> {
    match when {
        crate::domain::TimeWindow::Upcoming => Some(appointment::Column::EndsAt.gte(at)),
        crate::domain::TimeWindow::Past => Some(appointment::Column::EndsAt.lt(at)),
        crate::domain::TimeWindow::All => None,
    }
}

pub fn scoped(scope: &Scope) -> Select<appointment::Entity> {
    appointment::Entity::find().filter(appointment::Column::WorkspaceId.eq(scope.workspace_id))
}

#[derive(Default)]
pub struct Details {
    pub title: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub location: Option<String>,
    pub video_url: Option<String>,
    pub agenda: Option<String>,
    pub attendees: Option<Vec<String>>,
}

fn check_times(starts: DateTime<Utc>, ends: DateTime<Utc>) -> DomainResult<()> {
    if ends <= starts {
        return Err(DomainError::invalid("endsAt", "must be after startsAt"));
    }
    if ends - starts > MAX_LENGTH {
        return Err(DomainError::invalid(
            "endsAt",
            "an appointment lasts at most 24 hours",
        ));
    }
    Ok(())
}

fn check_details(d: &Details) -> DomainResult<()> {
    if let Some(t) = &d.title
        && (t.trim().is_empty() || t.chars().count() > 200)
    {
        return Err(DomainError::invalid("title", "1 to 200 characters"));
    }
    if let Some(url) = d.video_url.as_deref().filter(|u| !u.is_empty())
        && (!(url.starts_with("https://") || url.starts_with("http://"))
            || url.len() > 2000
            || url.contains(char::is_whitespace))
    {
        return Err(DomainError::invalid("videoUrl", "an http(s) URL"));
    }
    if d.location.as_ref().is_some_and(|l| l.chars().count() > 500) {
        return Err(DomainError::invalid("location", "at most 500 characters"));
    }
    if d.agenda.as_ref().is_some_and(|a| a.len() > 8000) {
        return Err(DomainError::invalid("agenda", "at most 8000 bytes"));
    }
    if let Some(a) = &d.attendees
        && (a.len() > MAX_ATTENDEES
            || a.iter()
                .any(|x| x.trim().is_empty() || x.chars().count() > 200))
    {
        return Err(DomainError::invalid(
            "attendees",
            format!("at most {MAX_ATTENDEES} names of 1 to 200 characters"),
        ));
    }
    Ok(())
}

fn blank_to_none(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

pub async fn create(
    db: &DatabaseConnection,
    scope: &Scope,
    conversation_id: i64,
    d: Details,
) -> DomainResult<appointment::Model> {
    scope.require_member("book appointments")?;
    let (Some(starts), Some(ends)) = (d.starts_at.map(truncate), d.ends_at.map(truncate)) else {
        return Err(DomainError::invalid(
            "startsAt",
            "startsAt and endsAt are required",
        ));
    };
    check_times(starts, ends)?;
    check_details(&d)?;
    let title = d
        .title
        .clone()
        .map(|t| t.trim().to_string())
        .ok_or_else(|| DomainError::invalid("title", "required"))?;
    let txn = begin_write(db).await?;
    let conversation = conversations::scoped(scope)
        .filter(conversation::Column::Id.eq(conversation_id))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("conversation"))?;
    let at = now();
    let created = appointment::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        conversation_id: Set(conversation.id),
        title: Set(title),
        starts_at: Set(starts),
        ends_at: Set(ends),
        location: Set(blank_to_none(d.location)),
        video_url: Set(blank_to_none(d.video_url)),
        agenda: Set(blank_to_none(d.agenda)),
        organizer_id: Set(Some(scope.user_id)),
        attendees: Set(json!(d.attendees.unwrap_or_default())),
        status: Set(AppointmentStatus::Scheduled.as_str().into()),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    crate::scheduler::jobs::reschedule_appointment(&txn, &created).await?;
    activities::by_user(
        &txn,
        scope,
        Some(conversation.id),
        ActivityKind::AppointmentBooked,
        format!("Appointment booked: {}", created.title),
        json!({ "appointmentId": created.id, "startsAt": created.starts_at, "endsAt": created.ends_at }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

pub async fn update(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    d: Details,
) -> DomainResult<appointment::Model> {
    scope.require_member("change appointments")?;
    check_details(&d)?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    if current.status == AppointmentStatus::Cancelled.as_str() {
        return Err(DomainError::Conflict("the appointment is cancelled".into()));
    }
    let starts = d.starts_at.map(truncate).unwrap_or(current.starts_at);
    let ends = d.ends_at.map(truncate).unwrap_or(current.ends_at);
    check_times(starts, ends)?;
    let mut changes = serde_json::Map::new();
    let mut m = current.clone().into_active_model();
    macro_rules! change {
        ($field:ident, $name:literal, $new:expr) => {
            if let Some(new) = $new {
                if new != current.$field {
                    changes.insert($name.into(), json!({ "old": current.$field, "new": new }));
                    m.$field = Set(new);
                }
            }
        };
    }
    change!(title, "title", d.title.map(|t| t.trim().to_string()));
    change!(starts_at, "startsAt", Some(starts));
    change!(ends_at, "endsAt", Some(ends));
    change!(
        location,
        "location",
        d.location.map(|v| blank_to_none(Some(v)))
    );
    change!(
        video_url,
        "videoUrl",
        d.video_url.map(|v| blank_to_none(Some(v)))
    );
    change!(agenda, "agenda", d.agenda.map(|v| blank_to_none(Some(v))));
    change!(attendees, "attendees", d.attendees.map(|a| json!(a)));
    if changes.is_empty() {
        return Ok(current);
    }
    m.updated_at = Set(now());
    let updated = m.update(&txn).await?;
    crate::scheduler::jobs::reschedule_appointment(&txn, &updated).await?;
    activities::by_user(
        &txn,
        scope,
        Some(updated.conversation_id),
        ActivityKind::AppointmentUpdated,
        format!("Appointment updated: {}", updated.title),
        json!({ "appointmentId": id, "changes": changes }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn cancel(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<appointment::Model> {
    scope.require_member("cancel appointments")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    if current.status == AppointmentStatus::Cancelled.as_str() {
        return Ok(current);
    }
    let mut m = current.clone().into_active_model();
    m.status = Set(AppointmentStatus::Cancelled.as_str().into());
    m.updated_at = Set(now());
    let updated = m.update(&txn).await?;
    crate::scheduler::jobs::reschedule_appointment(&txn, &updated).await?;
    activities::by_user(
        &txn,
        scope,
        Some(updated.conversation_id),
        ActivityKind::AppointmentCancelled,
        format!("Appointment cancelled: {}", updated.title),
        json!({ "appointmentId": id }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}
