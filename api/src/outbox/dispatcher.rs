//! Claims due outbox rows, calls the adapter outside any transaction, then records the outcome
//! (message status, activity) in one transaction.
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as ChronoDuration;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use tokio::sync::Notify;

use entity::positional::SelectRows;
use entity::{contact, conversation, message, outbox};

use super::{Accepted, ChannelAdapter, DONE, FAILED, Outgoing, PENDING, SENDING, SendError};
use crate::db::begin_write;
use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::{ActivityKind, Channel, MessageStatus, now};
use crate::error::{DomainError, DomainResult};

pub const MAX_ATTEMPTS: i32 = 5;
const BATCH: u64 = 32;
/// How long a claimed row is ours; a replica that dies mid-send loses it to another after this.
const LEASE: ChronoDuration = ChronoDuration::seconds(60);

/// Wakes the dispatcher when a message is queued, so sending does not wait for the next poll.
#[derive(Clone, Default)]
pub struct DispatcherHandle(Arc<Notify>);

impl DispatcherHandle {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

pub struct Dispatcher {
    db: DatabaseConnection,
    adapter: Arc<dyn ChannelAdapter>,
    handle: DispatcherHandle,
    poll: Duration,
    /// Woken after outcomes were recorded, so their activities reach subscribers at once.
    bus: crate::realtime::Bus,
}

impl Dispatcher {
    pub fn new(
        db: DatabaseConnection,
        adapter: Arc<dyn ChannelAdapter>,
        handle: DispatcherHandle,
        poll: Duration,
        bus: crate::realtime::Bus,
    ) -> Self {
        Dispatcher {
            db,
            adapter,
            handle,
            poll,
            bus,
        }
    }

