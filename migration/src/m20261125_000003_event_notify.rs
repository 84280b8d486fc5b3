//! PostgreSQL: every activity and notification row NOTIFYs `confab_events` with a compact
//! envelope (`{"t":"a"|"n","id":...}`). NOTIFY is sent at commit, in commit order, and never
//! for a rolled-back transaction; all replicas LISTEN. SQLite has nothing to do here.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_event_notify"
    }
}

const UP: &[&str] = &[
    "CREATE OR REPLACE FUNCTION confab_notify_activity() RETURNS trigger AS $$
     BEGIN
       PERFORM pg_notify('confab_events', json_build_object('t', 'a', 'id', NEW.id)::text);
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE OR REPLACE FUNCTION confab_notify_notification() RETURNS trigger AS $$
     BEGIN
       PERFORM pg_notify('confab_events', json_build_object('t', 'n', 'id', NEW.id)::text);
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER activities_notify AFTER INSERT ON activities FOR EACH ROW EXECUTE FUNCTION confab_notify_activity()",
    "CREATE TRIGGER notifications_notify AFTER INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION confab_notify_notification()",
];

const DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS notifications_notify ON notifications",
    "DROP TRIGGER IF EXISTS activities_notify ON activities",
    "DROP FUNCTION IF EXISTS confab_notify_notification()",
    "DROP FUNCTION IF EXISTS confab_notify_activity()",
];

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for sql in statements {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, DOWN).await
    }
}
