//! Relay connection types (edges, pageInfo, totalCount). `totalCount` is counted, and cursors
//! are encoded, only when a client asks for them.
use std::sync::Arc;

use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, Select};

use crate::domain::page::{Cursor, Page};
use crate::error::DomainResult;

#[derive(Clone, Debug)]
pub struct PageInfo {
    has_next_page: bool,
    has_previous_page: bool,
    start_cursor: Option<Cursor>,
    end_cursor: Option<Cursor>,
}

#[async_graphql::Object(serial)]
impl PageInfo {
    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }
    async fn has_previous_page(&self) -> bool {
        self.has_previous_page
    }
    async fn start_cursor(&self) -> Option<String> {
        self.start_cursor.map(|c| c.encode())
    }
    async fn end_cursor(&self) -> Option<String> {
        self.end_cursor.map(|c| c.encode())
    }
}

type CountFn = Arc<dyn Fn() -> BoxFuture<'static, DomainResult<u64>> + Send + Sync>;

/// A deferred `COUNT(*)` of the list's filtered query.
#[derive(Clone)]
pub struct Total(CountFn);

impl Total {
    pub fn of<E>(db: &DatabaseConnection, select: Select<E>) -> Self
    where
        E: EntityTrait,
        E::Model: Sync,
    {
        let db = db.clone();
        Total::with(move || {
            let db = db.clone();
            let select = select.clone();
            async move { Ok(select.count(&db).await?) }
        })
    }

    /// A count some other way than `COUNT(*)` of the list's query, run when asked for.
    pub fn with<F, Fut>(count: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = DomainResult<u64>> + Send + 'static,
    {
        Total(Arc::new(move || Box::pin(count())))
    }

    /// For lists already fully in memory.
    pub fn known(n: u64) -> Self {
        Total(Arc::new(move || Box::pin(async move { Ok(n) })))
    }

    /// Counts now: the total is then known when asked for.
    pub async fn counted(self) -> DomainResult<Total> {
        Ok(Total::known((self.0)().await?))
    }

    pub async fn get(&self) -> async_graphql::Result<i32> {
        let n = (self.0)().await?;
        Ok(i32::try_from(n).unwrap_or(i32::MAX))
    }
}

pub fn page_info<T>(page: &Page<T>) -> PageInfo {
    PageInfo {
        has_next_page: page.has_next,
        has_previous_page: page.has_previous,
        start_cursor: page.items.first().map(|(c, _)| *c),
        end_cursor: page.items.last().map(|(c, _)| *c),
    }
}

/// Declares `$conn` and `$edge` for node type `$node`, built from a `Page` of models.
///
/// Edges resolve their fields one after the other (`serial`): they only hand over the node,
/// and a serial object skips the per-field task set a parallel one builds. Connections stay
/// parallel unless `serial` is given: a top-level list counts its total beside loading its
/// nodes, while a nested one (one per row of a list) has its first page's total in memory.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ident) => {
        $crate::graphql::connection::connection!($conn, $edge, $node, Object);
    };
    ($conn:ident, $edge:ident, $node:ident, serial) => {
        $crate::graphql::connection::connection!($conn, $edge, $node, Object(serial));
    };
    ($conn:ident, $edge:ident, $node:ident, $($object:tt)+) => {
        pub struct $edge {
            cursor: $crate::domain::page::Cursor,
            node: $node,
        }

        #[async_graphql::Object(serial)]
        impl $edge {
            async fn cursor(&self) -> String {
                self.cursor.encode()
            }
            async fn node(&self) -> &$node {
                &self.node
            }
        }

        pub struct $conn {
            edges: Vec<$edge>,
            page_info: $crate::graphql::connection::PageInfo,
            total: $crate::graphql::connection::Total,
        }

        impl $conn {
            pub fn new<M>(
                page: $crate::domain::page::Page<M>,
                total: $crate::graphql::connection::Total,
            ) -> Self
            where
                $node: From<M>,
            {
                let page_info = $crate::graphql::connection::page_info(&page);
                let edges = page
                    .items
                    .into_iter()
                    .map(|(c, m)| $edge {
                        cursor: c,
                        node: $node::from(m),
                    })
                    .collect();
                $conn {
                    edges,
                    page_info,
                    total,
                }
            }
        }

        #[async_graphql::$($object)+]
        impl $conn {
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }
            async fn total_count(&self) -> async_graphql::Result<i32> {
                self.total.get().await
            }
        }
    };
}

pub(crate) use connection;
