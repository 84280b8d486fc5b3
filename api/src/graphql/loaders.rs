//! DataLoaders, one per relation, each bound to the caller's workspace: a page of nested
//! objects costs one statement per relation, never one per row.
use std::collections::HashMap;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::task::Poll;

use async_graphql::dataloader::{DataLoader, Loader};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

use crate::domain::TimeWindow;
pub use crate::domain::scoped::Scoped;
use crate::domain::scoped::{id_array, one_of, shaped};

use entity::positional::SelectRows;
use entity::{
    appointment, contact, conversation, custom_field_definition, custom_field_value, message, note,
    note_mention, pipeline, plugin, stage, task, user,
};

pub struct ByIdLoader<E> {
    db: DatabaseConnection,
    workspace_id: i64,
    _entity: PhantomData<fn() -> E>,
}

impl<E> ByIdLoader<E> {
    fn new(db: &DatabaseConnection, workspace_id: i64) -> Self {
        ByIdLoader {
            db: db.clone(),
            workspace_id,
            _entity: PhantomData,
        }
    }
}

impl<E> Loader<i64> for ByIdLoader<E>
where
    E: Scoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, E::Model>, Self::Error> {
        let select = || {
            E::find()
                .filter(one_of(&self.db, E::id_column(), keys.iter().copied()))
                .filter(E::workspace_column().eq(self.workspace_id))
        };
        let values = || vec![id_array(keys.iter().copied()), self.workspace_id.into()];
        let rows = shaped(&self.db, "by id", select, values)
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|m| (E::id_of(&m), m)).collect())
    }
}

/// A contact's one conversation, by contact id.
pub struct ConversationByContact(DatabaseConnection, i64);

impl Loader<i64> for ConversationByContact {
    type Value = conversation::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, conversation::Model>, Self::Error> {
        let rows = conversation::Entity::find()
            .filter(one_of(
                &self.0,
                conversation::Column::ContactId,
                keys.iter().copied(),
            ))
            .filter(conversation::Column::WorkspaceId.eq(self.1))
            .rows(&self.0)
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|c| (c.contact_id, c)).collect())
    }
}

/// A contact's tag names, sorted.
pub struct TagsByContact(DatabaseConnection, i64);

impl Loader<i64> for TagsByContact {
    type Value = Vec<String>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<String>>, Self::Error> {
        let links = crate::domain::contacts::tags::names(&self.0, self.1, keys)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for (link, name) in links {
            out.entry(link).or_default().push(name);
        }
        for tags in out.values_mut() {
            tags.sort();
        }
        Ok(out)
    }
}

/// A contact's custom field values with their keys, in definition order.
pub struct CustomFieldsByContact(DatabaseConnection, i64);

impl Loader<i64> for CustomFieldsByContact {
    type Value = Vec<(String, serde_json::Value)>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let values = custom_field_value::Entity::find()
            .filter(one_of(
                &self.0,
                custom_field_value::Column::ContactId,
                keys.iter().copied(),
            ))
            .filter(custom_field_value::Column::WorkspaceId.eq(self.1))
            .order_by_asc(custom_field_value::Column::DefinitionId)
            .rows(&self.0)
            .await
            .map_err(Arc::new)?;
        let defs: HashMap<i64, String> = custom_field_definition::Entity::find()
            .filter(custom_field_definition::Column::WorkspaceId.eq(self.1))
            .rows(&self.0)
            .await
            .map_err(Arc::new)?
            .into_iter()
            .map(|d| (d.id, d.key))
            .collect();
        let mut out: HashMap<i64, Self::Value> = HashMap::new();
        for v in values {
            if let Some(key) = defs.get(&v.definition_id) {
                out.entry(v.contact_id)
                    .or_default()
                    .push((key.clone(), v.value));
            }
        }
        Ok(out)
    }
}

/// The users a note mentions.
pub struct MentionsByNote(DatabaseConnection, i64);

