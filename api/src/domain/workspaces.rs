//! Workspaces, their users and API tokens: what `confab bootstrap` and `confab token create`
//! do, and the team list the API reads.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::Serialize;

use entity::positional::SelectRows;
use entity::{api_token, user, workspace};

use crate::domain::addresses::normalize_email;
use crate::domain::auth::{hash_token, new_token};
use crate::domain::{Role, Scope, now};
use crate::error::{DomainError, DomainResult};

pub const DEFAULT_REMINDER_MINUTES: [i32; 2] = [1440, 60];

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrapped {
    pub workspace_id: String,
    pub user_id: String,
    pub token: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedToken {
    pub user_id: String,
    pub token: String,
}

/// Creates a workspace with its first admin and returns the admin's token (shown once).
pub async fn bootstrap(
    db: &DatabaseConnection,
    name: &str,
    admin_email: &str,
) -> DomainResult<Bootstrapped> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("workspace", "must not be empty"));
    }
    let email = normalize_email(admin_email, "admin-email")?;
    let txn = crate::db::begin_write(db).await?;
    if workspace::Entity::find()
        .filter(workspace::Column::Name.eq(name))
        .row(&txn)
        .await?
        .is_some()
    {
        return Err(DomainError::Conflict(format!(
            "workspace `{name}` already exists"
        )));
    }
    let ws = workspace::ActiveModel {
        name: Set(name.to_string()),
        time_zone: Set("UTC".into()),
        appointment_reminder_minutes: Set(serde_json::json!(DEFAULT_REMINDER_MINUTES)),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let admin = create_user(&txn, ws.id, &email, Role::Admin).await?;
    crate::scheduler::jobs::schedule_digest(&txn, &ws).await?;
    let token = issue_token(&txn, ws.id, admin.id, "bootstrap").await?;
    txn.commit().await?;
    Ok(Bootstrapped {
        workspace_id: crate::ids::encode("Workspace", ws.id).0,
        user_id: crate::ids::encode("User", admin.id).0,
        token,
    })
}

/// Issues a token for `email` in the named workspace, creating the user with `role` if needed.
/// An existing user keeps their role: a token never silently promotes anyone.
pub async fn create_token(
    db: &DatabaseConnection,
    workspace_name: &str,
    email: &str,
    role: Role,
) -> DomainResult<IssuedToken> {
    let email = normalize_email(email, "email")?;
    let txn = crate::db::begin_write(db).await?;
    let ws = workspace::Entity::find()
        .filter(workspace::Column::Name.eq(workspace_name.trim()))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("workspace"))?;
    let existing = user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(ws.id))
        .filter(user::Column::Email.eq(&email))
        .row(&txn)
        .await?;
    let user = match existing {
        Some(u) if u.role != role.as_str() => {
            return Err(DomainError::Conflict(format!(
                "{email} already exists with role {}; tokens inherit the user's role",
                u.role.to_lowercase()
            )));
        }
        Some(u) => u,
        None => create_user(&txn, ws.id, &email, role).await?,
    };
    let token = issue_token(&txn, ws.id, user.id, "cli").await?;
    txn.commit().await?;
    Ok(IssuedToken {
        user_id: crate::ids::encode("User", user.id).0,
        token,
    })
}

/// On an empty database, creates a demo workspace so `cargo run` serves something usable.
pub async fn ensure_demo(db: &DatabaseConnection) -> DomainResult<Option<Bootstrapped>> {
    if workspace::Entity::find().count(db).await? > 0 {
        return Ok(None);
    }
    bootstrap(db, "demo", "admin@demo.confab.local")
        .await
        .map(Some)
}

pub async fn users(db: &DatabaseConnection, scope: &Scope) -> DomainResult<Vec<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(scope.workspace_id))
        .order_by_asc(user::Column::Id)
        .rows(db)
        .await?)
}

pub async fn workspace(db: &DatabaseConnection, scope: &Scope) -> DomainResult<workspace::Model> {
    workspace::Entity::find_by_id(scope.workspace_id)
        .row(db)
        .await?
        .ok_or(DomainError::NotFound("workspace"))
}

