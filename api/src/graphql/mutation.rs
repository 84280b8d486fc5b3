//! The root mutation: each resolver checks its input shape, calls one service, maps the result.
use async_graphql::MaybeUndefined;

use crate::domain::{
    appointments, contacts, custom_fields, notes, notifications, opportunities, tasks, templates,
    workspaces,
};
use async_graphql::{Context, ID, InputObject, Json, Object, SimpleObject, Upload};

use super::types::*;
use super::{ctx_db, ctx_scope, ctx_state};
use crate::domain::inbound::Inbound;
use crate::domain::messages::{self, MessageRef, Outbound};
use crate::domain::{
    Channel, ContactStatus, ConversationStatus, CustomFieldType, MessageStatus, OpportunityStatus,
    TaskStatus, conversations,
};
use crate::error::DomainError;
use crate::ids;

type Res<T> = async_graphql::Result<T>;

#[derive(InputObject)]
pub struct ReceiveMessageInput {
    pub channel: Channel,
    pub from: String,
    pub body: String,
    pub subject: Option<String>,
    pub external_id: Option<String>,
    pub contact_name: Option<String>,
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(SimpleObject)]
pub struct ReceiveMessagePayload {
    pub message: Message,
    pub conversation: Conversation,
    pub contact: Contact,
    pub duplicate: bool,
}

