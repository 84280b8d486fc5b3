//! Automation plugins, as admins manage them: install (checked and precompiled before anything
//! is stored), enable/disable, uninstall; and the hook that queues a run for each committed
//! event a plugin asked for. Running them is `crate::plugins`.
use std::collections::BTreeMap;
use std::sync::Arc;

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set,
};
use serde_json::json;

use confab_plugins::Limits;
use entity::positional::SelectRows;
use entity::{activity, plugin, plugin_artifact};

use crate::db::begin_write;
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::scoped::one_of;
use crate::domain::{ActivityKind, Role, Scope, now, scoped};
use crate::error::{DomainError, DomainResult};
use crate::plugins::PluginHost;
use crate::scheduler::jobs;

/// Job kinds. Runs (`plugin.run.*`) go to the plugin worker; reminders to the scheduler.
pub const EVENT_RUN: &str = "plugin.run.event";
pub const SCHEDULE_RUN: &str = "plugin.run.schedule";
pub const RUN_KINDS: &str = "plugin.run.";
pub const REMINDER: &str = "plugin.reminder";

/// A plugin-caused event at this depth runs no further plugins: A's task may wake B, B's
/// note may wake C, and there it stops.
pub const MAX_DEPTH: i64 = 3;
/// A plugin whose runs fail this many times in a row is disabled.
pub const DISABLE_AFTER_FAILURES: i32 = 5;
/// The largest component an admin may upload.
pub const MAX_UPLOAD_BYTES: usize = 8 << 20;

/// The event kinds a plugin may subscribe to.
pub fn known_events() -> Vec<&'static str> {
    ActivityKind::ALL.iter().map(|k| k.as_str()).collect()
}

pub struct Install {
    /// The name admins see; the plugin's own manifest name when absent.
    pub name: Option<String>,
    pub wasm: Vec<u8>,
    pub enabled: bool,
    /// Overrides of the default limits, each at most its ceiling.
    pub limits: Option<Limits>,
}

pub fn installed(workspace_id: i64) -> sea_orm::Select<plugin::Entity> {
    plugin::Entity::find()
        .filter(plugin::Column::WorkspaceId.eq(workspace_id))
        .filter(plugin::Column::UninstalledAt.is_null())
}

