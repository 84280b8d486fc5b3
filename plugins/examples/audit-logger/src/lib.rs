//! `audit-logger`: writes a system event into the trail for each conversation status change.
use confab_plugin_sdk::{Event, EventKind, Manifest, Plugin, export_plugin, host};

struct AuditLogger;

impl Plugin for AuditLogger {
    fn manifest() -> Manifest {
        Manifest::new("audit-logger", env!("CARGO_PKG_VERSION"))
            .on(EventKind::ConversationStatusChanged)
    }

    fn on_event(event: Event) -> Result<(), String> {
        let Some(conversation_id) = event.conversation_id.as_deref() else {
            return Ok(());
        };
        let data = event.data();
        let status = |which: &str| {
            data["status"][which]
                .as_str()
                .unwrap_or("unknown")
                .to_string()
        };
        host::log_event(
            conversation_id,
            &format!(
                "Audit: status changed from {} to {}",
                status("old"),
                status("new")
            ),
        )
    }
}

export_plugin!(AuditLogger);
