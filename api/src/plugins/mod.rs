//! Where plugins run. The worker takes queued runs (`plugin.run.*` jobs, queued in the same
//! transaction as the event that caused them, or by a plugin's cron schedule), runs each in
//! a fresh sandbox off the request path and outside any transaction, then applies what the
//! successful runs asked for, records every run and marks the jobs done in one transaction.
//!
//! Runs of one plugin on one conversation within a batch go in order, each seeing what the
//! one before it did ("waves"); different conversations run side by side, up to one run per
//! core at a time.
mod effects;
mod events;
mod workspace;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, Set, TransactionTrait,
};
use tokio::sync::{Semaphore, watch};

use confab_plugins::{Compiled, Inspected, Limits, Outcome, RunReport, Runtime};
use entity::{job, plugin, plugin_artifact, plugin_run};

pub use effects::deliver_reminder;

use crate::db::begin_write;
use crate::domain::plugins::{self as admin, DISABLE_AFTER_FAILURES, SCHEDULE_RUN};
use crate::domain::{now, truncate};
use crate::error::{DomainError, DomainResult};
use crate::scheduler::{Lane, Lease, SchedulerHandle};

const BATCH: i64 = 200;
/// The most stdout/stderr kept per run record.
const OUTPUT_KEPT: usize = 4096;

/// The process's plugin runtime and its compiled plugins, by plugin id.
pub struct PluginHost {
    runtime: Runtime,
    engine_key: String,
    compiled: Mutex<HashMap<i64, (String, Compiled)>>,
    slots: Arc<Semaphore>,
}

