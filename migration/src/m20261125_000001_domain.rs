//! The whole domain's tables: every row carries its workspace; indexes serve the inbox,
//! the timeline and the scheduler; unique keys make inbound idempotent and identities single.
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_domain"
    }
}

fn table(name: &'static str) -> TableCreateStatement {
    Table::create().table(name).take()
}

fn id() -> ColumnDef {
    big_pk_auto("id")
}

fn workspace_ref(t: &mut TableCreateStatement, table_name: &'static str) {
    t.col(big_integer("workspace_id"));
    reference(t, table_name, "workspace_id", "workspaces", true);
}

/// A foreign key; `cascade` deletes children with their parent, otherwise the reference is nulled.
fn reference(
    t: &mut TableCreateStatement,
    from_table: &'static str,
    column: &'static str,
    to_table: &'static str,
    cascade: bool,
) {
    t.foreign_key(
        ForeignKey::create()
            .from(from_table, column)
            .to(to_table, "id")
            .on_delete(if cascade {
                ForeignKeyAction::Cascade
            } else {
                ForeignKeyAction::SetNull
            }),
    );
}

fn index(name: &'static str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut i = Index::create().name(name).table(table).take();
    for c in cols {
        i.col(*c);
    }
    i
}

fn tables() -> Vec<TableCreateStatement> {
    let mut out = Vec::new();

    let mut t = table("workspaces");
    t.col(id())
        .col(string_uniq("name"))
        .col(string("time_zone").default("UTC"))
        .col(json("appointment_reminder_minutes"))
        .col(timestamp_with_time_zone("created_at"));
    out.push(t);

    let mut t = table("users");
    t.col(id());
    workspace_ref(&mut t, "users");
    t.col(string("email"))
        .col(string("name"))
        .col(string("handle"))
        .col(string("role"))
        .col(timestamp_with_time_zone("created_at"));
    out.push(t);

    let mut t = table("api_tokens");
    t.col(id());
    workspace_ref(&mut t, "api_tokens");
    t.col(big_integer("user_id"))
        .col(string_uniq("token_hash"))
        .col(string_null("label"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone_null("revoked_at"));
    reference(&mut t, "api_tokens", "user_id", "users", true);
    out.push(t);

    let mut t = table("contacts");
    t.col(id());
    workspace_ref(&mut t, "contacts");
    t.col(string_null("name"))
        .col(string_null("email"))
        .col(string_null("phone"))
        .col(string_null("whatsapp"))
        .col(string_null("company"))
        .col(string("status"))
        .col(big_integer_null("owner_id"))
        .col(timestamp_with_time_zone_null("last_activity_at"))
        .col(integer("inbound_count").default(0))
        .col(integer("outbound_count").default(0))
        .col(timestamp_with_time_zone_null("last_inbound_at"))
        .col(timestamp_with_time_zone_null("last_outbound_at"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"));
    reference(&mut t, "contacts", "owner_id", "users", false);
    out.push(t);

    // One row per address a contact is reached at; the unique key keeps one contact per identity.
    let mut t = table("contact_identities");
    t.col(id());
    workspace_ref(&mut t, "contact_identities");
    t.col(big_integer("contact_id"))
        .col(string("kind"))
        .col(string("value"))
        .col(timestamp_with_time_zone("created_at"));
    reference(&mut t, "contact_identities", "contact_id", "contacts", true);
    out.push(t);

    let mut t = table("conversations");
    t.col(id());
    workspace_ref(&mut t, "conversations");
    t.col(big_integer_uniq("contact_id"))
        .col(string("status"))
        .col(boolean("starred").default(false))
        .col(integer("unread_count").default(0))
        .col(timestamp_with_time_zone_null("last_message_at"))
        .col(big_integer_null("last_message_id"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"));
    reference(&mut t, "conversations", "contact_id", "contacts", true);
    out.push(t);

    let mut t = table("messages");
    t.col(id());
    workspace_ref(&mut t, "messages");
    t.col(big_integer("conversation_id"))
        .col(string("channel"))
        .col(string("direction"))
        .col(string("status"))
        .col(text_null("subject"))
        .col(text("body"))
        .col(big_integer_null("sender_id"))
        .col(boolean("important").default(false))
        .col(boolean("spam").default(false))
        .col(string_null("external_id"))
        .col(text_null("failed_reason"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone_null("sent_at"))
        .col(timestamp_with_time_zone_null("delivered_at"))
        .col(timestamp_with_time_zone_null("read_at"))
        .col(timestamp_with_time_zone_null("deleted_at"));
    reference(&mut t, "messages", "conversation_id", "conversations", true);
    reference(&mut t, "messages", "sender_id", "users", false);
    out.push(t);

    let mut t = table("notes");
    t.col(id());
    workspace_ref(&mut t, "notes");
    t.col(big_integer("conversation_id"))
        .col(big_integer("author_id"))
        .col(big_integer_null("parent_id"))
        .col(text("body"))
        .col(text("body_html"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone_null("edited_at"))
        .col(timestamp_with_time_zone_null("deleted_at"));
    reference(&mut t, "notes", "conversation_id", "conversations", true);
    reference(&mut t, "notes", "author_id", "users", true);
    reference(&mut t, "notes", "parent_id", "notes", true);
    out.push(t);

    let mut t = table("note_mentions");
    t.col(id());
    workspace_ref(&mut t, "note_mentions");
    t.col(big_integer("note_id")).col(big_integer("user_id"));
    reference(&mut t, "note_mentions", "note_id", "notes", true);
    reference(&mut t, "note_mentions", "user_id", "users", true);
    out.push(t);

    let mut t = table("plugins");
    t.col(id());
    workspace_ref(&mut t, "plugins");
    t.col(string("name"))
        .col(string("version"))
        .col(boolean("enabled"))
        .col(json("events"))
        .col(json("schedules"))
        .col(string("sha256"))
        .col(blob("wasm"))
        .col(json("limits"))
        .col(integer("consecutive_failures").default(0))
        .col(text_null("disabled_reason"))
        .col(timestamp_with_time_zone("installed_at"))
        .col(timestamp_with_time_zone_null("uninstalled_at"));
    out.push(t);

    let mut t = table("plugin_runs");
    t.col(id());
    workspace_ref(&mut t, "plugin_runs");
    t.col(big_integer("plugin_id"))
        .col(string("trigger"))
        .col(string("outcome"))
        .col(text_null("error"))
        .col(text_null("output"))
        .col(timestamp_with_time_zone("started_at"))
        .col(big_integer("duration_micros"))
        .col(integer("actions"));
    reference(&mut t, "plugin_runs", "plugin_id", "plugins", true);
    out.push(t);

    let mut t = table("tasks");
    t.col(id());
    workspace_ref(&mut t, "tasks");
    t.col(big_integer("conversation_id"))
        .col(string("title"))
        .col(text_null("description"))
        .col(string("status"))
        .col(timestamp_with_time_zone_null("due_at"))
        .col(timestamp_with_time_zone_null("remind_at"))
        .col(big_integer_null("assignee_id"))
        .col(big_integer_null("created_by_id"))
        .col(boolean("auto_created").default(false))
        .col(big_integer_null("plugin_id"))
        .col(timestamp_with_time_zone_null("completed_at"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"))
        .col(timestamp_with_time_zone_null("deleted_at"));
    reference(&mut t, "tasks", "conversation_id", "conversations", true);
    reference(&mut t, "tasks", "assignee_id", "users", false);
    reference(&mut t, "tasks", "created_by_id", "users", false);
    reference(&mut t, "tasks", "plugin_id", "plugins", false);
    out.push(t);

    let mut t = table("appointments");
    t.col(id());
    workspace_ref(&mut t, "appointments");
    t.col(big_integer("conversation_id"))
        .col(string("title"))
        .col(timestamp_with_time_zone("starts_at"))
        .col(timestamp_with_time_zone("ends_at"))
        .col(string_null("location"))
        .col(string_null("video_url"))
        .col(text_null("agenda"))
        .col(big_integer_null("organizer_id"))
        .col(json("attendees"))
        .col(string("status"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"));
    reference(
        &mut t,
        "appointments",
        "conversation_id",
        "conversations",
        true,
    );
    reference(&mut t, "appointments", "organizer_id", "users", false);
    out.push(t);

    let mut t = table("pipelines");
    t.col(id());
    workspace_ref(&mut t, "pipelines");
    t.col(string("name"))
        .col(timestamp_with_time_zone("created_at"));
    out.push(t);

    let mut t = table("stages");
    t.col(id());
    workspace_ref(&mut t, "stages");
    t.col(big_integer("pipeline_id"))
        .col(string("name"))
        .col(integer("position"));
    reference(&mut t, "stages", "pipeline_id", "pipelines", true);
    out.push(t);

    let mut t = table("opportunities");
    t.col(id());
    workspace_ref(&mut t, "opportunities");
    t.col(big_integer("conversation_id"))
        .col(big_integer("pipeline_id"))
        .col(big_integer("stage_id"))
        .col(string("name"))
        .col(big_integer_null("amount_minor"))
        .col(string_null("currency"))
        .col(string("status"))
        .col(big_integer_null("owner_id"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"));
    reference(
        &mut t,
        "opportunities",
        "conversation_id",
        "conversations",
        true,
    );
    reference(&mut t, "opportunities", "pipeline_id", "pipelines", true);
    reference(&mut t, "opportunities", "stage_id", "stages", true);
    reference(&mut t, "opportunities", "owner_id", "users", false);
    out.push(t);

    let mut t = table("custom_field_definitions");
    t.col(id());
    workspace_ref(&mut t, "custom_field_definitions");
    t.col(string("key"))
        .col(string("label"))
        .col(string("field_type"))
        .col(json("options"))
        .col(timestamp_with_time_zone("created_at"));
    out.push(t);

    let mut t = table("custom_field_values");
    t.col(id());
    workspace_ref(&mut t, "custom_field_values");
    t.col(big_integer("contact_id"))
        .col(big_integer("definition_id"))
        .col(json("value"))
        .col(timestamp_with_time_zone("updated_at"));
    reference(
        &mut t,
        "custom_field_values",
        "contact_id",
        "contacts",
        true,
    );
    reference(
        &mut t,
        "custom_field_values",
        "definition_id",
        "custom_field_definitions",
        true,
    );
    out.push(t);

    let mut t = table("tags");
    t.col(id());
    workspace_ref(&mut t, "tags");
    t.col(string("name"))
        .col(timestamp_with_time_zone("created_at"));
    out.push(t);

    let mut t = table("contact_tags");
    t.col(id());
    workspace_ref(&mut t, "contact_tags");
    t.col(big_integer("contact_id")).col(big_integer("tag_id"));
    reference(&mut t, "contact_tags", "contact_id", "contacts", true);
    reference(&mut t, "contact_tags", "tag_id", "tags", true);
    out.push(t);

    let mut t = table("message_templates");
    t.col(id());
    workspace_ref(&mut t, "message_templates");
    t.col(string("name"))
        .col(string_null("channel"))
        .col(text("body"))
        .col(json("variables"))
        .col(timestamp_with_time_zone("created_at"));
    out.push(t);

    let mut t = table("activities");
    t.col(id());
    workspace_ref(&mut t, "activities");
    t.col(big_integer_null("conversation_id"))
        .col(string("kind"))
        .col(string("actor_kind"))
        .col(big_integer_null("actor_user_id"))
        .col(big_integer_null("actor_plugin_id"))
        .col(string("actor_label"))
        .col(text("summary"))
        .col(json("data"))
        .col(timestamp_with_time_zone("occurred_at"));
    reference(
        &mut t,
        "activities",
        "conversation_id",
        "conversations",
        true,
    );
    reference(&mut t, "activities", "actor_user_id", "users", false);
    reference(&mut t, "activities", "actor_plugin_id", "plugins", false);
    out.push(t);

    let mut t = table("jobs");
    t.col(id());
    workspace_ref(&mut t, "jobs");
    t.col(string("kind"))
        .col(string_uniq("unique_key"))
        .col(json("payload"))
        .col(string("status"))
        .col(timestamp_with_time_zone("due_at"))
        .col(integer("attempts").default(0))
        .col(integer("max_attempts"))
        .col(text_null("last_error"))
        .col(string_null("locked_by"))
        .col(timestamp_with_time_zone_null("locked_until"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone_null("finished_at"));
    out.push(t);

    let mut t = table("notifications");
    t.col(id());
    workspace_ref(&mut t, "notifications");
    t.col(big_integer("user_id"))
        .col(string("kind"))
        .col(text("text"))
        .col(big_integer_null("conversation_id"))
        .col(big_integer_null("note_id"))
        .col(big_integer_null("task_id"))
        .col(big_integer_null("message_id"))
        .col(big_integer_null("appointment_id"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone_null("read_at"));
    reference(&mut t, "notifications", "user_id", "users", true);
    reference(
        &mut t,
        "notifications",
        "conversation_id",
        "conversations",
        true,
    );
    out.push(t);

    // Outbound messages waiting for their channel adapter; written with the message, in one transaction.
    let mut t = table("outbox");
    t.col(id());
    workspace_ref(&mut t, "outbox");
    t.col(big_integer("message_id"))
        .col(string("channel"))
        .col(string("status"))
        .col(integer("attempts").default(0))
        .col(timestamp_with_time_zone("next_attempt_at"))
        .col(text_null("last_error"))
        .col(string_null("locked_by"))
        .col(timestamp_with_time_zone_null("locked_until"))
        .col(timestamp_with_time_zone("created_at"))
        .col(timestamp_with_time_zone("updated_at"));
    reference(&mut t, "outbox", "message_id", "messages", true);
    out.push(t);

    out
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        index("uq_users_email", "users", &["workspace_id", "email"])
            .unique()
            .take(),
        index("uq_users_handle", "users", &["workspace_id", "handle"])
            .unique()
            .take(),
        index("idx_api_tokens_user", "api_tokens", &["user_id"]),
        index(
            "idx_contacts_inbox",
            "contacts",
            &["workspace_id", "status"],
        ),
        index(
            "idx_contacts_owner",
            "contacts",
            &["workspace_id", "owner_id"],
        ),
        index(
            "uq_contact_identities",
            "contact_identities",
            &["workspace_id", "kind", "value"],
        )
        .unique()
        .take(),
        index(
            "idx_contact_identities_contact",
            "contact_identities",
            &["contact_id"],
        ),
        index(
            "idx_conversations_inbox",
            "conversations",
            &["workspace_id", "status", "last_message_at", "id"],
        ),
        index(
            "idx_conversations_recent",
            "conversations",
            &["workspace_id", "last_message_at", "id"],
        ),
        index(
            "idx_conversations_starred",
            "conversations",
            &["workspace_id", "starred", "last_message_at"],
        ),
        index(
            "idx_conversations_unread",
            "conversations",
            &["workspace_id", "unread_count", "last_message_at"],
        ),
        index(
            "uq_messages_external",
            "messages",
            &["workspace_id", "channel", "external_id"],
        )
        .unique()
        .take(),
        index(
            "idx_messages_timeline",
            "messages",
            &["conversation_id", "created_at", "id"],
        ),
        index(
            "idx_messages_channel",
            "messages",
            &["conversation_id", "channel"],
        ),
        index(
            "idx_notes_conversation",
            "notes",
            &["conversation_id", "parent_id", "id"],
        ),
        index("idx_note_mentions_note", "note_mentions", &["note_id"]),
        index(
            "idx_tasks_conversation",
            "tasks",
            &["conversation_id", "status"],
        ),
        index(
            "idx_tasks_assignee",
            "tasks",
            &["workspace_id", "assignee_id", "status", "due_at"],
        ),
        index(
            "idx_appointments_conversation",
            "appointments",
            &["conversation_id", "starts_at"],
        ),
        index(
            "idx_stages_pipeline",
            "stages",
            &["pipeline_id", "position"],
        ),
        index(
            "idx_opportunities_conversation",
            "opportunities",
            &["conversation_id", "status"],
        ),
        index(
            "uq_custom_field_definitions",
            "custom_field_definitions",
            &["workspace_id", "key"],
        )
        .unique()
        .take(),
        index(
            "uq_custom_field_values",
            "custom_field_values",
            &["contact_id", "definition_id"],
        )
        .unique()
        .take(),
        index("uq_tags", "tags", &["workspace_id", "name"])
            .unique()
            .take(),
        index("uq_contact_tags", "contact_tags", &["contact_id", "tag_id"])
            .unique()
            .take(),
        index("idx_contact_tags_tag", "contact_tags", &["tag_id"]),
        index(
            "uq_message_templates",
            "message_templates",
            &["workspace_id", "name"],
        )
        .unique()
        .take(),
        index(
            "idx_activities_conversation",
            "activities",
            &["conversation_id", "id"],
        ),
        index(
            "idx_activities_workspace",
            "activities",
            &["workspace_id", "id"],
        ),
        index(
            "idx_plugins_workspace",
            "plugins",
            &["workspace_id", "enabled"],
        ),
        index(
            "idx_plugin_runs_plugin",
            "plugin_runs",
            &["plugin_id", "id"],
        ),
        index("idx_jobs_due", "jobs", &["status", "due_at"]),
        index(
            "idx_jobs_workspace",
            "jobs",
            &["workspace_id", "status", "due_at"],
        ),
        index(
            "idx_notifications_user",
            "notifications",
            &["user_id", "read_at", "id"],
        ),
        index("idx_outbox_due", "outbox", &["status", "next_attempt_at"]),
    ]
}

const DROP_ORDER: &[&str] = &[
    "outbox",
    "notifications",
    "jobs",
    "activities",
    "message_templates",
    "contact_tags",
    "tags",
    "custom_field_values",
    "custom_field_definitions",
    "opportunities",
    "stages",
    "pipelines",
    "appointments",
    "tasks",
    "plugin_runs",
    "plugins",
    "note_mentions",
    "notes",
    "messages",
    "conversations",
    "contact_identities",
    "contacts",
    "api_tokens",
    "users",
    "workspaces",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in tables() {
            manager.create_table(t).await?;
        }
        for i in indexes() {
            manager.create_index(i).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in DROP_ORDER {
            manager
                .drop_table(Table::drop().table(*name).to_owned())
                .await?;
        }
        Ok(())
    }
}
