//! DataLoaders, one per relation, each bound to the caller's workspace: a page of nested
//! objects costs one statement per relation, never one per row.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder};

use entity::{
    activity, appointment, contact, contact_tag, conversation, custom_field_definition,
    custom_field_value, job, message, message_template, note, note_mention, notification,
    opportunity, pipeline, plugin, plugin_run, stage, tag, task, user,
};

/// Entities whose rows belong to a workspace and are looked up by id.
pub trait Scoped: EntityTrait {
    fn id_column() -> Self::Column;
    fn workspace_column() -> Self::Column;
    fn id_of(model: &Self::Model) -> i64;
}

macro_rules! scoped {
    ($($m:ident),+) => {$(
        impl Scoped for $m::Entity {
            fn id_column() -> Self::Column { $m::Column::Id }
            fn workspace_column() -> Self::Column { $m::Column::WorkspaceId }
            fn id_of(model: &Self::Model) -> i64 { model.id }
        }
    )+};
}

scoped!(
    user,
    contact,
    conversation,
    message,
    note,
    task,
    appointment,
    pipeline,
    plugin,
    stage,
    activity,
    job,
    message_template,
    plugin_run,
    notification,
    opportunity
);

/// One row of the caller's workspace by id, outside any loader.
pub async fn find_scoped<E>(
    db: &DatabaseConnection,
    workspace_id: i64,
    id: i64,
) -> Result<Option<E::Model>, DbErr>
where
    E: Scoped,
{
    E::find()
        .filter(E::id_column().eq(id))
        .filter(E::workspace_column().eq(workspace_id))
        .one(db)
        .await
}

pub struct ById<E> {
    db: DatabaseConnection,
    workspace_id: i64,
    _entity: PhantomData<fn() -> E>,
}

impl<E> Loader<i64> for ById<E>
where
    E: Scoped + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, E::Model>, Self::Error> {
        let rows = E::find()
            .filter(E::id_column().is_in(keys.iter().copied()))
            .filter(E::workspace_column().eq(self.workspace_id))
            .all(&self.db)
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
            .filter(conversation::Column::ContactId.is_in(keys.iter().copied()))
            .filter(conversation::Column::WorkspaceId.eq(self.1))
            .all(&self.0)
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
        let links = tag_names(&self.0, self.1, keys).await.map_err(Arc::new)?;
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

/// (contact id, tag name) pairs for the given contacts.
async fn tag_names(
    db: &DatabaseConnection,
    workspace_id: i64,
    contacts: &[i64],
) -> Result<Vec<(i64, String)>, DbErr> {
    {
        let links = contact_tag::Entity::find()
            .filter(contact_tag::Column::ContactId.is_in(contacts.iter().copied()))
            .filter(contact_tag::Column::WorkspaceId.eq(workspace_id))
            .all(db)
            .await?;
        let tag_ids: Vec<i64> = links.iter().map(|l| l.tag_id).collect();
        let names: HashMap<i64, String> = tag::Entity::find()
            .filter(tag::Column::Id.is_in(tag_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        Ok(links
            .into_iter()
            .filter_map(|l| names.get(&l.tag_id).map(|n| (l.contact_id, n.clone())))
            .collect())
    }
}

/// A contact's custom field values with their keys, in definition order.
pub struct CustomFieldsByContact(DatabaseConnection, i64);

impl Loader<i64> for CustomFieldsByContact {
    type Value = Vec<(String, serde_json::Value)>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let values = custom_field_value::Entity::find()
            .filter(custom_field_value::Column::ContactId.is_in(keys.iter().copied()))
            .filter(custom_field_value::Column::WorkspaceId.eq(self.1))
            .order_by_asc(custom_field_value::Column::DefinitionId)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        let defs: HashMap<i64, String> = custom_field_definition::Entity::find()
            .filter(custom_field_definition::Column::WorkspaceId.eq(self.1))
            .all(&self.0)
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
            .filter(note_mention::Column::NoteId.is_in(keys.iter().copied()))
            .filter(note_mention::Column::WorkspaceId.eq(self.1))
            .order_by_asc(note_mention::Column::Id)
            .all(&self.0)
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
            .filter(stage::Column::PipelineId.is_in(keys.iter().copied()))
            .filter(stage::Column::WorkspaceId.eq(self.1))
            .order_by_asc(stage::Column::Position)
            .all(&self.0)
            .await
            .map_err(Arc::new)?;
        let mut out: HashMap<i64, Vec<stage::Model>> = HashMap::new();
        for r in rows {
            out.entry(r.pipeline_id).or_default().push(r);
        }
        Ok(out)
    }
}

/// Every loader of one request, bound to the caller's workspace.
pub struct Loaders {
    pub users: DataLoader<ById<user::Entity>>,
    pub contacts: DataLoader<ById<contact::Entity>>,
    pub conversations: DataLoader<ById<conversation::Entity>>,
    pub messages: DataLoader<ById<message::Entity>>,
    pub notes: DataLoader<ById<note::Entity>>,
    pub tasks: DataLoader<ById<task::Entity>>,
    pub appointments: DataLoader<ById<appointment::Entity>>,
    pub pipelines: DataLoader<ById<pipeline::Entity>>,
    pub plugins: DataLoader<ById<plugin::Entity>>,
    pub stages: DataLoader<ById<stage::Entity>>,
    pub conversation_by_contact: DataLoader<ConversationByContact>,
    pub tags_by_contact: DataLoader<TagsByContact>,
    pub custom_fields_by_contact: DataLoader<CustomFieldsByContact>,
    pub mentions_by_note: DataLoader<MentionsByNote>,
    pub stages_by_pipeline: DataLoader<StagesByPipeline>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection, workspace_id: i64) -> Self {
        fn by_id<E>(db: &DatabaseConnection, workspace_id: i64) -> DataLoader<ById<E>>
        where
            E: Scoped + Send + Sync + 'static,
            E::Model: Clone + Send + Sync + 'static,
        {
            DataLoader::new(
                ById {
                    db: db.clone(),
                    workspace_id,
                    _entity: PhantomData,
                },
                tokio::spawn,
            )
        }
        let d = || db.clone();
        Loaders {
            users: by_id(db, workspace_id),
            contacts: by_id(db, workspace_id),
            conversations: by_id(db, workspace_id),
            messages: by_id(db, workspace_id),
            notes: by_id(db, workspace_id),
            tasks: by_id(db, workspace_id),
            appointments: by_id(db, workspace_id),
            pipelines: by_id(db, workspace_id),
            plugins: by_id(db, workspace_id),
            stages: by_id(db, workspace_id),
            conversation_by_contact: DataLoader::new(
                ConversationByContact(d(), workspace_id),
                tokio::spawn,
            ),
            tags_by_contact: DataLoader::new(TagsByContact(d(), workspace_id), tokio::spawn),
            custom_fields_by_contact: DataLoader::new(
                CustomFieldsByContact(d(), workspace_id),
                tokio::spawn,
            ),
            mentions_by_note: DataLoader::new(MentionsByNote(d(), workspace_id), tokio::spawn),
            stages_by_pipeline: DataLoader::new(StagesByPipeline(d(), workspace_id), tokio::spawn),
        }
    }
}
