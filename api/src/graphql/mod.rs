//! Schema assembly: the contract's Query, Mutation and Subscription, request limits, and the
//! context every resolver reads (database, caller scope, loaders).
pub mod connection;
pub mod documents;
pub mod loaders;
pub mod mutation;
mod prefetch;
pub mod query;
pub mod subscription;
pub mod types;

use std::sync::Arc;

use async_graphql::{Context, Schema};
use sea_orm::DatabaseConnection;

use crate::config::Limits;
use crate::domain::Scope;
use crate::error::DomainError;
use crate::outbox::DispatcherHandle;

pub type ConfabSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Shared by every request.
pub struct State {
    pub db: DatabaseConnection,
    pub dispatcher: DispatcherHandle,
    pub ingest: crate::ingest::Ingest,
    pub bus: crate::realtime::Bus,
    pub scheduler: crate::scheduler::SchedulerHandle,
    pub plugins: Arc<crate::plugins::PluginHost>,
    pub tokens: crate::domain::auth::TokenCache,
}

pub fn build(state: Arc<State>, limits: &Limits) -> ConfabSchema {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .data(state)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(64)
        .limit_directives(16)
        .finish()
}

/// The schema without a database, for `confab schema`.
pub fn sdl() -> String {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .finish()
        .sdl()
}

/// A list field costs its page size times what each item asks for.
pub fn list_cost(page: Option<i32>, child_complexity: usize) -> usize {
    let n = page
        .unwrap_or(crate::domain::page::DEFAULT_PAGE)
        .clamp(1, crate::domain::page::MAX_PAGE) as usize;
    n.saturating_mul(child_complexity.max(1)).saturating_add(1)
}

pub fn ctx_state<'a>(ctx: &'a Context<'_>) -> Result<&'a Arc<State>, DomainError> {
    ctx.data::<Arc<State>>()
        .map_err(|_| DomainError::Internal("schema built without state".into()))
}

pub fn ctx_db<'a>(ctx: &'a Context<'_>) -> Result<&'a DatabaseConnection, DomainError> {
    Ok(&ctx_state(ctx)?.db)
}

/// The caller, as authenticated for this request; every resolver starts here.
pub fn ctx_scope<'a>(ctx: &'a Context<'_>) -> Result<&'a Scope, DomainError> {
    ctx.data_opt::<Scope>().ok_or(DomainError::Unauthenticated)
}

pub fn ctx_loaders<'a>(ctx: &'a Context<'_>) -> Result<&'a loaders::Loaders, DomainError> {
    ctx.data_opt::<loaders::Loaders>()
        .ok_or(DomainError::Unauthenticated)
}
