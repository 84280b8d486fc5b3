//! The services: every business rule of Confab lives here, behind functions that take the
//! caller's `Scope` and do their whole change in one transaction.
pub mod activities;
pub mod addresses;
pub mod appointments;
pub mod auth;
pub mod contacts;
pub mod conversations;
pub mod custom_fields;
pub mod inbound;
pub mod kinds;
pub mod messages;
pub mod notes;
pub mod notifications;
pub mod opportunities;
pub mod page;
pub mod plugins;
pub mod scoped;
pub mod tasks;
pub mod templates;
pub mod workspaces;

use chrono::{DateTime, SubsecRound, Utc};

pub use kinds::*;

/// Who is asking: every read and write is bound to this workspace.
#[derive(Clone, Debug)]
pub struct Scope {
    pub workspace_id: i64,
    pub user_id: i64,
    pub role: Role,
    /// How the caller appears in the activity trail.
    pub label: std::sync::Arc<str>,
}

impl Scope {
    pub fn require_role(&self, allowed: &[Role], action: &str) -> crate::error::DomainResult<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(crate::error::DomainError::Forbidden(format!(
                "a {} token may not {action}",
                self.role.as_str().to_lowercase()
            )))
        }
    }

    /// Team members (not integrations) may read and work the inbox.
    pub fn require_member(&self, action: &str) -> crate::error::DomainResult<()> {
        self.require_role(&[Role::Admin, Role::Agent], action)
    }
}

/// Checks that the rows a multi-row insert returned came back in the order they were sent
/// (each `sent` item matching its row by `same`), which the code after it relies on rather
/// than trusts; `what` names them in the error.
pub fn returned_in_order<R, S>(
    rows: &[R],
    sent: impl ExactSizeIterator<Item = S>,
    same: impl Fn(&R, S) -> bool,
    what: &str,
) -> crate::error::DomainResult<()> {
    if rows.len() == sent.len() && rows.iter().zip(sent).all(|(r, s)| same(r, s)) {
        return Ok(());
    }
    Err(crate::error::DomainError::Internal(format!(
        "new {what} came back out of order"
    )))
}

/// The current time at the precision both databases keep (microseconds), as the process's
/// clock says: the system clock, moved forward by `clock::advance` when the test clock is on.
pub fn now() -> DateTime<Utc> {
    (Utc::now() + clock::offset()).trunc_subsecs(6)
}

/// The process clock. Tests start the server with `CONFAB_TEST_CLOCK=1` and move time forward
/// through `POST /debug/clock` instead of sleeping; in production the offset stays zero.
pub mod clock {
    use std::sync::atomic::{AtomicI64, Ordering};

    static OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

    pub fn offset() -> chrono::Duration {
        chrono::Duration::microseconds(OFFSET_MICROS.load(Ordering::Relaxed))
    }

    /// Moves the clock forward; it never goes back.
    pub fn advance(by: chrono::Duration) {
        OFFSET_MICROS.fetch_add(by.num_microseconds().unwrap_or(0).max(0), Ordering::Relaxed);
    }
}

/// A timestamp at the precision both databases keep.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// Engagement score, 0..100: half recency, half volume.
/// Recency is 50 on the day of the last message and halves every 14 days without one;
/// volume is 50 * (1 - 0.9^n) over all messages in either direction, so the first ten
/// messages count most and a long history saturates near 50.
pub fn engagement_score(c: &entity::contact::Model, at: DateTime<Utc>) -> i32 {
    let recency = c.last_activity_at.map_or(0.0, |last| {
        let days = (at - last).num_seconds().max(0) as f64 / 86_400.0;
        50.0 * 0.5f64.powf(days / 14.0)
    });
    let n = f64::from(c.inbound_count.max(0) + c.outbound_count.max(0));
    let volume = 50.0 * (1.0 - 0.9f64.powf(n));
    (recency + volume).round().clamp(0.0, 100.0) as i32
}

/// A required one-line text: trimmed, 1 to `max` characters; otherwise BAD_USER_INPUT on `field`.
pub fn required_text(field: &str, value: &str, max: usize) -> crate::error::DomainResult<String> {
    let t = value.trim();
    if t.is_empty() || t.chars().count() > max {
        return Err(crate::error::DomainError::invalid(
            field,
            format!("1 to {max} characters"),
        ));
    }
    Ok(t.to_string())
}

/// True when no two entries are equal.
pub fn all_distinct(items: &[String]) -> bool {
    let mut seen = std::collections::HashSet::new();
    items.iter().all(|i| seen.insert(i))
}
