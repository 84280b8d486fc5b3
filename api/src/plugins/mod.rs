//! Where plugins run. The worker takes queued runs (`plugin.run.*` jobs, queued in the same
//! transaction as the events that caused them, one job per plugin for all of that
//! transaction's events, or by a plugin's cron schedule), runs each in a fresh sandbox off
//! the request path and outside any transaction, then applies what the successful runs asked
//! for, records every run and moves their jobs on in one transaction: a job whose runs are
//! all recorded is finished (deleted: the run records are its history), one with runs left
//! keeps only those, so a retry never runs a recorded run again.
//!
//! Runs of one plugin on one conversation within a batch go in order, each seeing what the
//! one before it did ("waves"); different conversations run side by side, up to one run per
//! core at a time.
mod effects;
mod events;
mod workspace;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use tokio::sync::{Semaphore, watch};

use confab_plugins::{Compiled, Inspected, Limits, Outcome, RunReport, Runtime};
use entity::positional::SelectRows;
use entity::{activity, job, plugin, plugin_artifact, plugin_run};

pub use effects::deliver_reminder;

use crate::db::begin_write;
use crate::domain::activities::Actor;
use crate::domain::plugins::{self as admin, DISABLE_AFTER_FAILURES, SCHEDULE_RUN};
use crate::domain::scoped::one_of;
use crate::domain::{now, truncate};
use crate::error::{DomainError, DomainResult};
use crate::scheduler::{Lane, Lease, SchedulerHandle, Tick};

/// Jobs claimed at once. A job holds up to an ingest batch's runs (64), so a batch stays
/// within a few thousand runs.
const BATCH: i64 = 32;
/// Run records written per statement (each is a dozen values; SQLite takes 32,766).
const RECORDS_PER_INSERT: usize = 1000;
/// How long a wake-up waits for more events before claiming: a little latency for much
/// fewer, larger transactions under load.
const GATHER: Duration = Duration::from_millis(10);
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
        // One run per core at a time: a run's conversation is read ahead for its wave, so it
        // mostly computes (tens of microseconds), and more at once would only take turns.
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
                .row(db)
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
    /// Shared by the runs a job holds.
    job: Job,
    /// The trail row of the event it runs on; none for a scheduled run.
    activity_id: Option<i64>,
    /// Shared by the batch's runs of this plugin (the row holds the whole upload).
    plugin: Arc<plugin::Model>,
    label: String,
    depth: i64,
    trigger: String,
    /// Runs sharing a key go one after another.
    order_key: (i64, Option<i64>),
    event: confab_plugins::wit::Event,
}

impl Prepared {
    /// Names the run among all of its plugin's runs, the same on a retry: its event, or
    /// its scheduled job.
    fn key(&self) -> String {
        match self.activity_id {
            Some(a) => format!("e{a}"),
            None => self.job.id.to_string(),
        }
    }
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
        let mut changes = self.bus.changes();
        loop {
            let wait = match self.tick().await {
                // A full batch: more are likely waiting.
                Ok(Tick::Ran(n)) if n >= BATCH as usize => continue,
                // Fewer: the next event wakes the worker.
                Ok(Tick::Ran(n)) if n > 0 => self.poll,
                // Nothing was due: a cron run due before the next poll runs when it falls due.
                Ok(tick) => tick.wait(self.poll),
                Err(e) => {
                    tracing::warn!(error = %e, "plugins: running a batch failed; retrying");
                    self.poll
                }
            };
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() {
                        return;
                    }
                    // Let a burst gather for a moment, so it runs and commits as one batch
                    // rather than as many single-run transactions.
                    tokio::time::sleep(GATHER).await;
                    changes.mark_unchanged();
                }
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn ensure_schedules(&self) -> DomainResult<()> {
        let with_crons = plugin::Entity::find()
            .filter(plugin::Column::Enabled.eq(true))
            .filter(plugin::Column::UninstalledAt.is_null())
            .rows(&self.db)
            .await?;
        for p in with_crons {
            admin::schedule_crons(&self.db, &p).await?;
        }
        Ok(())
    }

