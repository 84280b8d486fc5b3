//! The ingest combiner: inbound messages that arrive together are stored together.
//!
//! `receiveMessage` checks its input, queues it and waits for its answer. A writer takes
//! everything queued (up to `MAX_BATCH` messages) and stores it in one transaction with a
//! fixed number of statements (`inbound::receive_batch`). Under load the next batch gathers
//! while one commits, so many messages share the cost of a transaction; a message that
//! arrives alone is a batch of one and waits for nobody. When a batch fails (a racing first
//! message from the same address, say), each of its messages is stored on its own, so one
//! message's trouble is its own and nothing is lost.
use futures::FutureExt;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use crate::domain::Scope;
use crate::domain::inbound::{self, Checked, Inbound, Received};
use crate::error::{DomainError, DomainResult};

/// The most messages one transaction stores.
const MAX_BATCH: usize = 64;
/// Messages waiting beyond this hold their senders back.
const QUEUE: usize = 1024;

struct Job {
    message: Checked,
    reply: oneshot::Sender<DomainResult<Received>>,
}

/// The handle requests queue their messages on.
#[derive(Clone)]
pub struct Ingest {
    queue: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer on `db`. One: on SQLite there is one writer anyway, and on
    /// PostgreSQL one writer with the batches it gathers stored more messages per second than
    /// two or more writing side by side (2,646-2,900 against 2,339/s with two and
    /// 2,155-2,160/s with four, on 2 cores; see docs/benchmarks.md).
    ///
    /// It runs on a thread and runtime of its own. A batch is a dozen statements in a row,
    /// so its time is mostly waiting for answers; on the server's shared runtime, busy with
    /// requests and background work, each answer waited again for the writer's turn. Give
    /// it connections opened from its own thread (`db::connect_lazy`), so their replies wake
    /// it directly (docs/benchmarks.md: ingest with the follow-up plugin +23%, alone +18%).
    pub fn start(db: DatabaseConnection) -> std::io::Result<Ingest> {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("confab-ingest".into())
            .spawn(move || runtime.block_on(writer(db, jobs)))?;
        Ok(Ingest { queue })
    }

    /// Checks and stores one inbound message; answers once it is committed.
    pub async fn receive(&self, scope: &Scope, input: Inbound) -> DomainResult<Received> {
        let message = inbound::check(scope, input)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { message, reply })
            .await
            .map_err(|_| DomainError::Internal("the ingest writers have stopped".into()))?;
        answer
            .await
            .map_err(|_| DomainError::Internal("the ingest writer dropped a message".into()))?
    }
}

async fn writer(db: DatabaseConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every sender is gone: the server is stopping
        }
        let (messages, replies): (Vec<Checked>, Vec<_>) =
            batch.drain(..).map(|j| (j.message, j.reply)).unzip();
        // A bug must not take the writer down with it: the batch's callers get an error
        // (their reply senders drop) and the next batch goes on.
        let stored = std::panic::AssertUnwindSafe(store(&db, messages, replies))
            .catch_unwind()
            .await;
        if stored.is_err() {
            tracing::error!("the ingest writer panicked storing a batch");
        }
    }
}

async fn store(
    db: &DatabaseConnection,
    messages: Vec<Checked>,
    replies: Vec<oneshot::Sender<DomainResult<Received>>>,
) {
    match inbound::receive_batch(db, &messages).await {
        Ok(received) => {
            for (reply, r) in replies.into_iter().zip(received) {
                // A caller that went away still has its message stored.
                let _ = reply.send(Ok(r));
            }
        }
        Err(e) => {
            if e.is_unique_violation() {
                tracing::debug!(
                    messages = messages.len(),
                    "batch raced a creator; one by one"
                );
            } else {
                tracing::warn!(messages = messages.len(), error = %e, "batch failed; one by one");
            }
            for (m, reply) in messages.iter().zip(replies) {
                let _ = reply.send(inbound::receive_checked(db, m).await);
            }
        }
    }
}
