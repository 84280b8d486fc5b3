//! Where the bus's events come from: PostgreSQL LISTEN/NOTIFY, or an SQLite tailer.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Deserialize;
use tokio::sync::watch;

use entity::positional::SelectRows;
use entity::{activity, notification};

use super::{Bus, Event, LoadedActivity};
use crate::domain::scoped::one_of;

pub const CHANNEL: &str = "confab_events";
const TAIL_POLL: Duration = Duration::from_millis(250);
const TAIL_BATCH: u64 = 500;

pub fn spawn_source(
    bus: Bus,
    db: DatabaseConnection,
    url: String,
    shutdown: watch::Receiver<bool>,
) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            tokio::spawn(listen(bus, db, url, shutdown));
        }
        _ => {
            tokio::spawn(tail(bus, db, shutdown));
        }
    }
}

/// A NOTIFY payload: references, never rows (NOTIFY caps payloads at 8000 bytes). One per
/// statement that inserted rows of a kind, naming them in id order (migration 10).
#[derive(Deserialize)]
struct Envelope {
    /// "a" for activities, "n" for notifications.
    t: String,
    ids: Vec<i64>,
}

/// The most events one round of loading takes: the notifications already received are
/// loaded together, a statement per kind of row, rather than one event after another.
const EVENTS_PER_LOAD: usize = 1000;

/// The events received and not yet published, in the order they were committed.
#[derive(Default)]
struct Received {
    events: Vec<(Kind, i64)>,
}

/// What an event's row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Activity,
    Notification,
}

impl Received {
    fn add(&mut self, payload: &str) {
        let envelope = match serde_json::from_str::<Envelope>(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, payload, "unreadable event envelope");
                return;
            }
        };
        let kind = match envelope.t.as_str() {
            "a" => Kind::Activity,
            "n" => Kind::Notification,
            _ => {
                tracing::warn!(payload, "an event envelope of an unknown kind");
                return;
            }
        };
        self.events
            .extend(envelope.ids.into_iter().map(|id| (kind, id)));
    }

    fn ids(&self, kind: Kind) -> Vec<i64> {
        self.events
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
            .collect()
    }

    /// Wakes the workers, then (when anyone subscribed) loads the events' rows and publishes
    /// them in commit order. A row gone by now (its workspace deleted) is skipped.
    async fn publish(self, bus: &Bus, db: &DatabaseConnection) {
        if self.events.is_empty() {
            return;
        }
        bus.changed();
        if !bus.listened() {
            return;
        }
        let Loaded {
            mut activities,
            mut notifications,
        } = match self.load(db).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(error = %e, events = self.events.len(), "cannot load events' rows");
                return;
            }
        };
        for (kind, id) in self.events {
            let event = match kind {
                Kind::Activity => activities.remove(&id).map(Event::Activity),
                Kind::Notification => notifications.remove(&id).map(Event::Notification),
            };
            if let Some(event) = event {
                bus.publish(event);
            }
        }
    }

    /// The events' rows, a statement per kind of row.
    async fn load(&self, db: &DatabaseConnection) -> Result<Loaded, sea_orm::DbErr> {
        let mut activities = HashMap::new();
        let ids = self.ids(Kind::Activity);
        if !ids.is_empty() {
            let rows = activity::Entity::find()
                .filter(one_of(db, activity::Column::Id, ids))
                .rows(db)
                .await?;
            for l in LoadedActivity::load_many(db, rows).await? {
                activities.insert(l.activity.id, Arc::new(l));
            }
        }
        let mut notifications = HashMap::new();
        let ids = self.ids(Kind::Notification);
        if !ids.is_empty() {
            for n in notification::Entity::find()
                .filter(one_of(db, notification::Column::Id, ids))
                .rows(db)
                .await?
            {
                notifications.insert(n.id, Arc::new(n));
            }
        }
        Ok(Loaded {
            activities,
            notifications,
        })
    }
}

/// Received events' rows, by id.
struct Loaded {
    activities: HashMap<i64, Arc<LoadedActivity>>,
    notifications: HashMap<i64, Arc<notification::Model>>,
}