impl Loader<i64> for MentionsByNote {
    type Value = Vec<i64>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<i64>>, Self::Error> {
        let rows = note_mention::Entity::find()
            .filter(one_of(
                &self.0,
                note_mention::Column::NoteId,
                keys.iter().copied(),
            ))
            .filter(note_mention::Column::WorkspaceId.eq(self.1))
            .order_by_asc(note_mention::Column::Id)
            .rows(&self.0)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
        for r in rows {
            out.entry(r.note_id).or_default().push(r.user_id);
        }
        Ok(out)
    }
}

/// A pipeline's stages in order.
pub struct StagesByPipeline(DatabaseConnection, i64);

impl Loader<i64> for StagesByPipeline {
    type Value = Vec<stage::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<stage::Model>>, Self::Error> {
        let rows = stage::Entity::find()
            .filter(one_of(
                &self.0,
                stage::Column::PipelineId,
                keys.iter().copied(),
            ))
            .filter(stage::Column::WorkspaceId.eq(self.1))
            .order_by_asc(stage::Column::Position)
            .rows(&self.0)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<i64, Vec<stage::Model>> = HashMap::new();
        for r in rows {
            out.entry(r.pipeline_id).or_default().push(r);
        }
        Ok(out)
    }
}

/// Holds the loaders' batches until the request's resolvers wait on them, and runs them.
///
/// async-graphql's DataLoader starts a batch on a timer (1 ms by default); a slow poll of a
/// long list splits one wave of keys into several batches, so the statement count would
/// depend on timing. Here batches run in waves: the queued ones start only when the request
/// is waiting (not merely yielding) and no earlier batch is still running. By then every
/// resolver that can go on has asked for its keys, so one relation at one depth is one
/// statement, however many rows the page has.
///
/// The batches run inside the request's own task, beside its resolvers, not as tasks of
/// their own: a finished batch wakes the resolvers on the thread that polls them, with no
/// hand-over between worker threads.
#[derive(Clone, Default)]
pub struct Batches(Arc<std::sync::Mutex<Vec<BoxFuture<'static, ()>>>>);

impl Batches {
    fn queued(&self) -> std::sync::MutexGuard<'_, Vec<BoxFuture<'static, ()>>> {
        // Nothing panics while holding the lock, so a poisoned lock still holds sound data.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, batch: BoxFuture<'static, ()>) {
        self.queued().push(batch);
    }

    /// Runs `work`, and the batches its resolvers queue, wave by wave.
    pub async fn drive<F: std::future::Future>(&self, work: F) -> F::Output {
        let mut work = std::pin::pin!(work);
        let mut running = FuturesUnordered::new();
        // One flag for the whole request: resolvers keep the waker of the poll in which they
        // began to wait, and a batch landing later must still raise it.
        let flag = Arc::new(SelfWake {
            woken: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        let waker = std::task::Waker::from(flag.clone());
        std::future::poll_fn(|cx| {
            flag.waker.register(cx.waker());
            loop {
                flag.woken.store(false, AtomicOrdering::SeqCst);
                let out = work
                    .as_mut()
                    .poll(&mut std::task::Context::from_waker(&waker));
                if out.is_ready() {
                    // A batch still running now has nobody waiting on it (a resolver beside it
                    // failed the request): it is dropped with the request.
                    return out;
                }
                // A poll that ended because the work yielded to be fair (it woke itself, as
                // `FuturesUnordered` does every 32 futures) is not a wait: the wave is not
                // complete, and the runtime polls the work again when its turn comes.
                if flag.woken.load(AtomicOrdering::SeqCst) {
                    return Poll::Pending;
                }
                if running.is_empty() {
                    running.extend(self.queued().drain(..));
                }
                while let Poll::Ready(Some(())) = running.poll_next_unpin(cx) {}
                // Go on in this same poll when a batch that landed woke its resolvers, or when
                // the wave is over and the next is queued.
                let next_wave = running.is_empty() && !self.queued().is_empty();
                if !flag.woken.load(AtomicOrdering::SeqCst) && !next_wave {
                    return Poll::Pending;
                }
            }
        })
        .await
    }
}

/// Forwards a wake-up to the request's task and remembers that one happened.
struct SelfWake {
    woken: AtomicBool,
    waker: AtomicWaker,
}

impl std::task::Wake for SelfWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, AtomicOrdering::SeqCst);
        self.waker.wake();
    }
}

