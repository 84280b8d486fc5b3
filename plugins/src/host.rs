//! What a running plugin can reach: the host interface of the world, each call counted,
//! size-checked and bound to the run's workspace, and WASI wired deny-all.
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::Limits;
use crate::wit::{Conversation, NewTask, Recipient, Reminder, Timestamp};

/// The longest task title, tag and log line a plugin may ask for.
const MAX_TITLE: usize = 200;
const MAX_TAG: usize = 64;

/// The workspace a run is bound to, as the host (the server) exposes it. Calls block; the
/// runtime runs plugins on blocking threads.
pub trait Workspace: Send + Sync {
    /// A conversation of this workspace; Err with a message for the plugin otherwise.
    fn conversation(&self, id: &str) -> Result<Conversation, String>;
    /// Ok when `id` is a teammate of this workspace.
    fn teammate(&self, id: &str) -> Result<(), String>;
}

/// A workspace with nothing in it: what `manifest()` sees.
pub struct NoWorkspace;

impl Workspace for NoWorkspace {
    fn conversation(&self, _: &str) -> Result<Conversation, String> {
        Err("host calls are not available in manifest()".into())
    }

    fn teammate(&self, _: &str) -> Result<(), String> {
        Err("host calls are not available in manifest()".into())
    }
}

/// A change a plugin asked for; applied with the others when the run ends well.
#[derive(Clone, Debug)]
pub enum Effect {
    CreateTask(NewTask),
    LogEvent {
        conversation_id: String,
        text: String,
    },
    SendReminder(Reminder),
    AddTag {
        conversation_id: String,
        tag: String,
    },
    AddNote {
        conversation_id: String,
        body: String,
    },
}

/// A limit the plugin broke inside a host call; the run fails with it.
#[derive(Debug, thiserror::Error)]
pub enum Breach {
    #[error("{0}")]
    Limit(String),
    #[error("the run passed its {0} ms wall-clock deadline")]
    Deadline(u64),
}

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) workspace: Arc<dyn Workspace>,
    pub(crate) limits: Limits,
    pub(crate) deadline: Instant,
    pub(crate) effects: Vec<Effect>,
    pub(crate) calls: u32,
    pub(crate) text_bytes: u64,
    pub(crate) host_time: Duration,
    /// Conversations this run has seen exist, so a later call on them needs no lookup.
    known: HashSet<String>,
}

impl HostState {
    pub(crate) fn new(
        wasi: WasiCtx,
        workspace: Arc<dyn Workspace>,
        limits: Limits,
        started: Instant,
    ) -> Self {
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory_bytes),
            workspace,
            deadline: started + Duration::from_millis(limits.wall_ms),
            limits,
            effects: Vec::new(),
            calls: 0,
            text_bytes: 0,
            host_time: Duration::ZERO,
            known: HashSet::new(),
        }
    }

    /// Counts one host call carrying `texts`; breaks the run when a limit is passed.
    fn call(&mut self, what: &str, texts: &[&str]) -> wasmtime::Result<()> {
        self.calls += 1;
        if self.calls > self.limits.host_calls {
            return Err(Breach::Limit(format!(
                "made more than {} host calls (the last was {what})",
                self.limits.host_calls
            ))
            .into());
        }
        self.text_bytes += texts.iter().map(|t| t.len() as u64).sum::<u64>();
        if self.text_bytes > self.limits.output_bytes {
            return Err(Breach::Limit(format!(
                "handed the host more than {} bytes of text (at {what})",
                self.limits.output_bytes
            ))
            .into());
        }
        if Instant::now() > self.deadline {
            return Err(Breach::Deadline(self.limits.wall_ms).into());
        }
        Ok(())
    }

    /// Looks the conversation up once per run; later calls on it reuse the answer.
    fn conversation(&mut self, id: &str) -> Result<Conversation, String> {
        let at = Instant::now();
        let found = self.workspace.conversation(id);
        self.host_time += at.elapsed();
        if found.is_ok() {
            self.known.insert(id.to_string());
        }
        found
    }

    fn known(&mut self, id: &str) -> Result<(), String> {
        if self.known.contains(id) {
            return Ok(());
        }
        self.conversation(id).map(|_| ())
    }

    fn teammate(&mut self, id: &str) -> Result<(), String> {
        let at = Instant::now();
        let found = self.workspace.teammate(id);
        self.host_time += at.elapsed();
        found
    }
}