async fn listen(
    bus: Bus,
    db: DatabaseConnection,
    url: String,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot open the LISTEN connection; retrying in 1 s");
                if sleep_or_stop(&mut shutdown, Duration::from_secs(1)).await {
                    return;
                }
                continue;
            }
        };
        listener.eager_reconnect(true);
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::error!(error = %e, "LISTEN failed; retrying in 1 s");
            if sleep_or_stop(&mut shutdown, Duration::from_secs(1)).await {
                return;
            }
            continue;
        }
        tracing::info!(channel = CHANNEL, "listening for events from every replica");
        loop {
            let next = tokio::select! {
                n = listener.try_recv() => n,
                _ = shutdown.changed() => return,
            };
            match next {
                Ok(Some(n)) => {
                    // With it, whatever else has arrived meanwhile.
                    let mut received = Received::default();
                    received.add(n.payload());
                    while received.events.len() < EVENTS_PER_LOAD
                        && let Some(n) = listener.next_buffered()
                    {
                        received.add(n.payload());
                    }
                    received.publish(&bus, &db).await;
                }
                Ok(None) => {
                    tracing::warn!(
                        "LISTEN connection lost; reconnecting (events committed meanwhile are not replayed)"
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "LISTEN connection failed; reconnecting in 1 s");
                    if sleep_or_stop(&mut shutdown, Duration::from_secs(1)).await {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// Returns true when shutdown was asked for while sleeping.
async fn sleep_or_stop(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = shutdown.changed() => true,
    }
}

async fn tail(bus: Bus, db: DatabaseConnection, mut shutdown: watch::Receiver<bool>) {
    // Start from what exists now: subscribers want what happens from here on.
    let mut last_activity = max_id::<activity::Entity>(&db, activity::Column::Id).await;
    let mut last_notification = max_id::<notification::Entity>(&db, notification::Column::Id).await;
    loop {
        let activities = activity::Entity::find()
            .filter(activity::Column::Id.gt(last_activity))
            .order_by_asc(activity::Column::Id)
            .limit(TAIL_BATCH)
            .rows(&db)
            .await;
        let notifications = notification::Entity::find()
            .filter(notification::Column::Id.gt(last_notification))
            .order_by_asc(notification::Column::Id)
            .limit(TAIL_BATCH)
            .rows(&db)
            .await;
        let mut full = false;
        match (activities, notifications) {
            (Ok(a), Ok(n)) => {
                full = a.len() as u64 == TAIL_BATCH || n.len() as u64 == TAIL_BATCH;
                if !a.is_empty() || !n.is_empty() {
                    bus.changed();
                }
                let listened = bus.listened();
                if let Some(row) = a.last() {
                    last_activity = row.id;
                }
                if listened && !a.is_empty() {
                    match LoadedActivity::load_many(&db, a).await {
                        Ok(loaded) => {
                            for l in loaded {
                                bus.publish(Event::Activity(Arc::new(l)));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "event tailer: cannot load events' rows")
                        }
                    }
                }
                for row in n {
                    last_notification = row.id;
                    if !listened {
                        continue;
                    }
                    bus.publish(Event::Notification(Arc::new(row)));
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "event tailer: read failed; retrying")
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = bus.wake.notified() => {}
            _ = tokio::time::sleep(TAIL_POLL) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The largest id in a table, or 0 when it is empty or unreadable.
async fn max_id<E: EntityTrait>(db: &DatabaseConnection, id: E::Column) -> i64 {
    let max: Result<Option<Option<i64>>, _> = E::find()
        .select_only()
        .column_as(id.max(), "m")
        .into_tuple()
        .one(db)
        .await;
    max.ok().flatten().flatten().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{Kind, Received};

    #[test]
    fn envelopes_become_events_in_the_order_received_and_unreadable_ones_are_skipped() {
        let mut r = Received::default();
        r.add(r#"{"t":"a","ids":[3,4]}"#);
        r.add(r#"{"t":"n","ids":[7]}"#);
        r.add("not JSON");
        r.add(r#"{"t":"x","ids":[9]}"#);
        r.add(r#"{"t":"a","id":5}"#);
        r.add(r#"{"t":"a","ids":[6]}"#);
        assert_eq!(
            r.events,
            [
                (Kind::Activity, 3),
                (Kind::Activity, 4),
                (Kind::Notification, 7),
                (Kind::Activity, 6),
            ]
        );
        assert_eq!(r.ids(Kind::Activity), [3, 4, 6]);
        assert_eq!(r.ids(Kind::Notification), [7]);
    }
}
