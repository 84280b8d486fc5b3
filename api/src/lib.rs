//! Confab's server as a library: `main.rs` parses the CLI and calls in here; tests can start the
//! same app in-process.
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod outbox;
pub mod plugins;
pub mod realtime;
pub mod scheduler;
pub mod seed;
pub mod turns;

use std::sync::Arc;

use anyhow::Context as _;
use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::outbox::{Dispatcher, DispatcherHandle, LogAdapter};

/// Parsed GraphQL documents kept for reuse: room for every query a few kinds of client send.
/// How long shutdown waits for open WebSockets to send their close frames.
const SOCKETS_CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
const DOCUMENTS_KEPT: std::num::NonZeroUsize = std::num::NonZeroUsize::new(256).unwrap();

/// Connects, migrates, bootstraps a demo workspace on an empty database, then serves until
/// SIGINT/SIGTERM; in-flight requests finish before it returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let mut db = db::connect_pool(&config.database_url, config.db_pool_size)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact(&config.database_url)
            )
        })?;
    db::migrate(&db)
        .await
        .context("cannot migrate the database")?;
    if config.bootstrap_demo
        && let Some(demo) = domain::workspaces::ensure_demo(&db).await?
    {
        tracing::info!(
            workspace = "demo",
            "created the demo workspace on an empty database"
        );
        eprintln!(
            "Empty database: created workspace `demo` with admin admin@demo.confab.local.\n\
                 Its admin token (shown once): {}\n\
                 More tokens: confab token create --workspace demo --email you@example.com --role agent",
            demo.token
        );
    }
    // Background work (event source, outbox) runs on a handle cloned before the statement
    // counter is set, so /debug/statements counts what requests cost and nothing else.
    let background_db = db.clone();
    let statements = config.debug_statements.then(|| {
        let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
        count_statements(&mut db, &counter);
        tracing::warn!("counting SQL statements on /debug/statements (CONFAB_DEBUG_STATEMENTS)");
        counter
    });
    // The ingest writer's connections: on PostgreSQL its own two, opened from its thread (one
    // batch written while the one before it commits); on SQLite the shared pool (one writer
    // either way, and `sqlite::memory:` stays one database). Its statements are a request's,
    // and counted as such.
    let ingest_db = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let mut own = db::connect_lazy(&config.database_url, 2).await?;
            if let Some(counter) = &statements {
                count_statements(&mut own, counter);
            }
            own
        }
        _ => db.clone(),
    };
    let ingest = ingest::Ingest::start(ingest_db).context("cannot start the ingest writer")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let sockets = tokio_util::task::TaskTracker::new();
    let bus = realtime::Bus::default();
    bus.start(
        background_db.clone(),
        config.database_url.clone(),
        shutdown_rx.clone(),
    );
    let scheduler_handle = scheduler::SchedulerHandle::default();
    let plugin_host = plugins::PluginHost::new()
        .map_err(|e| anyhow::anyhow!("cannot start the plugin runtime: {e}"))?;
    let (mut router, dispatcher) = app(
        Services {
            db,
            background: background_db.clone(),
            ingest,
            bus: bus.clone(),
            scheduler: scheduler_handle.clone(),
            plugins: plugin_host.clone(),
            shutdown: shutdown_rx.clone(),
            sockets: sockets.clone(),
        },
        &config,
    );
    let plugin_db = db::connect_pool(&config.database_url, 4)
        .await
        .context("cannot open the plugin worker's connections")?;
    let plugin_worker = plugins::Worker::new(
        plugin_db,
        plugin_host,
        bus.clone(),
        scheduler_handle.clone(),
        config.scheduler_poll,
    );
    let plugin_worker = tokio::spawn(plugin_worker.run(shutdown_rx.clone()));
    let scheduler = scheduler::Scheduler::new(
        background_db,
        scheduler_handle.clone(),
        config.scheduler_poll,
        bus,
    );
    let scheduler = tokio::spawn(scheduler.run(shutdown_rx.clone()));
    if config.test_clock {
        tracing::warn!(
            "test clock on: POST /debug/clock?advance=SECONDS moves time (CONFAB_TEST_CLOCK)"
        );
        router = router.route(
            "/debug/clock",
            axum::routing::get(|| async { domain::now().to_rfc3339() }).post(
                move |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, i64>,
                >| {
                    let handle = scheduler_handle.clone();
                    async move {
                        let by = chrono::Duration::seconds(q.get("advance").copied().unwrap_or(0))
                            + chrono::Duration::milliseconds(
                                q.get("advance_ms").copied().unwrap_or(0),
                            );
                        domain::clock::advance(by);
                        handle.wake();
                        domain::now().to_rfc3339()
                    }
                },
            ),
        );
    }
    if let Some(counter) = statements {
        router = router.route(
            "/debug/statements",
            axum::routing::get(move || async move {
                counter
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .to_string()
            }),
        );
    }
    let dispatcher = tokio::spawn(dispatcher.run(shutdown_rx));
    tracing::info!(listen = %listener.local_addr()?, "serving GraphQL on /graphql");
    println!(
        "Confab listening on http://{}/graphql",
        listener.local_addr()?
    );
    let signal = async move {
        shutdown_signal().await;
        // Tell WebSockets and background tasks first, so open sockets close and the
        // server can finish its in-flight requests.
        let _ = shutdown_tx.send(true);
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(signal)
        .await
        .context("server error")?;
    // Upgraded sockets are not the server's connections any more: wait for each to have
    // sent its close frame, or the process could exit first and reset them.
    sockets.close();
    if tokio::time::timeout(SOCKETS_CLOSE_WITHIN, sockets.wait())
        .await
        .is_err()
    {
        tracing::warn!("some WebSockets did not close in time");
    }
    let _ = dispatcher.await;
    let _ = scheduler.await;
    let _ = plugin_worker.await;
    Ok(())
}

