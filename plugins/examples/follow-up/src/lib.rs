//! `follow-up`: an inbound message on a conversation with no open follow-up task creates
//! "Follow up with <name>", due 24 hours after the message.
use confab_plugin_sdk::{Event, EventKind, HOUR, Manifest, NewTask, Plugin, export_plugin, host};

const PREFIX: &str = "Follow up with";

struct FollowUp;

impl Plugin for FollowUp {
    fn manifest() -> Manifest {
        Manifest::new("follow-up", env!("CARGO_PKG_VERSION")).on(EventKind::MessageReceived)
    }

    fn on_event(event: Event) -> Result<(), String> {
        let Some(conversation_id) = event.conversation_id.as_deref() else {
            return Ok(());
        };
        let conversation = host::get_conversation(conversation_id)?;
        if conversation
            .open_tasks
            .iter()
            .any(|task| task.title.starts_with(PREFIX))
        {
            return Ok(());
        }
        host::create_task(&NewTask {
            conversation_id: conversation.id,
            title: format!("{PREFIX} {}", conversation.contact.name),
            description: Some("They wrote in; nobody has followed up yet.".to_string()),
            due_at: Some(event.occurred_at + 24 * HOUR),
            assignee_id: None,
        })
    }
}

export_plugin!(FollowUp);