/// One relation's loader, and the rows a list already brought in for it.
///
/// A list that knows what its query selects under each row (the inbox, `prefetch`) fetches a
/// relation for the whole page itself, in the loader's own statement, and keeps the rows
/// here: the rows' fields then answer from memory, at once, rather than each waiting on a
/// batch. Only a request's loaders keep rows; a socket's live as long as the socket, and what
/// they kept would go stale.
pub struct Relation<L: Loader<K>, K: Key> {
    loader: DataLoader<L>,
    kept: Option<std::sync::Mutex<Kept<K, L::Value>>>,
}

/// Kept rows by key; `None` where the key was looked up and has no row. The keys are ids (and
/// filters) the server read or parsed itself, and each map lives for one request: a fast
/// hasher serves, where SipHash cost ~2% of an inbox response's instructions.
pub type Kept<K, V> = HashMap<K, Option<V>, foldhash::fast::RandomState>;

impl<L, K> Relation<L, K>
where
    L: Loader<K, Error = Arc<DbErr>>,
    K: Key,
{
    fn new(loader: DataLoader<L>, keeps: bool) -> Self {
        Relation {
            loader,
            kept: keeps.then(Default::default),
        }
    }

    fn kept(&self) -> Option<std::sync::MutexGuard<'_, Kept<K, L::Value>>> {
        // Nothing panics while holding the lock, so a poisoned lock still holds sound data.
        let kept = self.kept.as_ref()?;
        Some(kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Whether this relation keeps what `keep` hands it.
    pub fn keeps(&self) -> bool {
        self.kept.is_some()
    }

    /// The row kept for `key`, if it was fetched ahead: `Some(None)` when it has none.
    pub fn get_kept(&self, key: &K) -> Option<Option<L::Value>> {
        self.kept()?.get(key).cloned()
    }

    pub async fn load_one(&self, key: K) -> Result<Option<L::Value>, Arc<DbErr>> {
        if let Some(kept) = self.get_kept(&key) {
            return Ok(kept);
        }
        self.batched(key).await
    }

    /// Through the loader's batches alone, for a key `get_kept` did not have.
    pub async fn batched(&self, key: K) -> Result<Option<L::Value>, Arc<DbErr>> {
        self.loader.load_one(key).await
    }

    pub async fn load_many(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<HashMap<K, L::Value>, Arc<DbErr>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        match self.kept() {
            Some(kept) => {
                for key in keys {
                    match kept.get(&key) {
                        Some(value) => {
                            if let Some(value) = value {
                                found.insert(key, value.clone());
                            }
                        }
                        None => missing.push(key),
                    }
                }
            }
            None => missing.extend(keys),
        }
        if !missing.is_empty() {
            found.extend(self.loader.load_many(missing).await?);
        }
        Ok(found)
    }

    /// The rows of `keys`, fetched now in the loader's one statement (not kept: see `keep`).
    pub async fn fetch(&self, keys: &[K]) -> Result<HashMap<K, L::Value>, Arc<DbErr>> {
        self.loader.loader().load(keys).await
    }

    /// Keeps what `fetch` found for `keys`; a key it found nothing for is kept as having none.
    pub fn keep(&self, keys: impl ExactSizeIterator<Item = K>, found: HashMap<K, L::Value>) {
        if let Some(mut kept) = self.kept() {
            kept.reserve(keys.len());
            kept.extend(found.into_iter().map(|(key, value)| (key, Some(value))));
            for key in keys {
                kept.entry(key).or_insert(None);
            }
        }
    }

    /// Reads the kept rows in place.
    pub fn with_kept<T>(&self, read: impl FnOnce(&Kept<K, L::Value>) -> T) -> Option<T> {
        Some(read(&*self.kept()?))
    }
}

/// What a loader's keys are.
pub trait Key: Send + Sync + Hash + Eq + Clone + 'static {}

impl<K: Send + Sync + Hash + Eq + Clone + 'static> Key for K {}

type ById<E> = Relation<ByIdLoader<E>, i64>;

/// Every loader of one request, bound to the caller's workspace.
pub struct Loaders {
    pub users: ById<user::Entity>,
    pub contacts: ById<contact::Entity>,
    pub conversations: ById<conversation::Entity>,
    pub messages: ById<message::Entity>,
    pub notes: ById<note::Entity>,
    pub tasks: ById<task::Entity>,
    pub appointments: ById<appointment::Entity>,
    pub pipelines: ById<pipeline::Entity>,
    pub plugins: ById<plugin::Entity>,
    pub stages: ById<stage::Entity>,
    pub conversation_by_contact: Relation<ConversationByContact, i64>,
    pub tags_by_contact: Relation<TagsByContact, i64>,
    pub custom_fields_by_contact: Relation<CustomFieldsByContact, i64>,
    pub mentions_by_note: Relation<MentionsByNote, i64>,
    pub stages_by_pipeline: Relation<StagesByPipeline, i64>,
    pub tasks_by_conversation: Relation<TasksByConversation, TasksKey>,
    pub appointments_by_conversation: Relation<AppointmentsByConversation, AppointmentsKey>,
}

impl Loaders {
    /// Loaders for one request. With `batches` (HTTP requests) their batches run in waves
    /// driven by `Batches::drive`, and they keep what a list fetches ahead; without
    /// (long-lived WebSocket connections), batches run on a short timer and nothing is kept.
    pub fn new(db: &DatabaseConnection, workspace_id: i64, batches: Option<&Batches>) -> Self {
        let keeps = batches.is_some();
        macro_rules! loader {
            ($inner:expr) => {{
                let loader = match batches {
                    Some(batches) => {
                        let batches = batches.clone();
                        DataLoader::new($inner, move |batch| batches.push(batch))
                            .delay(std::time::Duration::ZERO)
                    }
                    None => DataLoader::new($inner, tokio::spawn),
                };
                Relation::new(loader, keeps)
            }};
        }
        let d = || db.clone();
        Loaders {
            users: loader!(ByIdLoader::new(db, workspace_id)),
            contacts: loader!(ByIdLoader::new(db, workspace_id)),
            conversations: loader!(ByIdLoader::new(db, workspace_id)),
            messages: loader!(ByIdLoader::new(db, workspace_id)),
            notes: loader!(ByIdLoader::new(db, workspace_id)),
            tasks: loader!(ByIdLoader::new(db, workspace_id)),
            appointments: loader!(ByIdLoader::new(db, workspace_id)),
            pipelines: loader!(ByIdLoader::new(db, workspace_id)),
            plugins: loader!(ByIdLoader::new(db, workspace_id)),
            stages: loader!(ByIdLoader::new(db, workspace_id)),
            conversation_by_contact: loader!(ConversationByContact(d(), workspace_id)),
            tags_by_contact: loader!(TagsByContact(d(), workspace_id)),
            custom_fields_by_contact: loader!(CustomFieldsByContact(d(), workspace_id)),
            mentions_by_note: loader!(MentionsByNote(d(), workspace_id)),
            stages_by_pipeline: loader!(StagesByPipeline(d(), workspace_id)),
            tasks_by_conversation: loader!(TasksByConversation(d(), workspace_id)),
            appointments_by_conversation: loader!(AppointmentsByConversation(d(), workspace_id)),
        }
    }
}

/// A conversation's tasks (of one status, or all), newest first: the inbox asks for them on
/// every row, so they load for the whole page at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TasksKey {
    pub conversation_id: i64,
    pub status: Option<crate::domain::TaskStatus>,
}

