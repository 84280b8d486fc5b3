//! The ingest combiner: inbound messages that arrive together are stored together.
//!
//! `receiveMessage` checks its input, queues it and waits for its answer. A writer takes
//! everything queued (up to `MAX_BATCH` messages) and stores it in one transaction with a
//! fixed number of statements (`inbound::stage_batch`). Under load the next batch gathers
//! while one is written, so many messages share the cost of a transaction; a message that
//! arrives alone is a batch of one and waits for nobody. A batch's commit (its WAL flush) goes
//! on in the background while the writer writes the next batch, unless the two share an
//! address or an external id. When a batch fails (a racing first message from the same
//! address, say), each of its messages is stored on its own, so one message's trouble is its
//! own and nothing is lost.
use std::collections::HashSet;

use futures::FutureExt;
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

use crate::domain::addresses::Address;
use crate::domain::inbound::{self, Checked, Inbound, Received};
use crate::domain::{Channel, Scope};
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
    let mut committing: Vec<Committing> = Vec::new();
    loop {
        if jobs.recv_many(&mut batch, MAX_BATCH).await == 0 {
            // Every sender is gone: the server is stopping.
            for c in committing {
                c.settle().await;
            }
            return;
        }
        let (messages, replies): (Vec<Checked>, Vec<_>) =
            batch.drain(..).map(|j| (j.message, j.reply)).unzip();
        // A bug must not take the writer down with it: the batch's callers get an error
        // (their reply senders drop) and the next batch goes on.
        let written = std::panic::AssertUnwindSafe(write(&db, messages, replies, &mut committing))
            .catch_unwind()
            .await;
        if written.is_err() {
            tracing::error!("the ingest writer panicked storing a batch");
        }
    }
}

type Reply = oneshot::Sender<DomainResult<Received>>;

/// Writes one batch while the ones before it commit, unless they share an address or an
/// external id: then it waits for those commits first (so messages from one contact apply in
/// the order they arrived, and a new contact is created once). The batch's own commit goes
/// on in the background, and its callers are answered once it is done; the commit waits on
/// nothing but the database (were it to wait for the commit before it, a failed commit
/// whose messages are then stored one by one could wait on this batch's locks: a circle).
/// The writer's connections bound how many are under way.
async fn write(
    db: &DatabaseConnection,
    messages: Vec<Checked>,
    replies: Vec<Reply>,
    committing: &mut Vec<Committing>,
) {
    committing.retain(|c| !c.done.is_finished());
    let touches = touched(&messages);
    let sharing: Vec<Committing> = committing
        .extract_if(.., |c| !c.touches.is_disjoint(&touches))
        .collect();
    for c in sharing {
        c.settle().await;
    }
    match inbound::stage_batch(db, &messages).await {
        Ok((txn, received)) => {
            let db = db.clone();
            let done = tokio::spawn(async move {
                match txn.commit().await {
                    Ok(()) => answer(replies, received),
                    Err(e) => {
                        tracing::warn!(messages = messages.len(), error = %e, "batch commit failed; one by one");
                        one_by_one(&db, &messages, replies).await;
                    }
                }
            });
            committing.push(Committing { touches, done });
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
            one_by_one(db, &messages, replies).await;
        }
    }
}

/// What a batch's messages touch, for telling whether two batches may be written side by
/// side.
#[derive(PartialEq, Eq, Hash)]
enum Touch {
    Address(i64, Address),
    External(i64, Channel, String),
}

fn touched(messages: &[Checked]) -> HashSet<Touch> {
    let mut touches = HashSet::with_capacity(messages.len() * 2);
    for m in messages {
        let ws = m.scope.workspace_id;
        touches.insert(Touch::Address(ws, m.address.clone()));
        if let Some(ext) = &m.external_id {
            touches.insert(Touch::External(ws, m.channel, ext.clone()));
        }
    }
    touches
}

/// A batch whose statements have run and whose commit is under way.
struct Committing {
    touches: HashSet<Touch>,
    done: tokio::task::JoinHandle<()>,
}

impl Committing {
    /// Waits until the batch is committed and answered (or stored one by one).
    async fn settle(self) {
        if self.done.await.is_err() {
            tracing::error!("the ingest writer panicked committing a batch");
        }
    }
}

fn answer(replies: Vec<Reply>, received: Vec<Received>) {
    for (reply, r) in replies.into_iter().zip(received) {
        // A caller that went away still has its message stored.
        let _ = reply.send(Ok(r));
    }
}

/// Stores each message in its own transaction: one message's trouble stays its own.
async fn one_by_one(db: &DatabaseConnection, messages: &[Checked], replies: Vec<Reply>) {
    for (m, reply) in messages.iter().zip(replies) {
        let _ = reply.send(inbound::receive_checked(db, m).await);
    }
}
