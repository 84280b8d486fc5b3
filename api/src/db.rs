//! Connecting to SQLite or PostgreSQL, migrating, and opening write transactions that
//! behave the same on both.
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_pool(url, default_pool_size(url)).await
}

/// Request connections when none are configured. On PostgreSQL more connections than the
/// database has cores to run them only queue inside the database: on 2 cores the inbox
/// benchmark served 15% more with 6 than with 32, and ingest 10-25% more with 6 or 12, with
/// lower tails; 10 is also what sqlx and node-postgres default to.
pub fn default_pool_size(url: &str) -> u32 {
    if url.starts_with("sqlite:") { 8 } else { 10 }
}

/// A pool of at most `max` connections: background workers get their own, so requests
/// waiting on the write lock never starve them of connections (and the other way round).
pub async fn connect_pool(url: &str, max: u32) -> Result<DatabaseConnection, DbErr> {
    Database::connect(options(url, max)?).await
}

/// A pool of at most `max` connections opened on first use, each in the runtime that first
/// uses it: the ingest writer's, on its own thread (`ingest.rs`).
pub async fn connect_lazy(url: &str, max: u32) -> Result<DatabaseConnection, DbErr> {
    let mut opts = options(url, max)?;
    opts.connect_lazy(true);
    Database::connect(opts).await
}

fn options(url: &str, max: u32) -> Result<ConnectOptions, DbErr> {
    if let Some(path) = sqlite_file(url)
        && let Some(dir) = std::path::Path::new(&path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // WAL lets readers run beside the one writer; writers queue on the busy timeout.
        opts.max_connections(max).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    } else {
        opts.max_connections(max);
    }
    Ok(opts)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`), so concurrent writers wait their turn instead of failing on upgrade.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            db.begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
        }
        _ => db.begin().await,
    }
}

fn sqlite_file(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// A fresh, migrated SQLite database for the library's own tests, removed when dropped.
#[cfg(test)]
pub mod testing {
    use sea_orm::{
        ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait,
    };

    use crate::domain::Scope;

    pub struct TestDb {
        pub db: DatabaseConnection,
        /// The admin of workspace "acme".
        pub admin: Scope,
        dir: std::path::PathBuf,
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// SQLite's plan for `query`, a line per step. A plan reads no table, so a pooled
    /// connection that last read before a migration would plan with the schema it had then;
    /// a read in the same transaction renews it.
    pub async fn sqlite_plan(
        db: &DatabaseConnection,
        query: Statement,
    ) -> Result<Vec<String>, DbErr> {
        let explain = Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!("EXPLAIN QUERY PLAN {}", query.sql),
            query.values.map(|v| v.0).unwrap_or_default(),
        );
        let txn = db.begin().await?;
        txn.execute_unprepared("SELECT count(*) FROM sqlite_master")
            .await?;
        let rows = txn.query_all_raw(explain).await?;
        txn.commit().await?;
        rows.iter()
            .map(|row| row.try_get::<String>("", "detail"))
            .collect()
    }

    pub async fn workspace() -> TestDb {
        let dir = std::env::temp_dir().join(format!("confab-unit-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let db = super::connect(&format!("sqlite://{}?mode=rwc", dir.join("t.db").display()))
            .await
            .expect("connect");
        super::migrate(&db).await.expect("migrate");
        let boot = crate::domain::workspaces::bootstrap(&db, "acme", "a@acme.test")
            .await
            .expect("bootstrap");
        let admin = crate::domain::auth::authenticate(&db, Some(&boot.token))
            .await
            .expect("the admin's token");
        TestDb { db, admin, dir }
    }
}