#[derive(InputObject)]
pub struct SendMessageInput {
    pub conversation_id: ID,
    pub channel: Channel,
    pub body: Option<String>,
    pub subject: Option<String>,
    pub template_id: Option<ID>,
    pub variables: Option<Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
pub struct SendMessagePayload {
    pub message: Message,
    pub conversation: Conversation,
}

#[derive(InputObject)]
pub struct UpdateMessageStatusInput {
    pub message_id: Option<ID>,
    pub channel: Option<Channel>,
    pub external_id: Option<String>,
    pub status: MessageStatus,
    pub failed_reason: Option<String>,
}

#[derive(InputObject)]
pub struct MarkMessageInput {
    pub message_id: ID,
    pub important: Option<bool>,
    pub spam: Option<bool>,
}

#[derive(InputObject)]
pub struct DeleteMessageInput {
    pub message_id: ID,
}

#[derive(InputObject)]
pub struct ForwardMessageInput {
    pub message_id: ID,
    pub to_user_id: ID,
    pub comment: Option<String>,
}

#[derive(SimpleObject)]
pub struct MessagePayload {
    pub message: Message,
}

#[derive(InputObject)]
pub struct ConversationRefInput {
    pub conversation_id: ID,
}

#[derive(InputObject)]
pub struct SetConversationStatusInput {
    pub conversation_id: ID,
    pub status: ConversationStatus,
}

#[derive(InputObject)]
pub struct StarConversationInput {
    pub conversation_id: ID,
    pub starred: bool,
}

#[derive(SimpleObject)]
pub struct ConversationPayload {
    pub conversation: Conversation,
}

#[derive(InputObject)]
pub struct AddNoteInput {
    pub conversation_id: ID,
    pub body: String,
    pub parent_id: Option<ID>,
}

#[derive(InputObject)]
pub struct EditNoteInput {
    pub note_id: ID,
    pub body: String,
}

#[derive(InputObject)]
pub struct DeleteNoteInput {
    pub note_id: ID,
}

#[derive(SimpleObject)]
pub struct NotePayload {
    pub note: Note,
}

#[derive(SimpleObject)]
pub struct DeletePayload {
    pub deleted_id: ID,
}

#[derive(InputObject)]
pub struct CustomFieldInput {
    pub key: String,
    pub value: Option<Json<serde_json::Value>>,
}

#[derive(InputObject)]
pub struct UpdateContactInput {
    pub contact_id: ID,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub whatsapp: Option<String>,
    pub company: Option<String>,
    pub status: Option<ContactStatus>,
    pub add_tags: Option<Vec<String>>,
    pub remove_tags: Option<Vec<String>>,
    pub custom_fields: Option<Vec<CustomFieldInput>>,
}

#[derive(InputObject)]
pub struct AssignOwnerInput {
    pub contact_id: ID,
    pub owner_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct ContactPayload {
    pub contact: Contact,
}

#[derive(InputObject)]
pub struct DefineCustomFieldInput {
    pub key: String,
    pub label: String,
    #[graphql(name = "type")]
    pub field_type: CustomFieldType,
    pub options: Option<Vec<String>>,
}

#[derive(SimpleObject)]
pub struct CustomFieldPayload {
    pub field: CustomFieldDefinition,
}

#[derive(InputObject)]
pub struct CreateTaskInput {
    pub conversation_id: ID,
    pub title: String,
    pub description: Option<String>,
    pub due_at: Option<chrono::DateTime<chrono::Utc>>,
    pub remind_at: Option<chrono::DateTime<chrono::Utc>>,
    pub assignee_id: Option<ID>,
}

/// Fields left out stay as they are; an explicit null clears description, dueAt, remindAt or assigneeId.
#[derive(InputObject)]
pub struct UpdateTaskInput {
    pub task_id: ID,
    pub title: Option<String>,
    pub description: MaybeUndefined<String>,
    pub status: Option<TaskStatus>,
    pub due_at: MaybeUndefined<chrono::DateTime<chrono::Utc>>,
    pub remind_at: MaybeUndefined<chrono::DateTime<chrono::Utc>>,
    pub assignee_id: MaybeUndefined<ID>,
}

#[derive(SimpleObject)]
pub struct TaskPayload {
    pub task: Task,
}

#[derive(InputObject)]
pub struct DeleteTaskInput {
    pub task_id: ID,
}

#[derive(InputObject)]
pub struct CreateAppointmentInput {
    pub conversation_id: ID,
    pub title: String,
    pub starts_at: chrono::DateTime<chrono::Utc>,
    pub ends_at: chrono::DateTime<chrono::Utc>,
    pub location: Option<String>,
    pub video_url: Option<String>,
    pub agenda: Option<String>,
    pub attendees: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct UpdateAppointmentInput {
    pub appointment_id: ID,
    pub title: Option<String>,
    pub starts_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
    pub location: Option<String>,
    pub video_url: Option<String>,
    pub agenda: Option<String>,
    pub attendees: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct CancelAppointmentInput {
    pub appointment_id: ID,
}

#[derive(SimpleObject)]
pub struct AppointmentPayload {
    pub appointment: Appointment,
}

#[derive(InputObject)]
pub struct CreatePipelineInput {
    pub name: String,
    pub stages: Vec<String>,
}

#[derive(SimpleObject)]
pub struct PipelinePayload {
    pub pipeline: Pipeline,
}

#[derive(InputObject)]
pub struct CreateOpportunityInput {
    pub conversation_id: ID,
    pub name: String,
    pub pipeline_id: ID,
    pub stage_id: Option<ID>,
    pub amount_minor: Option<i32>,
    pub currency: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateOpportunityInput {
    pub opportunity_id: ID,
    pub name: Option<String>,
    pub stage_id: Option<ID>,
    pub status: Option<OpportunityStatus>,
    pub amount_minor: Option<i32>,
    pub currency: Option<String>,
}

#[derive(SimpleObject)]
pub struct OpportunityPayload {
    pub opportunity: Opportunity,
}

#[derive(InputObject)]
pub struct CreateTemplateInput {
    pub name: String,
    pub body: String,
    pub channel: Option<Channel>,
}

#[derive(SimpleObject)]
pub struct TemplatePayload {
    pub template: MessageTemplate,
}

#[derive(InputObject)]
pub struct MarkNotificationsReadInput {
    pub ids: Option<Vec<ID>>,
}

#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    pub unread_count: i32,
}

#[derive(InputObject)]
pub struct UpdateWorkspaceInput {
    pub name: Option<String>,
    pub time_zone: Option<String>,
    pub appointment_reminder_minutes: Option<Vec<i32>>,
}

#[derive(SimpleObject)]
pub struct WorkspacePayload {
    pub workspace: Workspace,
}

#[derive(InputObject)]
pub struct InstallPluginInput {
    pub name: String,
    pub wasm: Upload,
    #[graphql(default_with = "Some(true)")]
    pub enabled: Option<bool>,
    /// Overrides of the run limits, e.g. {"fuel": 100000000, "wallMs": 2000, "memoryBytes":
    /// 67108864, "hostCalls": 200, "outputBytes": 131072}; each at most its ceiling.
    pub limits: Option<async_graphql::Json<serde_json::Value>>,
}

#[derive(SimpleObject)]
pub struct PluginPayload {
    pub plugin: Plugin,
}

#[derive(InputObject)]
pub struct SetPluginEnabledInput {
    pub plugin_id: ID,
    pub enabled: bool,
}

#[derive(InputObject)]
pub struct UninstallPluginInput {
    pub plugin_id: ID,
}

fn conversation_id(id: &ID) -> Result<i64, DomainError> {
    ids::decode(id, "Conversation", "conversationId")
}

fn message_id(id: &ID) -> Result<i64, DomainError> {
    ids::decode(id, "Message", "messageId")
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Inbound message from a contact (INTEGRATION or ADMIN token). Finds or creates the contact by address (phone E.164 / email lowercased / WhatsApp id) and its one conversation. Idempotent on (channel, externalId): a repeat returns the first message with duplicate: true.
    async fn receive_message(
        &self,
        ctx: &Context<'_>,
        input: ReceiveMessageInput,
    ) -> Res<ReceiveMessagePayload> {
        let scope = ctx_scope(ctx)?;
        let r = super::ctx_state(ctx)?
            .ingest
            .receive(
                scope,
                Inbound {
                    channel: input.channel,
                    from: input.from,
                    body: input.body,
                    subject: input.subject,
                    external_id: input.external_id,
                    contact_name: input.contact_name,
                    received_at: input.received_at,
                },
            )
            .await?;
        Ok(ReceiveMessagePayload {
            message: Message(r.message),
            conversation: Conversation(r.conversation),
            contact: Contact(r.contact),
            duplicate: r.duplicate,
        })
    }

    /// Outbound message. Refused with CONTACT_DND when the contact is DND. Queued, then dispatched by the channel outbox.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> Res<SendMessagePayload> {
        let scope = ctx_scope(ctx)?;
        let template = match input.template_id {
            Some(id) => Some((
                ids::decode(&id, "MessageTemplate", "templateId")?,
                input.variables.map_or(serde_json::json!({}), |v| v.0),
            )),
            None => None,
        };
        let (message, conversation) = messages::send(
            ctx_db(ctx)?,
            scope,
            Outbound {
                conversation_id: conversation_id(&input.conversation_id)?,
                channel: input.channel,
                body: input.body,
                subject: input.subject,
                template,
            },
        )
        .await?;
        super::ctx_state(ctx)?.dispatcher.wake();
        Ok(SendMessagePayload {
            message: Message(message),
            conversation: Conversation(conversation),
        })
    }

    /// Delivery receipts: by message id or by (channel, externalId). Status never moves backwards (READ is not overwritten by a late DELIVERED).
    async fn update_message_status(
        &self,
        ctx: &Context<'_>,
        input: UpdateMessageStatusInput,
    ) -> Res<MessagePayload> {
        let scope = ctx_scope(ctx)?;
        let target = match (input.message_id, input.channel, input.external_id) {
            (Some(id), None, None) => MessageRef::Id(message_id(&id)?),
            (None, Some(channel), Some(external_id)) => MessageRef::External {
                channel,
                external_id,
            },
            _ => {
                return Err(DomainError::invalid(
                    "input",
                    "give either messageId, or channel and externalId",
                )
                .into());
            }
        };
        let m = messages::update_status(
            ctx_db(ctx)?,
            scope,
            target,
            input.status,
            input.failed_reason,
        )
        .await?;
        Ok(MessagePayload {
            message: Message(m),
        })
    }

    async fn mark_message(
        &self,
        ctx: &Context<'_>,
        input: MarkMessageInput,
    ) -> Res<MessagePayload> {
        let scope = ctx_scope(ctx)?;
        let m = messages::mark(
            ctx_db(ctx)?,
            scope,
            message_id(&input.message_id)?,
            input.important,
            input.spam,
        )
        .await?;
        Ok(MessagePayload {
            message: Message(m),
        })
    }

    /// Soft delete: hidden from timelines and search unless includeDeleted; kept for audit.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        input: DeleteMessageInput,
    ) -> Res<MessagePayload> {
        let scope = ctx_scope(ctx)?;
        let m = messages::delete(ctx_db(ctx)?, scope, message_id(&input.message_id)?).await?;
        Ok(MessagePayload {
            message: Message(m),
        })
    }