async fn create_user(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    email: &str,
    role: Role,
) -> DomainResult<user::Model> {
    let local = email.split('@').next().unwrap_or(email);
    let mut handle = local.to_string();
    let mut n = 1;
    while user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(workspace_id))
        .filter(user::Column::Handle.eq(&handle))
        .row(db)
        .await?
        .is_some()
    {
        n += 1;
        handle = format!("{local}{n}");
    }
    Ok(user::ActiveModel {
        workspace_id: Set(workspace_id),
        email: Set(email.to_string()),
        name: Set(local.to_string()),
        handle: Set(handle),
        role: Set(role.as_str().to_string()),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

async fn issue_token(
    db: &impl ConnectionTrait,
    workspace_id: i64,
    user_id: i64,
    label: &str,
) -> DomainResult<String> {
    let token = new_token();
    api_token::ActiveModel {
        workspace_id: Set(workspace_id),
        user_id: Set(user_id),
        token_hash: Set(hash_token(&token)),
        label: Set(Some(label.to_string())),
        created_at: Set(now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Changes the caller's workspace settings (ADMIN only).
pub async fn update(
    db: &DatabaseConnection,
    scope: &Scope,
    name: Option<String>,
    time_zone: Option<String>,
    reminder_minutes: Option<Vec<i32>>,
) -> DomainResult<workspace::Model> {
    scope.require_role(&[Role::Admin], "change workspace settings")?;
    if let Some(tz) = &time_zone {
        tz.parse::<chrono_tz::Tz>().map_err(|_| {
            DomainError::invalid(
                "timeZone",
                format!("`{tz}` is not an IANA time zone such as Europe/Berlin"),
            )
        })?;
    }
    if let Some(minutes) = &reminder_minutes
        && (minutes.len() > 10 || minutes.iter().any(|m| *m <= 0 || *m > 60 * 24 * 30))
    {
        return Err(DomainError::invalid(
            "appointmentReminderMinutes",
            "up to 10 lead times, each 1 to 43200 minutes",
        ));
    }
    let name = name.map(|n| n.trim().to_string());
    if name
        .as_ref()
        .is_some_and(|n| n.is_empty() || n.chars().count() > 100)
    {
        return Err(DomainError::invalid("name", "1 to 100 characters"));
    }
    let txn = crate::db::begin_write(db).await?;
    let current = workspace::Entity::find_by_id(scope.workspace_id)
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("workspace"))?;
    let mut changes = serde_json::Map::new();
    let mut m = sea_orm::IntoActiveModel::into_active_model(current.clone());
    if let Some(n) = name.filter(|n| *n != current.name) {
        let taken = workspace::Entity::find()
            .filter(workspace::Column::Name.eq(&n))
            .row(&txn)
            .await?;
        if taken.is_some() {
            return Err(DomainError::Conflict(format!(
                "workspace `{n}` already exists"
            )));
        }
        changes.insert(
            "name".into(),
            serde_json::json!({ "old": current.name, "new": n }),
        );
        m.name = Set(n);
    }
    if let Some(tz) = time_zone.filter(|t| *t != current.time_zone) {
        changes.insert(
            "timeZone".into(),
            serde_json::json!({ "old": current.time_zone, "new": tz }),
        );
        m.time_zone = Set(tz);
    }
    if let Some(mut minutes) = reminder_minutes {
        minutes.sort_unstable_by(|a, b| b.cmp(a));
        minutes.dedup();
        let new = serde_json::json!(minutes);
        if new != current.appointment_reminder_minutes {
            changes.insert(
                "appointmentReminderMinutes".into(),
                serde_json::json!({ "old": current.appointment_reminder_minutes, "new": new }),
            );
            m.appointment_reminder_minutes = Set(new);
        }
    }
    if changes.is_empty() {
        return Ok(current);
    }
    let updated = m.update(&txn).await?;
    if updated.time_zone != current.time_zone {
        crate::scheduler::jobs::reschedule_digest(&txn, &updated).await?;
    }
    if updated.appointment_reminder_minutes != current.appointment_reminder_minutes {
        // Upcoming appointments take the new lead times.
        let upcoming = entity::appointment::Entity::find()
            .filter(entity::appointment::Column::WorkspaceId.eq(scope.workspace_id))
            .filter(
                entity::appointment::Column::Status
                    .eq(crate::domain::AppointmentStatus::Scheduled.as_str()),
            )
            .filter(entity::appointment::Column::StartsAt.gt(crate::domain::now()))
            .rows(&txn)
            .await?;
        for a in &upcoming {
            crate::scheduler::jobs::reschedule_appointment(&txn, a).await?;
        }
    }
    crate::domain::activities::by_user(
        &txn,
        scope,
        None,
        crate::domain::ActivityKind::FieldUpdated,
        "Workspace settings changed".into(),
        serde_json::Value::Object(changes),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Acts for the named workspace's first admin: what the command line does on an operator's
/// behalf (e.g. `confab plugin install`).
pub async fn first_admin(db: &DatabaseConnection, workspace_name: &str) -> DomainResult<Scope> {
    let ws = workspace::Entity::find()
        .filter(workspace::Column::Name.eq(workspace_name.trim()))
        .row(db)
        .await?
        .ok_or(DomainError::NotFound("workspace"))?;
    let admin = user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(ws.id))
        .filter(user::Column::Role.eq(Role::Admin.as_str()))
        .order_by_asc(user::Column::Id)
        .row(db)
        .await?
        .ok_or(DomainError::NotFound("admin"))?;
    Ok(Scope {
        workspace_id: ws.id,
        user_id: admin.id,
        role: Role::Admin,
        label: admin.name.into(),
    })
}