    pub async fn run(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.drain().await {
                Ok(0) | Err(_) => {}
                Ok(_) => {
                    self.bus.wake();
                    continue;
                }
            }
            tokio::select! {
                _ = self.handle.0.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends what is due; returns how many rows it handled.
    pub async fn drain(&self) -> DomainResult<usize> {
        let result = self.drain_once().await;
        if let Err(e) = &result {
            tracing::warn!(error = %e, "outbox dispatch failed; will retry");
        }
        result
    }

    async fn drain_once(&self) -> DomainResult<usize> {
        let at = now();
        let due = outbox::Entity::find()
            .filter(claimable(at))
            .order_by_asc(outbox::Column::NextAttemptAt)
            .order_by_asc(outbox::Column::Id)
            .limit(BATCH)
            .rows(&self.db)
            .await?;
        let mut handled = 0;
        for row in due {
            if !self.claim(&row).await? {
                continue;
            }
            handled += 1;
            let outgoing = match self.outgoing(&row).await {
                Ok(o) => o,
                Err(e) => {
                    self.finish(&row, Err(SendError::Permanent(e.to_string())))
                        .await?;
                    continue;
                }
            };
            let span = tracing::info_span!(
                "outbox.send",
                outbox_id = row.id,
                message_id = row.message_id
            );
            let result = tracing::Instrument::instrument(self.adapter.send(&outgoing), span).await;
            self.finish(&row, result).await?;
        }
        Ok(handled)
    }

    /// Takes the row with a conditional update, so two dispatchers never send one message twice.
    async fn claim(&self, row: &outbox::Model) -> DomainResult<bool> {
        let at = now();
        let res = outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(SENDING))
            .col_expr(outbox::Column::LockedUntil, Expr::value(at + LEASE))
            .col_expr(outbox::Column::UpdatedAt, Expr::value(at))
            .filter(outbox::Column::Id.eq(row.id))
            .filter(claimable(at))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    async fn outgoing(&self, row: &outbox::Model) -> DomainResult<Outgoing> {
        let msg = message::Entity::find_by_id(row.message_id)
            .row(&self.db)
            .await?
            .ok_or(DomainError::NotFound("message"))?;
        let conv = conversation::Entity::find_by_id(msg.conversation_id)
            .row(&self.db)
            .await?
            .ok_or(DomainError::NotFound("conversation"))?;
        let contact = contact::Entity::find_by_id(conv.contact_id)
            .row(&self.db)
            .await?
            .ok_or(DomainError::NotFound("contact"))?;
        let channel = Channel::from_db(&row.channel);
        let to = match channel {
            Channel::Email => contact.email,
            Channel::Sms => contact.phone,
            Channel::Whatsapp => contact
                .whatsapp
                .or(contact.phone.map(|p| p.trim_start_matches('+').to_string())),
        }
        .ok_or(DomainError::invalid(
            "channel",
            "the contact has no address on this channel",
        ))?;
        Ok(Outgoing {
            message_id: msg.id,
            workspace_id: msg.workspace_id,
            channel,
            to,
            subject: msg.subject,
            body: msg.body,
        })
    }

    async fn finish(
        &self,
        row: &outbox::Model,
        result: Result<Accepted, SendError>,
    ) -> DomainResult<()> {
        let at = now();
        let attempts = row.attempts + 1;
        let txn = begin_write(&self.db).await?;
        let mut ob = row.clone().into_active_model();
        ob.attempts = Set(attempts);
        ob.locked_until = Set(None);
        ob.updated_at = Set(at);
        let outcome = match result {
            Ok(accepted) => {
                ob.status = Set(DONE.into());
                Some((MessageStatus::Sent, accepted.external_id, None))
            }
            Err(SendError::Temporary(e)) if attempts < MAX_ATTEMPTS => {
                ob.status = Set(PENDING.into());
                ob.next_attempt_at = Set(at + backoff(attempts));
                ob.last_error = Set(Some(e.clone()));
                tracing::warn!(outbox_id = row.id, attempts, error = %e, "send failed; retrying later");
                None
            }
            Err(e) => {
                ob.status = Set(FAILED.into());
                ob.last_error = Set(Some(e.to_string()));
                tracing::warn!(outbox_id = row.id, attempts, error = %e, "send failed for good");
                Some((MessageStatus::Failed, None, Some(e.to_string())))
            }
        };
        ob.update(&txn).await?;
        if let Some((status, external_id, reason)) = outcome
            && let Some(msg) = message::Entity::find_by_id(row.message_id)
                .lock_exclusive()
                .row(&txn)
                .await?
        {
            let old = MessageStatus::from_db(&msg.status);
            // A receipt may already have moved the message further; never move it back,
            // but keep the provider's id so later receipts can still find the message.
            if status.rank() <= old.rank() {
                if msg.external_id.is_none() && external_id.is_some() {
                    let mut m = msg.clone().into_active_model();
                    m.external_id = Set(external_id);
                    m.update(&txn).await?;
                }
            } else {
                let mut m = msg.clone().into_active_model();
                m.status = Set(status.as_str().into());
                if status == MessageStatus::Sent {
                    m.sent_at = Set(Some(at));
                }
                if msg.external_id.is_none() {
                    m.external_id = Set(external_id);
                }
                m.failed_reason = Set(reason.clone());
                m.update(&txn).await?;
                activities::record(
                    &txn,
                    NewActivity {
                        workspace_id: msg.workspace_id,
                        conversation_id: Some(msg.conversation_id),
                        kind: ActivityKind::MessageStatusChanged,
                        actor: &Actor::System,
                        summary: match &reason {
                            Some(r) => format!("Message failed: {r}"),
                            None => "Message sent".into(),
                        },
                        data: json!({
                            "messageId": msg.id,
                            "status": { "old": old.as_str(), "new": status.as_str() },
                            "attempts": attempts,
                        }),
                    },
                )
                .await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }
}

fn claimable(at: chrono::DateTime<chrono::Utc>) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(outbox::Column::Status.eq(PENDING))
                .add(outbox::Column::NextAttemptAt.lte(at)),
        )
        .add(
            Condition::all()
                .add(outbox::Column::Status.eq(SENDING))
                .add(outbox::Column::LockedUntil.lt(at)),
        )
}

/// 2, 4, 8, 16... seconds, capped at five minutes.
fn backoff(attempts: i32) -> ChronoDuration {
    ChronoDuration::seconds((1i64 << attempts.clamp(1, 8)).min(300))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::domain::inbound::{self, Inbound};
    use crate::domain::messages::{self, Outbound};

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1).num_seconds(), 2);
        assert_eq!(backoff(3).num_seconds(), 8);
        assert_eq!(backoff(50).num_seconds(), 256);
    }

