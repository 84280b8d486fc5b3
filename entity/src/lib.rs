//! Confab's sea-orm entities: one module per table, nothing else.

pub mod activity;
pub mod api_token;
pub mod appointment;
pub mod contact;
pub mod contact_identity;
pub mod contact_tag;
pub mod conversation;
pub mod custom_field_definition;
pub mod custom_field_value;
pub mod job;
pub mod message;
pub mod message_template;
pub mod note;
pub mod note_mention;
pub mod notification;
pub mod opportunity;
pub mod outbox;
pub mod pipeline;
pub mod plugin;
pub mod plugin_artifact;
pub mod plugin_run;
pub mod stage;
pub mod tag;
pub mod task;
pub mod user;
pub mod workspace;