pub async fn install(
    db: &DatabaseConnection,
    host: &Arc<PluginHost>,
    scope: &Scope,
    req: Install,
) -> DomainResult<plugin::Model> {
    scope.require_role(&[Role::Admin], "install plugins")?;
    let asked = req
        .name
        .as_deref()
        .map(|n| crate::domain::required_text("name", n, 64))
        .transpose()?;
    if req.wasm.len() > MAX_UPLOAD_BYTES {
        return Err(DomainError::PluginInvalid(format!(
            "the upload is {} bytes; plugins may be at most {MAX_UPLOAD_BYTES} bytes",
            req.wasm.len()
        )));
    }
    let limits = req.limits.unwrap_or_default();
    limits
        .check()
        .map_err(|reason| DomainError::invalid("limits", reason))?;
    let inspected = host.inspect(req.wasm.clone()).await?;
    let m = &inspected.manifest;
    let name = asked.unwrap_or_else(|| m.name.clone());
    let taken = installed(scope.workspace_id)
        .filter(plugin::Column::Name.eq(&name))
        .row(db)
        .await?;
    if taken.is_some() {
        return Err(DomainError::Conflict(format!(
            "a plugin named {name} is installed; uninstall it first"
        )));
    }
    let txn = begin_write(db).await?;
    let at = now();
    let row = plugin::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        name: Set(name),
        version: Set(m.version.clone()),
        enabled: Set(req.enabled),
        events: Set(json!(m.events)),
        schedules: Set(json!(m.schedules)),
        sha256: Set(inspected.sha256.clone()),
        wasm: Set(req.wasm),
        limits: Set(serde_json::to_value(&limits).unwrap_or_default()),
        consecutive_failures: Set(0),
        installed_at: Set(at),
        installed_by_id: Set(Some(scope.user_id)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    store_artifact(
        &txn,
        &inspected.sha256,
        host.engine_key(),
        inspected.artifact,
    )
    .await?;
    if row.enabled {
        schedule_crons(&txn, &row).await?;
    }
    admin_activity(
        &txn,
        scope,
        &row,
        format!(
            "Plugin {} {} installed{}",
            row.name,
            row.version,
            if row.enabled { "" } else { " (disabled)" }
        ),
    )
    .await?;
    txn.commit().await?;
    host.remember(row.id, &row.sha256, inspected.compiled);
    Ok(row)
}

/// Keeps a precompiled artifact; the same bytes compiled twice keep the first.
pub async fn store_artifact(
    db: &impl ConnectionTrait,
    sha256: &str,
    engine: &str,
    artifact: Vec<u8>,
) -> DomainResult<()> {
    plugin_artifact::Entity::insert(plugin_artifact::ActiveModel {
        sha256: Set(sha256.to_string()),
        engine: Set(engine.to_string()),
        artifact: Set(artifact),
        created_at: Set(now()),
    })
    .on_conflict(
        OnConflict::columns([
            plugin_artifact::Column::Sha256,
            plugin_artifact::Column::Engine,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

pub async fn set_enabled(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    enabled: bool,
) -> DomainResult<plugin::Model> {
    scope.require_role(&[Role::Admin], "manage plugins")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, installed(scope.workspace_id), id).await?;
    if current.enabled == enabled {
        txn.commit().await?;
        return Ok(current);
    }
    let mut m = current.into_active_model();
    m.enabled = Set(enabled);
    if enabled {
        m.consecutive_failures = Set(0);
        m.disabled_reason = Set(None);
    }
    let row = m.update(&txn).await?;
    if enabled {
        schedule_crons(&txn, &row).await?;
    } else {
        jobs::cancel(&txn, row.workspace_id, &cron_prefix(row.id)).await?;
    }
    let verb = if enabled { "enabled" } else { "disabled" };
    admin_activity(&txn, scope, &row, format!("Plugin {} {verb}", row.name)).await?;
    txn.commit().await?;
    Ok(row)
}

/// Uninstalls: the plugin stops running and disappears from `plugins`; its runs and the
/// changes it made stay in the trail.
pub async fn uninstall(db: &DatabaseConnection, scope: &Scope, id: i64) -> DomainResult<i64> {
    scope.require_role(&[Role::Admin], "manage plugins")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, installed(scope.workspace_id), id).await?;
    let mut m = current.into_active_model();
    m.enabled = Set(false);
    m.uninstalled_at = Set(Some(now()));
    let row = m.update(&txn).await?;
    for prefix in [
        cron_prefix(row.id),
        reminder_prefix(row.id),
        run_prefix(row.id),
    ] {
        jobs::cancel(&txn, row.workspace_id, &prefix).await?;
    }
    admin_activity(
        &txn,
        scope,
        &row,
        format!("Plugin {} uninstalled", row.name),
    )
    .await?;
    txn.commit().await?;
    Ok(row.id)
}

async fn admin_activity(
    db: &impl ConnectionTrait,
    scope: &Scope,
    p: &plugin::Model,
    summary: String,
) -> DomainResult<()> {
    activities::record(
        db,
        NewActivity {
            workspace_id: scope.workspace_id,
            conversation_id: None,
            kind: ActivityKind::SystemEvent,
            actor: &Actor::user(scope),
            summary,
            data: json!({ "pluginId": p.id, "version": p.version, "enabled": p.enabled }),
        },
    )
    .await?;
    Ok(())
}

pub fn cron_prefix(plugin_id: i64) -> String {
    format!("plugin.cron:{plugin_id}:")
}

pub fn reminder_prefix(plugin_id: i64) -> String {
    format!("plugin.reminder:{plugin_id}:")
}

fn run_prefix(plugin_id: i64) -> String {
    format!("plugin.run:{plugin_id}:")
}

/// Queues a run of every enabled plugin of the workspace that asked for each row's kind (for
/// activities on a conversation), inside the transaction that wrote them: the runs happen if
/// and only if the change commits. Each row comes with the actor that caused it: a plugin's
/// own changes do not wake it again, and chains stop at [`MAX_DEPTH`].
///
/// The runs a transaction queues for one plugin share one job (`activityIds`, in trail
/// order): an ingest batch of many messages costs each listening plugin one queue row, not
/// one per message. The worker finishes the job once its last run is recorded.
pub async fn enqueue_runs(
    db: &impl ConnectionTrait,
    rows: &[(&activity::Model, &Actor)],
) -> DomainResult<()> {
    // Plugins follow conversations: workspace-level entries (settings, plugin admin) wake
    // none; nor does a change at the end of a long cascade.
    let rows: Vec<(&activity::Model, (Option<i64>, i64))> = rows
        .iter()
        .map(|(row, actor)| (*row, actor.cascade()))
        .filter(|(row, (_, depth))| row.conversation_id.is_some() && *depth < MAX_DEPTH)
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut workspaces: Vec<i64> = rows.iter().map(|(r, _)| r.workspace_id).collect();
    workspaces.sort_unstable();
    workspaces.dedup();
    let listening: Vec<(i64, i64, serde_json::Value)> = plugin::Entity::find()
        .filter(one_of(db, plugin::Column::WorkspaceId, workspaces))
        .filter(plugin::Column::UninstalledAt.is_null())
        .filter(plugin::Column::Enabled.eq(true))
        .select_only()
        .column(plugin::Column::WorkspaceId)
        .column(plugin::Column::Id)
        .column(plugin::Column::Events)
        .into_tuple()
        .all(db)
        .await?;
    let due_at = now();
    // Per plugin and cascade depth (a run's actor carries its depth), the rows in order.
    let mut runs: BTreeMap<(i64, i64, i64), Vec<i64>> = BTreeMap::new();
    for (workspace_id, plugin_id, events) in listening {
        for (row, (source, depth)) in rows.iter().filter(|(r, _)| r.workspace_id == workspace_id) {
            // A plugin does not wake itself.
            if *source == Some(plugin_id) {
                continue;
            }
            let wants = events
                .as_array()
                .is_some_and(|e| e.iter().any(|k| k.as_str() == Some(row.kind.as_str())));
            if wants {
                runs.entry((workspace_id, plugin_id, depth + 1))
                    .or_default()
                    .push(row.id);
            }
        }
    }
    let jobs = runs
        .into_iter()
        .map(|((workspace_id, plugin_id, depth), mut ids)| {
            ids.sort_unstable();
            (workspace_id, plugin_id, depth, ids)
        })
        .map(|(workspace_id, plugin_id, depth, ids)| jobs::Occurrence {
            workspace_id,
            kind: EVENT_RUN,
            // An activity wakes a plugin once, so its first row names the job.
            key: format!("{}{}", run_prefix(plugin_id), ids[0]),
            due_at,
            payload: json!({ "pluginId": plugin_id, "activityIds": ids, "depth": depth }),
        })
        .collect();
    jobs::schedule_many(db, jobs).await
}

/// Puts each of the plugin's cron schedules' next firing on the schedule (in the workspace's
/// time zone), unless one is already pending. Missed firings run once, like the digests.
pub async fn schedule_crons(db: &impl ConnectionTrait, p: &plugin::Model) -> DomainResult<()> {
    let schedules: Vec<String> = serde_json::from_value(p.schedules.clone()).unwrap_or_default();
    if schedules.is_empty() {
        return Ok(());
    }
    let ws = entity::workspace::Entity::find_by_id(p.workspace_id)
        .row(db)
        .await?
        .ok_or(DomainError::NotFound("workspace"))?;
    let tz: chrono_tz::Tz = ws.time_zone.parse().unwrap_or(chrono_tz::UTC);
    for (index, expr) in schedules.iter().enumerate() {
        let prefix = format!("{}{index}:", cron_prefix(p.id));
        let pending = entity::job::Entity::find()
            .filter(entity::job::Column::WorkspaceId.eq(p.workspace_id))
            .filter(entity::job::Column::UniqueKey.starts_with(&prefix))
            .filter(entity::job::Column::Status.is_in(["PENDING", "RUNNING"]))
            .row(db)
            .await?;
        if pending.is_some() {
            continue;
        }
        let schedule = crate::scheduler::cron::parse(expr)?;
        let Some(next) = crate::scheduler::cron::next_after(&schedule, tz, now()) else {
            continue;
        };
        jobs::schedule(
            db,
            p.workspace_id,
            SCHEDULE_RUN,
            &format!("{prefix}{}", next.timestamp_micros()),
            next,
            json!({ "pluginId": p.id, "schedule": expr, "index": index, "depth": 1 }),
        )
        .await?;
    }
    Ok(())
}
