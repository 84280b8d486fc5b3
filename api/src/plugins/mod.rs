//! Where plugins run. The worker takes queued runs (`plugin.run.*` jobs, queued in the same
//! transaction as the event that caused them, or by a plugin's cron schedule), runs each in
//! a fresh sandbox off the request path and outside any transaction, then applies what the
//! successful runs asked for, records every run and finishes the jobs (deletes them: the run
//! records are their history) in one transaction.
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

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use tokio::sync::{Semaphore, watch};

use confab_plugins::{Compiled, Inspected, Limits, Outcome, RunReport, Runtime};
use entity::{activity, job, plugin, plugin_artifact, plugin_run};

pub use effects::deliver_reminder;

use crate::db::begin_write;
use crate::domain::activities::Actor;
use crate::domain::plugins::{self as admin, DISABLE_AFTER_FAILURES, SCHEDULE_RUN};
use crate::domain::{now, truncate};
use crate::error::{DomainError, DomainResult};
use crate::scheduler::{Lane, Lease, SchedulerHandle, Tick};

const BATCH: i64 = 200;
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
    /// Shared by the batch's runs of this plugin (the row holds the whole upload).
    plugin: Arc<plugin::Model>,
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
            .all(&self.db)
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
            .filter(plugin::Column::Id.is_in(ids))
            .filter(plugin::Column::Enabled.eq(true))
            .filter(plugin::Column::UninstalledAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| (p.id, Arc::new(p)))
            .collect();
        let events = self.events(&claimed).await?;
        let mut ready = Vec::new();
        for j in &claimed {
            match prepare(j, &plugins, &events) {
                Ok(Some(p)) => ready.push(p),
                Ok(None) => self.skip(j).await?,
                Err(e) => self.lease.failed(&self.db, j, &e).await?,
            }
        }
        let prepared_in = t0.elapsed();
        // Each plugin's failure count as this batch moves it.
        let mut counts: HashMap<i64, plugin::Model> = HashMap::new();
        let waves = waves(ready);
        let n_waves = waves.len();
        for wave in waves {
            self.run_wave(wave, &mut counts).await?;
        }
        tracing::debug!(runs = n, waves = n_waves, ?prepared_in, total = ?t0.elapsed(), "plugin batch");
        self.bus.wake();
        self.scheduler.wake();
        Ok(Tick::Ran(n))
    }

    /// The events that woke the claimed runs, loaded with what they refer to (a statement per
    /// kind of row for the whole batch), by activity id.
    async fn events(
        &self,
        claimed: &[job::Model],
    ) -> DomainResult<HashMap<i64, crate::realtime::LoadedActivity>> {
        let ids: Vec<i64> = claimed
            .iter()
            .filter(|j| j.kind != SCHEDULE_RUN)
            .filter_map(activity_of)
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = activity::Entity::find()
            .filter(activity::Column::Id.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(crate::realtime::LoadedActivity::load_many(&self.db, rows)
            .await?
            .into_iter()
            .map(|a| (a.activity.id, a))
            .collect())
    }

    /// A run with nothing left to do: its job is finished (deleted) without a record.
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
    /// records all of it in one transaction.
    async fn run_wave(
        &self,
        wave: Vec<Prepared>,
        counts: &mut HashMap<i64, plugin::Model>,
    ) -> DomainResult<()> {
        let t_run = std::time::Instant::now();
        let read_ahead = self.read_ahead(&wave).await?;
        let mut runs = Vec::with_capacity(wave.len());
        for p in wave {
            if counts.get(&p.plugin.id).is_some_and(|c| !c.enabled) {
                // Switched off earlier in this batch.
                self.skip(&p.job).await?;
                continue;
            }
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
        let ran_in = t_run.elapsed();
        let txn = begin_write(&self.db).await?;
        let mut records = Vec::with_capacity(finished.len());
        let mut moved = std::collections::BTreeMap::new();
        let jobs: Vec<&job::Model> = finished.iter().map(|(p, _, _)| &p.job).collect();
        let ours = match self.lease.done_many(&txn, &jobs).await {
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
                // The database failed us: nothing of this wave stays; each run is retried.
                txn.rollback().await?;
                for (p, _, _) in &finished {
                    self.lease.failed(&self.db, &p.job, &e).await?;
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
        if !records.is_empty() {
            plugin_run::Entity::insert_many(records)
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
}

/// The activity a run's job names, if any.
fn activity_of(j: &job::Model) -> Option<i64> {
    j.payload
        .get("activityId")
        .and_then(serde_json::Value::as_i64)
}

/// What a run needs, from the batch's plugins and events; None when there is nothing to run
/// any more (the plugin was disabled or uninstalled, or the event's row is gone).
fn prepare(
    j: &job::Model,
    plugins: &HashMap<i64, Arc<plugin::Model>>,
    events: &HashMap<i64, crate::realtime::LoadedActivity>,
) -> DomainResult<Option<Prepared>> {
    let id = |key: &str| j.payload.get(key).and_then(serde_json::Value::as_i64);
    let plugin_id =
        id("pluginId").ok_or_else(|| DomainError::Internal("run without pluginId".into()))?;
    let Some(p) = plugins
        .get(&plugin_id)
        .filter(|p| p.workspace_id == j.workspace_id)
        .cloned()
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
        let activity_id =
            activity_of(j).ok_or_else(|| DomainError::Internal("run without activityId".into()))?;
        let Some(loaded) = events
            .get(&activity_id)
            .filter(|a| a.activity.workspace_id == j.workspace_id)
        else {
            return Ok(None);
        };
        (
            events::from_activity(loaded),
            format!("event: {}", loaded.activity.kind),
            (p.id, loaded.activity.conversation_id),
        )
    };
    Ok(Some(Prepared {
        label: label(&p),
        job: j.clone(),
        plugin: p,
        depth,
        trigger,
        order_key,
        event,
    }))
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
            job_id: p.job.id,
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
