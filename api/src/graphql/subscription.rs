//! Live updates. The contract's subscriptions arrive with the realtime issue (#5); until then
//! subscribing answers a clear "not implemented yet" error.
use async_graphql::{Context, ID, Subscription};
use futures::Stream;

use super::ctx_scope;
use super::types::{ConversationEvent, Notification};
use crate::error::DomainError;

type Res<T> = async_graphql::Result<T>;

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Everything that happens in one conversation, in commit order.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> impl Stream<Item = Res<ConversationEvent>> {
        let _ = conversation_id;
        not_yet(ctx)
    }

    /// Inbox-level changes (new message, read/unread, status, star, owner) for every conversation the caller may see.
    async fn inbox_events(&self, ctx: &Context<'_>) -> impl Stream<Item = Res<ConversationEvent>> {
        not_yet(ctx)
    }

    /// The caller's own notifications: @mentions, assignments, reminders, forwards.
    async fn notifications(&self, ctx: &Context<'_>) -> impl Stream<Item = Res<Notification>> {
        not_yet(ctx)
    }
}

/// One error, then the end: the scope check first, so a bad token still reads UNAUTHENTICATED.
fn not_yet<T: Send + 'static>(ctx: &Context<'_>) -> impl Stream<Item = Res<T>> + use<T> {
    let error = match ctx_scope(ctx) {
        Ok(_) => DomainError::NotImplemented("subscriptions (issue #5)"),
        Err(e) => e,
    };
    futures::stream::once(futures::future::ready(Err(error.into())))
}
