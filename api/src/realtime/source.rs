//! Where the bus's events come from: PostgreSQL LISTEN/NOTIFY, or an SQLite tailer.
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

/// The NOTIFY payload: a reference, never the row (NOTIFY caps payloads at 8000 bytes).
#[derive(Deserialize)]
struct Envelope {
    /// "a" for an activity, "n" for a notification.
    t: String,
    id: i64,
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
                Ok(Some(n)) => match serde_json::from_str::<Envelope>(n.payload()) {
                    Ok(env) => load_and_publish(&bus, &db, &env).await,
                    Err(e) => {
                        tracing::warn!(error = %e, payload = n.payload(), "unreadable event envelope")
                    }
                },
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

async fn load_and_publish(bus: &Bus, db: &DatabaseConnection, env: &Envelope) {
    bus.changed();
    if !bus.listened() {
        return;
    }
    let loaded = match env.t.as_str() {
        "a" => match activity::Entity::find_by_id(env.id).row(db).await {
            Ok(Some(a)) => LoadedActivity::load(db, a)
                .await
                .map(|l| Some(Event::Activity(Arc::new(l)))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        },
        "n" => notification::Entity::find_by_id(env.id)
            .row(db)
            .await
            .map(|r| r.map(|m| Event::Notification(Arc::new(m)))),
        _ => Ok(None),
    };
    match loaded {
        Ok(Some(event)) => bus.publish(event),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, id = env.id, "cannot load an event's row"),
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
