//! Cursor pagination (Relay connections) by keyset: a cursor holds the sort key of the last
//! row seen, so pages stay stable while new rows arrive and cost one indexed range scan.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select, Statement, Value,
};

use entity::positional::{Positional, SelectRows};

use crate::error::{DomainError, DomainResult};

pub const DEFAULT_PAGE: i32 = 20;
pub const MAX_PAGE: i32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The timestamp sort key in microseconds, for lists not ordered by id alone.
    pub at: Option<i64>,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let raw = match self.at {
            Some(at) => format!("{at}:{}", self.id),
            None => self.id.to_string(),
        };
        URL_SAFE_NO_PAD.encode(raw)
    }

    pub fn decode(text: &str, field: &str) -> DomainResult<Cursor> {
        let bad = || DomainError::invalid(field, "not a cursor from this list");
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?)
            .map_err(|_| bad())?;
        match raw.split_once(':') {
            Some((at, id)) => Ok(Cursor {
                at: Some(at.parse().map_err(|_| bad())?),
                id: id.parse().map_err(|_| bad())?,
            }),
            None => Ok(Cursor {
                at: None,
                id: raw.parse().map_err(|_| bad())?,
            }),
        }
    }

    fn at_time(&self) -> Option<DateTime<Utc>> {
        self.at.and_then(DateTime::from_timestamp_micros)
    }
}

/// The `first/after/last/before` arguments of a connection field.
#[derive(Clone, Debug, Default)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

impl PageArgs {
    pub fn forward(first: Option<i32>, after: Option<String>) -> Self {
        PageArgs {
            first,
            after,
            ..Default::default()
        }
    }
}

/// Validated page arguments.
#[derive(Clone, Debug)]
pub struct Window {
    pub limit: u64,
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
    /// `last` was asked for: take the rows nearest `before` (or the end).
    pub backward: bool,
}

impl Window {
    pub fn new(args: &PageArgs) -> DomainResult<Window> {
        let check = |n: Option<i32>, field: &str| -> DomainResult<Option<u64>> {
            match n {
                Some(n) if n < 0 => Err(DomainError::invalid(field, "must not be negative")),
                Some(n) if n > MAX_PAGE => Err(DomainError::invalid(
                    field,
                    format!("at most {MAX_PAGE} per page"),
                )),
                Some(n) => Ok(Some(n as u64)),
                None => Ok(None),
            }
        };
        let first = check(args.first, "first")?;
        let last = check(args.last, "last")?;
        if first.is_some() && last.is_some() {
            return Err(DomainError::invalid(
                "last",
                "use either first or last, not both",
            ));
        }
        Ok(Window {
            limit: first.or(last).unwrap_or(DEFAULT_PAGE as u64),
            after: args
                .after
                .as_deref()
                .map(|c| Cursor::decode(c, "after"))
                .transpose()?,
            before: args
                .before
                .as_deref()
                .map(|c| Cursor::decode(c, "before"))
                .transpose()?,
            backward: last.is_some(),
        })
    }
}

pub struct Page<T> {
    pub items: Vec<(Cursor, T)>,
    pub has_next: bool,
    pub has_previous: bool,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl Fn(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(|(c, t)| (c, f(t))).collect(),
            has_next: self.has_next,
            has_previous: self.has_previous,
        }
    }
}

/// How a list is ordered: by an optional timestamp column, then by id, in `order`.
pub struct Keyset<C> {
    pub at: Option<C>,
    pub id: C,
    pub order: Order,
}

impl<C: ColumnTrait> Keyset<C> {
    /// Rows strictly past `c` when walking in `order`.
    fn past(&self, c: &Cursor, order: &Order) -> Condition {
        let greater = matches!(order, Order::Asc);
        let cmp_id = |v: i64| {
            if greater {
                self.id.gt(v)
            } else {
                self.id.lt(v)
            }
        };
        match (&self.at, c.at_time()) {
            (Some(at), Some(t)) => {
                let cmp_at = if greater { at.gt(t) } else { at.lt(t) };
                Condition::any()
                    .add(cmp_at)
                    .add(Condition::all().add(Expr::col(*at).eq(t)).add(cmp_id(c.id)))
            }
            _ => Condition::all().add(cmp_id(c.id)),
        }
    }

    fn reversed(order: &Order) -> Order {
        if matches!(order, Order::Asc) {
            Order::Desc
        } else {
            Order::Asc
        }
    }

