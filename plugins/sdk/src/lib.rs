//! The Rust SDK for Confab automation plugins.
//!
//! A plugin is a type implementing [`Plugin`], exported with [`export_plugin!`], built with
//! `cargo build --release --target wasm32-wasip2 -p <crate>`:
//!
//! ```ignore
//! use confab_plugin_sdk::{Event, EventKind, Manifest, Plugin, export_plugin, host};
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest() -> Manifest {
//!         Manifest::new("hello", "0.1.0").on(EventKind::MessageReceived)
//!     }
//!
//!     fn on_event(event: Event) -> Result<(), String> {
//!         if let Some(id) = &event.conversation_id {
//!             host::log_event(id, "a message came in")?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! The host and this SDK are generated from the same WIT files (`plugins/wit/`), so they cannot
//! disagree about the interface.

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "confab_plugin_sdk::bindings",
    });
}

pub use bindings::Guest as Plugin;
pub use bindings::confab::plugin::types::{
    AppointmentInfo, Channel, ContactInfo, Conversation, Event, Manifest, NewTask, Recipient,
    Reminder, TaskInfo, Timestamp,
};

/// What a plugin may ask of Confab. Changes are applied together when `on_event` returns
/// `Ok`; nothing is applied when it returns `Err` or breaks a limit.
pub mod host {
    pub use crate::bindings::confab::plugin::host::{
        add_note, add_tag, create_task, get_conversation, log_event, send_reminder,
    };
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as this component's plugin.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        $crate::bindings::__export_plugin_world!($plugin with_types_in $crate::bindings);
    };
}

/// One hour, in the milliseconds [`Timestamp`]s count.
pub const HOUR: Timestamp = 3_600_000;

/// The kinds of event a plugin can subscribe to (the API's ActivityKind names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    MessageReceived,
    MessageSent,
    MessageStatusChanged,
    MessageDeleted,
    MessageForwarded,
    NoteAdded,
    NoteEdited,
    NoteDeleted,
    ConversationRead,
    ConversationUnread,
    ConversationStatusChanged,
    ConversationStarred,
    OwnerChanged,
    FieldUpdated,
    TagAdded,
    TagRemoved,
    TaskCreated,
    TaskUpdated,
    TaskCompleted,
    AppointmentBooked,
    AppointmentUpdated,
    AppointmentCancelled,
    OpportunityCreated,
    OpportunityUpdated,
    ReminderSent,
    SystemEvent,
    WorkflowRun,
    /// A cron schedule from the manifest fired.
    Schedule,
}

impl EventKind {
    const ALL: [(EventKind, &'static str); 28] = [
        (EventKind::MessageReceived, "MESSAGE_RECEIVED"),
        (EventKind::MessageSent, "MESSAGE_SENT"),
        (EventKind::MessageStatusChanged, "MESSAGE_STATUS_CHANGED"),
        (EventKind::MessageDeleted, "MESSAGE_DELETED"),
        (EventKind::MessageForwarded, "MESSAGE_FORWARDED"),
        (EventKind::NoteAdded, "NOTE_ADDED"),
        (EventKind::NoteEdited, "NOTE_EDITED"),
        (EventKind::NoteDeleted, "NOTE_DELETED"),
        (EventKind::ConversationRead, "CONVERSATION_READ"),
        (EventKind::ConversationUnread, "CONVERSATION_UNREAD"),
        (
            EventKind::ConversationStatusChanged,
            "CONVERSATION_STATUS_CHANGED",
        ),
        (EventKind::ConversationStarred, "CONVERSATION_STARRED"),
        (EventKind::OwnerChanged, "OWNER_CHANGED"),
        (EventKind::FieldUpdated, "FIELD_UPDATED"),
        (EventKind::TagAdded, "TAG_ADDED"),
        (EventKind::TagRemoved, "TAG_REMOVED"),
        (EventKind::TaskCreated, "TASK_CREATED"),
        (EventKind::TaskUpdated, "TASK_UPDATED"),
        (EventKind::TaskCompleted, "TASK_COMPLETED"),
        (EventKind::AppointmentBooked, "APPOINTMENT_BOOKED"),
        (EventKind::AppointmentUpdated, "APPOINTMENT_UPDATED"),
        (EventKind::AppointmentCancelled, "APPOINTMENT_CANCELLED"),
        (EventKind::OpportunityCreated, "OPPORTUNITY_CREATED"),
        (EventKind::OpportunityUpdated, "OPPORTUNITY_UPDATED"),
        (EventKind::ReminderSent, "REMINDER_SENT"),
        (EventKind::SystemEvent, "SYSTEM_EVENT"),
        (EventKind::WorkflowRun, "WORKFLOW_RUN"),
        (EventKind::Schedule, "SCHEDULE"),
    ];

    /// The name the host uses (an ActivityKind name, or "SCHEDULE").
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, name)| *name)
            .unwrap_or("SCHEDULE")
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(k, _)| *k)
    }
}

impl Manifest {
    pub fn new(name: &str, version: &str) -> Manifest {
        Manifest {
            name: name.to_string(),
            version: version.to_string(),
            events: Vec::new(),
            schedules: Vec::new(),
        }
    }

    /// Subscribes to an event kind.
    pub fn on(mut self, kind: EventKind) -> Manifest {
        self.events.push(kind.as_str().to_string());
        self
    }

    /// Runs on a cron schedule (sec min hour day-of-month month day-of-week, workspace time).
    pub fn every(mut self, cron: &str) -> Manifest {
        self.schedules.push(cron.to_string());
        self
    }
}

impl Event {
    /// The event's kind; `None` for a kind this SDK version does not know yet.
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }

    /// The changed object, decoded into the caller's own type.
    pub fn object<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.object).map_err(|e| format!("event object: {e}"))
    }

    /// The activity's data (e.g. old and new values of a change).
    pub fn data(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}
