//! Applying what a wave's successful runs asked for, inside the transaction that records the
//! runs: every change is made as the plugin (actor PLUGIN) and within the plugin's workspace
//! only. The wave's conversations and teammates are read once, its tasks, reminders,
//! notifications and activities written with one insert each, in run order.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::{Value, json};

use confab_plugins::Effect;
use confab_plugins::wit::{Channel as WitChannel, Recipient};
use entity::positional::SelectRows;
use entity::{contact, conversation, job, note, plugin, task, user};

use crate::domain::activities::{self, Actor, NewActivity};
use crate::domain::notifications::{self, About, NewNotification};
use crate::domain::plugins::{REMINDER, reminder_prefix};
use crate::domain::scoped::one_of;
use crate::domain::{
    ActivityKind, Channel, ContactStatus, NotificationKind, Role, TaskStatus, now, scoped, truncate,
};
use crate::error::{DomainError, DomainResult};
use crate::scheduler::jobs::{self, Occurrence};

/// One successful run's requests.
pub struct Asked<'a> {
    pub plugin: &'a plugin::Model,
    pub actor: &'a Actor,
    /// The run's own name among its plugin's runs (its event, or its scheduled job): the
    /// reminders it asks for are keyed by it, apart from those of the job's other runs.
    pub run: String,
    pub effects: &'a [Effect],
}

