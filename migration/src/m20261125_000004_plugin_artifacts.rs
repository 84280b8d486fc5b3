//! Plugins, step two: precompiled components kept by content hash and engine (so restarts and
//! other replicas do not recompile), who installed each plugin, and which plugin wrote a note.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000004_plugin_artifacts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("plugin_artifacts")
                    .col(string("sha256"))
                    .col(string("engine"))
                    .col(blob("artifact"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("sha256").col("engine"))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("plugins")
                    .add_column(big_integer_null("installed_by_id"))
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("notes")
                    .add_column(big_integer_null("plugin_id"))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_plugins_workspace_name")
                    .table("plugins")
                    .col("workspace_id")
                    .col("name")
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_plugins_workspace_name")
                    .table("plugins")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("notes")
                    .drop_column("plugin_id")
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("plugins")
                    .drop_column("installed_by_id")
                    .take(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("plugin_artifacts").take())
            .await
    }
}
