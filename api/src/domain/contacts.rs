//! Contacts: the people a workspace talks to, each reached at one or more channel identities.
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, Select};

use entity::{contact, contact_tag, tag};

use crate::domain::conversations::escape_like;
use crate::domain::{ContactStatus, Scope};
use crate::error::DomainResult;

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
        .one(db)
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
