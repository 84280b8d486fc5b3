//! The durable scheduler: jobs live in the database, workers claim due ones in batches under a
//! lease (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so replicas share the work), run each in
//! one transaction with the job's own DONE mark, and retry failures with backoff until FAILED.
pub mod cron;
mod handlers;
pub mod jobs;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, Statement, TransactionTrait,
};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

use entity::job;
use entity::positional::SelectRows;

use crate::db::begin_write;
use crate::domain::{JobStatus, now};
use crate::error::{DomainError, DomainResult};

/// Jobs claimed and run per transaction: large enough that a burst of due reminders costs a
/// few statements per batch, small enough to stay well under the lease.
const BATCH: i64 = 500;
/// Batches run at once on PostgreSQL, each claiming its next as soon as it is done. A batch is
/// a few round trips and a commit, so with two the cores sat a quarter idle through a burst;
/// four kept them busy (10,000 reminders due at once: lateness p99 0.64-0.83 s against
/// 0.86-1.15 s with two; docs/benchmarks.md).
const PARALLEL_BATCHES: usize = 4;
/// A claimed job is ours this long; a worker that dies mid-job loses it to another after this.
const LEASE: ChronoDuration = ChronoDuration::seconds(60);
/// Done and cancelled jobs are kept this long for the admin view, then deleted.
pub const RETENTION: ChronoDuration = ChronoDuration::days(7);

/// Wakes the scheduler early (a job was scheduled, or the test clock moved).
#[derive(Clone, Default)]
pub struct SchedulerHandle(Arc<Notify>);

impl SchedulerHandle {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// What one look at a lane's queue did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tick {
    /// Jobs were due: this many ran (none when another worker was claiming them).
    Ran(usize),
    /// Nothing was due; the next job falls due then (`None`: the lane is empty).
    Idle(Option<DateTime<Utc>>),
}

impl Tick {
    /// How long a worker sleeps after this look when nothing wakes it: not at all after a
    /// run (more may be due), until the next job falls due, and never longer than `poll`
    /// (jobs another replica schedules wake nobody here).
    pub fn wait(self, poll: Duration) -> Duration {
        match self {
            Tick::Ran(n) if n > 0 => Duration::ZERO,
            // Due jobs another worker was taking: look again shortly.
            Tick::Ran(_) => CONTENDED.min(poll),
            Tick::Idle(None) => poll,
            Tick::Idle(Some(at)) => (at - now()).to_std().unwrap_or(Duration::ZERO).min(poll),
        }
    }
}

/// How long a worker waits before looking again at due jobs another worker was claiming.
const CONTENDED: Duration = Duration::from_millis(50);

pub struct Scheduler {
    db: DatabaseConnection,
    handle: SchedulerHandle,
    lease: Lease,
    poll: Duration,
    bus: crate::realtime::Bus,
}

/// Which jobs a worker takes: plugin runs (which execute untrusted code outside any
/// transaction) have their own worker; the scheduler takes everything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    Scheduled,
    PluginRuns,
}

impl Lane {
    /// The lane's jobs, as SQL: word for word the condition of its partial index.
    fn kinds(self) -> &'static str {
        match self {
            Lane::Scheduled => migration::SCHEDULED_KINDS,
            Lane::PluginRuns => migration::RUN_KINDS,
        }
    }
}

/// The `n`-th bind parameter in `backend`'s SQL.
fn param(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    }
}

/// One worker's claim on jobs: takes due ones under a lease, marks them done, records
/// failures. Shared by the scheduler and the plugin worker.
pub struct Lease {
    worker: String,
    lane: Lane,
}