    /// Claims a batch of runs, runs them, applies and records them.
    pub async fn tick(&self) -> DomainResult<Tick> {
        // A read first: on SQLite the claim (an UPDATE) takes the write lock even when
        // nothing is due, and most events in most workspaces wake no plugin.
        if let Some(idle) = self.lease.idle(&self.db).await? {
            return Ok(idle);
        }
        let claimed = self.lease.claim(&self.db, BATCH).await?;
        if claimed.is_empty() {
            return Ok(Tick::Ran(0));
        }
        let n = claimed.len();
        let t0 = std::time::Instant::now();
        let claimed: Vec<Job> = claimed.into_iter().map(Arc::new).collect();
        // The batch's plugins in one read; each run's event rows read side by side.
        let ids: Vec<i64> = claimed
            .iter()
            .filter_map(|j| {
                j.payload
                    .get("pluginId")
                    .and_then(serde_json::Value::as_i64)
            })
            .collect();
        let plugins: HashMap<i64, Arc<plugin::Model>> = plugin::Entity::find()
            .filter(one_of(&self.db, plugin::Column::Id, ids))
            .filter(plugin::Column::Enabled.eq(true))
            .filter(plugin::Column::UninstalledAt.is_null())
            .rows(&self.db)
            .await?
            .into_iter()
            .map(|p| (p.id, Arc::new(p)))
            .collect();
        let events = self.events(&claimed).await?;
        let mut ready = Vec::new();
        for j in &claimed {
            match prepare(j, &plugins, &events) {
                Ok(runs) if runs.is_empty() => self.skip(j).await?,
                Ok(runs) => ready.extend(runs),
                Err(e) => self.lease.failed(&self.db, j, &e).await?,
            }
        }
        let prepared_in = t0.elapsed();
        let n_runs = ready.len();
        let mut progress = Progress::new(&ready);
        // Each plugin's failure count as this batch moves it.
        let mut counts: HashMap<i64, plugin::Model> = HashMap::new();
        let waves = waves(ready);
        let n_waves = waves.len();
        for wave in waves {
            self.run_wave(wave, &mut progress, &mut counts).await?;
        }
        tracing::debug!(jobs = n, runs = n_runs, waves = n_waves, ?prepared_in, total = ?t0.elapsed(), "plugin batch");
        self.bus.wake();
        self.scheduler.wake();
        Ok(Tick::Ran(n))
    }

    /// The events that woke the claimed runs, loaded with what they refer to (a statement per
    /// kind of row for the whole batch), by activity id.
    async fn events(
        &self,
        claimed: &[Job],
    ) -> DomainResult<HashMap<i64, crate::realtime::LoadedActivity>> {
        let ids: Vec<i64> = claimed
            .iter()
            .filter(|j| j.kind != SCHEDULE_RUN)
            .flat_map(|j| activities_of(j))
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = activity::Entity::find()
            .filter(one_of(&self.db, activity::Column::Id, ids))
            .rows(&self.db)
            .await?;
        Ok(crate::realtime::LoadedActivity::load_many(&self.db, rows)
            .await?
            .into_iter()
            .map(|a| (a.activity.id, a))
            .collect())
    }

    /// A job with nothing left to run: finished (deleted) without a record.
    async fn skip(&self, j: &job::Model) -> DomainResult<()> {
        let txn = self.db.begin().await?;
        self.lease.done(&txn, j).await?;
        txn.commit().await?;
        Ok(())
    }

    /// The snapshots of the conversations a wave's events happened on, read before it runs
    /// (five statements per workspace instead of five per run that asks), by workspace.
    async fn read_ahead(
        &self,
        wave: &[Prepared],
    ) -> DomainResult<HashMap<i64, Arc<HashMap<i64, confab_plugins::wit::Conversation>>>> {
        let mut wanted: HashMap<i64, Vec<i64>> = HashMap::new();
        for p in wave {
            if let (_, Some(conversation)) = p.order_key {
                wanted
                    .entry(p.plugin.workspace_id)
                    .or_default()
                    .push(conversation);
            }
        }
        let mut out = HashMap::with_capacity(wanted.len());
        for (ws, mut ids) in wanted {
            ids.sort_unstable();
            ids.dedup();
            out.insert(
                ws,
                Arc::new(workspace::snapshots(&self.db, ws, &ids).await?),
            );
        }
        Ok(out)
    }

