//! What a plugin is told: a committed activity (with the object it changed) or a cron firing,
//! in the world's `event` record. Ids are the API's opaque ids, times RFC 3339 in objects and
//! milliseconds in the record.
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use confab_plugins::wit::Event;

use crate::ids;
use crate::realtime::LoadedActivity;

fn id(kind: &str, n: i64) -> String {
    ids::encode(kind, n).0
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn scheduled(expr: &str, due: DateTime<Utc>) -> Event {
    Event {
        kind: "SCHEDULE".into(),
        schedule: Some(expr.to_string()),
        conversation_id: None,
        contact_id: None,
        subject_id: None,
        occurred_at: ms(due),
        object: "null".into(),
        data: "{}".into(),
    }
}

pub fn from_activity(a: &LoadedActivity) -> Event {
    let row = &a.activity;
    let (subject_id, object) = subject(a);
    Event {
        kind: row.kind.clone(),
        schedule: None,
        conversation_id: row.conversation_id.map(|c| id("Conversation", c)),
        contact_id: a.conversation.as_ref().map(|c| id("Contact", c.contact_id)),
        subject_id,
        occurred_at: ms(row.occurred_at),
        object: object.to_string(),
        data: public_data(&row.data).to_string(),
    }
}

/// The changed object, as the API names its fields.
fn subject(a: &LoadedActivity) -> (Option<String>, Value) {
    let user = |u: Option<i64>| u.map(|u| id("User", u));
    if let Some(m) = &a.message {
        let i = id("Message", m.id);
        let v = json!({ "id": i, "channel": m.channel, "direction": m.direction, "status": m.status,
            "subject": m.subject, "body": m.body, "createdAt": m.created_at, "deleted": m.deleted_at.is_some() });
        return (Some(i), v);
    }
    if let Some(n) = &a.note {
        let i = id("Note", n.id);
        let v = json!({ "id": i, "body": n.body, "authorId": id("User", n.author_id), "createdAt": n.created_at,
            "parentId": n.parent_id.map(|p| id("Note", p)) });
        return (Some(i), v);
    }
    if let Some(t) = &a.task {
        let i = id("Task", t.id);
        let v = json!({ "id": i, "title": t.title, "description": t.description, "status": t.status,
            "dueAt": t.due_at, "remindAt": t.remind_at, "assigneeId": user(t.assignee_id),
            "autoCreated": t.auto_created, "createdAt": t.created_at });
        return (Some(i), v);
    }
    if let Some(ap) = &a.appointment {
        let i = id("Appointment", ap.id);
        let v = json!({ "id": i, "title": ap.title, "startsAt": ap.starts_at, "endsAt": ap.ends_at,
            "location": ap.location, "videoUrl": ap.video_url, "agenda": ap.agenda,
            "organizerId": user(ap.organizer_id), "attendees": ap.attendees, "status": ap.status });
        return (Some(i), v);
    }
    if let Some(o) = &a.opportunity {
        let i = id("Opportunity", o.id);
        let v = json!({ "id": i, "name": o.name, "status": o.status, "amountMinor": o.amount_minor,
            "currency": o.currency, "ownerId": user(o.owner_id) });
        return (Some(i), v);
    }
    if let Some(c) = &a.conversation {
        let v = json!({ "id": id("Conversation", c.id), "status": c.status, "starred": c.starred,
            "unreadCount": c.unread_count, "lastMessageAt": c.last_message_at });
        return (None, v);
    }
    (None, Value::Null)
}

/// The activity's data with row numbers turned into the API's ids.
fn public_data(data: &Value) -> Value {
    let Some(obj) = data.as_object() else {
        return data.clone();
    };
    let kinds = [
        ("messageId", "Message"),
        ("noteId", "Note"),
        ("taskId", "Task"),
        ("appointmentId", "Appointment"),
        ("opportunityId", "Opportunity"),
        ("contactId", "Contact"),
        ("conversationId", "Conversation"),
        ("pluginId", "Plugin"),
        ("userId", "User"),
        ("toUserId", "User"),
        ("assigneeId", "User"),
        ("ownerId", "User"),
    ];
    let mut out = Map::new();
    for (k, v) in obj {
        let kind = kinds
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, kind)| *kind);
        let v = match (kind, v.as_i64()) {
            (Some(kind), Some(n)) => Value::String(id(kind, n)),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_numbers_in_data_become_api_ids_and_the_rest_stays() {
        let data =
            json!({ "messageId": 7, "status": { "old": "OPEN", "new": "COMPLETED" }, "jobId": 3 });
        let out = public_data(&data);
        assert_eq!(out["messageId"], json!(id("Message", 7)));
        assert_eq!(out["status"]["new"], json!("COMPLETED"));
        assert_eq!(out["jobId"], json!(3));
    }
}