pub struct TasksByConversation(DatabaseConnection, i64);

impl Loader<TasksKey> for TasksByConversation {
    type Value = Vec<task::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[TasksKey],
    ) -> Result<HashMap<TasksKey, Vec<task::Model>>, Self::Error> {
        let conversations = || keys.iter().map(|k| k.conversation_id);
        // A list asks every row for the same status: only those rows are read and decoded.
        let status = same(keys, |k| k.status).flatten();
        let select = || {
            let mut query = task::Entity::find()
                .filter(task::Column::WorkspaceId.eq(self.1))
                .filter(one_of(
                    &self.0,
                    task::Column::ConversationId,
                    conversations(),
                ))
                .filter(task::Column::DeletedAt.is_null());
            if let Some(status) = status {
                query = query.filter(task::Column::Status.eq(status.as_str()));
            }
            query.order_by_desc(task::Column::Id)
        };
        let values = || {
            let mut values = vec![self.1.into(), id_array(conversations())];
            values.extend(status.map(|s| s.as_str().into()));
            values
        };
        let shape = match status {
            Some(_) => "of one status",
            None => "of every status",
        };
        let rows = shaped(&self.0, shape, select, values)
            .await
            .map_err(Arc::new)?;
        Ok(keys
            .iter()
            .map(|k| {
                let mine = rows
                    .iter()
                    .filter(|t| t.conversation_id == k.conversation_id)
                    .filter(|t| k.status.is_none_or(|s| t.status == s.as_str()))
                    .cloned()
                    .collect();
                (*k, mine)
            })
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppointmentsKey {
    pub conversation_id: i64,
    pub when: TimeWindow,
}

/// A conversation's appointments in a time window: UPCOMING and ALL by start time, PAST most
/// recent first.
pub struct AppointmentsByConversation(DatabaseConnection, i64);

impl Loader<AppointmentsKey> for AppointmentsByConversation {
    type Value = Vec<appointment::Model>;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[AppointmentsKey],
    ) -> Result<HashMap<AppointmentsKey, Vec<appointment::Model>>, Self::Error> {
        let conversations = || keys.iter().map(|k| k.conversation_id);
        let at = crate::domain::now();
        // As for tasks: one window for the whole list is applied by the database.
        let when = same(keys, |k| k.when).filter(|&when| when != TimeWindow::All);
        let select = || {
            let mut query = appointment::Entity::find()
                .filter(appointment::Column::WorkspaceId.eq(self.1))
                .filter(one_of(
                    &self.0,
                    appointment::Column::ConversationId,
                    conversations(),
                ));
            if let Some(condition) =
                when.and_then(|when| crate::domain::appointments::window_condition(when, at))
            {
                query = query.filter(condition);
            }
            query
                .order_by_asc(appointment::Column::StartsAt)
                .order_by_asc(appointment::Column::Id)
        };
        let values = || {
            let mut values = vec![self.1.into(), id_array(conversations())];
            values.extend(when.map(|_| at.into()));
            values
        };
        let shape = match when {
            Some(TimeWindow::Upcoming) => "upcoming",
            Some(TimeWindow::Past) => "past",
            _ => "in any window",
        };
        let rows = shaped(&self.0, shape, select, values)
            .await
            .map_err(Arc::new)?;
        Ok(keys
            .iter()
            .map(|k| {
                let mut mine: Vec<appointment::Model> = rows
                    .iter()
                    .filter(|a| a.conversation_id == k.conversation_id)
                    .filter(|a| crate::domain::appointments::in_window(a, k.when, at))
                    .cloned()
                    .collect();
                if k.when == TimeWindow::Past {
                    mine.reverse();
                }
                (*k, mine)
            })
            .collect())
    }
}

/// What every key has in common, if they all have it.
fn same<K, T: PartialEq>(keys: &[K], of: impl Fn(&K) -> T) -> Option<T> {
    let (first, rest) = keys.split_first()?;
    let value = of(first);
    rest.iter().all(|k| of(k) == value).then_some(value)
}