    /// Share a message with a teammate: they get a notification with an optional comment.
    async fn forward_message(
        &self,
        ctx: &Context<'_>,
        input: ForwardMessageInput,
    ) -> Res<MessagePayload> {
        let scope = ctx_scope(ctx)?;
        let to = ids::decode(&input.to_user_id, "User", "toUserId")?;
        let m = messages::forward(
            ctx_db(ctx)?,
            scope,
            message_id(&input.message_id)?,
            to,
            input.comment,
        )
        .await?;
        Ok(MessagePayload {
            message: Message(m),
        })
    }

    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        input: ConversationRefInput,
    ) -> Res<ConversationPayload> {
        let scope = ctx_scope(ctx)?;
        let c = conversations::mark_read(
            ctx_db(ctx)?,
            scope,
            conversation_id(&input.conversation_id)?,
        )
        .await?;
        Ok(ConversationPayload {
            conversation: Conversation(c),
        })
    }

    async fn mark_conversation_unread(
        &self,
        ctx: &Context<'_>,
        input: ConversationRefInput,
    ) -> Res<ConversationPayload> {
        let scope = ctx_scope(ctx)?;
        let c = conversations::mark_unread(
            ctx_db(ctx)?,
            scope,
            conversation_id(&input.conversation_id)?,
        )
        .await?;
        Ok(ConversationPayload {
            conversation: Conversation(c),
        })
    }

