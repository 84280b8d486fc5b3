//! Rows decoded by position.
//!
//! sea-orm's derived decoder reads every column by name (a hash of the name per column) and,
//! for each NULL it reads, formats the column's name into an error it then discards. An inbox
//! response decodes ~2,500 columns, ~770 of them NULL; reading them by position takes 12% off
//! the server's instructions per response (docs/benchmarks.md). `Select::rows` decodes the
//! same rows by their place in the SELECT list, which is the model's field order for
//! `Entity::find()`, and asks the row whether a cell is NULL before decoding it. On SQLite
//! values are decoded by sea-orm's own `TryGetable`; on PostgreSQL by the same sqlx decoders
//! it calls, without the per-cell type check (`pg_cell`). A row reads the same either way.
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{Decode, Postgres, Row, Type, ValueRef};
use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryResult, Select, SelectModel,
    SelectorRaw, TryGetError, TryGetable,
};

/// A model that can be read from a row by the position of its columns.
pub trait Positional: FromQueryResult + Send + Sync + Sized {
    /// The column names, in field order (and so in `Entity::find()`'s SELECT order).
    const COLUMNS: &'static [&'static str];

    fn from_positions(row: &QueryResult) -> Result<Self, TryGetError>;
}

/// One cell, read at a known position.
pub trait Cell: Sized {
    fn read(row: &QueryResult, index: usize) -> Result<Self, TryGetError>;
}

/// Whether the cell is NULL; None where the row is not one sqlx can tell that of.
fn is_null(row: &QueryResult, index: usize) -> Option<Result<bool, TryGetError>> {
    let raw = |e: sea_orm::sqlx::Error| TryGetError::DbErr(DbErr::Type(e.to_string()));
    if let Some(row) = row.try_as_pg_row() {
        return Some(row.try_get_raw(index).map(|v| v.is_null()).map_err(raw));
    }
    if let Some(row) = row.try_as_sqlite_row() {
        return Some(row.try_get_raw(index).map(|v| v.is_null()).map_err(raw));
    }
    None
}

/// Debug builds (the tests' server) check that the row's first columns are the model's.
pub fn debug_check_columns(row: &QueryResult, expected: &[&str]) {
    if cfg!(debug_assertions) {
        use sea_orm::sqlx::Column;
        let names: Vec<&str> = if let Some(row) = row.try_as_pg_row() {
            row.columns().iter().map(|c| c.name()).collect()
        } else if let Some(row) = row.try_as_sqlite_row() {
            row.columns().iter().map(|c| c.name()).collect()
        } else {
            return;
        };
        assert!(
            names.len() >= expected.len() && names[..expected.len()] == *expected,
            "a positional decode of {expected:?} met the columns {names:?}"
        );
    }
}

/// A PostgreSQL cell, decoded without sqlx's per-cell type check.
///
/// `Row::try_get` compares each cell's type with the one asked for before decoding it
/// (`compatible`, ~5% of the server's instructions per inbox response). Every cell of a
/// positional row is read as its model field's type, the type sea-orm's `TryGetable` reads
/// it as, so the check holds for a whole column once it holds for one cell; debug builds (the
/// tests' server) still make it for every cell.
fn pg_cell<'r, T>(row: &'r PgRow, index: usize) -> Result<Option<T>, TryGetError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    let err = |e: sea_orm::sqlx::Error| TryGetError::DbErr(DbErr::Type(e.to_string()));
    if cfg!(debug_assertions) {
        return row.try_get::<Option<T>, _>(index).map_err(err);
    }
    row.try_get_unchecked::<Option<T>, _>(index).map_err(err)
}

