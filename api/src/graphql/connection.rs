//! Relay connection types (edges, pageInfo, totalCount). `totalCount` is counted only when a
//! client asks for it.
use std::sync::Arc;

use async_graphql::SimpleObject;
use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, Select};

use crate::domain::page::Page;
use crate::error::DomainResult;

#[derive(SimpleObject, Clone, Debug)]
#[graphql(serial)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
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
        Total(Arc::new(move || {
            let db = db.clone();
            let select = select.clone();
            Box::pin(async move { Ok(select.count(&db).await?) })
        }))
    }

    /// For lists already fully in memory.
    pub fn known(n: u64) -> Self {
        Total(Arc::new(move || Box::pin(async move { Ok(n) })))
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
        start_cursor: page.items.first().map(|(c, _)| c.encode()),
        end_cursor: page.items.last().map(|(c, _)| c.encode()),
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
            cursor: String,
            node: $node,
        }

        #[async_graphql::Object(serial)]
        impl $edge {
            async fn cursor(&self) -> &str {
                &self.cursor
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
                        cursor: c.encode(),
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
