//! Rows that belong to a workspace. Every lookup by id goes through here, so the workspace
//! filter cannot be forgotten.
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QuerySelect, QueryTrait, Select, Statement,
};

use entity::positional::{Positional, SelectRows};
use entity::{
    activity, appointment, contact, conversation, job, message, message_template, note,
    notification, opportunity, pipeline, plugin, plugin_run, stage, tag, task, user,
};

use crate::domain::Scope;
use crate::error::{DomainError, DomainResult};

/// Entities whose rows belong to a workspace and are looked up by id.
pub trait Scoped: EntityTrait<Model: Positional> {
    /// How a missing row is named in NOT_FOUND.
    const NAME: &'static str;
    fn id_column() -> Self::Column;
    fn workspace_column() -> Self::Column;
    fn id_of(model: &Self::Model) -> i64;
}

macro_rules! scoped {
    ($($m:ident => $name:literal),+ $(,)?) => {$(
        impl Scoped for $m::Entity {
            const NAME: &'static str = $name;
            fn id_column() -> Self::Column { $m::Column::Id }
            fn workspace_column() -> Self::Column { $m::Column::WorkspaceId }
            fn id_of(model: &Self::Model) -> i64 { model.id }
        }
    )+};
}

scoped!(
    user => "user", contact => "contact", conversation => "conversation", message => "message",
    note => "note", task => "task", appointment => "appointment", pipeline => "pipeline",
    plugin => "plugin", stage => "stage", activity => "activity", job => "job",
    message_template => "template", plugin_run => "plugin run", notification => "notification",
    opportunity => "opportunity", tag => "tag",
);

/// `column` is one of `values`. PostgreSQL gets them as one array parameter (`= ANY($1)`): one
/// statement text, prepared once per connection, whatever their number; no SQL built per value;
/// and a generic plan that reaches the rows through the index (with fifty `IN` parameters the
/// planner scanned all of `appointments` instead: docs/benchmarks.md). SQLite, which has no
/// arrays, gets `IN (...)`.
pub fn one_of<C, V>(
    db: &impl ConnectionTrait,
    column: C,
    values: impl IntoIterator<Item = V>,
) -> Expr
where
    C: ColumnTrait,
    V: Into<sea_orm::Value> + sea_orm::sea_query::postgres_array::NotU8,
{
    one_of_on(db.get_database_backend(), column, values)
}

fn one_of_on<C, V>(backend: DbBackend, column: C, values: impl IntoIterator<Item = V>) -> Expr
where
    C: ColumnTrait,
    V: Into<sea_orm::Value> + sea_orm::sea_query::postgres_array::NotU8,
{
    match backend {
        DbBackend::Postgres => column.eq_any(values),
        _ => column.is_in(values),
    }
}

/// `ids` as the one array parameter `one_of` gives PostgreSQL, for `shaped` values.
pub fn id_array(ids: impl IntoIterator<Item = i64>) -> sea_orm::Value {
    let ids = ids.into_iter().map(sea_orm::Value::from).collect();
    sea_orm::Value::Array(sea_orm::sea_query::ArrayType::BigInt, Some(Box::new(ids)))
}

/// The rows of a statement whose text on PostgreSQL is fixed by its `shape` (with ids as one
/// array parameter, `one_of`, a loader's statement is the same text whatever its keys).
/// sea-query writes each shape's text once; later statements send it with their own
/// `values`, which must be the ones the built statement would hold, in its order. Building
/// the inbox's statements anew cost ~5% of a response's instructions. Debug builds (the
/// tests' server) build every statement and check its text and values against these.
/// SQLite, whose `IN` lists vary with the count, builds every time.
pub async fn shaped<E>(
    db: &DatabaseConnection,
    shape: &'static str,
    select: impl FnOnce() -> Select<E>,
    values: impl FnOnce() -> Vec<sea_orm::Value>,
) -> Result<Vec<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait<Model: Positional>,
{
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        return select().rows(db).await;
    }
    let key = (std::any::TypeId::of::<E>(), shape);
    let kept = shapes()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
        .cloned();
    let statement = match kept {
        Some(sql) if !cfg!(debug_assertions) => {
            Statement::from_sql_and_values(backend, &*sql, values())
        }
        kept => {
            let built = select().build(backend);
            if cfg!(debug_assertions) {
                let built_values = built.values.as_ref().map_or(&[][..], |v| &v.0[..]);
                assert_eq!(built_values, values(), "values of shape {shape}");
                if let Some(sql) = kept {
                    assert_eq!(*sql, built.sql, "text of shape {shape}");
                }
            }
            shapes()
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key, built.sql.as_str().into());
            built
        }
    };
    E::Model::find_by_statement(statement).rows(db).await
}

