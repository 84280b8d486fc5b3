//! Cron schedules evaluated in a workspace's IANA time zone.
//!
//! Expressions have six fields with seconds first (`sec min hour day month weekday`), as the
//! `cron` crate reads them. Around daylight-saving changes a schedule runs once per wall-clock
//! occurrence: on a spring-forward day a time that does not exist (02:30 in Europe/Berlin) has
//! no occurrence that day, and on a fall-back day a time that happens twice runs only the
//! first time.
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

use crate::error::{DomainError, DomainResult};

/// The daily overdue digest: 08:00 in the workspace's time zone.
pub const OVERDUE_DIGEST: &str = "0 0 8 * * *";

pub fn parse(expr: &str) -> DomainResult<cron::Schedule> {
    cron::Schedule::from_str(expr).map_err(|e| {
        DomainError::invalid(
            "schedule",
            format!("`{expr}` is not a cron expression: {e}"),
        )
    })
}

/// The first occurrence strictly after `after`, in UTC.
pub fn next_after(
    schedule: &cron::Schedule,
    tz: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule
        .after(&after.with_timezone(&tz))
        .map(|t| t.with_timezone(&Utc))
        // The second pass through an hour repeated when clocks go back is not a new occurrence.
        .find(|t| {
            (*t - Duration::hours(1)).with_timezone(&tz).naive_local()
                != t.with_timezone(&tz).naive_local()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("a valid time")
    }

    #[test]
    fn daily_times_follow_the_workspace_zone() {
        let s = parse(OVERDUE_DIGEST).unwrap();
        let next = next_after(&s, chrono_tz::Europe::Berlin, utc(2026, 6, 1, 12, 0)).unwrap();
        assert_eq!(next, utc(2026, 6, 2, 6, 0), "08:00 CEST is 06:00 UTC");
        let winter = next_after(&s, chrono_tz::Europe::Berlin, utc(2026, 12, 1, 12, 0)).unwrap();
        assert_eq!(winter, utc(2026, 12, 2, 7, 0), "08:00 CET is 07:00 UTC");
    }

    #[test]
    fn a_time_skipped_by_spring_forward_runs_at_most_once() {
        let s = parse("0 30 2 * * *").unwrap();
        // Berlin moves from 02:00 to 03:00 on 2026-03-29.
        let mut t = utc(2026, 3, 28, 12, 0);
        let mut runs = Vec::new();
        for _ in 0..3 {
            t = next_after(&s, chrono_tz::Europe::Berlin, t).unwrap();
            runs.push(t);
        }
        // 02:30 does not exist on the 29th: no run that day, then 02:30 CEST (00:30 UTC) daily.
        assert_eq!(
            runs,
            vec![
                utc(2026, 3, 30, 0, 30),
                utc(2026, 3, 31, 0, 30),
                utc(2026, 4, 1, 0, 30)
            ]
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_runs_once() {
        let s = parse("0 30 2 * * *").unwrap();
        // Berlin goes from 03:00 back to 02:00 on 2026-10-25: 02:30 happens twice.
        let first = next_after(&s, chrono_tz::Europe::Berlin, utc(2026, 10, 24, 12, 0)).unwrap();
        assert_eq!(first, utc(2026, 10, 25, 0, 30), "02:30 CEST");
        let second = next_after(&s, chrono_tz::Europe::Berlin, first).unwrap();
        assert_eq!(
            second,
            utc(2026, 10, 26, 1, 30),
            "the repeat at 02:30 CET is skipped; next is the 26th"
        );
    }
}
