//! The job queue's polls read only what they may take. Each lane (plugin runs, everything
//! else) has a partial index over its pending jobs by due time, and running jobs one by lease
//! expiry, so "is anything due?" is an index lookup instead of a scan of every job ever kept
//! (done jobs stay for a retention period: 3 ms per poll with 22,000 rows on PostgreSQL, seen
//! 2,000 times in 17 s of plugin load; docs/benchmarks.md). The scheduler's queries repeat
//! these conditions word for word, [`RUN_KINDS`] and [`SCHEDULED_KINDS`]: both databases use a
//! partial index only for a query that states its condition. They replace `idx_jobs_due`
//! (status, due time), which every job's every status change also had to move, and which
//! SQLite would otherwise prefer; the hourly retention sweep of old done jobs reads the table.
use sea_orm_migration::prelude::*;

pub struct Migration;

/// The plugin runs' lane.
pub const RUN_KINDS: &str = "kind LIKE 'plugin.run.%'";
/// Every other job's lane.
pub const SCHEDULED_KINDS: &str = "kind NOT LIKE 'plugin.run.%'";

const REPLACED: &str = "idx_jobs_due";

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000007_job_lane_indexes"
    }
}

fn indexes() -> [(&'static str, String); 3] {
    [
        (
            "idx_jobs_due_runs",
            format!("ON jobs (due_at, id) WHERE status = 'PENDING' AND {RUN_KINDS}"),
        ),
        (
            "idx_jobs_due_scheduled",
            format!("ON jobs (due_at, id) WHERE status = 'PENDING' AND {SCHEDULED_KINDS}"),
        ),
        (
            "idx_jobs_leases",
            "ON jobs (locked_until) WHERE status = 'RUNNING'".to_string(),
        ),
    ]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(&format!("DROP INDEX {REPLACED}"))
            .await?;
        for (name, definition) in indexes() {
            db.execute_unprepared(&format!("CREATE INDEX {name} {definition}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, _) in indexes() {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {name}"))
                .await?;
        }
        db.execute_unprepared(&format!("CREATE INDEX {REPLACED} ON jobs (status, due_at)"))
            .await?;
        Ok(())
    }
}