    pub async fn fetch<E, D>(
        &self,
        db: &D,
        select: Select<E>,
        window: &Window,
        cursor_of: impl Fn(&E::Model) -> Cursor,
    ) -> DomainResult<Page<E::Model>>
    where
        E: EntityTrait<Column = C, Model: Positional>,
        D: ConnectionTrait,
    {
        let walk = if window.backward {
            Self::reversed(&self.order)
        } else {
            self.order.clone()
        };
        let (start, stop) = if window.backward {
            (window.before, window.after)
        } else {
            (window.after, window.before)
        };
        let mut q = select;
        if let Some(c) = &start {
            q = q.filter(self.past(c, &walk));
        }
        if let Some(c) = &stop {
            q = q.filter(self.past(c, &Self::reversed(&walk)));
        }
        if let Some(at) = &self.at {
            q = q.order_by(*at, walk.clone());
        }
        q = q.order_by(self.id, walk).limit(window.limit + 1);
        let statement = literal_limit(q.build(db.get_database_backend()));
        // Boxed: a query's future is kilobytes, and every field future of a GraphQL object is
        // as large as its largest resolver's, so a list resolver's fetch would make every
        // field of that object (its `id` too) cost a kilobytes allocation and copy.
        let mut rows = Box::pin(E::find().from_raw_sql(statement).rows(db)).await?;
        let more = rows.len() as u64 > window.limit;
        rows.truncate(window.limit as usize);
        if window.backward {
            rows.reverse();
        }
        let items = rows.into_iter().map(|m| (cursor_of(&m), m)).collect();
        Ok(if window.backward {
            Page {
                items,
                has_next: window.before.is_some(),
                has_previous: more,
            }
        } else {
            Page {
                items,
                has_next: more,
                has_previous: window.after.is_some(),
            }
        })
    }
}

/// Writes a statement's final `LIMIT` parameter into its text. PostgreSQL plans a cached
/// statement whose limit is a parameter as if it returned a tenth of the table, so the generic
/// plan never looks cheaper than a fresh one and every page was planned anew; with the limit
/// in the text, the cached plan is reused (docs/benchmarks.md). A page size is one of at most
/// `MAX_PAGE + 1` limits, so each list has a few statements, not one per request.
fn literal_limit(mut statement: Statement) -> Statement {
    let Some(values) = statement.values.as_mut() else {
        return statement;
    };
    let marker = match statement.db_backend {
        DbBackend::Postgres => format!(" LIMIT ${}", values.0.len()),
        _ => " LIMIT ?".to_owned(),
    };
    if let Some(Value::BigUnsigned(Some(limit))) = values.0.last()
        && statement.sql.ends_with(&marker)
    {
        let cut = statement.sql.len() - marker.len();
        statement.sql = format!("{} LIMIT {limit}", &statement.sql[..cut]);
        values.0.pop();
    }
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        for c in [
            Cursor {
                at: Some(1_700_000_000_123_456),
                id: 7,
            },
            Cursor { at: None, id: 9 },
        ] {
            assert_eq!(Cursor::decode(&c.encode(), "after").unwrap(), c);
        }
        assert!(Cursor::decode("%%%", "after").is_err());
    }

    #[test]
    fn page_sizes_are_capped() {
        assert_eq!(Window::new(&PageArgs::default()).unwrap().limit, 20);
        assert!(Window::new(&PageArgs::forward(Some(101), None)).is_err());
        assert!(Window::new(&PageArgs::forward(Some(-1), None)).is_err());
        assert_eq!(
            Window::new(&PageArgs::forward(Some(100), None))
                .unwrap()
                .limit,
            100
        );
        let both = PageArgs {
            first: Some(1),
            last: Some(1),
            ..Default::default()
        };
        assert!(Window::new(&both).is_err());
    }

    #[test]
    fn the_page_size_is_written_into_the_statement() {
        use entity::conversation;
        for (backend, tail, params) in [
            (
                DbBackend::Postgres,
                r#""conversations"."status" = $2 ORDER BY"#,
                2,
            ),
            (
                DbBackend::Sqlite,
                r#""conversations"."status" = ? ORDER BY"#,
                2,
            ),
        ] {
            let statement = conversation::Entity::find()
                .filter(conversation::Column::WorkspaceId.eq(7))
                .filter(conversation::Column::Status.eq("OPEN"))
                .order_by_desc(conversation::Column::Id)
                .limit(51)
                .build(backend);
            let statement = literal_limit(statement);
            assert!(statement.sql.contains(tail), "{}", statement.sql);
            assert!(statement.sql.ends_with(" LIMIT 51"), "{}", statement.sql);
            assert_eq!(statement.values.unwrap().0.len(), params);
        }
    }

    #[test]
    fn a_statement_without_a_final_limit_is_left_alone() {
        let statement = entity::conversation::Entity::find()
            .filter(entity::conversation::Column::WorkspaceId.eq(7))
            .build(DbBackend::Postgres);
        let before = statement.sql.clone();
        let after = literal_limit(statement);
        assert_eq!(after.sql, before);
        assert_eq!(after.values.unwrap().0.len(), 1);
    }
}
