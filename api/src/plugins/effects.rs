//! Applying what a successful run asked for, inside the transaction that records the run:
//! every change is made as the plugin (actor PLUGIN) and within the plugin's workspace only.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};

use confab_plugins::Effect;
use confab_plugins::wit::{Channel as WitChannel, Recipient};
use entity::{contact, conversation, job, note, plugin, task, user};

use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::notifications::{self, About};
use crate::domain::plugins::{REMINDER, reminder_prefix};
use crate::domain::{
    ActivityKind, Channel, ContactStatus, NotificationKind, Role, TaskStatus, now, scoped, truncate,
};
use crate::error::{DomainError, DomainResult};

struct Ctx<'a> {
    txn: &'a DatabaseTransaction,
    plugin: &'a plugin::Model,
    actor: &'a Actor,
    /// What `check` found, by the ids the plugin used.
    conversations: HashMap<String, conversation::Model>,
    teammates: HashMap<String, i64>,
}

impl Ctx<'_> {
    fn ws(&self) -> i64 {
        self.plugin.workspace_id
    }

    async fn conversation(&mut self, id: &str) -> DomainResult<conversation::Model> {
        if let Some(c) = self.conversations.get(id) {
            return Ok(c.clone());
        }
        let row = super::row_id(id, "Conversation")?;
        let c = scoped::find::<conversation::Entity>(self.txn, self.ws(), row)
            .await?
            .ok_or(DomainError::NotFound("conversation"))?;
        self.conversations.insert(id.to_string(), c.clone());
        Ok(c)
    }

    async fn teammate(&mut self, id: &str) -> DomainResult<i64> {
        if let Some(u) = self.teammates.get(id) {
            return Ok(*u);
        }
        let row = super::row_id(id, "User")?;
        let u = user::Entity::find_by_id(row)
            .filter(user::Column::WorkspaceId.eq(self.ws()))
            .one(self.txn)
            .await?
            .map(|u| u.id)
            .ok_or(DomainError::NotFound("teammate"))?;
        self.teammates.insert(id.to_string(), u);
        Ok(u)
    }

    /// Resolves every conversation and teammate the effects name, before anything is written:
    /// a refusal leaves nothing to undo.
    async fn check(&mut self, effects: &[Effect]) -> DomainResult<()> {
        for effect in effects {
            let (conversation, teammate) = match effect {
                Effect::CreateTask(t) => (&t.conversation_id, t.assignee_id.as_ref()),
                Effect::SendReminder(r) => (
                    &r.conversation_id,
                    match &r.to {
                        Recipient::Teammate(u) => Some(u),
                        Recipient::Contact(_) => None,
                    },
                ),
                Effect::LogEvent {
                    conversation_id, ..
                }
                | Effect::AddTag {
                    conversation_id, ..
                }
                | Effect::AddNote {
                    conversation_id, ..
                } => (conversation_id, None),
            };
            self.conversation(conversation).await?;
            if let Some(u) = teammate {
                self.teammate(u).await?;
            }
        }
        Ok(())
    }

    async fn activity(
        &self,
        conversation_id: Option<i64>,
        kind: ActivityKind,
        summary: String,
        data: Value,
    ) -> DomainResult<()> {
        activities::record(
            self.txn,
            NewActivity {
                workspace_id: self.ws(),
                conversation_id,
                kind,
                actor: self.actor,
                summary,
                data,
            },
        )
        .await?;
        Ok(())
    }
}

fn time(ms: i64) -> DomainResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .map(truncate)
        .ok_or_else(|| DomainError::invalid("time", format!("{ms} is not a time")))
}

/// Applies `effects` in order. The inner error is a refusal (an id outside the workspace, a
/// teammate who is gone): then nothing was written. The outer one is the database failing.
pub async fn apply(
    txn: &DatabaseTransaction,
    plugin: &plugin::Model,
    actor: &Actor,
    job_id: i64,
    effects: &[Effect],
) -> DomainResult<Result<(), DomainError>> {
    let mut cx = Ctx {
        txn,
        plugin,
        actor,
        conversations: HashMap::new(),
        teammates: HashMap::new(),
    };
    match cx.check(effects).await {
        Ok(()) => {}
        Err(e @ (DomainError::Database(_) | DomainError::Internal(_))) => return Err(e),
        Err(refused) => return Ok(Err(refused)),
    }
    write(&mut cx, job_id, effects).await?;
    Ok(Ok(()))
}