    /// Runs a wave side by side (one sandbox per run, at most one per core), then applies and
    /// records all of it, and moves its jobs on, in one transaction.
    async fn run_wave(
        &self,
        wave: Vec<Prepared>,
        progress: &mut Progress,
        counts: &mut HashMap<i64, plugin::Model>,
    ) -> DomainResult<()> {
        let t_run = std::time::Instant::now();
        // A job that failed earlier in this batch goes back to the queue whole: none of its
        // runs go on here.
        let wave: Vec<Prepared> = wave
            .into_iter()
            .filter(|p| !progress.failed.contains(&p.job.id))
            .collect();
        let read_ahead = self.read_ahead(&wave).await?;
        let mut runs = Vec::with_capacity(wave.len());
        // Runs with nothing left to do (their plugin was switched off earlier in this batch):
        // they leave their job without a record.
        let mut dropped = Vec::new();
        for p in wave {
            if progress.failed.contains(&p.job.id) {
                continue;
            }
            if counts.get(&p.plugin.id).is_some_and(|c| !c.enabled) {
                dropped.push(p);
                continue;
            }
            let compiled = match self.host.compiled(&self.db, &p.plugin).await {
                Ok(c) => c,
                Err(e) => {
                    progress.failed.insert(p.job.id);
                    self.lease.failed(&self.db, &p.job, &e).await?;
                    continue;
                }
            };
            let limits: Limits =
                serde_json::from_value(p.plugin.limits.clone()).unwrap_or_default();
            let workspace = Arc::new(workspace::DbWorkspace::new(
                self.db.clone(),
                p.plugin.workspace_id,
                read_ahead
                    .get(&p.plugin.workspace_id)
                    .cloned()
                    .unwrap_or_default(),
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
        // The runs of a job that failed while this wave was starting are for its retry.
        finished.retain(|(p, _, _)| !progress.failed.contains(&p.job.id));
        dropped.retain(|p| !progress.failed.contains(&p.job.id));
        if finished.is_empty() && dropped.is_empty() {
            return Ok(());
        }
        let ran_in = t_run.elapsed();
        let txn = begin_write(&self.db).await?;
        let mut records = Vec::with_capacity(finished.len());
        let mut moved = std::collections::BTreeMap::new();
        let wave_runs = finished.iter().map(|(p, _, _)| p).chain(dropped.iter());
        let (done, left) = progress.after(wave_runs);
        let ours = match self.move_on(&txn, &done, &left).await {
            Ok(ours) => ours,
            Err(e) => {
                txn.rollback().await?;
                return Err(e);
            }
        };
        // Runs whose job was taken over by another worker are theirs to apply and record.
        let mine: Vec<&Finished> = finished
            .iter()
            .filter(|(p, _, _)| ours.contains(&p.job.id))
            .collect();
        let applied = match apply(&txn, &mine).await {
            Ok(applied) => applied,
            Err(e) => {
                // The database failed us: nothing of this wave stays; its jobs are retried
                // with the runs they held before it.
                txn.rollback().await?;
                for j in done.iter().chain(left.iter().map(|(j, _)| j)) {
                    progress.failed.insert(j.id);
                    self.lease.failed(&self.db, j, &e).await?;
                }
                return Ok(());
            }
        };
        for (run, applied) in mine.iter().zip(applied) {
            let (p, started_at, report) = run;
            let (record, health) = settle(p, *started_at, report, applied, counts);
            records.push(record);
            if health != Health::Unchanged {
                let was = moved.entry(p.plugin.id).or_insert(health);
                *was = (*was).max(health);
            }
        }
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            plugin_run::Entity::insert_many(records.by_ref().take(RECORDS_PER_INSERT))
                .exec_without_returning(&txn)
                .await?;
        }
        // A plugin whose runs all went as its last ones did keeps its row as it is.
        for (id, health) in moved {
            let Some(c) = counts.get(&id) else { continue };
            plugin::Entity::update_many()
                .col_expr(
                    plugin::Column::ConsecutiveFailures,
                    Expr::value(c.consecutive_failures),
                )
                .col_expr(plugin::Column::Enabled, Expr::value(c.enabled))
                .col_expr(
                    plugin::Column::DisabledReason,
                    Expr::value(c.disabled_reason.clone()),
                )
                .filter(plugin::Column::Id.eq(id))
                .exec(&txn)
                .await?;
            if health == Health::SwitchedOff {
                effects::disabled(&txn, c, c.disabled_reason.as_deref().unwrap_or("")).await?;
            }
        }
        txn.commit().await?;
        tracing::debug!(runs = finished.len(), ?ran_in, settled_in = ?t_run.elapsed() - ran_in, "plugin wave");
        Ok(())
    }

    /// Inside the wave's transaction: finishes the jobs whose runs are all recorded and
    /// leaves the others only the runs they have left. Returns the ids still ours.
    async fn move_on(
        &self,
        txn: &DatabaseTransaction,
        done: &[Job],
        left: &[Narrowed],
    ) -> DomainResult<HashSet<i64>> {
        let done: Vec<&job::Model> = done.iter().map(|j| j.as_ref()).collect();
        let mut ours = self.lease.done_many(txn, &done).await?;
        for (j, ids) in left {
            let mut payload = j.payload.clone();
            payload["activityIds"] = serde_json::json!(ids);
            if let Some(p) = payload.as_object_mut() {
                p.remove("activityId");
            }
            if self.lease.narrow(txn, j, payload).await? {
                ours.insert(j.id);
            }
        }
        Ok(ours)
    }
}

/// A claimed job, shared by the runs it holds.
type Job = Arc<job::Model>;
/// A job with runs left after a wave, and the events they run on.
type Narrowed = (Job, Vec<i64>);

/// The runs each of a batch's jobs has left as its waves go by, and the jobs that failed
/// (back in the queue, whole, for a retry).
struct Progress {
    left: HashMap<i64, Vec<Option<i64>>>,
    failed: HashSet<i64>,
}

impl Progress {
    fn new(runs: &[Prepared]) -> Self {
        let mut left: HashMap<i64, Vec<Option<i64>>> = HashMap::new();
        for p in runs {
            left.entry(p.job.id).or_default().push(p.activity_id);
        }
        Progress {
            left,
            failed: HashSet::new(),
        }
    }

    /// Takes a wave's runs off their jobs: the jobs with none left, and the others with the
    /// events they still have to run on.
    fn after<'a>(&mut self, wave: impl Iterator<Item = &'a Prepared>) -> (Vec<Job>, Vec<Narrowed>) {
        let mut touched: HashMap<i64, Job> = HashMap::new();
        for p in wave {
            if let Some(runs) = self.left.get_mut(&p.job.id)
                && let Some(at) = runs.iter().position(|a| *a == p.activity_id)
            {
                runs.remove(at);
            }
            touched.entry(p.job.id).or_insert_with(|| p.job.clone());
        }
        let mut done = Vec::new();
        let mut left = Vec::new();
        for (id, j) in touched {
            match self.left.get(&id) {
                Some(runs) if !runs.is_empty() => {
                    left.push((j, runs.iter().filter_map(|a| *a).collect()));
                }
                _ => done.push(j),
            }
        }
        done.sort_by_key(|j| j.id);
        left.sort_by_key(|(j, _)| j.id);
        (done, left)
    }
}

/// The events a run's job names, in trail order (`activityIds`; a job queued by an earlier
/// version names one, `activityId`).
fn activities_of(j: &job::Model) -> Vec<i64> {
    if let Some(ids) = j.payload.get("activityIds").and_then(|v| v.as_array()) {
        return ids.iter().filter_map(serde_json::Value::as_i64).collect();
    }
    j.payload
        .get("activityId")
        .and_then(serde_json::Value::as_i64)
        .into_iter()
        .collect()
}

/// The runs a job holds, from the batch's plugins and events; none when there is nothing to
/// run any more (the plugin was disabled or uninstalled). A run whose event row is gone
/// is left out.
fn prepare(
    j: &Job,
    plugins: &HashMap<i64, Arc<plugin::Model>>,
    events: &HashMap<i64, crate::realtime::LoadedActivity>,
) -> DomainResult<Vec<Prepared>> {
    let id = |key: &str| j.payload.get(key).and_then(serde_json::Value::as_i64);
    let plugin_id =
        id("pluginId").ok_or_else(|| DomainError::Internal("run without pluginId".into()))?;
    let Some(p) = plugins
        .get(&plugin_id)
        .filter(|p| p.workspace_id == j.workspace_id)
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let depth = id("depth").unwrap_or(1);
    let run = |activity_id, event, trigger, order_key| Prepared {
        label: label(&p),
        job: j.clone(),
        activity_id,
        plugin: p.clone(),
        depth,
        trigger,
        order_key,
        event,
    };
    if j.kind == SCHEDULE_RUN {
        let expr = j
            .payload
            .get("schedule")
            .and_then(|s| s.as_str())
            .unwrap_or("");
        let event = events::scheduled(expr, j.due_at);
        return Ok(vec![run(
            None,
            event,
            format!("schedule: {expr}"),
            (p.id, None),
        )]);
    }
    let ids = activities_of(j);
    if ids.is_empty() {
        return Err(DomainError::Internal("run without activityIds".into()));
    }
    Ok(ids
        .into_iter()
        .filter_map(|activity_id| {
            let loaded = events
                .get(&activity_id)
                .filter(|a| a.activity.workspace_id == j.workspace_id)?;
            Some(run(
                Some(activity_id),
                events::from_activity(loaded),
                format!("event: {}", loaded.activity.kind),
                (p.id, loaded.activity.conversation_id),
            ))
        })
        .collect())
}

/// A run that has finished, with when it started.
type Finished = (Prepared, chrono::DateTime<chrono::Utc>, RunReport);

/// Applies what the wave's successful runs asked for, and puts scheduled runs' next times on
/// the schedule. Per run: None when it asked for nothing, else done or refused.
async fn apply(
    txn: &DatabaseTransaction,
    runs: &[&Finished],
) -> DomainResult<Vec<Option<Result<(), DomainError>>>> {
    for (p, _, _) in runs {
        if p.job.kind == SCHEDULE_RUN {
            admin::schedule_crons(txn, &p.plugin).await?;
        }
    }
    let asks = |r: &Finished| r.2.outcome == Outcome::Ok && !r.2.effects.is_empty();
    let actors: Vec<(&Prepared, &[confab_plugins::Effect], Actor)> = runs
        .iter()
        .filter(|r| asks(r))
        .map(|(p, _, report)| {
            let actor = Actor::Plugin {
                id: p.plugin.id,
                label: p.label.clone(),
                depth: p.depth,
            };
            (p, report.effects.as_slice(), actor)
        })
        .collect();
    let asked: Vec<effects::Asked<'_>> = actors
        .iter()
        .map(|(p, effects, actor)| effects::Asked {
            plugin: &p.plugin,
            actor,
            run: p.key(),
            effects,
        })
        .collect();
    let mut verdicts = effects::apply_all(txn, &asked).await?.into_iter();
    Ok(runs
        .iter()
        .map(|r| if asks(r) { verdicts.next() } else { None })
        .collect())
}

/// What a run did to its plugin's health, least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Health {
    /// The failure count stays as it was (an OK run after OK runs).
    Unchanged,
    /// The failure count moved (a failure, or the first OK run after failures).
    Counted,
    /// The run's failure switched the plugin off.
    SwitchedOff,
}

