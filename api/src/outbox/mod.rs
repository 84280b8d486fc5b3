//! The outbox: outbound messages are queued with their message row, then handed to a channel
//! adapter by a background dispatcher, retried with backoff and marked FAILED after the last try.
mod dispatcher;

pub use dispatcher::{Dispatcher, DispatcherHandle};

use futures::future::BoxFuture;

use crate::domain::Channel;

pub const PENDING: &str = "PENDING";
pub const SENDING: &str = "SENDING";
pub const DONE: &str = "DONE";
pub const FAILED: &str = "FAILED";

/// What an adapter needs to deliver one message.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub message_id: i64,
    pub workspace_id: i64,
    pub channel: Channel,
    /// E.164 phone, WhatsApp id or email address, per channel.
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
}

/// The provider accepted the message; its id lets later receipts find it.
#[derive(Clone, Debug, Default)]
pub struct Accepted {
    pub external_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another try later (provider down, rate limited, timeout).
    #[error("{0}")]
    Temporary(String),
    /// No retry will help (invalid address, content refused).
    #[error("{0}")]
    Permanent(String),
}

/// A channel provider (WhatsApp Business, an SMTP relay, an SMS gateway...).
pub trait ChannelAdapter: Send + Sync + 'static {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>>;
}

/// The development adapter: accepts everything and logs it, so `cargo run` shows the whole flow.
pub struct LogAdapter;

impl ChannelAdapter for LogAdapter {
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            tracing::info!(
                message_id = message.message_id,
                channel = message.channel.as_str(),
                to = %message.to,
                "development adapter: message accepted (not sent anywhere)"
            );
            Ok(Accepted {
                external_id: Some(format!("dev-{}", message.message_id)),
            })
        })
    }
}
