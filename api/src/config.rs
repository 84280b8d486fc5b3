//! One typed configuration, read from flags and environment by the CLI.
use std::net::SocketAddr;
use std::time::Duration;

/// Where the database lives when none is given: an SQLite file, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/confab.db?mode=rwc";

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub listen: SocketAddr,
    pub limits: Limits,
    /// Create a demo workspace when the database has none.
    pub bootstrap_demo: bool,
    /// How often the outbox dispatcher looks for due messages when nothing woke it.
    pub outbox_poll: Duration,
    /// Count SQL statements and serve the count on `GET /debug/statements` (tests and
    /// profiling only; `CONFAB_DEBUG_STATEMENTS=1`).
    pub debug_statements: bool,
    /// Let tests move the clock forward on `POST /debug/clock?advance=SECONDS`
    /// (`CONFAB_TEST_CLOCK=1`; never in production).
    pub test_clock: bool,
    /// How often the scheduler and the plugin worker look for jobs when nothing woke them
    /// and none of theirs falls due sooner.
    pub scheduler_poll: Duration,
    /// The most database connections requests share (`db::default_pool_size` unless set).
    pub db_pool_size: u32,
    /// The most queries sent over HTTP that execute at once; the rest wait their turn
    /// (`default_concurrent_queries` unless set).
    pub max_concurrent_queries: usize,
}

/// Twice the cores, and at least 4: enough to keep the cores busy while some queries wait
/// on the database, few enough that the ones running stay in the processor's caches.
///
/// Every query in flight holds its resolvers' futures, rows and response tree; on 2 cores,
/// 32 of them at once cost the server 18-22% more CPU per inbox response than 4 at a time
/// (docs/benchmarks.md, "Four queries at a time").
pub fn default_concurrent_queries() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(4)
}

/// What a single request may cost before it runs.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 12,
            max_complexity: 5_000,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl Config {
    pub fn new(database_url: Option<String>, listen: SocketAddr) -> Self {
        let database_url = database_url.unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        Config {
            db_pool_size: crate::db::default_pool_size(&database_url),
            database_url,
            listen,
            limits: Limits::default(),
            bootstrap_demo: true,
            outbox_poll: Duration::from_millis(500),
            debug_statements: std::env::var("CONFAB_DEBUG_STATEMENTS").is_ok_and(|v| v == "1"),
            test_clock: std::env::var("CONFAB_TEST_CLOCK").is_ok_and(|v| v == "1"),
            scheduler_poll: Duration::from_secs(1),
            max_concurrent_queries: default_concurrent_queries(),
        }
    }
}
