//! Full-text search over message subjects and bodies: FTS5 on SQLite, tsvector + GIN on PostgreSQL.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_message_search"
    }
}

const SQLITE_UP: &[&str] = &[
    "CREATE VIRTUAL TABLE messages_fts USING fts5(subject, body, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, coalesce(new.subject, ''), new.body);
     END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, subject, body) VALUES ('delete', old.id, coalesce(old.subject, ''), old.body);
     END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF subject, body ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, subject, body) VALUES ('delete', old.id, coalesce(old.subject, ''), old.body);
        INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, coalesce(new.subject, ''), new.body);
     END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS messages_fts_au",
    "DROP TRIGGER IF EXISTS messages_fts_ad",
    "DROP TRIGGER IF EXISTS messages_fts_ai",
    "DROP TABLE IF EXISTS messages_fts",
];

// 'simple' keeps search language-neutral, like SQLite's unicode61 tokenizer.
const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS \
     (to_tsvector('simple', coalesce(subject, '') || ' ' || body)) STORED",
    "CREATE INDEX idx_messages_search ON messages USING GIN (search_vector)",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP INDEX IF EXISTS idx_messages_search",
    "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Sqlite => run(manager, SQLITE_UP).await,
            DbBackend::Postgres => run(manager, POSTGRES_UP).await,
            other => Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Sqlite => run(manager, SQLITE_DOWN).await,
            DbBackend::Postgres => run(manager, POSTGRES_DOWN).await,
            other => Err(DbErr::Migration(format!("unsupported backend {other:?}"))),
        }
    }
}