    async fn set_conversation_status(
        &self,
        ctx: &Context<'_>,
        input: SetConversationStatusInput,
    ) -> Res<ConversationPayload> {
        let scope = ctx_scope(ctx)?;
        let id = conversation_id(&input.conversation_id)?;
        let c = conversations::set_status(ctx_db(ctx)?, scope, id, input.status).await?;
        Ok(ConversationPayload {
            conversation: Conversation(c),
        })
    }

    async fn star_conversation(
        &self,
        ctx: &Context<'_>,
        input: StarConversationInput,
    ) -> Res<ConversationPayload> {
        let scope = ctx_scope(ctx)?;
        let id = conversation_id(&input.conversation_id)?;
        let c = conversations::star(ctx_db(ctx)?, scope, id, input.starred).await?;
        Ok(ConversationPayload {
            conversation: Conversation(c),
        })
    }

    async fn add_note(&self, ctx: &Context<'_>, input: AddNoteInput) -> Res<NotePayload> {
        let scope = ctx_scope(ctx)?;
        let conversation = conversation_id(&input.conversation_id)?;
        let parent = ids::decode_opt(input.parent_id.as_ref(), "Note", "parentId")?;
        let n = notes::add(ctx_db(ctx)?, scope, conversation, input.body, parent).await?;
        Ok(NotePayload { note: Note(n) })
    }

