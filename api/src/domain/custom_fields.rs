//! Typed custom fields: a workspace defines keys (TEXT, NUMBER, DATE, BOOLEAN, SELECT), and
//! contact values are checked against their definition before they are stored.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, Set,
};
use serde_json::{Value, json};

use entity::positional::SelectRows;
use entity::{contact, custom_field_definition as definition, custom_field_value as field_value};

use crate::db::begin_write;
use crate::domain::{ActivityKind, CustomFieldType, Role, Scope, activities, now};
use crate::error::{DomainError, DomainResult};

const MAX_TEXT: usize = 2000;

fn check_key(key: &str) -> DomainResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "key",
            "1-64 characters: a-z, 0-9 and _, starting with a letter",
        ))
    }
}

pub async fn define(
    db: &DatabaseConnection,
    scope: &Scope,
    key: &str,
    label: &str,
    field_type: CustomFieldType,
    options: Vec<String>,
) -> DomainResult<definition::Model> {
    scope.require_role(&[Role::Admin], "define custom fields")?;
    check_key(key)?;
    let label = crate::domain::required_text("label", label, 100)?;
    let options: Vec<String> = options.iter().map(|o| o.trim().to_string()).collect();
    match field_type {
        CustomFieldType::Select if options.is_empty() || options.iter().any(String::is_empty) => {
            return Err(DomainError::invalid(
                "options",
                "a SELECT field needs non-empty options",
            ));
        }
        CustomFieldType::Select if !crate::domain::all_distinct(&options) => {
            return Err(DomainError::invalid("options", "options must be distinct"));
        }
        CustomFieldType::Select => {}
        _ if !options.is_empty() => {
            return Err(DomainError::invalid(
                "options",
                "only SELECT fields take options",
            ));
        }
        _ => {}
    }
    let txn = begin_write(db).await?;
    let existing = definition::Entity::find()
        .filter(definition::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(definition::Column::Key.eq(key))
        .row(&txn)
        .await?;
    if existing.is_some() {
        return Err(DomainError::Conflict(format!(
            "custom field `{key}` already exists"
        )));
    }
    let created = definition::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        key: Set(key.to_string()),
        label: Set(label),
        field_type: Set(field_type.as_str().into()),
        options: Set(json!(options)),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    activities::by_user(
        &txn,
        scope,
        None,
        ActivityKind::FieldUpdated,
        format!("Defined custom field {key}"),
        json!({ "customField": key, "type": field_type.as_str(), "options": options }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Checks each value against its definition; an unknown key or a wrong type is BAD_USER_INPUT.
pub async fn validate(
    txn: &DatabaseTransaction,
    scope: &Scope,
    values: &[(String, Value)],
) -> DomainResult<Vec<(definition::Model, Value)>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let defs = definition::Entity::find()
        .filter(definition::Column::WorkspaceId.eq(scope.workspace_id))
        .rows(txn)
        .await?;
    values
        .iter()
        .map(|(key, value)| {
            let def = defs.iter().find(|d| &d.key == key).ok_or_else(|| {
                DomainError::invalid("customFields", format!("unknown custom field `{key}`"))
            })?;
            Ok((def.clone(), check_value(def, value)?))
        })
        .collect()
}

fn check_value(def: &definition::Model, value: &Value) -> DomainResult<Value> {
    let field = format!("customFields.{}", def.key);
    if value.is_null() {
        return Ok(Value::Null);
    }
    let wrong = |expected: &str| DomainError::invalid(field.clone(), format!("expects {expected}"));
    match CustomFieldType::from_db(&def.field_type) {
        CustomFieldType::Text => match value.as_str() {
            Some(s) if s.chars().count() <= MAX_TEXT => Ok(value.clone()),
            Some(_) => Err(wrong(&format!("text of at most {MAX_TEXT} characters"))),
            None => Err(wrong("text")),
        },
        CustomFieldType::Number => value
            .as_f64()
            .filter(|n| n.is_finite())
            .map(|_| value.clone())
            .ok_or_else(|| wrong("a number")),
        CustomFieldType::Boolean => value
            .as_bool()
            .map(|_| value.clone())
            .ok_or_else(|| wrong("true or false")),
        CustomFieldType::Date => value
            .as_str()
            .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| json!(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| wrong("a date as YYYY-MM-DD")),
        CustomFieldType::Select => {
            let options: Vec<String> =
                serde_json::from_value(def.options.clone()).unwrap_or_default();
            match value.as_str() {
                Some(s) if options.iter().any(|o| o == s) => Ok(value.clone()),
                _ => Err(wrong(&format!("one of {}", options.join(", ")))),
            }
        }
    }
}

/// Stores (or with null, removes) one value and records the change.
pub async fn set(
    txn: &DatabaseTransaction,
    scope: &Scope,
    contact: &contact::Model,
    conversation_id: Option<i64>,
    def: &definition::Model,
    value: Value,
) -> DomainResult<()> {
    let current = field_value::Entity::find()
        .filter(field_value::Column::ContactId.eq(contact.id))
        .filter(field_value::Column::DefinitionId.eq(def.id))
        .row(txn)
        .await?;
    let old = current.as_ref().map_or(Value::Null, |c| c.value.clone());
    if old == value {
        return Ok(());
    }
    match (current, value.is_null()) {
        (Some(c), true) => {
            field_value::Entity::delete_by_id(c.id).exec(txn).await?;
        }
        (Some(c), false) => {
            let mut m = c.into_active_model();
            m.value = Set(value.clone());
            m.updated_at = Set(now());
            m.update(txn).await?;
        }
        (None, _) => {
            field_value::ActiveModel {
                workspace_id: Set(scope.workspace_id),
                contact_id: Set(contact.id),
                definition_id: Set(def.id),
                value: Set(value.clone()),
                updated_at: Set(now()),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }
    }
    activities::by_user(
        txn,
        scope,
        conversation_id,
        ActivityKind::FieldUpdated,
        format!("Changed {}", def.label),
        json!({ "contactId": contact.id, "field": format!("custom.{}", def.key), "old": old, "new": value }),
    )
    .await?;
    Ok(())
}
