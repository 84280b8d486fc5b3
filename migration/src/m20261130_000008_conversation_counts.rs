//! A workspace's conversations counted by status, kept by the database as they change: the
//! inbox's `totalCount` (its open conversations) becomes a sum of a few rows instead of a
//! count of thousands (docs/benchmarks.md).
//!
//! Triggers append a signed delta per change (a new conversation, a status that moved, a
//! deleted one), so every writer is covered, the bulk seed and cascades included, in the
//! writer's own transaction. Appending never contends: two transactions creating
//! conversations in one workspace do not wait on each other as they would on one counter
//! row. The server folds a workspace's deltas into one row per status when they pile up.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000008_conversation_counts"
    }
}

pub const TABLE: &str = "conversation_count_deltas";

/// PostgreSQL: one delta row per workspace and status per statement for inserts and deletes
/// (transition tables), one pair per row whose status moved (the `WHEN` clause is checked
/// without calling the function, so the ingest's updates of other columns cost nothing).
const POSTGRES: &[&str] = &[
    "CREATE FUNCTION confab_count_inserted_conversations() RETURNS trigger AS $$
     BEGIN
       INSERT INTO conversation_count_deltas (workspace_id, status, delta)
       SELECT workspace_id, status, COUNT(*) FROM inserted GROUP BY workspace_id, status;
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE FUNCTION confab_count_deleted_conversations() RETURNS trigger AS $$
     BEGIN
       INSERT INTO conversation_count_deltas (workspace_id, status, delta)
       SELECT workspace_id, status, -COUNT(*) FROM deleted GROUP BY workspace_id, status;
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE FUNCTION confab_count_moved_conversation() RETURNS trigger AS $$
     BEGIN
       INSERT INTO conversation_count_deltas (workspace_id, status, delta)
       VALUES (OLD.workspace_id, OLD.status, -1), (NEW.workspace_id, NEW.status, 1);
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER conversations_count_insert AFTER INSERT ON conversations
     REFERENCING NEW TABLE AS inserted
     FOR EACH STATEMENT EXECUTE FUNCTION confab_count_inserted_conversations()",
    "CREATE TRIGGER conversations_count_delete AFTER DELETE ON conversations
     REFERENCING OLD TABLE AS deleted
     FOR EACH STATEMENT EXECUTE FUNCTION confab_count_deleted_conversations()",
    "CREATE TRIGGER conversations_count_move AFTER UPDATE OF status, workspace_id ON conversations
     FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                        OR OLD.workspace_id IS DISTINCT FROM NEW.workspace_id)
     EXECUTE FUNCTION confab_count_moved_conversation()",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS conversations_count_move ON conversations",
    "DROP TRIGGER IF EXISTS conversations_count_delete ON conversations",
    "DROP TRIGGER IF EXISTS conversations_count_insert ON conversations",
    "DROP FUNCTION IF EXISTS confab_count_moved_conversation()",
    "DROP FUNCTION IF EXISTS confab_count_deleted_conversations()",
    "DROP FUNCTION IF EXISTS confab_count_inserted_conversations()",
];

/// SQLite has row triggers only; its writes are in-process and serialized anyway.
const SQLITE: &[&str] = &[
    "CREATE TRIGGER conversations_count_insert AFTER INSERT ON conversations BEGIN
       INSERT INTO conversation_count_deltas (workspace_id, status, delta)
       VALUES (NEW.workspace_id, NEW.status, 1);
     END",
    "CREATE TRIGGER conversations_count_delete AFTER DELETE ON conversations BEGIN
       INSERT INTO conversation_count_deltas (workspace_id, status, delta)
       VALUES (OLD.workspace_id, OLD.status, -1);
     END",
    "CREATE TRIGGER conversations_count_move AFTER UPDATE OF status, workspace_id ON conversations
     WHEN OLD.status IS NOT NEW.status OR OLD.workspace_id IS NOT NEW.workspace_id BEGIN
       INSERT INTO conversation_count_deltas (workspace_id, status, delta)
       VALUES (OLD.workspace_id, OLD.status, -1), (NEW.workspace_id, NEW.status, 1);
     END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS conversations_count_move",
    "DROP TRIGGER IF EXISTS conversations_count_delete",
    "DROP TRIGGER IF EXISTS conversations_count_insert",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(
                        ColumnDef::new("id")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new("workspace_id").big_integer().not_null())
                    .col(ColumnDef::new("status").string().not_null())
                    .col(ColumnDef::new("delta").big_integer().not_null())
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversation_count_deltas_workspace")
                    .table(TABLE)
                    .col("workspace_id")
                    .col("status")
                    .take(),
            )
            .await?;
        let triggers = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES,
            _ => SQLITE,
        };
        let db = manager.get_connection();
        for sql in triggers {
            db.execute_unprepared(sql).await?;
        }
        // What exists already, counted once.
        db.execute_unprepared(
            "INSERT INTO conversation_count_deltas (workspace_id, status, delta)
             SELECT workspace_id, status, COUNT(*) FROM conversations
             GROUP BY workspace_id, status",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let triggers = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        for sql in triggers {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        manager
            .drop_table(Table::drop().table(TABLE).to_owned())
            .await
    }
}