/// A run's record, and what it did to its plugin's health: `applied` is what became of its
/// effects; `current` keeps each plugin's failure count as this batch moves it.
fn settle(
    p: &Prepared,
    started_at: chrono::DateTime<chrono::Utc>,
    report: &RunReport,
    applied: Option<Result<(), DomainError>>,
    current: &mut HashMap<i64, plugin::Model>,
) -> (plugin_run::ActiveModel, Health) {
    let mut outcome = report.outcome;
    let mut error = report.error.clone();
    let mut actions = 0;
    match applied {
        Some(Ok(())) => actions = report.effects.len(),
        Some(Err(refused)) => {
            // The plugin asked for something the rules refuse: nothing was written.
            outcome = Outcome::Error;
            error = Some(format!("could not apply its changes: {refused}"));
        }
        None => {}
    }
    let plugin = current
        .entry(p.plugin.id)
        .or_insert_with(|| (*p.plugin).clone());
    let before = plugin.consecutive_failures;
    let mut health = Health::Unchanged;
    if outcome == Outcome::Ok {
        plugin.consecutive_failures = 0;
    } else {
        plugin.consecutive_failures += 1;
        if plugin.consecutive_failures >= DISABLE_AFTER_FAILURES && plugin.enabled {
            let why = format!(
                "{}; the plugin was disabled after {DISABLE_AFTER_FAILURES} failed runs in a row",
                error.unwrap_or_default()
            );
            plugin.enabled = false;
            plugin.disabled_reason = Some(why.clone());
            error = Some(why);
            health = Health::SwitchedOff;
        }
    }
    if health == Health::Unchanged && plugin.consecutive_failures != before {
        health = Health::Counted;
    }
    let record = plugin_run::ActiveModel {
        workspace_id: Set(p.plugin.workspace_id),
        plugin_id: Set(p.plugin.id),
        trigger: Set(p.trigger.clone()),
        outcome: Set(outcome.as_str().to_string()),
        error: Set(error),
        output: Set(Some(keep(&report.output)).filter(|o| !o.is_empty())),
        started_at: Set(truncate(started_at)),
        duration_micros: Set(i64::try_from(report.duration.as_micros()).unwrap_or(i64::MAX)),
        host_micros: Set(i64::try_from(report.host_time.as_micros()).unwrap_or(i64::MAX)),
        actions: Set(actions as i32),
        ..Default::default()
    };
    (record, health)
}

/// How a plugin appears in the activity trail.
fn label(p: &plugin::Model) -> String {
    format!("{} (plugin)", p.name)
}

/// An id a plugin handed over (the API's opaque ids) as a row number of `kind`.
fn row_id(id: &str, kind: &str) -> DomainResult<i64> {
    crate::ids::decode(&async_graphql::ID(id.to_string()), kind, "id")
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
