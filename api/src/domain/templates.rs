//! Message templates with `{{contact.name}}`-style variables, rendered when a message is sent.
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use entity::positional::SelectRows;
use entity::{contact, message_template};

use crate::db::begin_write;
use crate::domain::{ActivityKind, Channel, Scope, activities, now};
use crate::error::{DomainError, DomainResult};

/// The `{{ name }}` placeholders of `body`, in order, without duplicates.
pub fn variables(body: &str) -> DomainResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| DomainError::invalid("body", "a `{{` is not closed with `}}`"))?;
        let name = after[..end].trim();
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            return Err(DomainError::invalid(
                "body",
                format!("`{{{{{name}}}}}` is not a variable name"),
            ));
        }
        if !out.iter().any(|v| v == name) {
            out.push(name.to_string());
        }
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Looks `name` up in the given variables (dotted paths or flat keys), then in what Confab
/// knows of the contact (`contact.name`, `contact.email`, `contact.phone`, `contact.company`).
fn lookup(name: &str, given: &Value, contact: &contact::Model) -> Option<String> {
    let as_text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    given
        .get(name)
        .and_then(as_text)
        .or_else(|| {
            name.split('.')
                .try_fold(given, |cur, part| cur.get(part))
                .and_then(as_text)
        })
        .or_else(|| match name {
            "contact.name" => contact.name.clone(),
            "contact.email" => contact.email.clone(),
            "contact.phone" => contact.phone.clone(),
            "contact.company" => contact.company.clone(),
            _ => None,
        })
}

/// Fills every placeholder; a variable with no value is BAD_USER_INPUT naming it.
pub fn render(body: &str, given: &Value, contact: &contact::Model) -> DomainResult<String> {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    let mut missing = Vec::new();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| DomainError::invalid("templateId", "the template is malformed"))?;
        let name = after[..end].trim();
        match lookup(name, given, contact) {
            Some(v) => out.push_str(&v),
            None => missing.push(name.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(DomainError::invalid(
            "variables",
            format!("no value for {}", missing.join(", ")),
        ))
    }
}

pub async fn create(
    db: &DatabaseConnection,
    scope: &Scope,
    name: &str,
    body: &str,
    channel: Option<Channel>,
) -> DomainResult<message_template::Model> {
    scope.require_member("create templates")?;
    let name = crate::domain::required_text("name", name, 100)?;
    if body.trim().is_empty() || body.len() > crate::domain::messages::MAX_BODY_BYTES {
        return Err(DomainError::invalid(
            "body",
            "must not be empty, at most 64 KiB",
        ));
    }
    let vars = variables(body)?;
    let txn = begin_write(db).await?;
    let taken = message_template::Entity::find()
        .filter(message_template::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(message_template::Column::Name.eq(&name))
        .row(&txn)
        .await?;
    if taken.is_some() {
        return Err(DomainError::Conflict(format!(
            "a template named `{name}` exists"
        )));
    }
    let created = message_template::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        name: Set(name.to_string()),
        channel: Set(channel.map(|c| c.as_str().to_string())),
        body: Set(body.to_string()),
        variables: Set(json!(vars)),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    activities::by_user(
        &txn,
        scope,
        None,
        ActivityKind::SystemEvent,
        format!("Template created: {name}"),
        json!({ "templateId": created.id }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

pub async fn get(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
) -> DomainResult<message_template::Model> {
    message_template::Entity::find_by_id(id)
        .filter(message_template::Column::WorkspaceId.eq(scope.workspace_id))
        .row(db)
        .await?
        .ok_or(DomainError::NotFound("template"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> contact::Model {
        contact::Model {
            id: 1,
            workspace_id: 1,
            name: Some("Ana".into()),
            email: None,
            phone: Some("+14155550101".into()),
            whatsapp: None,
            company: None,
            status: "ACTIVE".into(),
            owner_id: None,
            last_activity_at: None,
            inbound_count: 0,
            outbound_count: 0,
            last_inbound_at: None,
            last_outbound_at: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn variables_are_listed_once_in_order() {
        assert_eq!(
            variables("Hi {{contact.name}}, {{ time }} / {{contact.name}}").unwrap(),
            vec!["contact.name", "time"]
        );
        assert!(variables("broken {{ name").is_err());
        assert!(variables("bad {{ two words }}").is_err());
    }

    #[test]
    fn rendering_uses_given_values_then_the_contact_and_names_what_is_missing() {
        let c = contact();
        let out = render(
            "Hi {{contact.name}}, see you at {{time}}",
            &json!({ "time": "10:00" }),
            &c,
        )
        .unwrap();
        assert_eq!(out, "Hi Ana, see you at 10:00");
        let nested = render("{{order.id}}", &json!({ "order": { "id": 42 } }), &c).unwrap();
        assert_eq!(nested, "42");
        let err = render("{{contact.company}} {{time}}", &json!({}), &c).unwrap_err();
        assert!(err.to_string().contains("contact.company, time"), "{err}");
    }
}