    /// Fails every send, temporarily or for good.
    struct Failing {
        permanent: bool,
        calls: AtomicUsize,
    }

    impl ChannelAdapter for Failing {
        fn send<'a>(
            &'a self,
            _: &'a Outgoing,
        ) -> futures::future::BoxFuture<'a, Result<Accepted, SendError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let permanent = self.permanent;
            Box::pin(async move {
                if permanent {
                    Err(SendError::Permanent("number does not exist".into()))
                } else {
                    Err(SendError::Temporary("gateway timeout".into()))
                }
            })
        }
    }

    /// A workspace with one SMS conversation and one queued reply.
    async fn queued_message() -> (crate::db::testing::TestDb, i64) {
        let t = crate::db::testing::workspace().await;
        let inbound = Inbound {
            channel: Channel::Sms,
            from: "+14155550101".into(),
            body: "hi".into(),
            subject: None,
            external_id: None,
            contact_name: None,
            received_at: None,
        };
        let received = inbound::receive(&t.db, &t.admin, inbound)
            .await
            .expect("receive");
        let out = Outbound {
            conversation_id: received.conversation.id,
            channel: Channel::Sms,
            body: Some("hello".into()),
            subject: None,
            template: None,
        };
        let (message, _) = messages::send(&t.db, &t.admin, out).await.expect("send");
        (t, message.id)
    }

    /// Makes every pending row due now, as if the backoff had passed.
    async fn time_passes(db: &DatabaseConnection) {
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::NextAttemptAt,
                Expr::value(now() - ChronoDuration::seconds(1)),
            )
            .exec(db)
            .await
            .expect("update");
    }

    #[tokio::test]
    async fn temporary_failures_retry_with_backoff_then_fail_with_the_reason() {
        let (t, message_id) = queued_message().await;
        let db = t.db.clone();
        let adapter = Arc::new(Failing {
            permanent: false,
            calls: AtomicUsize::new(0),
        });
        let d = Dispatcher::new(
            db.clone(),
            adapter.clone(),
            DispatcherHandle::default(),
            Duration::from_secs(1),
            crate::realtime::Bus::default(),
        );
        for attempt in 1..=MAX_ATTEMPTS {
            assert_eq!(
                d.drain().await.expect("drain"),
                1,
                "attempt {attempt} is due"
            );
            // Not due again until the backoff has passed.
            assert_eq!(d.drain().await.expect("drain"), 0);
            time_passes(&db).await;
        }
        assert_eq!(adapter.calls.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
        assert_eq!(
            d.drain().await.expect("drain"),
            0,
            "nothing is retried after the last try"
        );
        let msg = message::Entity::find_by_id(message_id)
            .row(&db)
            .await
            .expect("read")
            .expect("message");
        assert_eq!(msg.status, "FAILED");
        assert_eq!(msg.failed_reason.as_deref(), Some("gateway timeout"));
    }

    #[tokio::test]
    async fn a_permanent_failure_fails_at_once() {
        let (t, message_id) = queued_message().await;
        let db = t.db.clone();
        let adapter = Arc::new(Failing {
            permanent: true,
            calls: AtomicUsize::new(0),
        });
        let d = Dispatcher::new(
            db.clone(),
            adapter.clone(),
            DispatcherHandle::default(),
            Duration::from_secs(1),
            crate::realtime::Bus::default(),
        );
        assert_eq!(d.drain().await.expect("drain"), 1);
        time_passes(&db).await;
        assert_eq!(d.drain().await.expect("drain"), 0);
        let msg = message::Entity::find_by_id(message_id)
            .row(&db)
            .await
            .expect("read")
            .expect("message");
        assert_eq!(msg.status, "FAILED");
        assert_eq!(msg.failed_reason.as_deref(), Some("number does not exist"));
        assert_eq!(adapter.calls.load(Ordering::SeqCst), 1);
    }
}