/// Applies each run's effects, all or none per run, in run order. Per run: done, or the
/// refusal (an id outside the workspace, a teammate who is gone, a time out of range), and
/// then nothing of that run was written. The outer error is the database failing.
pub async fn apply_all(
    txn: &DatabaseTransaction,
    runs: &[Asked<'_>],
) -> DomainResult<Vec<Result<(), DomainError>>> {
    let found = Found::load(txn, runs).await?;
    let verdicts: Vec<_> = runs.iter().map(|r| found.check(r)).collect();
    let mut writes = Writes::default();
    for (r, verdict) in runs.iter().zip(&verdicts) {
        if verdict.is_ok() {
            writes.gather(txn, &found, r).await?;
        }
    }
    writes.write(txn).await?;
    Ok(verdicts)
}

/// The conversations and teammates the wave's effects name, by (workspace, row id).
struct Found {
    conversations: HashMap<(i64, i64), conversation::Model>,
    teammates: HashSet<(i64, i64)>,
}

/// The conversation and the teammate (if any) an effect names, as the plugin wrote them.
fn names(effect: &Effect) -> (&str, Option<&str>) {
    match effect {
        Effect::CreateTask(t) => (&t.conversation_id, t.assignee_id.as_deref()),
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
    }
}

impl Found {
    async fn load(txn: &DatabaseTransaction, runs: &[Asked<'_>]) -> DomainResult<Found> {
        let mut wanted: HashMap<i64, (Vec<i64>, Vec<i64>)> = HashMap::new();
        for r in runs {
            let (conversations, teammates) = wanted.entry(r.plugin.workspace_id).or_default();
            for effect in r.effects {
                let (conversation, teammate) = names(effect);
                conversations.extend(super::row_id(conversation, "Conversation").ok());
                teammates.extend(teammate.and_then(|u| super::row_id(u, "User").ok()));
            }
        }
        let mut found = Found {
            conversations: HashMap::new(),
            teammates: HashSet::new(),
        };
        for (ws, (conversations, teammates)) in wanted {
            if !conversations.is_empty() {
                let rows = scoped::rows::<conversation::Entity>(ws)
                    .filter(one_of(txn, conversation::Column::Id, conversations))
                    .rows(txn)
                    .await?;
                found
                    .conversations
                    .extend(rows.into_iter().map(|c| ((ws, c.id), c)));
            }
            if !teammates.is_empty() {
                let ids: Vec<i64> = user::Entity::find()
                    .select_only()
                    .column(user::Column::Id)
                    .filter(user::Column::WorkspaceId.eq(ws))
                    .filter(one_of(txn, user::Column::Id, teammates))
                    .into_tuple()
                    .all(txn)
                    .await?;
                found.teammates.extend(ids.into_iter().map(|id| (ws, id)));
            }
        }
        Ok(found)
    }

    fn conversation(&self, ws: i64, id: &str) -> DomainResult<&conversation::Model> {
        let row = super::row_id(id, "Conversation")?;
        self.conversations
            .get(&(ws, row))
            .ok_or(DomainError::NotFound("conversation"))
    }

    fn teammate(&self, ws: i64, id: &str) -> DomainResult<i64> {
        let row = super::row_id(id, "User")?;
        self.teammates
            .get(&(ws, row))
            .map(|_| row)
            .ok_or(DomainError::NotFound("teammate"))
    }

    /// Whether every id and time a run's effects name is one it may use, before anything is
    /// written: a refusal leaves nothing to undo.
    fn check(&self, r: &Asked<'_>) -> Result<(), DomainError> {
        let ws = r.plugin.workspace_id;
        for effect in r.effects {
            let (conversation, teammate) = names(effect);
            self.conversation(ws, conversation)?;
            if let Some(u) = teammate {
                self.teammate(ws, u)?;
            }
            match effect {
                Effect::CreateTask(t) => {
                    t.due_at.map(time).transpose()?;
                }
                Effect::SendReminder(r) => {
                    r.at.map(time).transpose()?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn time(ms: i64) -> DomainResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .map(truncate)
        .ok_or_else(|| DomainError::invalid("time", format!("{ms} is not a time")))
}

/// A trail entry waiting for its row: ready, or the n-th new task's (its id comes with the
/// tasks' insert).
enum Entry<'a> {
    Ready(NewActivity<'a>),
    Task { n: usize, actor: &'a Actor },
}

/// A new task and who it is for.
struct NewTask<'a> {
    row: task::ActiveModel,
    assignee: Option<i64>,
    plugin: &'a plugin::Model,
}

/// What the accepted runs write, gathered in run order.
#[derive(Default)]
struct Writes<'a> {
    tasks: Vec<NewTask<'a>>,
    reminders: Vec<Occurrence<'a>>,
    entries: Vec<Entry<'a>>,
}

impl<'a> Writes<'a> {
    /// Gathers a checked run's effects; tags and notes, rare and each with its own lookups,
    /// are written at once.
    async fn gather(
        &mut self,
        txn: &DatabaseTransaction,
        found: &Found,
        r: &Asked<'a>,
    ) -> DomainResult<()> {
        let (plugin, actor, ws) = (r.plugin, r.actor, r.plugin.workspace_id);
        let entry = |conversation_id: i64, kind: ActivityKind, summary: String, data: Value| {
            Entry::Ready(NewActivity {
                workspace_id: ws,
                conversation_id: Some(conversation_id),
                kind,
                actor,
                summary,
                data,
            })
        };
        for (n, effect) in r.effects.iter().enumerate() {
            let c = found.conversation(ws, names(effect).0)?;
            match effect {
                Effect::CreateTask(t) => {
                    let assignee = match &t.assignee_id {
                        Some(a) => Some(found.teammate(ws, a)?),
                        None => None,
                    };
                    let at = now();
                    self.entries.push(Entry::Task {
                        n: self.tasks.len(),
                        actor,
                    });
                    self.tasks.push(NewTask {
                        row: task::ActiveModel {
                            workspace_id: Set(ws),
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
                        },
                        assignee,
                        plugin,
                    });
                }
                Effect::LogEvent { text, .. } => self.entries.push(entry(
                    c.id,
                    ActivityKind::SystemEvent,
                    text.clone(),
                    json!({ "pluginId": plugin.id }),
                )),
                Effect::SendReminder(reminder) => {
                    let to = match &reminder.to {
                        Recipient::Teammate(u) => json!({ "teammate": found.teammate(ws, u)? }),
                        Recipient::Contact(channel) => {
                            json!({ "contact": channel.map(channel_name) })
                        }
                    };
                    let due = match reminder.at {
                        Some(ms) => time(ms)?.max(now()),
                        None => now(),
                    };
                    self.reminders.push(Occurrence {
                        workspace_id: ws,
                        kind: REMINDER,
                        key: format!("{}{}:{n}", reminder_prefix(plugin.id), r.run),
                        due_at: due,
                        payload: json!({ "pluginId": plugin.id, "conversationId": c.id, "to": to,
                                         "text": reminder.text, "depth": depth(actor) }),
                    });
                }
                Effect::AddTag { tag, .. } => {
                    let scope = plugin_scope(txn, plugin).await?;
                    if crate::domain::contacts::tags::add(txn, &scope, c.contact_id, tag).await? {
                        self.entries.push(entry(
                            c.id,
                            ActivityKind::TagAdded,
                            format!("Tagged {tag}"),
                            json!({ "contactId": c.contact_id, "tag": tag, "pluginId": plugin.id }),
                        ));
                    }
                }
                Effect::AddNote { body, .. } => {
                    let scope = plugin_scope(txn, plugin).await?;
                    let created = note::ActiveModel {
                        workspace_id: Set(ws),
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
                    self.entries.push(entry(
                        c.id,
                        ActivityKind::NoteAdded,
                        "Added a note".into(),
                        json!({ "noteId": created.id, "pluginId": plugin.id }),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes what was gathered: the tasks (returning their rows, checked to come back in
    /// order), their notifications and jobs with the reminders, then the trail.
    async fn write(self, txn: &DatabaseTransaction) -> DomainResult<()> {
        let Writes {
            tasks,
            mut reminders,
            entries,
        } = self;
        let mut created = Vec::new();
        if !tasks.is_empty() {
            created = task::Entity::insert_many(tasks.iter().map(|t| t.row.clone()))
                .exec_with_returning(txn)
                .await?;
            crate::domain::returned_in_order(
                &created,
                tasks.iter(),
                |row, t| {
                    t.row.conversation_id.as_ref() == &row.conversation_id
                        && t.row.title.as_ref() == &row.title
                },
                "tasks",
            )?;
        }
        let mut told = Vec::new();
        for (row, t) in created.iter().zip(&tasks) {
            if let Some(user_id) = t.assignee {
                told.push(NewNotification {
                    workspace_id: row.workspace_id,
                    user_id,
                    kind: NotificationKind::TaskAssigned,
                    text: format!("{} assigned you: {}", t.plugin.name, row.title),
                    about: About {
                        conversation_id: Some(row.conversation_id),
                        task_id: Some(row.id),
                        ..Default::default()
                    },
                });
            }
            reminders.extend(jobs::task_occurrences(row));
        }
        notifications::notify_many(txn, told).await?;
        jobs::schedule_many(txn, reminders).await?;
        let trail = entries.into_iter().map(|e| match e {
            Entry::Ready(a) => a,
            Entry::Task { n, actor } => {
                let (row, t) = (&created[n], &tasks[n]);
                NewActivity {
                    workspace_id: row.workspace_id,
                    conversation_id: Some(row.conversation_id),
                    kind: ActivityKind::TaskCreated,
                    actor,
                    summary: format!("Task created: {}", row.title),
                    data: json!({ "taskId": row.id, "assigneeId": t.assignee, "dueAt": row.due_at,
                                  "pluginId": t.plugin.id }),
                }
            }
        });
        activities::record_many(txn, trail.collect()).await?;
        Ok(())
    }
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
async fn plugin_scope(
    txn: &DatabaseTransaction,
    plugin: &plugin::Model,
) -> DomainResult<crate::domain::Scope> {
    let mut q = user::Entity::find().filter(user::Column::WorkspaceId.eq(plugin.workspace_id));
    q = match plugin.installed_by_id {
        Some(id) => q.filter(user::Column::Id.eq(id)),
        None => q
            .filter(user::Column::Role.eq(Role::Admin.as_str()))
            .order_by_asc(user::Column::Id),
    };
    let admin = q
        .row(txn)
        .await?
        .ok_or_else(|| DomainError::Internal("no admin stands behind this plugin".into()))?;
    Ok(crate::domain::Scope {
        workspace_id: plugin.workspace_id,
        user_id: admin.id,
        role: Role::Admin,
        label: super::label(plugin).into(),
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
        .row(txn)
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
        .row(txn)
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
