//! Contacts: the people a workspace talks to, each reached at one or more channel identities.
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, Select, Set,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{contact, contact_tag, conversation, tag, user};

use crate::db::begin_write;
use crate::domain::conversations::escape_like;
use crate::domain::scoped;
use crate::domain::{
    ActivityKind, ContactStatus, Role, Scope, activities, addresses, custom_fields, now,
};
use crate::error::{DomainError, DomainResult};

#[derive(Clone, Debug, Default)]
pub struct ContactFilter {
    pub status: Option<ContactStatus>,
    pub tag: Option<String>,
    pub search: Option<String>,
    pub owner_id: Option<i64>,
}

pub fn scoped(scope: &Scope) -> Select<contact::Entity> {
    contact::Entity::find().filter(contact::Column::WorkspaceId.eq(scope.workspace_id))
}

pub async fn find(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<Option<contact::Model>> {
    Ok(scoped(scope)
        .filter(contact::Column::Id.eq(id))
        .row(db)
        .await?)
}

/// Contacts whose name, email, phone or company contains `text` (case-insensitive).
pub fn matching(text: &str) -> Condition {
    let pattern = format!("%{}%", escape_like(&text.trim().to_lowercase()));
    let lower = |c: contact::Column| Expr::expr(Func::lower(Expr::col(c))).like(pattern.as_str());
    Condition::any()
        .add(lower(contact::Column::Name))
        .add(lower(contact::Column::Email))
        .add(Expr::col(contact::Column::Phone).like(pattern.as_str()))
        .add(lower(contact::Column::Company))
}

/// Ids of the workspace's contacts carrying tag `name`.
pub fn tagged(scope: &Scope, name: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column((contact_tag::Entity, contact_tag::Column::ContactId))
        .from(contact_tag::Entity)
        .inner_join(
            tag::Entity,
            Expr::col((tag::Entity, tag::Column::Id))
                .equals((contact_tag::Entity, contact_tag::Column::TagId)),
        )
        .and_where(Expr::col((tag::Entity, tag::Column::WorkspaceId)).eq(scope.workspace_id))
        .and_where(Expr::col((tag::Entity, tag::Column::Name)).eq(name.trim().to_lowercase()))
        .to_owned()
}

pub fn filtered(scope: &Scope, f: &ContactFilter) -> DomainResult<Select<contact::Entity>> {
    scope.require_member("read contacts")?;
    let mut q = scoped(scope);
    if let Some(s) = f.status {
        q = q.filter(contact::Column::Status.eq(s.as_str()));
    }
    if let Some(owner) = f.owner_id {
        q = q.filter(contact::Column::OwnerId.eq(owner));
    }
    if let Some(t) = f.tag.as_deref().filter(|t| !t.trim().is_empty()) {
        q = q.filter(contact::Column::Id.in_subquery(tagged(scope, t)));
    }
    if let Some(s) = f.search.as_deref().filter(|s| !s.trim().is_empty()) {
        q = q.filter(matching(s));
    }
    Ok(q)
}

/// Changes to a contact's profile; `None` leaves a field as it is, `Some("")` clears it.
#[derive(Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub company: Option<String>,
    pub status: Option<ContactStatus>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    pub custom_fields: Vec<(String, serde_json::Value)>,
}

