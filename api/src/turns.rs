//! Queries take turns: a few execute at once, the rest wait in the order they came.
//!
//! Each query in flight holds its resolvers' futures, the rows its batches read and the
//! response it builds. With many in flight, each resumes on a processor whose caches the
//! others have most likely filled since, and the server spends more CPU on every one: on 2
//! cores, the inbox at 32 clients cost 18-22% more server CPU per response with all 32
//! running than with 4 at a time (docs/benchmarks.md, "Four queries at a time").
//!
//! Queries take turns whether they come over HTTP or a WebSocket (`realtime::ws`). Mutations
//! do not: they wait on the database writer, not on the cores, and the ingest writer gathers
//! its batches from the ones waiting together. Nor do subscriptions, which stay open.
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Turns(Arc<Semaphore>);

/// A query's turn; the next query in line goes when it is dropped.
pub struct Turn {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Turns {
    /// At most `at_once` queries execute together (at least one).
    pub fn new(at_once: usize) -> Self {
        Turns(Arc::new(Semaphore::new(at_once.max(1))))
    }

    /// Waits for a query's turn; a mutation has its turn at once.
    pub async fn take(&self, writes: bool) -> Turn {
        if writes {
            return Turn { _permit: None };
        }
        // The semaphore is never closed, so waiting ends only in a permit; were it closed,
        // the query would run without one rather than fail.
        Turn {
            _permit: self.0.clone().acquire_owned().await.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn queries_past_the_limit_wait_in_order_and_mutations_do_not() {
        let turns = Turns::new(2);
        let first = turns.take(false).now_or_never().expect("a free turn");
        let second = turns.take(false).now_or_never().expect("a free turn");

        let mut third = std::pin::pin!(turns.take(false));
        let mut fourth = std::pin::pin!(turns.take(false));
        assert!(third.as_mut().now_or_never().is_none(), "two are running");
        assert!(fourth.as_mut().now_or_never().is_none(), "two are running");
        assert!(
            turns.take(true).now_or_never().is_some(),
            "a mutation does not wait"
        );

        drop(second);
        assert!(
            fourth.as_mut().now_or_never().is_none(),
            "the later query still waits"
        );
        let third = third.now_or_never().expect("the first in line goes");
        drop(first);
        let fourth = fourth.now_or_never().expect("then the next");
        drop((third, fourth));
        assert_eq!(turns.0.available_permits(), 2, "every turn came back");
    }

    #[test]
    fn a_limit_of_zero_still_lets_one_query_run() {
        let turns = Turns::new(0);
        assert!(turns.take(false).now_or_never().is_some());
    }
}