impl Scheduler {
    pub fn new(
        db: DatabaseConnection,
        handle: SchedulerHandle,
        poll: Duration,
        bus: crate::realtime::Bus,
    ) -> Self {
        Scheduler {
            db,
            handle,
            lease: Lease::new(Lane::Scheduled),
            poll,
            bus,
        }
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.ensure_schedules().await {
            tracing::warn!(error = %e, "scheduler: could not put the daily digests on the schedule");
        }
        let mut last_sweep = now();
        loop {
            // A job due between two polls runs when it falls due, not at the next poll.
            let wait = match self.tick().await {
                Ok(tick) => tick.wait(self.poll),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler: claiming jobs failed; retrying");
                    self.poll
                }
            };
            if wait.is_zero() {
                continue;
            }
            if now() - last_sweep > ChronoDuration::hours(1) {
                last_sweep = now();
                if let Err(e) = self.sweep().await {
                    tracing::warn!(error = %e, "scheduler: retention sweep failed");
                }
            }
            tokio::select! {
                _ = self.handle.0.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Claims and runs due jobs, a batch per transaction.
    pub async fn tick(&self) -> DomainResult<Tick> {
        // Woken after every change: look (a read) before claiming (a write).
        if let Some(idle) = self.lease.idle(&self.db).await? {
            return Ok(idle);
        }
        // PostgreSQL runs batches side by side, each in its own transaction on its own
        // connection; SQLite has one writer, so more would only wait.
        let side_by_side = match self.db.get_database_backend() {
            DbBackend::Postgres => PARALLEL_BATCHES,
            _ => 1,
        };
        let outcomes = futures::future::join_all((0..side_by_side).map(|_| self.drain())).await;
        let mut ran = 0;
        for outcome in outcomes {
            ran += outcome?;
        }
        Ok(Tick::Ran(ran))
    }

    /// Claims and runs a batch at a time until a claim comes back short of a full batch (the
    /// rest is another's, or nothing is left); returns how many jobs it ran. Side by side,
    /// each goes on to its next batch as soon as its last one is done.
    async fn drain(&self) -> DomainResult<usize> {
        let mut ran = 0;
        loop {
            let claimed = self.lease.claim(&self.db, BATCH).await?;
            if claimed.is_empty() {
                return Ok(ran);
            }
            self.run_batch(&claimed).await?;
            self.bus.wake();
            ran += claimed.len();
            if claimed.len() < BATCH as usize {
                return Ok(ran);
            }
        }
    }

    /// Runs one batch of claimed jobs in one transaction.
    async fn run_batch(&self, claimed: &[job::Model]) -> DomainResult<()> {
        // One transaction per batch and a savepoint per job: a failing job rolls back alone,
        // and the batch costs one commit. If this process dies mid-batch, the whole batch
        // rolls back and another worker takes it over when the lease runs out.
        let txn = begin_write(&self.db).await?;
        // Task alerts go together (a few statements for the whole batch); if that fails,
        // they run one by one below, so only a failing job fails.
        let (alerts, mut one_by_one): (Vec<&job::Model>, Vec<&job::Model>) =
            claimed.iter().partition(|j| handlers::batchable(j));
        if !alerts.is_empty() {
            let savepoint = txn.begin().await?;
            match self.run_together(&savepoint, &alerts).await {
                Ok(()) => savepoint.commit().await?,
                Err(e) => {
                    tracing::warn!(error = %e, jobs = alerts.len(), "scheduler: a batch of task alerts failed; running them one by one");
                    savepoint.rollback().await?;
                    one_by_one.extend(alerts);
                }
            }
        }
        let mut failures = Vec::new();
        for j in one_by_one {
            let span =
                tracing::info_span!("job", job_id = j.id, kind = %j.kind, attempt = j.attempts);
            let outcome = async {
                let savepoint = txn.begin().await?;
                match self.run_one(&savepoint, j).await {
                    Ok(true) => savepoint.commit().await.map_err(DomainError::from),
                    Ok(false) => {
                        tracing::info!("job taken over by another worker");
                        savepoint.rollback().await.map_err(DomainError::from)
                    }
                    Err(e) => {
                        savepoint.rollback().await?;
                        Err(e)
                    }
                }
            }
            .instrument(span)
            .await;
            if let Err(e) = outcome {
                failures.push((j, e));
            }
        }
        txn.commit().await?;
        for (j, e) in failures {
            self.lease.failed(&self.db, j, &e).await?;
        }
        Ok(())
    }

    /// Marks the batchable `jobs` DONE and runs those still ours together.
    async fn run_together(
        &self,
        txn: &DatabaseTransaction,
        jobs: &[&job::Model],
    ) -> DomainResult<()> {
        let ours = self.lease.done_many(txn, jobs).await?;
        let mine: Vec<&job::Model> = jobs
            .iter()
            .filter(|j| ours.contains(&j.id))
            .copied()
            .collect();
        handlers::task_alerts(txn, &mine).await
    }

    /// Runs `j`'s effects and marks it DONE in one transaction. False when the job was no
    /// longer ours (its lease ran out and another worker took it): nothing is applied then.
    async fn run_one(&self, txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<bool> {
        if !self.lease.done(txn, j).await? {
            return Ok(false);
        }
        handlers::run(txn, j).await?;
        Ok(true)
    }

    /// Every workspace has its next daily digest pending (one that was due while the server
    /// was down stays due and runs once now).
    async fn ensure_schedules(&self) -> DomainResult<()> {
        for ws in entity::workspace::Entity::find().rows(&self.db).await? {
            jobs::schedule_digest(&self.db, &ws).await?;
        }
        Ok(())
    }

    /// Deletes done and cancelled jobs older than the retention period.
    async fn sweep(&self) -> DomainResult<()> {
        job::Entity::delete_many()
            .filter(
                job::Column::Status
                    .is_in([JobStatus::Done.as_str(), JobStatus::Cancelled.as_str()]),
            )
            .filter(job::Column::FinishedAt.lt(now() - RETENTION))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

impl Lease {
    pub fn new(lane: Lane) -> Self {
        let worker = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
        Lease { worker, lane }
    }

    /// Takes up to a batch of due jobs (or jobs whose lease ran out) for this worker.
    pub async fn claim(
        &self,
        db: &DatabaseConnection,
        batch: i64,
    ) -> DomainResult<Vec<job::Model>> {
        let backend = db.get_database_backend();
        let at = now();
        let lock = match backend {
            DbBackend::Postgres => " FOR UPDATE SKIP LOCKED",
            _ => "",
        };
        let p = |n| param(backend, n);
        let text = format!(
            "UPDATE jobs SET status = 'RUNNING', locked_by = {w}, locked_until = {until}, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM jobs WHERE ((status = 'PENDING' AND due_at <= {now1}) \
             OR (status = 'RUNNING' AND locked_until < {now2})) AND {kinds} ORDER BY due_at, id LIMIT {limit}{lock}) RETURNING *",
            w = p(1),
            until = p(2),
            now1 = p(3),
            now2 = p(4),
            limit = p(5),
            kinds = self.lane.kinds(),
        );
        let stmt = Statement::from_sql_and_values(
            backend,
            text,
            [
                self.worker.clone().into(),
                (at + LEASE).into(),
                at.into(),
                at.into(),
                batch.into(),
            ],
        );
        let rows = db.query_all_raw(stmt).await?;
        let mut jobs: Vec<job::Model> = rows
            .iter()
            .map(|r| job::Model::from_query_result(r, ""))
            .collect::<Result<_, _>>()?;
        jobs.sort_by_key(|j| (j.due_at, j.id));
        Ok(jobs)
    }

    /// When this lane's next job falls due: the first pending job's due time or the first
    /// lease to run out, whichever is sooner; `None` when the lane has neither. A read, no
    /// lock: each half walks its partial index from the front and stops at the first entry,
    /// however many jobs are kept.
    pub async fn next_due(&self, db: &DatabaseConnection) -> DomainResult<Option<DateTime<Utc>>> {
        let rows = db
            .query_all_raw(self.due_query(db.get_database_backend()))
            .await?;
        let mut times = Vec::with_capacity(rows.len());
        for r in &rows {
            times.push(r.try_get::<DateTime<Utc>>("", "at")?);
        }
        Ok(times.into_iter().min())
    }

    /// The idle tick, with when the next job falls due, unless one is due now.
    pub async fn idle(&self, db: &DatabaseConnection) -> DomainResult<Option<Tick>> {
        let next = self.next_due(db).await?;
        Ok(next.is_none_or(|at| at > now()).then_some(Tick::Idle(next)))
    }

    /// `next_due`'s statement.
    fn due_query(&self, backend: DbBackend) -> Statement {
        let text = format!(
            "SELECT at FROM (SELECT due_at AS at FROM jobs WHERE status = 'PENDING' \
             AND {kinds} ORDER BY due_at, id LIMIT 1) AS due \
             UNION ALL SELECT at FROM (SELECT locked_until AS at FROM jobs \
             WHERE status = 'RUNNING' AND {kinds} AND locked_until IS NOT NULL \
             ORDER BY locked_until LIMIT 1) AS lapsed",
            kinds = self.lane.kinds(),
        );
        Statement::from_string(backend, text)
    }

    /// Finishes `jobs` inside `txn` in one statement; returns the ids that were still ours.
    /// A scheduled job stays, DONE, for the retention period (the admin view lists it). A
    /// plugin run's job is deleted: its run record (`plugin_runs`) is its history, and kept
    /// it would leave a row per event in the queue for the retention week.
    pub async fn done_many(
        &self,
        txn: &DatabaseTransaction,
        jobs: &[&job::Model],
    ) -> DomainResult<std::collections::HashSet<i64>> {
        if jobs.is_empty() {
            return Ok(Default::default());
        }
        let backend = txn.get_database_backend();
        let p = |n| param(backend, n);
        let (finish, mut values): (String, Vec<sea_orm::Value>) = match self.lane {
            Lane::Scheduled => (
                format!(
                    "UPDATE jobs SET status = {}, finished_at = {}, last_error = NULL",
                    p(1),
                    p(2)
                ),
                vec![JobStatus::Done.as_str().into(), now().into()],
            ),
            Lane::PluginRuns => ("DELETE FROM jobs".to_string(), Vec::new()),
        };
        let me = values.len() + 1;
        let ids: Vec<String> = (0..jobs.len()).map(|i| p(me + 1 + i)).collect();
        let text = format!(
            "{finish} WHERE status = 'RUNNING' AND locked_by = {} AND id IN ({}) RETURNING id",
            p(me),
            ids.join(", "),
        );
        values.push(self.worker.clone().into());
        values.extend(jobs.iter().map(|j| sea_orm::Value::from(j.id)));
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(backend, text, values))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<i64>("", "id").ok())
            .collect())
    }

    /// Finishes `j` inside `txn` (as [`Lease::done_many`]); false when it is no longer ours
    /// (its lease ran out and another worker took it), and then nothing else may be applied.
    pub async fn done(&self, txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<bool> {
        Ok(self.done_many(txn, &[j]).await?.contains(&j.id))
    }

    /// Inside `txn`, leaves `j` (still running, ours) with `payload`: a plugin run's job
    /// whose first runs were recorded keeps the rest. False when it is no longer ours.
    pub async fn narrow(
        &self,
        txn: &DatabaseTransaction,
        j: &job::Model,
        payload: serde_json::Value,
    ) -> DomainResult<bool> {
        let r = job::Entity::update_many()
            .col_expr(job::Column::Payload, Expr::value(payload))
            .filter(job::Column::Id.eq(j.id))
            .filter(job::Column::Status.eq(JobStatus::Running.as_str()))
            .filter(job::Column::LockedBy.eq(self.worker.as_str()))
            .exec(txn)
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Records a failed try: back to PENDING with backoff, or FAILED after the last attempt.
    pub async fn failed(
        &self,
        db: &DatabaseConnection,
        j: &job::Model,
        e: &DomainError,
    ) -> DomainResult<()> {
        let last = j.attempts >= j.max_attempts;
        let reason = match e {
            // Admins read this in `jobs`: give them the whole story.
            DomainError::Database(db) => format!("database error: {db}"),
            DomainError::Internal(detail) => detail.clone(),
            other => other.to_string(),
        };
        tracing::warn!(error = %reason, attempts = j.attempts, last, "job failed");
        let mut q = job::Entity::update_many()
            .col_expr(job::Column::LastError, Expr::value(reason))
            .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
            .col_expr(
                job::Column::LockedUntil,
                Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
            );
        q = if last {
            q.col_expr(job::Column::Status, Expr::value(JobStatus::Failed.as_str()))
                .col_expr(job::Column::FinishedAt, Expr::value(now()))
        } else {
            q.col_expr(
                job::Column::Status,
                Expr::value(JobStatus::Pending.as_str()),
            )
            .col_expr(job::Column::DueAt, Expr::value(now() + backoff(j.attempts)))
        };
        q.filter(job::Column::Id.eq(j.id))
            .filter(job::Column::LockedBy.eq(self.worker.as_str()))
            .exec(db)
            .await?;
        Ok(())
    }
}

/// 10 s, 20 s, 40 s... capped at one hour.
fn backoff(attempts: i32) -> ChronoDuration {
    ChronoDuration::seconds((10i64 << attempts.clamp(1, 12).saturating_sub(1)).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::EntityTrait;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1).num_seconds(), 10);
        assert_eq!(backoff(2).num_seconds(), 20);
        assert_eq!(backoff(12).num_seconds(), 3600);
    }

    #[tokio::test]
    async fn a_failing_job_is_retried_with_backoff_then_failed_with_its_error() {
        let t = crate::db::testing::workspace().await;
        let (db, scope) = (t.db.clone(), t.admin.clone());
        // A kind no handler knows: every try fails.
        jobs::schedule(
            &db,
            scope.workspace_id,
            "no.such.kind",
            "k1",
            now(),
            serde_json::json!({}),
        )
        .await
        .expect("schedule");
        let s = Scheduler::new(
            db.clone(),
            SchedulerHandle::default(),
            Duration::from_secs(1),
            crate::realtime::Bus::default(),
        );
        for attempt in 1..=jobs::MAX_ATTEMPTS {
            assert_eq!(
                s.tick().await.expect("tick"),
                Tick::Ran(1),
                "try {attempt} runs"
            );
            assert!(
                matches!(s.tick().await.expect("tick"), Tick::Idle(Some(at)) if at > now()),
                "not again before its backoff"
            );
            job::Entity::update_many()
                .col_expr(
                    job::Column::DueAt,
                    Expr::value(now() - ChronoDuration::seconds(1)),
                )
                .filter(job::Column::UniqueKey.eq("k1"))
                .filter(job::Column::Status.eq(JobStatus::Pending.as_str()))
                .exec(&db)
                .await
                .expect("time passes");
        }
        // (The next job due is the workspace's daily digest.)
        assert!(
            matches!(s.tick().await.expect("tick"), Tick::Idle(Some(at)) if at > now()),
            "a FAILED job is not retried"
        );
        let j = job::Entity::find()
            .filter(job::Column::UniqueKey.eq("k1"))
            .row(&db)
            .await
            .expect("read")
            .expect("the job");
        assert_eq!(j.status, "FAILED");
        assert_eq!(j.attempts, jobs::MAX_ATTEMPTS);
        assert!(
            j.last_error
                .as_deref()
                .is_some_and(|e| e.contains("no handler")),
            "{:?}",
            j.last_error
        );
    }

    #[tokio::test]
    async fn a_finished_run_leaves_the_queue_and_a_finished_scheduled_job_stays_done() {
        let t = crate::db::testing::workspace().await;
        let (db, ws) = (t.db.clone(), t.admin.workspace_id);
        for (kind, key) in [
            (crate::domain::plugins::EVENT_RUN, "run"),
            ("task.overdue", "alert"),
        ] {
            jobs::schedule(&db, ws, kind, key, now(), serde_json::json!({}))
                .await
                .expect("schedule");
        }
        for lane in [Lane::PluginRuns, Lane::Scheduled] {
            let lease = Lease::new(lane);
            let claimed = lease.claim(&db, 10).await.expect("claim");
            assert_eq!(claimed.len(), 1, "{lane:?} takes its own job");
            // Another worker's lease is not ours to finish.
            let txn = db.begin().await.expect("begin");
            assert!(
                !Lease::new(lane)
                    .done(&txn, &claimed[0])
                    .await
                    .expect("done"),
                "{lane:?}"
            );
            assert!(
                lease.done(&txn, &claimed[0]).await.expect("done"),
                "{lane:?}"
            );
            txn.commit().await.expect("commit");
        }
        let left: Vec<(String, String)> = job::Entity::find()
            .filter(job::Column::UniqueKey.is_in(["run", "alert"]))
            .rows(&db)
            .await
            .expect("read")
            .into_iter()
            .map(|j| (j.unique_key, j.status))
            .collect();
        assert_eq!(left, [("alert".to_string(), "DONE".to_string())]);
    }

    #[tokio::test]
    async fn a_run_job_narrowed_to_its_runs_left_is_retried_with_those_alone() {
        let t = crate::db::testing::workspace().await;
        let (db, ws) = (t.db.clone(), t.admin.workspace_id);
        let payload = serde_json::json!({ "pluginId": 1, "activityIds": [7, 8, 9] });
        jobs::schedule(
            &db,
            ws,
            crate::domain::plugins::EVENT_RUN,
            "run",
            now(),
            payload,
        )
        .await
        .expect("schedule");
        let lease = Lease::new(Lane::PluginRuns);
        let claimed = lease.claim(&db, 10).await.expect("claim");
        assert_eq!(claimed.len(), 1);
        let left = serde_json::json!({ "pluginId": 1, "activityIds": [9] });
        // Another worker's lease is not its to narrow.
        let txn = db.begin().await.expect("begin");
        assert!(
            !Lease::new(Lane::PluginRuns)
                .narrow(&txn, &claimed[0], left.clone())
                .await
                .expect("narrow")
        );
        assert!(
            lease
                .narrow(&txn, &claimed[0], left.clone())
                .await
                .expect("narrow")
        );
        txn.commit().await.expect("commit");
        lease
            .failed(&db, &claimed[0], &DomainError::Internal("later".into()))
            .await
            .expect("failed");
        let row = job::Entity::find_by_id(claimed[0].id)
            .row(&db)
            .await
            .expect("read")
            .expect("the job stays for its retry");
        assert_eq!((row.status.as_str(), row.payload), ("PENDING", left));
    }

    /// True when a job of `lease`'s lane is due (or its lease ran out).
    async fn due(lease: &Lease, db: &DatabaseConnection) -> bool {
        let next = lease.next_due(db).await.expect("poll");
        next.is_some_and(|at| at <= now())
    }

    #[tokio::test]
    async fn each_lane_sees_only_its_own_due_jobs_through_its_partial_index() {
        let t = crate::db::testing::workspace().await;
        let (db, ws) = (t.db.clone(), t.admin.workspace_id);
        let (runs, scheduled) = (Lease::new(Lane::PluginRuns), Lease::new(Lane::Scheduled));
        // A new workspace has its daily digest pending (08:00 in its time zone): within the
        // hour before, it would be the scheduled lane's next job, not the one below.
        jobs::cancel(&db, ws, "digest:").await.expect("cancel");
        let json = serde_json::json!({});
        let later = now() + ChronoDuration::hours(1);
        jobs::schedule(&db, ws, "task.overdue", "later", later, json.clone())
            .await
            .expect("schedule");
        assert!(!due(&runs, &db).await);
        assert!(!due(&scheduled, &db).await);
        assert_eq!(runs.next_due(&db).await.expect("poll"), None);
        assert_eq!(scheduled.next_due(&db).await.expect("poll"), Some(later));

        jobs::schedule(
            &db,
            ws,
            crate::domain::plugins::EVENT_RUN,
            "run",
            now(),
            json.clone(),
        )
        .await
        .expect("schedule");
        assert!(due(&runs, &db).await);
        assert!(!due(&scheduled, &db).await, "not the scheduler's");

        // A run whose lease ran out is due again, for its own lane only.
        let claimed = runs.claim(&db, 10).await.expect("claim");
        assert_eq!(claimed.len(), 1);
        assert!(!due(&runs, &db).await, "leased");
        assert_eq!(
            runs.next_due(&db).await.expect("poll"),
            claimed[0].locked_until,
            "the lease's end is when it falls due again"
        );
        job::Entity::update_many()
            .col_expr(
                job::Column::LockedUntil,
                Expr::value(now() - ChronoDuration::seconds(1)),
            )
            .exec(&db)
            .await
            .expect("the lease runs out");
        assert!(due(&runs, &db).await);
        assert!(!due(&scheduled, &db).await);

        // Both halves of each poll are index lookups, not scans of the table.
        for (lease, index) in [
            (&runs, "idx_jobs_due_runs"),
            (&scheduled, "idx_jobs_due_scheduled"),
        ] {
            let steps = crate::db::testing::sqlite_plan(&db, lease.due_query(DbBackend::Sqlite))
                .await
                .expect("a plan");
            assert!(steps.iter().any(|s| s.contains(index)), "{steps:?}");
            assert!(
                steps.iter().any(|s| s.contains("idx_jobs_leases")),
                "{steps:?}"
            );
            assert!(
                !steps
                    .iter()
                    .any(|s| s.starts_with("SCAN jobs") && !s.contains("USING")),
                "{steps:?}"
            );
        }
    }
}