fn cleared(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn tag_name(raw: &str) -> DomainResult<String> {
    let t = raw.trim().to_lowercase();
    if t.is_empty() || t.chars().count() > 64 {
        return Err(DomainError::invalid(
            "tags",
            format!("`{raw}`: a tag is 1 to 64 characters"),
        ));
    }
    Ok(t)
}

/// Updates the profile; every changed field writes FIELD_UPDATED (old and new value), tags
/// TAG_ADDED / TAG_REMOVED, all in one transaction. Validation happens before anything is written.
pub async fn update(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    u: ProfileUpdate,
) -> DomainResult<contact::Model> {
    scope.require_member("edit contacts")?;
    let email = match u.email.as_deref() {
        Some(e) if e.trim().is_empty() => Some(None),
        Some(e) => Some(Some(addresses::normalize_email(e, "email")?)),
        None => None,
    };
    let phone = match u.phone.as_deref() {
        Some(p) if p.trim().is_empty() => Some(None),
        Some(p) => Some(Some(addresses::normalize_phone(p, "phone")?)),
        None => None,
    };
    let whatsapp = match u.whatsapp.as_deref() {
        Some(w) if w.trim().is_empty() => Some(None),
        Some(w) => Some(Some(addresses::whatsapp_id(&addresses::normalize_phone(
            w, "whatsapp",
        )?))),
        None => None,
    };
    let add: Vec<String> = u
        .add_tags
        .iter()
        .map(|t| tag_name(t))
        .collect::<DomainResult<_>>()?;
    let remove: Vec<String> = u
        .remove_tags
        .iter()
        .map(|t| tag_name(t))
        .collect::<DomainResult<_>>()?;
    for (field, value) in [("name", &u.name), ("company", &u.company)] {
        if value.as_ref().is_some_and(|v| v.chars().count() > 200) {
            return Err(DomainError::invalid(field, "at most 200 characters"));
        }
    }

    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    let fields = custom_fields::validate(&txn, scope, &u.custom_fields).await?;
    let conversation_id = conversation::Entity::find()
        .filter(conversation::Column::ContactId.eq(id))
        .row(&txn)
        .await?
        .map(|c| c.id);
    let mut changes: Vec<(&str, serde_json::Value, serde_json::Value)> = Vec::new();
    let mut m = current.clone().into_active_model();
    let mut text = |field: &'static str,
                    old: &Option<String>,
                    new: Option<Option<String>>,
                    set: &mut dyn FnMut(Option<String>)| {
        if let Some(new) = new
            && &new != old
        {
            changes.push((field, json!(old), json!(new)));
            set(new);
        }
    };
    text(
        "name",
        &current.name,
        u.name.as_deref().map(cleared),
        &mut |v| m.name = Set(v),
    );
    text(
        "company",
        &current.company,
        u.company.as_deref().map(cleared),
        &mut |v| m.company = Set(v),
    );
    text("email", &current.email, email, &mut |v| m.email = Set(v));
    text("phone", &current.phone, phone, &mut |v| m.phone = Set(v));
    text("whatsapp", &current.whatsapp, whatsapp, &mut |v| {
        m.whatsapp = Set(v)
    });
    if let Some(status) = u.status.filter(|s| s.as_str() != current.status) {
        changes.push(("status", json!(current.status), json!(status.as_str())));
        m.status = Set(status.as_str().into());
    }
    for (field, _, new) in &changes {
        if matches!(*field, "email" | "phone") {
            identities::claim(&txn, scope, id, field, new.as_str()).await?;
        }
    }
    m.updated_at = Set(now());
    let updated = m.update(&txn).await?;
    for (field, old, new) in changes {
        activities::by_user(
            &txn,
            scope,
            conversation_id,
            ActivityKind::FieldUpdated,
            format!("Changed {field}"),
            json!({ "contactId": id, "field": field, "old": old, "new": new }),
        )
        .await?;
    }
    for (def, value) in fields {
        custom_fields::set(&txn, scope, &updated, conversation_id, &def, value).await?;
    }
    for t in add {
        if tags::add(&txn, scope, id, &t).await? {
            activities::by_user(
                &txn,
                scope,
                conversation_id,
                ActivityKind::TagAdded,
                format!("Tagged {t}"),
                json!({ "contactId": id, "tag": t }),
            )
            .await?;
        }
    }
    for t in remove {
        if tags::remove(&txn, scope, id, &t).await? {
            activities::by_user(
                &txn,
                scope,
                conversation_id,
                ActivityKind::TagRemoved,
                format!("Untagged {t}"),
                json!({ "contactId": id, "tag": t }),
            )
            .await?;
        }
    }
    txn.commit().await?;
    Ok(updated)
}

/// Makes `owner_id` (a teammate, or nobody) responsible for the contact.
pub async fn assign_owner(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    owner_id: Option<i64>,
) -> DomainResult<contact::Model> {
    scope.require_member("assign owners")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock(&txn, scoped(scope), id).await?;
    let owner = match owner_id {
        Some(uid) => Some(
            user::Entity::find_by_id(uid)
                .filter(user::Column::WorkspaceId.eq(scope.workspace_id))
                .filter(user::Column::Role.ne(Role::Integration.as_str()))
                .row(&txn)
                .await?
                .ok_or(DomainError::NotFound("user"))?,
        ),
        None => None,
    };
    if current.owner_id == owner_id {
        return Ok(current);
    }
    let conversation_id = conversation::Entity::find()
        .filter(conversation::Column::ContactId.eq(id))
        .row(&txn)
        .await?
        .map(|c| c.id);
    let mut m = current.clone().into_active_model();
    m.owner_id = Set(owner_id);
    m.updated_at = Set(now());
    let updated = m.update(&txn).await?;
    activities::by_user(
        &txn,
        scope,
        conversation_id,
        ActivityKind::OwnerChanged,
        match &owner {
            Some(o) => format!("Owner set to {}", o.name),
            None => "Owner removed".into(),
        },
        json!({ "contactId": id, "old": current.owner_id, "new": owner_id }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

mod identities {
    //! Keeps the identity index in step with a contact's own email and phone.
    use sea_orm::{
        ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    };

    use entity::contact_identity;
    use entity::positional::SelectRows;

    use crate::domain::addresses::IdentityKind;
    use crate::domain::{Scope, now};
    use crate::error::{DomainError, DomainResult};

    /// Points the identity `value` at `contact_id`; another contact holding it is a CONFLICT.
    pub async fn claim(
        txn: &DatabaseTransaction,
        scope: &Scope,
        contact_id: i64,
        field: &str,
        value: Option<&str>,
    ) -> DomainResult<()> {
        let kind = if field == "email" {
            IdentityKind::Email
        } else {
            IdentityKind::Phone
        };
        let Some(value) = value else { return Ok(()) };
        let holder = contact_identity::Entity::find()
            .filter(contact_identity::Column::WorkspaceId.eq(scope.workspace_id))
            .filter(contact_identity::Column::Kind.eq(kind.as_str()))
            .filter(contact_identity::Column::Value.eq(value))
            .row(txn)
            .await?;
        match holder {
            Some(h) if h.contact_id == contact_id => Ok(()),
            Some(_) => Err(DomainError::Conflict(format!(
                "another contact already has {field} {value}"
            ))),
            None => {
                contact_identity::ActiveModel {
                    workspace_id: Set(scope.workspace_id),
                    contact_id: Set(contact_id),
                    kind: Set(kind.as_str().into()),
                    value: Set(value.to_string()),
                    created_at: Set(now()),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                Ok(())
            }
        }
    }
}

pub(crate) mod tags {
    //! Tags are workspace-wide names; adding or removing one twice changes nothing.
    use sea_orm::{
        ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
        JoinType, QueryFilter, QuerySelect, Set,
    };

    use entity::positional::SelectRows;
    use entity::{contact_tag, tag};

    use crate::domain::scoped::one_of;
    use crate::domain::{Scope, now};
    use crate::error::DomainResult;

    /// (contact id, tag name) pairs for the given contacts of a workspace, in one statement.
    pub async fn names(
        db: &impl ConnectionTrait,
        workspace_id: i64,
        contacts: &[i64],
    ) -> Result<Vec<(i64, String)>, DbErr> {
        let to_tag = contact_tag::Entity::belongs_to(tag::Entity)
            .from(contact_tag::Column::TagId)
            .to(tag::Column::Id)
            .into();
        contact_tag::Entity::find()
            .select_only()
            .column(contact_tag::Column::ContactId)
            .column(tag::Column::Name)
            .join(JoinType::InnerJoin, to_tag)
            .filter(one_of(
                db,
                contact_tag::Column::ContactId,
                contacts.iter().copied(),
            ))
            .filter(contact_tag::Column::WorkspaceId.eq(workspace_id))
            .into_tuple()
            .all(db)
            .await
    }

    async fn find(
        txn: &DatabaseTransaction,
        scope: &Scope,
        name: &str,
    ) -> DomainResult<Option<tag::Model>> {
        Ok(tag::Entity::find()
            .filter(tag::Column::WorkspaceId.eq(scope.workspace_id))
            .filter(tag::Column::Name.eq(name))
            .row(txn)
            .await?)
    }

    /// True when the contact did not have the tag before.
    pub async fn add(
        txn: &DatabaseTransaction,
        scope: &Scope,
        contact_id: i64,
        name: &str,
    ) -> DomainResult<bool> {
        let tag = match find(txn, scope, name).await? {
            Some(t) => t,
            None => {
                tag::ActiveModel {
                    workspace_id: Set(scope.workspace_id),
                    name: Set(name.to_string()),
                    created_at: Set(now()),
                    ..Default::default()
                }
                .insert(txn)
                .await?
            }
        };
        let linked = contact_tag::Entity::find()
            .filter(contact_tag::Column::ContactId.eq(contact_id))
            .filter(contact_tag::Column::TagId.eq(tag.id))
            .row(txn)
            .await?;
        if linked.is_some() {
            return Ok(false);
        }
        contact_tag::ActiveModel {
            workspace_id: Set(scope.workspace_id),
            contact_id: Set(contact_id),
            tag_id: Set(tag.id),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        Ok(true)
    }

    /// True when the contact had the tag.
    pub async fn remove(
        txn: &DatabaseTransaction,
        scope: &Scope,
        contact_id: i64,
        name: &str,
    ) -> DomainResult<bool> {
        let Some(tag) = find(txn, scope, name).await? else {
            return Ok(false);
        };
        let res = contact_tag::Entity::delete_many()
            .filter(contact_tag::Column::ContactId.eq(contact_id))
            .filter(contact_tag::Column::TagId.eq(tag.id))
            .exec(txn)
            .await?;
        Ok(res.rows_affected > 0)
    }
}