/// Counts `db`'s statements on `counter` and logs each (target `confab::statements`).
fn count_statements(db: &mut DatabaseConnection, counter: &Arc<std::sync::atomic::AtomicU64>) {
    let c = counter.clone();
    db.set_metric_callback(move |info| {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(target: "confab::statements", micros = info.elapsed.as_micros() as u64, sql = %info.statement.sql, "statement");
    });
}

/// What the router and the outbox dispatcher are built from.
pub struct Services {
    /// Requests' connections (counted on /debug/statements when asked).
    pub db: DatabaseConnection,
    /// The dispatcher's connections.
    pub background: DatabaseConnection,
    pub ingest: ingest::Ingest,
    pub bus: realtime::Bus,
    pub scheduler: scheduler::SchedulerHandle,
    pub plugins: Arc<plugins::PluginHost>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The open WebSockets, so shutdown can wait for their "going away" to be sent.
    pub sockets: tokio_util::task::TaskTracker,
}

/// The router and the outbox dispatcher for an open, migrated database.
pub fn app(services: Services, config: &Config) -> (axum::Router, Dispatcher) {
    let Services {
        db,
        background,
        ingest,
        bus,
        scheduler,
        plugins,
        shutdown,
        sockets,
    } = services;
    let handle = DispatcherHandle::default();
    let state = Arc::new(graphql::State {
        db: db.clone(),
        dispatcher: handle.clone(),
        ingest,
        bus: bus.clone(),
        scheduler,
        plugins,
        tokens: Default::default(),
    });
    let schema = graphql::build(state.clone(), &config.limits);
    let router = http::router(
        http::AppState {
            schema,
            state,
            shutdown,
            sockets,
            max_body_bytes: config.limits.max_body_bytes,
            documents: Arc::new(graphql::documents::Documents::new(DOCUMENTS_KEPT)),
            queries: turns::Turns::new(config.max_concurrent_queries),
        },
        config.limits.max_body_bytes,
    );
    let dispatcher = Dispatcher::new(
        background,
        Arc::new(LogAdapter),
        handle,
        config.outbox_poll,
        bus,
    );
    (router, dispatcher)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
