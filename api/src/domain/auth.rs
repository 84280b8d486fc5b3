//! API tokens: random secrets shown once; only their SHA-256 is stored.
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::{Digest, Sha256};

use entity::positional::SelectRows;
use entity::{api_token, user};

use crate::domain::{Role, Scope};
use crate::error::{DomainError, DomainResult};

const PREFIX: &str = "cfb_";

pub fn new_token() -> String {
    format!("{PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()))
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Resolves `Authorization: Bearer <token>` (or the bare token) to the caller's scope.
pub async fn authenticate(db: &DatabaseConnection, header: Option<&str>) -> DomainResult<Scope> {
    let token = header
        .map(str::trim)
        .map(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
                .unwrap_or(h)
                .trim()
        })
        .filter(|t| !t.is_empty())
        .ok_or(DomainError::Unauthenticated)?;
    let token = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash_token(token)))
        .filter(api_token::Column::RevokedAt.is_null())
        .row(db)
        .await?
        .ok_or(DomainError::Unauthenticated)?;
    let user = user::Entity::find_by_id(token.user_id)
        .filter(user::Column::WorkspaceId.eq(token.workspace_id))
        .row(db)
        .await?
        .ok_or(DomainError::Unauthenticated)?;
    Ok(Scope {
        workspace_id: token.workspace_id,
        user_id: user.id,
        role: Role::from_db(&user.role),
        label: user.name.into(),
    })
}

/// Remembers recent successful token lookups for a short while, so a busy client does not pay
/// two statements per request. Failures are never cached; a revoked token or a changed role
/// takes effect within `TTL`.
#[derive(Default)]
pub struct TokenCache(
    std::sync::Mutex<std::collections::HashMap<String, (Scope, std::time::Instant)>>,
);

impl TokenCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(30);
    const MAX_ENTRIES: usize = 10_000;

    pub async fn authenticate(
        &self,
        db: &DatabaseConnection,
        header: Option<&str>,
    ) -> DomainResult<Scope> {
        let key = header.map(hash_token).unwrap_or_default();
        let cached = {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.get(&key)
                .filter(|(_, at)| at.elapsed() < Self::TTL)
                .map(|(scope, _)| scope.clone())
        };
        if let Some(scope) = cached {
            return Ok(scope);
        }
        let scope = authenticate(db, header).await?;
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= Self::MAX_ENTRIES {
            map.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (scope.clone(), std::time::Instant::now()));
        Ok(scope)
    }
}