type Shapes = RwLock<HashMap<(std::any::TypeId, &'static str), Arc<str>>>;

fn shapes() -> &'static Shapes {
    static SHAPES: OnceLock<Shapes> = OnceLock::new();
    SHAPES.get_or_init(Default::default)
}

/// All of the caller's rows of `E`.
pub fn rows<E: Scoped>(workspace_id: i64) -> Select<E> {
    E::find().filter(E::workspace_column().eq(workspace_id))
}

/// One row of the workspace by id.
pub async fn find<E: Scoped>(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    id: i64,
) -> Result<Option<E::Model>, sea_orm::DbErr> {
    rows::<E>(workspace_id)
        .filter(E::id_column().eq(id))
        .row(db)
        .await
}

/// Row `id` of `base` (a query already bound to the caller's workspace), locked for the rest
/// of the transaction so concurrent changes queue instead of overwriting each other.
pub async fn lock<E: Scoped>(
    txn: &impl ConnectionTrait,
    base: Select<E>,
    id: i64,
) -> DomainResult<E::Model> {
    base.filter(E::id_column().eq(id))
        .lock_exclusive()
        .row(txn)
        .await?
        .ok_or(DomainError::NotFound(E::NAME))
}

/// Row `id` of the caller's workspace, locked; NOT_FOUND when it is not theirs.
pub async fn lock_own<E: Scoped>(
    txn: &impl ConnectionTrait,
    scope: &Scope,
    id: i64,
) -> DomainResult<E::Model> {
    lock(txn, rows::<E>(scope.workspace_id), id).await
}

#[cfg(test)]
mod tests {
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

    use entity::contact;

    use super::one_of_on;

    fn statement(backend: DbBackend, ids: &[i64]) -> (String, Vec<sea_orm::Value>) {
        let s = contact::Entity::find()
            .filter(one_of_on(backend, contact::Column::Id, ids.iter().copied()))
            .build(backend);
        (s.sql, s.values.map_or(Vec::new(), |v| v.0))
    }

    #[test]
    fn postgres_sends_one_statement_text_and_one_parameter_whatever_the_count() {
        let (two, two_values) = statement(DbBackend::Postgres, &[7, 3]);
        let (fifty, fifty_values) = statement(DbBackend::Postgres, &(1..=50).collect::<Vec<_>>());
        assert_eq!(two, fifty);
        assert!(two.ends_with(r#"WHERE "contacts"."id" = ANY($1)"#), "{two}");
        assert_eq!((two_values.len(), fifty_values.len()), (1, 1));
    }

    #[test]
    fn id_array_is_the_parameter_one_of_gives_postgres() {
        let (_, values) = statement(DbBackend::Postgres, &[7, 3]);
        assert_eq!(values, vec![super::id_array([7, 3])]);
    }

    #[test]
    fn sqlite_lists_the_values() {
        let (sql, values) = statement(DbBackend::Sqlite, &[7, 3, 9]);
        assert!(
            sql.ends_with(r#"WHERE "contacts"."id" IN (?, ?, ?)"#),
            "{sql}"
        );
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn no_values_match_no_rows_on_either_backend() {
        // sea-query writes an empty list as a comparison of two different numbers.
        for (backend, sql) in [
            (DbBackend::Postgres, "WHERE $1 = $2"),
            (DbBackend::Sqlite, "WHERE ? = ?"),
        ] {
            let (built, values) = statement(backend, &[]);
            assert!(built.ends_with(sql), "{built}");
            assert_eq!(values.len(), 2);
            assert_ne!(values[0], values[1]);
        }
    }
}
