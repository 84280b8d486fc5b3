//! Live updates. Every committed activity and notification becomes an event on the bus, which
//! fans out to the GraphQL subscriptions of this process.
//!
//! Where events come from:
//! - PostgreSQL: triggers `pg_notify` a compact envelope when an activity or a notification row
//!   is inserted. NOTIFY is delivered at commit, in commit order, and never for a rolled-back
//!   transaction, to every replica LISTENing, so a change made through replica A reaches
//!   subscribers of replica B.
//! - SQLite (one process): a tailer reads new rows by id after each write (ids follow commit
//!   order with one writer), woken by the HTTP layer after every mutation.
mod source;
pub mod ws;

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, broadcast};

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
    /// Loads what the activity refers to (its `...Id` data fields), within its workspace.
    pub async fn load(
        db: &DatabaseConnection,
        activity: activity::Model,
    ) -> Result<Self, sea_orm::DbErr> {
        use crate::domain::scoped;
        let ws = activity.workspace_id;
        let id = |key: &str| activity.data.get(key).and_then(serde_json::Value::as_i64);
        async fn opt<E: scoped::Scoped>(
            db: &DatabaseConnection,
            ws: i64,
            id: Option<i64>,
        ) -> Result<Option<E::Model>, sea_orm::DbErr> {
            match id {
                Some(id) => scoped::find::<E>(db, ws, id).await,
                None => Ok(None),
            }
        }
        Ok(LoadedActivity {
            conversation: opt::<entity::conversation::Entity>(db, ws, activity.conversation_id)
                .await?,
            message: opt::<entity::message::Entity>(db, ws, id("messageId")).await?,
            note: opt::<entity::note::Entity>(db, ws, id("noteId")).await?,
            task: opt::<entity::task::Entity>(db, ws, id("taskId")).await?,
            appointment: opt::<entity::appointment::Entity>(db, ws, id("appointmentId")).await?,
            opportunity: opt::<entity::opportunity::Entity>(db, ws, id("opportunityId")).await?,
            activity,
        })
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
