//! PostgreSQL: one NOTIFY per statement that inserts activities or notifications, not one per
//! row. The envelope names the statement's rows, `{"t":"a"|"n","ids":[...]}`, in id order,
//! split so that no payload nears NOTIFY's 8000 bytes (300 ids of up to 19 digits each).
//!
//! An ingest batch writes its messages' activities with one insert, a plugin wave its tasks'
//! trail rows with one: with a trigger per row, each row ran a PL/pgSQL call and queued its
//! own notification, which PostgreSQL wrote to its queue at commit and the LISTEN connection
//! of every replica read and answered one by one (a statement per event to load its row).
//! Replicas of an earlier build cannot read the new envelope: they log it as unreadable, and
//! their subscribers miss events until they are replaced by this build.
//! SQLite has nothing to do here.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000010_batched_event_notify"
    }
}

/// The most ids one envelope carries.
const IDS_PER_NOTIFY: usize = 300;

/// The statement-level function for rows of kind `t`, named `name`.
fn function(name: &str, t: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$
         DECLARE
           chunk bigint[];
         BEGIN
           FOR chunk IN
             SELECT array_agg(id ORDER BY id)
               FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {IDS_PER_NOTIFY} AS n
                       FROM new_rows) numbered
              GROUP BY n ORDER BY n
           LOOP
             PERFORM pg_notify('confab_events', json_build_object('t', '{t}', 'ids', chunk)::text);
           END LOOP;
           RETURN NULL;
         END $$ LANGUAGE plpgsql"
    )
}

/// (table, trigger, the row-level function it replaces, the statement-level one, kind)
const TRIGGERS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "activities",
        "activities_notify",
        "confab_notify_activity",
        "confab_notify_activities",
        "a",
    ),
    (
        "notifications",
        "notifications_notify",
        "confab_notify_notification",
        "confab_notify_notifications",
        "n",
    ),
];

fn up() -> Vec<String> {
    let mut sql = Vec::new();
    for (table, trigger, _, batched, t) in TRIGGERS {
        sql.push(function(batched, t));
        sql.push(format!("DROP TRIGGER IF EXISTS {trigger} ON {table}"));
        sql.push(format!(
            "CREATE TRIGGER {trigger} AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows \
             FOR EACH STATEMENT EXECUTE FUNCTION {batched}()"
        ));
    }
    sql
}

/// Back to a trigger per row (migration 3's functions are still there).
fn down() -> Vec<String> {
    let mut sql = Vec::new();
    for (table, trigger, per_row, batched, _) in TRIGGERS {
        sql.push(format!("DROP TRIGGER IF EXISTS {trigger} ON {table}"));
        sql.push(format!(
            "CREATE TRIGGER {trigger} AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {per_row}()"
        ));
        sql.push(format!("DROP FUNCTION IF EXISTS {batched}()"));
    }
    sql
}

async fn run(manager: &SchemaManager<'_>, statements: Vec<String>) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    for sql in statements {
        manager.get_connection().execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, up()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, down()).await
    }
}
