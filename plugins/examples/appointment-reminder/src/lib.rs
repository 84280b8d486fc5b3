//! `appointment-reminder`: a booked appointment gets a reminder to the contact 24 hours
//! before it starts, on the channel they last wrote on. Appointments booked less than 24
//! hours ahead get none (the workspace's own reminders still apply).
use confab_plugin_sdk::{
    Event, EventKind, HOUR, Manifest, Plugin, Recipient, Reminder, export_plugin, host,
};

struct AppointmentReminder;

impl Plugin for AppointmentReminder {
    fn manifest() -> Manifest {
        Manifest::new("appointment-reminder", env!("CARGO_PKG_VERSION"))
            .on(EventKind::AppointmentBooked)
    }

    fn on_event(event: Event) -> Result<(), String> {
        let (Some(conversation_id), Some(appointment_id)) = (
            event.conversation_id.as_deref(),
            event.subject_id.as_deref(),
        ) else {
            return Ok(());
        };
        let conversation = host::get_conversation(conversation_id)?;
        let Some(appointment) = conversation
            .upcoming_appointments
            .iter()
            .find(|a| a.id == appointment_id)
        else {
            // Cancelled or already started by the time we ran.
            return Ok(());
        };
        let at = appointment.starts_at - 24 * HOUR;
        if at <= event.occurred_at {
            return Ok(());
        }
        host::send_reminder(&Reminder {
            conversation_id: conversation.id.clone(),
            to: Recipient::Contact(None),
            text: format!(
                "Hi {}, a reminder: \"{}\" is tomorrow at this time.",
                conversation.contact.name, appointment.title
            ),
            at: Some(at),
        })
    }
}

export_plugin!(AppointmentReminder);