async fn write(cx: &mut Ctx<'_>, job_id: i64, effects: &[Effect]) -> DomainResult<()> {
    let (txn, plugin, actor) = (cx.txn, cx.plugin, cx.actor);
    for (n, effect) in effects.iter().enumerate() {
        match effect {
            Effect::CreateTask(t) => {
                let c = cx.conversation(&t.conversation_id).await?;
                let assignee = match &t.assignee_id {
                    Some(a) => Some(cx.teammate(a).await?),
                    None => None,
                };
                let at = now();
                let created = task::ActiveModel {
                    workspace_id: Set(cx.ws()),
                    conversation_id: Set(c.id),
                    title: Set(t.title.clone()),
                    description: Set(t.description.clone()),
                    status: Set(TaskStatus::Open.as_str().into()),
                    due_at: Set(t.due_at.map(time).transpose()?),
                    assignee_id: Set(assignee),
                    auto_created: Set(true),
                    plugin_id: Set(Some(plugin.id)),
                    created_at: Set(at),
                    updated_at: Set(at),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                if let Some(uid) = assignee {
                    notifications::notify(
                        txn,
                        cx.ws(),
                        uid,
                        NotificationKind::TaskAssigned,
                        format!("{} assigned you: {}", plugin.name, created.title),
                        About {
                            conversation_id: Some(c.id),
                            task_id: Some(created.id),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                crate::scheduler::jobs::schedule_task(txn, &created).await?;
                cx.activity(
                    Some(c.id),
                    ActivityKind::TaskCreated,
                    format!("Task created: {}", created.title),
                    json!({ "taskId": created.id, "assigneeId": assignee, "dueAt": created.due_at, "pluginId": plugin.id }),
                )
                .await?;
            }
            Effect::LogEvent {
                conversation_id,
                text,
            } => {
                let c = cx.conversation(conversation_id).await?;
                cx.activity(
                    Some(c.id),
                    ActivityKind::SystemEvent,
                    text.clone(),
                    json!({ "pluginId": plugin.id }),
                )
                .await?;
            }
            Effect::SendReminder(r) => {
                let c = cx.conversation(&r.conversation_id).await?;
                let to = match &r.to {
                    Recipient::Teammate(u) => json!({ "teammate": cx.teammate(u).await? }),
                    Recipient::Contact(channel) => json!({ "contact": channel.map(channel_name) }),
                };
                let due = match r.at {
                    Some(ms) => time(ms)?.max(now()),
                    None => now(),
                };
                crate::scheduler::jobs::schedule(
                    txn,
                    cx.ws(),
                    REMINDER,
                    &format!("{}{job_id}:{n}", reminder_prefix(plugin.id)),
                    due,
                    json!({ "pluginId": plugin.id, "conversationId": c.id, "to": to, "text": r.text,
                            "depth": depth(actor) }),
                )
                .await?;
            }
            Effect::AddTag {
                conversation_id,
                tag,
            } => {
                let c = cx.conversation(conversation_id).await?;
                let scope = plugin_scope(cx).await?;
                if crate::domain::contacts::tags::add(txn, &scope, c.contact_id, tag).await? {
                    cx.activity(
                        Some(c.id),
                        ActivityKind::TagAdded,
                        format!("Tagged {tag}"),
                        json!({ "contactId": c.contact_id, "tag": tag, "pluginId": plugin.id }),
                    )
                    .await?;
                }
            }
            Effect::AddNote {
                conversation_id,
                body,
            } => {
                let c = cx.conversation(conversation_id).await?;
                let scope = plugin_scope(cx).await?;
                let created = note::ActiveModel {
                    workspace_id: Set(cx.ws()),
                    conversation_id: Set(c.id),
                    author_id: Set(scope.user_id),
                    body: Set(body.clone()),
                    body_html: Set(crate::domain::notes::render(body)),
                    created_at: Set(now()),
                    plugin_id: Set(Some(plugin.id)),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                cx.activity(
                    Some(c.id),
                    ActivityKind::NoteAdded,
                    "Added a note".into(),
                    json!({ "noteId": created.id, "pluginId": plugin.id }),
                )
                .await?;
            }
        }
    }
    Ok(())
}

fn depth(actor: &Actor) -> i64 {
    match actor {
        Actor::Plugin { depth, .. } => *depth,
        _ => 0,
    }
}

fn channel_name(c: WitChannel) -> &'static str {
    match c {
        WitChannel::Whatsapp => Channel::Whatsapp.as_str(),
        WitChannel::Email => Channel::Email.as_str(),
        WitChannel::Sms => Channel::Sms.as_str(),
    }
}

/// Notes need an author and tags a scope: the admin who installed the plugin (or, if they
/// are gone, the workspace's first admin) stands behind what it writes.
async fn plugin_scope(cx: &Ctx<'_>) -> DomainResult<crate::domain::Scope> {
    let mut q = user::Entity::find().filter(user::Column::WorkspaceId.eq(cx.ws()));
    q = match cx.plugin.installed_by_id {
        Some(id) => q.filter(user::Column::Id.eq(id)),
        None => q
            .filter(user::Column::Role.eq(Role::Admin.as_str()))
            .order_by_asc(user::Column::Id),
    };
    let admin = q
        .one(cx.txn)
        .await?
        .ok_or_else(|| DomainError::Internal("no admin stands behind this plugin".into()))?;
    Ok(crate::domain::Scope {
        workspace_id: cx.ws(),
        user_id: admin.id,
        role: Role::Admin,
        label: super::label(cx.plugin).into(),
    })
}

/// A plugin was switched off for failing: the trail says so, and no schedule stays pending.
pub async fn disabled(txn: &DatabaseTransaction, p: &plugin::Model, why: &str) -> DomainResult<()> {
    crate::scheduler::jobs::cancel(
        txn,
        p.workspace_id,
        &crate::domain::plugins::cron_prefix(p.id),
    )
    .await?;
    activities::record(
        txn,
        NewActivity {
            workspace_id: p.workspace_id,
            conversation_id: None,
            kind: ActivityKind::SystemEvent,
            actor: &Actor::System,
            summary: format!("Plugin {} disabled: {why}", p.name),
            data: json!({ "pluginId": p.id, "enabled": false }),
        },
    )
    .await?;
    Ok(())
}

/// The `plugin.reminder` job: a teammate gets a PLUGIN_REMINDER notification; the contact a
/// message through the outbox (skipped, and recorded, when they are DND or unreachable).
pub async fn deliver_reminder(txn: &DatabaseTransaction, j: &job::Model) -> DomainResult<()> {
    let int = |key: &str| j.payload.get(key).and_then(Value::as_i64);
    let (Some(plugin_id), Some(conversation_id)) = (int("pluginId"), int("conversationId")) else {
        return Err(DomainError::Internal(
            "reminder without plugin or conversation".into(),
        ));
    };
    let Some(p) = crate::domain::plugins::installed(j.workspace_id)
        .filter(plugin::Column::Id.eq(plugin_id))
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    let Some(c) =
        scoped::find::<conversation::Entity>(txn, j.workspace_id, conversation_id).await?
    else {
        return Ok(());
    };
    let text = j
        .payload
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let actor = Actor::Plugin {
        id: p.id,
        label: super::label(&p),
        depth: int("depth").unwrap_or(1),
    };
    let record = |summary: String, data: Value| {
        let actor = &actor;
        async move {
            activities::record(
                txn,
                NewActivity {
                    workspace_id: j.workspace_id,
                    conversation_id: Some(c.id),
                    kind: ActivityKind::ReminderSent,
                    actor,
                    summary,
                    data,
                },
            )
            .await
            .map(|_| ())
        }
    };
    let to = j.payload.get("to").cloned().unwrap_or(Value::Null);
    if let Some(uid) = to.get("teammate").and_then(Value::as_i64) {
        notifications::notify(
            txn,
            j.workspace_id,
            uid,
            NotificationKind::PluginReminder,
            text.clone(),
            About {
                conversation_id: Some(c.id),
                ..Default::default()
            },
        )
        .await?;
        return record(
            format!("Reminder sent to a teammate: {text}"),
            json!({ "userId": uid, "pluginId": p.id, "jobId": j.id }),
        )
        .await;
    }
    let person = contact::Entity::find_by_id(c.contact_id)
        .one(txn)
        .await?
        .ok_or_else(|| DomainError::Internal("conversation without contact".into()))?;
    if person.status == ContactStatus::Dnd.as_str() {
        return record(
            "Reminder not sent to the contact: do-not-disturb".into(),
            json!({ "skipped": "CONTACT_DND", "pluginId": p.id, "jobId": j.id }),
        )
        .await;
    }
    let asked = to
        .get("contact")
        .and_then(Value::as_str)
        .and_then(Channel::parse);
    let Some(channel) = asked.or_else(|| crate::domain::messages::default_channel(&person)) else {
        return record(
            "Reminder not sent to the contact: no address".into(),
            json!({ "skipped": "NO_ADDRESS", "pluginId": p.id, "jobId": j.id }),
        )
        .await;
    };
    let (message, _) =
        crate::domain::messages::enqueue(txn, c.clone(), person, channel, text.clone(), None, None)
            .await?;
    record(
        format!("Reminder sent to the contact: {text}"),
        json!({ "messageId": message.id, "pluginId": p.id, "jobId": j.id }),
    )
    .await
}