impl PluginHost {
    pub fn new() -> Result<Arc<PluginHost>, String> {
        let runtime = Runtime::new()?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Arc::new(PluginHost {
            engine_key: runtime.engine_key(),
            runtime,
            compiled: Mutex::default(),
            slots: Arc::new(Semaphore::new(cores)),
        }))
    }

    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Checks and precompiles an upload, off the async threads.
    pub async fn inspect(self: &Arc<Self>, wasm: Vec<u8>) -> DomainResult<Inspected> {
        let host = self.clone();
        let known = admin::known_events();
        tokio::task::spawn_blocking(move || host.runtime.inspect(&wasm, &known))
            .await
            .map_err(|e| DomainError::Internal(format!("plugin check panicked: {e}")))?
            .map_err(|e| DomainError::PluginInvalid(e.0))
    }

    pub fn remember(&self, plugin_id: i64, sha256: &str, compiled: Compiled) {
        self.cache()
            .insert(plugin_id, (sha256.to_string(), compiled));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<i64, (String, Compiled)>> {
        self.compiled.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plugin ready to run: from memory, else from the stored artifact for this engine,
    /// else compiled from the upload (and the artifact stored for the next process).
    async fn compiled(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        p: &plugin::Model,
    ) -> DomainResult<Compiled> {
        if let Some((sha, c)) = self.cache().get(&p.id)
            && *sha == p.sha256
        {
            return Ok(c.clone());
        }
        let stored =
            plugin_artifact::Entity::find_by_id((p.sha256.clone(), self.engine_key.clone()))
                .one(db)
                .await?;
        let host = self.clone();
        let wasm = p.wasm.clone();
        let (compiled, fresh) = tokio::task::spawn_blocking(move || {
            if let Some(a) = stored
                && let Ok(c) = host.runtime.load(&a.artifact)
            {
                return Ok((c, None));
            }
            host.runtime.compile(&wasm).map(|(c, a)| (c, Some(a)))
        })
        .await
        .map_err(|e| DomainError::Internal(format!("plugin load panicked: {e}")))?
        .map_err(|e| DomainError::Internal(format!("plugin {} does not load: {e}", p.id)))?;
        if let Some(artifact) = fresh {
            admin::store_artifact(db, &p.sha256, &self.engine_key, artifact).await?;
        }
        self.remember(p.id, &p.sha256, compiled.clone());
        Ok(compiled)
    }
}

/// One claimed run, ready to go.
struct Prepared {
    job: job::Model,
    plugin: plugin::Model,
    label: String,
    depth: i64,
    trigger: String,
    /// Runs sharing a key go one after another.
    order_key: (i64, Option<i64>),
    event: confab_plugins::wit::Event,
}

pub struct Worker {
    db: DatabaseConnection,
    host: Arc<PluginHost>,
    lease: Lease,
    bus: crate::realtime::Bus,
    scheduler: SchedulerHandle,
    poll: Duration,
}

impl Worker {
    pub fn new(
        db: DatabaseConnection,
        host: Arc<PluginHost>,
        bus: crate::realtime::Bus,
        scheduler: SchedulerHandle,
        poll: Duration,
    ) -> Self {
        Worker {
            db,
            host,
            lease: Lease::new(Lane::PluginRuns),
            bus,
            scheduler,
            poll,
        }
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if let Err(e) = self.ensure_schedules().await {
            tracing::warn!(error = %e, "plugins: could not put cron schedules on the schedule");
        }
        // Every committed event wakes the worker (on PostgreSQL, on every replica; they
        // share the work through the jobs' leases).
        let mut events = self.bus.subscribe();
        loop {
            match self.tick().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "plugins: running a batch failed; retrying"),
            }
            tokio::select! {
                r = events.recv() => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        return;
                    }
                    // Drain what else arrived: one claim answers them all.
                    while events.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn ensure_schedules(&self) -> DomainResult<()> {
        let with_crons = plugin::Entity::find()
            .filter(plugin::Column::Enabled.eq(true))
            .filter(plugin::Column::UninstalledAt.is_null())
            .all(&self.db)
            .await?;
        for p in with_crons {
            admin::schedule_crons(&self.db, &p).await?;
        }
        Ok(())
    }

    /// Claims a batch of runs, runs them, applies and records them. Returns how many.
    pub async fn tick(&self) -> DomainResult<usize> {
        let claimed = self.lease.claim(&self.db, BATCH).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let n = claimed.len();
        let mut ready = Vec::new();
        for j in claimed {
            match self.prepare(&j).await {
                Ok(Some(p)) => ready.push(p),
                Ok(None) => self.skip(&j).await?,
                Err(e) => self.lease.failed(&self.db, &j, &e).await?,
            }
        }
        for wave in waves(ready) {
            self.run_wave(wave).await?;
        }
        self.bus.wake();
        self.scheduler.wake();
        Ok(n)
    }

    /// Loads what a run needs; None when there is nothing to run any more (the plugin was
    /// disabled or uninstalled, or the event's row is gone).
    async fn prepare(&self, j: &job::Model) -> DomainResult<Option<Prepared>> {
        let id = |key: &str| j.payload.get(key).and_then(serde_json::Value::as_i64);
        let plugin_id =
            id("pluginId").ok_or_else(|| DomainError::Internal("run without pluginId".into()))?;
        let Some(p) = admin::installed(j.workspace_id)
            .filter(plugin::Column::Id.eq(plugin_id))
            .filter(plugin::Column::Enabled.eq(true))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let depth = id("depth").unwrap_or(1);
        let (event, trigger, order_key) = if j.kind == SCHEDULE_RUN {
            let expr = j
                .payload
                .get("schedule")
                .and_then(|s| s.as_str())
                .unwrap_or("");
            let event = events::scheduled(expr, j.due_at);
            (event, format!("schedule: {expr}"), (p.id, None))
        } else {
            let activity_id = id("activityId")
                .ok_or_else(|| DomainError::Internal("run without activityId".into()))?;
            let Some(row) = crate::domain::scoped::find::<entity::activity::Entity>(
                &self.db,
                j.workspace_id,
                activity_id,
            )
            .await?
            else {
                return Ok(None);
            };
            let conversation = row.conversation_id;
            let trigger = format!("event: {}", row.kind);
            let loaded = crate::realtime::LoadedActivity::load(&self.db, row).await?;
            (
                events::from_activity(&loaded),
                trigger,
                (p.id, conversation),
            )
        };
        Ok(Some(Prepared {
            label: format!("{} (plugin)", p.name),
            job: j.clone(),
            plugin: p,
            depth,
            trigger,
            order_key,
            event,
        }))
    }

    /// A run with nothing left to do: its job is done.
    async fn skip(&self, j: &job::Model) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        self.lease.done(&txn, j).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Runs a wave side by side (one sandbox per run, at most one per core), then applies and
    /// records all of it in one transaction, a savepoint per run.
    async fn run_wave(&self, wave: Vec<Prepared>) -> DomainResult<()> {
        let mut runs = Vec::with_capacity(wave.len());
        for p in wave {
            let compiled = match self.host.compiled(&self.db, &p.plugin).await {
                Ok(c) => c,
                Err(e) => {
                    self.lease.failed(&self.db, &p.job, &e).await?;
                    continue;
                }
            };
            let limits: Limits =
                serde_json::from_value(p.plugin.limits.clone()).unwrap_or_default();
            let workspace = Arc::new(workspace::DbWorkspace::new(
                self.db.clone(),
                p.plugin.workspace_id,
            ));
            let host = self.host.clone();
            let slot = self.host.slots.clone().acquire_owned().await;
            let event = p.event.clone();
            let started_at = now();
            let task = tokio::task::spawn_blocking(move || {
                let _slot = slot;
                host.runtime.run(&compiled, &event, &limits, workspace)
            });
            runs.push((p, started_at, task));
        }
        let mut finished = Vec::with_capacity(runs.len());
        for (p, started_at, task) in runs {
            let report = task
                .await
                .map_err(|e| DomainError::Internal(format!("plugin run panicked: {e}")))?;
            finished.push((p, started_at, report));
        }
        let txn = begin_write(&self.db).await?;
        let mut failures = Vec::new();
        for (p, started_at, report) in &finished {
            let savepoint = txn.begin().await?;
            match self.settle(&savepoint, p, *started_at, report).await {
                Ok(true) => savepoint.commit().await?,
                Ok(false) => savepoint.rollback().await?,
                Err(e) => {
                    savepoint.rollback().await?;
                    failures.push((p, e));
                }
            }
        }
        txn.commit().await?;
        for (p, e) in failures {
            self.lease.failed(&self.db, &p.job, &e).await?;
        }
        Ok(())
    }

    /// Marks the job done, applies the run's effects (all or none), records the run and keeps
    /// the plugin's failure count. False when the job was taken over by another worker.
    async fn settle(
        &self,
        txn: &DatabaseTransaction,
        p: &Prepared,
        started_at: chrono::DateTime<chrono::Utc>,
        report: &RunReport,
    ) -> DomainResult<bool> {
        if !self.lease.done(txn, &p.job).await? {
            return Ok(false);
        }
        if p.job.kind == SCHEDULE_RUN {
            admin::schedule_crons(txn, &p.plugin).await?;
        }
        let mut outcome = report.outcome;
        let mut error = report.error.clone();
        let mut actions = 0;
        if outcome == Outcome::Ok && !report.effects.is_empty() {
            let applying = txn.begin().await?;
            let actor = crate::domain::activities::Actor::Plugin {
                id: p.plugin.id,
                label: p.label.clone(),
                depth: p.depth,
            };
            match effects::apply(&applying, &p.plugin, &actor, p.job.id, &report.effects).await {
                Ok(()) => {
                    applying.commit().await?;
                    actions = report.effects.len();
                }
                Err(e @ (DomainError::Database(_) | DomainError::Internal(_))) => return Err(e),
                Err(e) => {
                    // The plugin asked for something the rules refuse: nothing of it stays.
                    applying.rollback().await?;
                    outcome = Outcome::Error;
                    error = Some(format!("could not apply its changes: {e}"));
                }
            }
        }
        // Read fresh: earlier runs in this batch may have counted already.
        let current = plugin::Entity::find_by_id(p.plugin.id)
            .one(txn)
            .await?
            .ok_or(DomainError::NotFound("plugin"))?;
        let count = if outcome == Outcome::Ok {
            0
        } else {
            current.consecutive_failures + 1
        };
        let disable = count >= DISABLE_AFTER_FAILURES && current.enabled;
        if disable {
            error = Some(format!(
                "{}; the plugin was disabled after {DISABLE_AFTER_FAILURES} failed runs in a row",
                error.unwrap_or_default()
            ));
        }
        plugin_run::ActiveModel {
            workspace_id: Set(p.plugin.workspace_id),
            plugin_id: Set(p.plugin.id),
            trigger: Set(p.trigger.clone()),
            outcome: Set(outcome.as_str().to_string()),
            error: Set(error.clone()),
            output: Set(Some(keep(&report.output)).filter(|o| !o.is_empty())),
            started_at: Set(truncate(started_at)),
            duration_micros: Set(i64::try_from(report.duration.as_micros()).unwrap_or(i64::MAX)),
            actions: Set(actions as i32),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        if count != current.consecutive_failures {
            let mut m = current.into_active_model();
            m.consecutive_failures = Set(count);
            if disable {
                m.enabled = Set(false);
                m.disabled_reason = Set(error.clone());
            }
            let row = m.update(txn).await?;
            if disable {
                effects::disabled(txn, &row, error.as_deref().unwrap_or("")).await?;
            }
        }
        Ok(true)
    }
}

fn keep(output: &str) -> String {
    if output.len() <= OUTPUT_KEPT {
        return output.to_string();
    }
    let mut end = OUTPUT_KEPT;
    while !output.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[cut at {OUTPUT_KEPT} bytes]", &output[..end])
}

/// Splits runs into waves: the n-th run of each (plugin, conversation) goes in wave n, so
/// runs on one conversation happen in order and each sees the changes of the one before.
fn waves(runs: Vec<Prepared>) -> Vec<Vec<Prepared>> {
    let mut seen: HashMap<(i64, Option<i64>), usize> = HashMap::new();
    let mut out: Vec<Vec<Prepared>> = Vec::new();
    for r in runs {
        let n = seen.entry(r.order_key).or_default();
        if out.len() <= *n {
            out.push(Vec::new());
        }
        out[*n].push(r);
        *n += 1;
    }
    out
}
