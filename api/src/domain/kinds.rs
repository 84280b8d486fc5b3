//! The closed vocabularies of the domain (channels, statuses, roles, activity kinds), stored
//! as their upper-case names and exposed to GraphQL under the same names.
use async_graphql::Enum;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Reads a value this server wrote; an unknown one means the row was written by
            /// something else, which is a bug worth a loud log line, not a crash.
            pub fn from_db(text: &str) -> Self {
                Self::parse(text).unwrap_or_else(|| {
                    tracing::error!(value = text, kind = stringify!($name), "unknown value in database");
                    [$($name::$variant),+][0]
                })
            }
        }
    };
}

string_enum!(Channel { Whatsapp => "WHATSAPP", Email => "EMAIL", Sms => "SMS" });
string_enum!(Direction { Inbound => "INBOUND", Outbound => "OUTBOUND" });
string_enum!(MessageStatus {
    Received => "RECEIVED", Queued => "QUEUED", Sent => "SENT",
    Delivered => "DELIVERED", Read => "READ", Failed => "FAILED",
});
string_enum!(ConversationStatus { Open => "OPEN", Completed => "COMPLETED" });
string_enum!(ContactStatus { Active => "ACTIVE", Archived => "ARCHIVED", Dnd => "DND" });
string_enum!(TaskStatus { Open => "OPEN", InProgress => "IN_PROGRESS", Completed => "COMPLETED" });
string_enum!(AppointmentStatus { Scheduled => "SCHEDULED", Cancelled => "CANCELLED", Completed => "COMPLETED" });
string_enum!(OpportunityStatus { Open => "OPEN", Won => "WON", Lost => "LOST", Abandoned => "ABANDONED" });
string_enum!(Role { Admin => "ADMIN", Agent => "AGENT", Integration => "INTEGRATION" });
string_enum!(TimeWindow { Upcoming => "UPCOMING", Past => "PAST", All => "ALL" });
string_enum!(ActorKind { User => "USER", Contact => "CONTACT", Plugin => "PLUGIN", System => "SYSTEM" });
string_enum!(CustomFieldType { Text => "TEXT", Number => "NUMBER", Date => "DATE", Boolean => "BOOLEAN", Select => "SELECT" });
string_enum!(JobStatus { Pending => "PENDING", Running => "RUNNING", Done => "DONE", Failed => "FAILED", Cancelled => "CANCELLED" });
string_enum!(PluginRunOutcome {
    Ok => "OK", Error => "ERROR", Trapped => "TRAPPED", FuelExhausted => "FUEL_EXHAUSTED",
    TimedOut => "TIMED_OUT", MemoryExceeded => "MEMORY_EXCEEDED",
});
string_enum!(NotificationKind {
    Mention => "MENTION", TaskAssigned => "TASK_ASSIGNED", TaskReminder => "TASK_REMINDER",
    TaskOverdue => "TASK_OVERDUE", AppointmentReminder => "APPOINTMENT_REMINDER",
    MessageForwarded => "MESSAGE_FORWARDED", OverdueDigest => "OVERDUE_DIGEST",
    PluginReminder => "PLUGIN_REMINDER",
});
string_enum!(ActivityKind {
    MessageReceived => "MESSAGE_RECEIVED", MessageSent => "MESSAGE_SENT",
    MessageStatusChanged => "MESSAGE_STATUS_CHANGED", MessageDeleted => "MESSAGE_DELETED",
    MessageForwarded => "MESSAGE_FORWARDED", NoteAdded => "NOTE_ADDED", NoteEdited => "NOTE_EDITED",
    NoteDeleted => "NOTE_DELETED", ConversationRead => "CONVERSATION_READ",
    ConversationUnread => "CONVERSATION_UNREAD", ConversationStatusChanged => "CONVERSATION_STATUS_CHANGED",
    ConversationStarred => "CONVERSATION_STARRED", OwnerChanged => "OWNER_CHANGED",
    FieldUpdated => "FIELD_UPDATED", TagAdded => "TAG_ADDED", TagRemoved => "TAG_REMOVED",
    TaskCreated => "TASK_CREATED", TaskUpdated => "TASK_UPDATED", TaskCompleted => "TASK_COMPLETED",
    AppointmentBooked => "APPOINTMENT_BOOKED", AppointmentUpdated => "APPOINTMENT_UPDATED",
    AppointmentCancelled => "APPOINTMENT_CANCELLED", OpportunityCreated => "OPPORTUNITY_CREATED",
    OpportunityUpdated => "OPPORTUNITY_UPDATED", ReminderSent => "REMINDER_SENT",
    SystemEvent => "SYSTEM_EVENT", WorkflowRun => "WORKFLOW_RUN",
});

impl MessageStatus {
    /// Receipts only move forward along this order: a provider may report FAILED after SENT
    /// (undeliverable), but nothing undoes DELIVERED or READ.
    pub fn rank(self) -> u8 {
        match self {
            MessageStatus::Received | MessageStatus::Queued => 0,
            MessageStatus::Sent => 1,
            MessageStatus::Failed => 2,
            MessageStatus::Delivered => 3,
            MessageStatus::Read => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(Channel::parse("WHATSAPP"), Some(Channel::Whatsapp));
        assert_eq!(TaskStatus::InProgress.as_str(), "IN_PROGRESS");
        assert_eq!(Channel::parse("whatsapp"), None);
    }

    #[test]
    fn receipts_rank_read_above_delivered() {
        assert!(MessageStatus::Read.rank() > MessageStatus::Delivered.rank());
        assert!(MessageStatus::Failed.rank() > MessageStatus::Sent.rank());
        assert!(MessageStatus::Delivered.rank() > MessageStatus::Failed.rank());
    }
}
