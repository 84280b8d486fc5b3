//! Live updates. Every committed activity and notification becomes an event on the bus, which
//! fans out to the GraphQL subscriptions of this process.
//!
//! Where events come from:
//! - PostgreSQL: a trigger `pg_notify`s a compact envelope naming the rows each statement that
//!   inserts activities or notifications wrote. NOTIFY is delivered at commit, in commit
//!   order, and never for a rolled-back transaction, to every replica LISTENing, so a change
//!   made through replica A reaches subscribers of replica B.
//! - SQLite (one process): a tailer reads new rows by id after each write (ids follow commit
//!   order with one writer), woken by the HTTP layer after every mutation.
mod source;
pub mod ws;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, broadcast};

use entity::positional::SelectRows;
use entity::{activity, notification};

pub use source::spawn_source;

/// How many events a subscriber may fall behind before it misses some.
pub const BUFFER: usize = 4096;

#[derive(Clone, Debug)]
pub enum Event {
    Activity(Arc<LoadedActivity>),
    Notification(Arc<notification::Model>),
}

/// An activity with the rows its event shows, loaded once per replica when it is published
/// rather than once per subscriber.
#[derive(Debug)]
pub struct LoadedActivity {
    pub activity: activity::Model,
    pub conversation: Option<entity::conversation::Model>,
    pub message: Option<entity::message::Model>,
    pub note: Option<entity::note::Model>,
    pub task: Option<entity::task::Model>,
    pub appointment: Option<entity::appointment::Model>,
    pub opportunity: Option<entity::opportunity::Model>,
}

impl LoadedActivity {
    /// Loads what activities refer to (their `...Id` data fields, within their workspace)
    /// with one statement per kind of row and workspace, in the order given.
    pub async fn load_many(
        db: &DatabaseConnection,
        activities: Vec<activity::Model>,
    ) -> Result<Vec<Self>, sea_orm::DbErr> {
        use crate::domain::scoped::{self, Scoped, one_of};
        use sea_orm::QueryFilter;
        use std::collections::{BTreeMap, HashMap};

        /// The rows of `E` that `id` names, by (workspace, id).
        async fn rows<E: Scoped>(
            db: &DatabaseConnection,
            activities: &[activity::Model],
            id: impl Fn(&activity::Model) -> Option<i64>,
        ) -> Result<HashMap<(i64, i64), E::Model>, sea_orm::DbErr> {
            let mut wanted: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for a in activities {
                if let Some(i) = id(a) {
                    wanted.entry(a.workspace_id).or_default().push(i);
                }
            }
            let mut found = HashMap::new();
            for (ws, ids) in wanted {
                for row in scoped::rows::<E>(ws)
                    .filter(one_of(db, E::id_column(), ids))
                    .rows(db)
                    .await?
                {
                    found.insert((ws, E::id_of(&row)), row);
                }
            }
            Ok(found)
        }
        let field = |key: &'static str| {
            move |a: &activity::Model| a.data.get(key).and_then(serde_json::Value::as_i64)
        };
        let conversations =
            rows::<entity::conversation::Entity>(db, &activities, |a| a.conversation_id).await?;
        let messages = rows::<entity::message::Entity>(db, &activities, field("messageId")).await?;
        let notes = rows::<entity::note::Entity>(db, &activities, field("noteId")).await?;
        let tasks = rows::<entity::task::Entity>(db, &activities, field("taskId")).await?;
        let appointments =
            rows::<entity::appointment::Entity>(db, &activities, field("appointmentId")).await?;
        let opportunities =
            rows::<entity::opportunity::Entity>(db, &activities, field("opportunityId")).await?;
        Ok(activities
            .into_iter()
            .map(|a| {
                let ws = a.workspace_id;
                let pick = |id: Option<i64>| id.map(|id| (ws, id));
                LoadedActivity {
                    conversation: pick(a.conversation_id)
                        .and_then(|k| conversations.get(&k).cloned()),
                    message: pick(field("messageId")(&a)).and_then(|k| messages.get(&k).cloned()),
                    note: pick(field("noteId")(&a)).and_then(|k| notes.get(&k).cloned()),
                    task: pick(field("taskId")(&a)).and_then(|k| tasks.get(&k).cloned()),
                    appointment: pick(field("appointmentId")(&a))
                        .and_then(|k| appointments.get(&k).cloned()),
                    opportunity: pick(field("opportunityId")(&a))
                        .and_then(|k| opportunities.get(&k).cloned()),
                    activity: a,
                }
            })
            .collect())
    }
}

/// The process's event bus.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
    wake: Arc<Notify>,
    /// Bumped for every committed event, loaded or not: a wake-up for workers.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Bus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(BUFFER);
        Bus {
            tx,
            wake: Arc::new(Notify::new()),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl Bus {
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Something was committed: look for new events now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Changes whenever an event was committed (on any replica); for workers that only need
    /// to know that something happened, not what.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether anyone subscribed to events: with nobody listening, rows are not loaded.
    fn listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    fn publish(&self, event: Event) {
        // No receiver is not an error: nobody is subscribed right now.
        let _ = self.tx.send(event);
    }

    /// Starts the event source for `db` (LISTEN on PostgreSQL, a tailer on SQLite).
    pub fn start(
        &self,
        db: DatabaseConnection,
        database_url: String,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        spawn_source(self.clone(), db, database_url, shutdown);
    }
}
