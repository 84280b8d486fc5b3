//! Confab's schema, one migration per step, applied in order on SQLite and PostgreSQL alike.
pub use sea_orm_migration::prelude::*;

mod m20261125_000001_domain;
mod m20261125_000002_message_search;
mod m20261125_000003_event_notify;
mod m20261125_000004_plugin_artifacts;
mod m20261126_000005_plugin_run_host_time;
mod m20261130_000006_open_count_index;
mod m20261130_000007_job_lane_indexes;
mod m20261130_000008_conversation_counts;
mod m20261201_000009_lighter_write_indexes;
mod m20261207_000010_batched_event_notify;

pub use m20261130_000007_job_lane_indexes::{RUN_KINDS, SCHEDULED_KINDS};
pub use m20261130_000008_conversation_counts::TABLE as CONVERSATION_COUNT_DELTAS;
pub use m20261201_000009_lighter_write_indexes::{STARRED, UNREAD};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let steps: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(m20261125_000001_domain::Migration),
            Box::new(m20261125_000002_message_search::Migration),
            Box::new(m20261125_000003_event_notify::Migration),
            Box::new(m20261125_000004_plugin_artifacts::Migration),
            Box::new(m20261126_000005_plugin_run_host_time::Migration),
            Box::new(m20261130_000006_open_count_index::Migration),
            Box::new(m20261130_000007_job_lane_indexes::Migration),
            Box::new(m20261130_000008_conversation_counts::Migration),
            Box::new(m20261201_000009_lighter_write_indexes::Migration),
            Box::new(m20261207_000010_batched_event_notify::Migration),
        ];
        steps
            .into_iter()
            .map(|step| Box::new(InTransaction(step)) as Box<dyn MigrationTrait>)
            .collect()
    }
}

/// A migration applied in one transaction on SQLite too, with its record, as on PostgreSQL:
/// one that fails leaves none of its steps behind, and the next start runs it from the top.
/// (sea-orm-migration runs SQLite's migrations without one, each statement on whichever
/// pooled connection is free; an index dropped on one connection was then still there for
/// the next, which refused to create one of its name.)
struct InTransaction(Box<dyn MigrationTrait>);

impl MigrationName for InTransaction {
    fn name(&self) -> &str {
        self.0.name()
    }
}

#[async_trait::async_trait]
impl MigrationTrait for InTransaction {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.up(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.0.down(manager).await
    }
}