macro_rules! cells {
    ($($ty:ty),+ $(,)?) => {$(
        impl Cell for $ty {
            fn read(row: &QueryResult, index: usize) -> Result<Self, TryGetError> {
                match row.try_as_pg_row() {
                    Some(pg) => pg_cell::<$ty>(pg, index)?
                        .ok_or_else(|| TryGetError::Null(index.to_string())),
                    None => <$ty as TryGetable>::try_get_by_index(row, index),
                }
            }
        }
        impl Cell for Option<$ty> {
            fn read(row: &QueryResult, index: usize) -> Result<Self, TryGetError> {
                if let Some(pg) = row.try_as_pg_row() {
                    return pg_cell::<$ty>(pg, index);
                }
                match is_null(row, index) {
                    Some(Ok(true)) => Ok(None),
                    Some(Ok(false)) => <$ty as TryGetable>::try_get_by_index(row, index).map(Some),
                    Some(Err(e)) => Err(e),
                    None => <Option<$ty> as TryGetable>::try_get_by_index(row, index),
                }
            }
        }
    )+};
}

cells!(
    i32,
    i64,
    bool,
    String,
    Vec<u8>,
    sea_orm::prelude::DateTimeUtc,
    sea_orm::prelude::Json,
);

/// Wraps a model for `into_model`, so the positional decoder is the one used.
pub struct ByPosition<M>(pub M);

impl<M: Positional> FromQueryResult for ByPosition<M> {
    fn from_query_result(row: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Self::from_query_result_nullable(row, pre).map_err(Into::into)
    }

    fn from_query_result_nullable(row: &QueryResult, pre: &str) -> Result<Self, TryGetError> {
        if pre.is_empty() {
            M::from_positions(row).map(ByPosition)
        } else {
            // A prefixed model is one part of a joined row: read it by name.
            M::from_query_result_nullable(row, pre).map(ByPosition)
        }
    }
}

/// `all` and `one`, decoding by position.
pub trait SelectRows<M> {
    fn rows<C: ConnectionTrait>(
        self,
        db: &C,
    ) -> impl std::future::Future<Output = Result<Vec<M>, DbErr>> + Send;

    fn row<C: ConnectionTrait>(
        self,
        db: &C,
    ) -> impl std::future::Future<Output = Result<Option<M>, DbErr>> + Send;
}

impl<E> SelectRows<E::Model> for Select<E>
where
    E: EntityTrait,
    E::Model: Positional,
{
    async fn rows<C: ConnectionTrait>(self, db: &C) -> Result<Vec<E::Model>, DbErr> {
        let rows = self.into_model::<ByPosition<E::Model>>().all(db).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn row<C: ConnectionTrait>(self, db: &C) -> Result<Option<E::Model>, DbErr> {
        let row = self.into_model::<ByPosition<E::Model>>().one(db).await?;
        Ok(row.map(|r| r.0))
    }
}

/// A statement built beforehand (`Entity::find().from_raw_sql(..)`), decoded the same way; its
/// SELECT list must be the model's, as `Entity::find()` writes it.
impl<M: Positional> SelectRows<M> for SelectorRaw<SelectModel<M>> {
    async fn rows<C: ConnectionTrait>(self, db: &C) -> Result<Vec<M>, DbErr> {
        let rows = self.into_model::<ByPosition<M>>().all(db).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn row<C: ConnectionTrait>(self, db: &C) -> Result<Option<M>, DbErr> {
        let row = self.into_model::<ByPosition<M>>().one(db).await?;
        Ok(row.map(|r| r.0))
    }
}

/// Declares an entity's model, as `DeriveEntityModel` would, and its positional decoder.
macro_rules! model {
    (
        $(#[$meta:meta])*
        pub struct Model {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct Model {
            $( $(#[$field_meta])* pub $field : $ty ),+
        }

        impl $crate::positional::Positional for Model {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];

            fn from_positions(
                row: &sea_orm::QueryResult,
            ) -> Result<Self, sea_orm::TryGetError> {
                $crate::positional::debug_check_columns(row, Self::COLUMNS);
                let mut index = 0;
                let mut next = || {
                    index += 1;
                    index - 1
                };
                Ok(Model {
                    $( $field: <$ty as $crate::positional::Cell>::read(row, next())? ),+
                })
            }
        }
    };
}
pub(crate) use model;
