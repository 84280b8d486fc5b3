//! Live updates: each subscription is a filtered view of the process's event bus.
//!
//! A subscriber that falls more than `realtime::BUFFER` events behind misses the oldest ones:
//! its stream then carries one error with `extensions.code = "EVENTS_DROPPED"` and the number
//! missed (the gap marker), and goes on with the newest events; the client should refetch.
use std::sync::Arc;

use async_graphql::{Context, ID, Subscription};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use entity::activity;

use super::types::{ConversationEvent, Notification};
use super::{ctx_db, ctx_scope, ctx_state};
use crate::domain::{ActivityKind, Scope, conversations};
use crate::error::DomainError;
use crate::realtime::Event;

type Res<T> = async_graphql::Result<T>;

/// The activity kinds an inbox list needs to update a row.
const INBOX_KINDS: &[ActivityKind] = &[
    ActivityKind::MessageReceived,
    ActivityKind::MessageSent,
    ActivityKind::MessageStatusChanged,
    ActivityKind::MessageDeleted,
    ActivityKind::ConversationRead,
    ActivityKind::ConversationUnread,
    ActivityKind::ConversationStatusChanged,
    ActivityKind::ConversationStarred,
    ActivityKind::OwnerChanged,
];

pub struct Subscription;

fn fail<T: Send + 'static>(e: DomainError) -> futures::stream::BoxStream<'static, Res<T>> {
    futures::stream::once(futures::future::ready(Err(e.into()))).boxed()
}

fn dropped(n: u64) -> async_graphql::Error {
    use async_graphql::ErrorExtensions;
    async_graphql::Error::new(format!(
        "{n} events were dropped because this subscriber fell behind; refetch"
    ))
    .extend_with(|_, e| {
        e.set("code", "EVENTS_DROPPED");
        e.set("dropped", n);
    })
}

/// The bus's activities of the caller's workspace that `keep` accepts, as ConversationEvents.
fn activities(
    ctx: &Context<'_>,
    scope: &Scope,
    keep: impl Fn(&activity::Model) -> bool + Send + 'static,
) -> Result<futures::stream::BoxStream<'static, Res<ConversationEvent>>, DomainError> {
    let rx = ctx_state(ctx)?.bus.subscribe();
    let workspace = scope.workspace_id;
    Ok(BroadcastStream::new(rx)
        .filter_map(move |item| {
            futures::future::ready(match item {
                Ok(Event::Activity(a))
                    if a.activity.workspace_id == workspace
                        && a.conversation.is_some()
                        && keep(&a.activity) =>
                {
                    Some(Ok(ConversationEvent(a)))
                }
                Ok(_) => None,
                Err(BroadcastStreamRecvError::Lagged(n)) => Some(Err(dropped(n))),
            })
        })
        .boxed())
}

#[Subscription]
impl Subscription {
    /// Everything that happens in one conversation, in commit order.
    async fn conversation_events(
        &self,
        ctx: &Context<'_>,
        conversation_id: ID,
    ) -> impl Stream<Item = Res<ConversationEvent>> + use<> {
        let start = async {
            let scope = ctx_scope(ctx)?;
            scope.require_member("subscribe to conversations")?;
            let id = crate::ids::decode(&conversation_id, "Conversation", "conversationId")?;
            conversations::get(ctx_db(ctx)?, scope, id).await?;
            activities(ctx, scope, move |a| a.conversation_id == Some(id))
        };
        match start.await {
            Ok(s) => s,
            Err(e) => fail(e),
        }
    }

    /// Inbox-level changes (new message, read/unread, status, star, owner) for every conversation the caller may see.
    async fn inbox_events(
        &self,
        ctx: &Context<'_>,
    ) -> impl Stream<Item = Res<ConversationEvent>> + use<> {
        let start = ctx_scope(ctx).and_then(|scope| {
            scope.require_member("subscribe to the inbox")?;
            activities(ctx, scope, |a| {
                INBOX_KINDS.iter().any(|k| k.as_str() == a.kind)
            })
        });
        match start {
            Ok(s) => s,
            Err(e) => fail(e),
        }
    }

    /// The caller's own notifications: @mentions, assignments, reminders, forwards.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> impl Stream<Item = Res<Notification>> + use<> {
        let start = ctx_scope(ctx).and_then(|scope| {
            Ok((
                ctx_state(ctx)?.bus.subscribe(),
                scope.user_id,
                scope.workspace_id,
            ))
        });
        match start {
            Ok((rx, user, workspace)) => BroadcastStream::new(rx)
                .filter_map(move |item| {
                    futures::future::ready(match item {
                        Ok(Event::Notification(n))
                            if n.user_id == user && n.workspace_id == workspace =>
                        {
                            Some(Ok(Notification(Arc::unwrap_or_clone(n))))
                        }
                        Ok(_) => None,
                        Err(BroadcastStreamRecvError::Lagged(n)) => Some(Err(dropped(n))),
                    })
                })
                .boxed(),
            Err(e) => fail(e),
        }
    }
}