fn one_line(text: &str, what: &str, max: usize) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if text.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    Ok(text.to_string())
}

fn timestamp(t: Timestamp, what: &str) -> Result<Timestamp, String> {
    // Between 1970 and 9999: what the databases and the API can show.
    if (0..253_402_300_800_000).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{what} is not a time Confab can keep ({t})"))
    }
}

impl crate::wit::types::Host for HostState {}

impl crate::wit::host::Host for HostState {
    fn get_conversation(&mut self, id: String) -> wasmtime::Result<Result<Conversation, String>> {
        self.call("get-conversation", &[&id])?;
        Ok(self.conversation(&id))
    }

    fn create_task(&mut self, task: NewTask) -> wasmtime::Result<Result<(), String>> {
        let texts = [
            task.conversation_id.as_str(),
            task.title.as_str(),
            task.description.as_deref().unwrap_or(""),
        ];
        self.call("create-task", &texts)?;
        let checked = (|| {
            self.known(&task.conversation_id)?;
            if let Some(assignee) = &task.assignee_id {
                self.teammate(assignee)?;
            }
            Ok(NewTask {
                title: one_line(&task.title, "title", MAX_TITLE)?,
                due_at: task.due_at.map(|t| timestamp(t, "dueAt")).transpose()?,
                ..task
            })
        })();
        Ok(checked.map(|task| self.effects.push(Effect::CreateTask(task))))
    }

    fn log_event(
        &mut self,
        conversation_id: String,
        text: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.call("log-event", &[&conversation_id, &text])?;
        let checked = self
            .known(&conversation_id)
            .and_then(|()| one_line(&text, "text", 2_000));
        Ok(checked.map(|text| {
            self.effects.push(Effect::LogEvent {
                conversation_id,
                text,
            })
        }))
    }

    fn send_reminder(&mut self, reminder: Reminder) -> wasmtime::Result<Result<(), String>> {
        self.call(
            "send-reminder",
            &[&reminder.conversation_id, &reminder.text],
        )?;
        let checked = (|| {
            self.known(&reminder.conversation_id)?;
            if let Recipient::Teammate(user) = &reminder.to {
                self.teammate(user)?;
            }
            Ok(Reminder {
                text: one_line(&reminder.text, "text", 2_000)?,
                at: reminder.at.map(|t| timestamp(t, "at")).transpose()?,
                ..reminder
            })
        })();
        Ok(checked.map(|r| self.effects.push(Effect::SendReminder(r))))
    }

    fn add_tag(
        &mut self,
        conversation_id: String,
        tag: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.call("add-tag", &[&conversation_id, &tag])?;
        let checked = self
            .known(&conversation_id)
            .and_then(|()| one_line(&tag, "tag", MAX_TAG));
        Ok(checked.map(|tag| {
            self.effects.push(Effect::AddTag {
                conversation_id,
                tag,
            })
        }))
    }

    fn add_note(
        &mut self,
        conversation_id: String,
        body: String,
    ) -> wasmtime::Result<Result<(), String>> {
        self.call("add-note", &[&conversation_id, &body])?;
        let checked = self.known(&conversation_id).and_then(|()| {
            if body.trim().is_empty() {
                Err("body must not be empty".to_string())
            } else {
                Ok(body)
            }
        });
        Ok(checked.map(|body| {
            self.effects.push(Effect::AddNote {
                conversation_id,
                body,
            })
        }))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Caps linear memory; remembers that it refused, so the run's outcome says MEMORY_EXCEEDED
/// whatever the guest does next.
pub(crate) struct Limiter {
    memory_bytes: u64,
    pub(crate) exceeded: bool,
}

impl Limiter {
    fn new(memory_bytes: u64) -> Self {
        Limiter {
            memory_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes {
            self.exceeded = true;
            return Err(Breach::Limit(format!(
                "asked for {desired} bytes of memory; the limit is {}",
                self.memory_bytes
            ))
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _: usize,
        desired: usize,
        _: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}
