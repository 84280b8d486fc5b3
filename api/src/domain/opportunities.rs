//! Pipelines with ordered stages, and the deals (opportunities) that move through them.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{conversation, opportunity, pipeline, stage};

use crate::db::begin_write;
use crate::domain::scoped;
use crate::domain::{ActivityKind, OpportunityStatus, Role, Scope, activities, conversations, now};
use crate::error::{DomainError, DomainResult};

pub async fn create_pipeline(
    db: &DatabaseConnection,
    scope: &Scope,
    name: &str,
    stages: Vec<String>,
) -> DomainResult<pipeline::Model> {
    scope.require_role(&[Role::Admin], "create pipelines")?;
    let name = crate::domain::required_text("name", name, 100)?;
    let stages: Vec<String> = stages.iter().map(|s| s.trim().to_string()).collect();
    if stages.is_empty()
        || stages.len() > 50
        || stages
            .iter()
            .any(|s| s.is_empty() || s.chars().count() > 100)
    {
        return Err(DomainError::invalid(
            "stages",
            "1 to 50 stage names of 1 to 100 characters",
        ));
    }
    if !crate::domain::all_distinct(&stages) {
        return Err(DomainError::invalid(
            "stages",
            "stage names must be distinct",
        ));
    }
    let txn = begin_write(db).await?;
    let created = pipeline::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        name: Set(name.to_string()),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    for (i, s) in stages.iter().enumerate() {
        stage::ActiveModel {
            workspace_id: Set(scope.workspace_id),
            pipeline_id: Set(created.id),
            name: Set(s.clone()),
            position: Set(i as i32),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
    }
    activities::by_user(
        &txn,
        scope,
        None,
        ActivityKind::SystemEvent,
        format!("Pipeline created: {name}"),
        json!({ "pipelineId": created.id, "stages": stages }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

fn check_money(amount: Option<i64>, currency: Option<&str>) -> DomainResult<Option<String>> {
    if amount.is_some_and(|a| a < 0) {
        return Err(DomainError::invalid("amountMinor", "must not be negative"));
    }
    match currency {
        Some(c) if c.len() == 3 && c.chars().all(|x| x.is_ascii_alphabetic()) => {
            Ok(Some(c.to_ascii_uppercase()))
        }
        Some(_) => Err(DomainError::invalid(
            "currency",
            "an ISO 4217 code such as EUR or USD",
        )),
        None if amount.is_some() => Err(DomainError::invalid(
            "currency",
            "required with amountMinor",
        )),
        None => Ok(None),
    }
}

async fn stage_of(
    txn: &DatabaseTransaction,
    scope: &Scope,
    pipeline_id: i64,
    stage_id: Option<i64>,
) -> DomainResult<stage::Model> {
    let q = stage::Entity::find()
        .filter(stage::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(stage::Column::PipelineId.eq(pipeline_id));
    match stage_id {
        Some(id) => {
            let s = stage::Entity::find_by_id(id)
                .filter(stage::Column::WorkspaceId.eq(scope.workspace_id))
                .row(txn)
                .await?
                .ok_or(DomainError::NotFound("stage"))?;
            if s.pipeline_id != pipeline_id {
                return Err(DomainError::invalid(
                    "stageId",
                    "the stage belongs to another pipeline",
                ));
            }
            Ok(s)
        }
        None => q
            .order_by_asc(stage::Column::Position)
            .row(txn)
            .await?
            .ok_or(DomainError::NotFound("stage")),
    }
}

pub struct NewOpportunity {
    pub conversation_id: i64,
    pub name: String,
    pub pipeline_id: i64,
    pub stage_id: Option<i64>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
}

pub async fn create(
    db: &DatabaseConnection,
    scope: &Scope,
    n: NewOpportunity,
) -> DomainResult<opportunity::Model> {
    scope.require_member("create opportunities")?;
    let name = crate::domain::required_text("name", &n.name, 200)?;
    let currency = check_money(n.amount_minor, n.currency.as_deref())?;
    let txn = begin_write(db).await?;
    let conversation = conversations::scoped(scope)
        .filter(conversation::Column::Id.eq(n.conversation_id))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("conversation"))?;
    pipeline::Entity::find_by_id(n.pipeline_id)
        .filter(pipeline::Column::WorkspaceId.eq(scope.workspace_id))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("pipeline"))?;
    let stage = stage_of(&txn, scope, n.pipeline_id, n.stage_id).await?;
    let at = now();
    let created = opportunity::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        conversation_id: Set(conversation.id),
        pipeline_id: Set(n.pipeline_id),
        stage_id: Set(stage.id),
        name: Set(name),
        amount_minor: Set(n.amount_minor),
        currency: Set(currency),
        status: Set(OpportunityStatus::Open.as_str().into()),
        owner_id: Set(Some(scope.user_id)),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    activities::by_user(
        &txn,
        scope,
        Some(conversation.id),
        ActivityKind::OpportunityCreated,
        format!("Opportunity created: {}", created.name),
        json!({ "opportunityId": created.id, "stage": stage.name, "amountMinor": created.amount_minor, "currency": created.currency }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

#[derive(Default)]
pub struct OpportunityUpdate {
    pub name: Option<String>,
    pub stage_id: Option<i64>,
    pub status: Option<OpportunityStatus>,
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
}

pub async fn update(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    u: OpportunityUpdate,
) -> DomainResult<opportunity::Model> {
    scope.require_member("change opportunities")?;
    let txn = begin_write(db).await?;
    let current = scoped::lock_own::<opportunity::Entity>(&txn, scope, id).await?;
    let amount = u.amount_minor.or(current.amount_minor);
    let currency = check_money(
        amount,
        u.currency.as_deref().or(current.currency.as_deref()),
    )?;
    let mut changes = serde_json::Map::new();
    let mut m = current.clone().into_active_model();
    let name = u
        .name
        .as_deref()
        .map(|n| crate::domain::required_text("name", n, 200))
        .transpose()?;
    if let Some(name) = name.filter(|n| *n != current.name) {
        changes.insert("name".into(), json!({ "old": current.name, "new": name }));
        m.name = Set(name);
    }
    if let Some(sid) = u.stage_id.filter(|s| *s != current.stage_id) {
        let s = stage_of(&txn, scope, current.pipeline_id, Some(sid)).await?;
        changes.insert(
            "stageId".into(),
            json!({ "old": current.stage_id, "new": s.id, "stage": s.name }),
        );
        m.stage_id = Set(s.id);
    }
    if let Some(s) = u.status.filter(|s| s.as_str() != current.status) {
        changes.insert(
            "status".into(),
            json!({ "old": current.status, "new": s.as_str() }),
        );
        m.status = Set(s.as_str().into());
    }
    if amount != current.amount_minor {
        changes.insert(
            "amountMinor".into(),
            json!({ "old": current.amount_minor, "new": amount }),
        );
        m.amount_minor = Set(amount);
    }
    if currency != current.currency {
        changes.insert(
            "currency".into(),
            json!({ "old": current.currency, "new": currency }),
        );
        m.currency = Set(currency);
    }
    if changes.is_empty() {
        return Ok(current);
    }
    m.updated_at = Set(now());
    let updated = m.update(&txn).await?;
    activities::by_user(
        &txn,
        scope,
        Some(updated.conversation_id),
        ActivityKind::OpportunityUpdated,
        format!("Opportunity updated: {}", updated.name),
        json!({ "opportunityId": id, "changes": changes }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}