    async fn edit_note(&self, ctx: &Context<'_>, input: EditNoteInput) -> Res<NotePayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.note_id, "Note", "noteId")?;
        let n = notes::edit(ctx_db(ctx)?, scope, id, input.body).await?;
        Ok(NotePayload { note: Note(n) })
    }

    async fn delete_note(&self, ctx: &Context<'_>, input: DeleteNoteInput) -> Res<DeletePayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.note_id, "Note", "noteId")?;
        notes::delete(ctx_db(ctx)?, scope, id).await?;
        Ok(DeletePayload {
            deleted_id: input.note_id,
        })
    }

    async fn update_contact(
        &self,
        ctx: &Context<'_>,
        input: UpdateContactInput,
    ) -> Res<ContactPayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.contact_id, "Contact", "contactId")?;
        let update = contacts::ProfileUpdate {
            name: input.name,
            email: input.email,
            phone: input.phone,
            whatsapp: input.whatsapp,
            company: input.company,
            status: input.status,
            add_tags: input.add_tags.unwrap_or_default(),
            remove_tags: input.remove_tags.unwrap_or_default(),
            custom_fields: input
                .custom_fields
                .unwrap_or_default()
                .into_iter()
                .map(|f| (f.key, f.value.map_or(serde_json::Value::Null, |v| v.0)))
                .collect(),
        };
        let c = contacts::update(ctx_db(ctx)?, scope, id, update).await?;
        Ok(ContactPayload {
            contact: Contact(c),
        })
    }

    async fn assign_owner(
        &self,
        ctx: &Context<'_>,
        input: AssignOwnerInput,
    ) -> Res<ContactPayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.contact_id, "Contact", "contactId")?;
        let owner = ids::decode_opt(input.owner_id.as_ref(), "User", "ownerId")?;
        let c = contacts::assign_owner(ctx_db(ctx)?, scope, id, owner).await?;
        Ok(ContactPayload {
            contact: Contact(c),
        })
    }

    async fn define_custom_field(
        &self,
        ctx: &Context<'_>,
        input: DefineCustomFieldInput,
    ) -> Res<CustomFieldPayload> {
        let scope = ctx_scope(ctx)?;
        let options = input.options.unwrap_or_default();
        let f = custom_fields::define(
            ctx_db(ctx)?,
            scope,
            &input.key,
            &input.label,
            input.field_type,
            options,
        )
        .await?;
        Ok(CustomFieldPayload {
            field: CustomFieldDefinition(f),
        })
    }

    async fn create_task(&self, ctx: &Context<'_>, input: CreateTaskInput) -> Res<TaskPayload> {
        let scope = ctx_scope(ctx)?;
        let new = tasks::NewTask {
            conversation_id: conversation_id(&input.conversation_id)?,
            title: input.title,
            description: input.description,
            due_at: input.due_at,
            remind_at: input.remind_at,
            assignee_id: ids::decode_opt(input.assignee_id.as_ref(), "User", "assigneeId")?,
        };
        let t = tasks::create(ctx_db(ctx)?, scope, new).await?;
        Ok(TaskPayload { task: Task(t) })
    }

    async fn update_task(&self, ctx: &Context<'_>, input: UpdateTaskInput) -> Res<TaskPayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.task_id, "Task", "taskId")?;
        let update = tasks::TaskUpdate {
            title: input.title,
            description: input.description.into(),
            status: input.status,
            due_at: input.due_at.into(),
            remind_at: input.remind_at.into(),
            assignee_id: match input.assignee_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(ids::decode(&v, "User", "assigneeId")?)),
            },
        };
        let t = tasks::update(ctx_db(ctx)?, scope, id, update).await?;
        Ok(TaskPayload { task: Task(t) })
    }

    /// Soft delete; cancels the task's pending reminders.
    async fn delete_task(&self, ctx: &Context<'_>, input: DeleteTaskInput) -> Res<DeletePayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.task_id, "Task", "taskId")?;
        tasks::delete(ctx_db(ctx)?, scope, id).await?;
        Ok(DeletePayload {
            deleted_id: input.task_id,
        })
    }

    async fn create_appointment(
        &self,
        ctx: &Context<'_>,
        input: CreateAppointmentInput,
    ) -> Res<AppointmentPayload> {
        let scope = ctx_scope(ctx)?;
        let conversation = conversation_id(&input.conversation_id)?;
        let details = appointments::Details {
            title: Some(input.title),
            starts_at: Some(input.starts_at),
            ends_at: Some(input.ends_at),
            location: input.location,
            video_url: input.video_url,
            agenda: input.agenda,
            attendees: input.attendees,
        };
        let a = appointments::create(ctx_db(ctx)?, scope, conversation, details).await?;
        Ok(AppointmentPayload {
            appointment: Appointment(a),
        })
    }

    async fn update_appointment(
        &self,
        ctx: &Context<'_>,
        input: UpdateAppointmentInput,
    ) -> Res<AppointmentPayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.appointment_id, "Appointment", "appointmentId")?;
        let details = appointments::Details {
            title: input.title,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            location: input.location,
            video_url: input.video_url,
            agenda: input.agenda,
            attendees: input.attendees,
        };
        let a = appointments::update(ctx_db(ctx)?, scope, id, details).await?;
        Ok(AppointmentPayload {
            appointment: Appointment(a),
        })
    }

    async fn cancel_appointment(
        &self,
        ctx: &Context<'_>,
        input: CancelAppointmentInput,
    ) -> Res<AppointmentPayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.appointment_id, "Appointment", "appointmentId")?;
        let a = appointments::cancel(ctx_db(ctx)?, scope, id).await?;
        Ok(AppointmentPayload {
            appointment: Appointment(a),
        })
    }

    async fn create_pipeline(
        &self,
        ctx: &Context<'_>,
        input: CreatePipelineInput,
    ) -> Res<PipelinePayload> {
        let scope = ctx_scope(ctx)?;
        let p =
            opportunities::create_pipeline(ctx_db(ctx)?, scope, &input.name, input.stages).await?;
        Ok(PipelinePayload {
            pipeline: Pipeline(p),
        })
    }

    async fn create_opportunity(
        &self,
        ctx: &Context<'_>,
        input: CreateOpportunityInput,
    ) -> Res<OpportunityPayload> {
        let scope = ctx_scope(ctx)?;
        let new = opportunities::NewOpportunity {
            conversation_id: conversation_id(&input.conversation_id)?,
            name: input.name,
            pipeline_id: ids::decode(&input.pipeline_id, "Pipeline", "pipelineId")?,
            stage_id: ids::decode_opt(input.stage_id.as_ref(), "Stage", "stageId")?,
            amount_minor: input.amount_minor.map(i64::from),
            currency: input.currency,
        };
        let o = opportunities::create(ctx_db(ctx)?, scope, new).await?;
        Ok(OpportunityPayload {
            opportunity: Opportunity(o),
        })
    }

    async fn update_opportunity(
        &self,
        ctx: &Context<'_>,
        input: UpdateOpportunityInput,
    ) -> Res<OpportunityPayload> {
        let scope = ctx_scope(ctx)?;
        let id = ids::decode(&input.opportunity_id, "Opportunity", "opportunityId")?;
        let update = opportunities::OpportunityUpdate {
            name: input.name,
            stage_id: ids::decode_opt(input.stage_id.as_ref(), "Stage", "stageId")?,
            status: input.status,
            amount_minor: input.amount_minor.map(i64::from),
            currency: input.currency,
        };
        let o = opportunities::update(ctx_db(ctx)?, scope, id, update).await?;
        Ok(OpportunityPayload {
            opportunity: Opportunity(o),
        })
    }

    async fn create_template(
        &self,
        ctx: &Context<'_>,
        input: CreateTemplateInput,
    ) -> Res<TemplatePayload> {
        let scope = ctx_scope(ctx)?;
        let t =
            templates::create(ctx_db(ctx)?, scope, &input.name, &input.body, input.channel).await?;
        Ok(TemplatePayload {
            template: MessageTemplate(t),
        })
    }

    /// Marks the given notifications read, or all of the caller's when ids is omitted.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        input: MarkNotificationsReadInput,
    ) -> Res<MarkNotificationsReadPayload> {
        let scope = ctx_scope(ctx)?;
        let ids = input
            .ids
            .map(|ids| {
                ids.iter()
                    .map(|id| ids::decode(id, "Notification", "ids"))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let unread = notifications::mark_read(ctx_db(ctx)?, scope, ids).await?;
        Ok(MarkNotificationsReadPayload {
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
        })
    }

    /// ADMIN only.
    async fn update_workspace(
        &self,
        ctx: &Context<'_>,
        input: UpdateWorkspaceInput,
    ) -> Res<WorkspacePayload> {
        let scope = ctx_scope(ctx)?;
        let w = workspaces::update(
            ctx_db(ctx)?,
            scope,
            input.name,
            input.time_zone,
            input.appointment_reminder_minutes,
        )
        .await?;
        Ok(WorkspacePayload {
            workspace: Workspace(w),
        })
    }

    /// Validates the component (world, declared events and schedules) and precompiles it before it is stored; a bad upload is PLUGIN_INVALID and stores nothing.
    async fn install_plugin(
        &self,
        ctx: &Context<'_>,
        input: InstallPluginInput,
    ) -> Res<PluginPayload> {
        let scope = ctx_scope(ctx)?;
        scope.require_role(&[crate::domain::Role::Admin], "install plugins")?;
        let upload = input
            .wasm
            .value(ctx)
            .map_err(|_| DomainError::invalid("wasm", "the upload could not be read"))?;
        let mut wasm = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                upload.into_read(),
                crate::domain::plugins::MAX_UPLOAD_BYTES as u64 + 1,
            ),
            &mut wasm,
        )
        .map_err(|_| DomainError::invalid("wasm", "the upload could not be read"))?;
        let limits = input
            .limits
            .map(|l| serde_json::from_value(l.0))
            .transpose()
            .map_err(|e| DomainError::invalid("limits", e.to_string()))?;
        let install = crate::domain::plugins::Install {
            name: Some(input.name),
            wasm,
            enabled: input.enabled.unwrap_or(true),
            limits,
        };
        let state = ctx_state(ctx)?;
        let p = crate::domain::plugins::install(&state.db, &state.plugins, scope, install).await?;
        Ok(PluginPayload { plugin: Plugin(p) })
    }

    async fn set_plugin_enabled(
        &self,
        ctx: &Context<'_>,
        input: SetPluginEnabledInput,
    ) -> Res<PluginPayload> {
        let id = ids::decode(&input.plugin_id, "Plugin", "pluginId")?;
        let p =
            crate::domain::plugins::set_enabled(ctx_db(ctx)?, ctx_scope(ctx)?, id, input.enabled)
                .await?;
        Ok(PluginPayload { plugin: Plugin(p) })
    }

    async fn uninstall_plugin(
        &self,
        ctx: &Context<'_>,
        input: UninstallPluginInput,
    ) -> Res<DeletePayload> {
        let id = ids::decode(&input.plugin_id, "Plugin", "pluginId")?;
        let id = crate::domain::plugins::uninstall(ctx_db(ctx)?, ctx_scope(ctx)?, id).await?;
        Ok(DeletePayload {
            deleted_id: ids::encode("Plugin", id),
        })
    }
}
