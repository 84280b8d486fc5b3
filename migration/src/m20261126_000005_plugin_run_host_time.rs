//! Plugin runs record how much of their duration went to host lookups (database reads), so
//! the sandbox's own cost (duration minus host time) is visible per run.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000005_plugin_run_host_time"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("plugin_runs")
                    .add_column(big_integer("host_micros").default(0))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("plugin_runs")
                    .drop_column("host_micros")
                    .take(),
            )
            .await
    }
}
