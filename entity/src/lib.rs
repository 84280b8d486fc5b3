//! Confab's sea-orm entities: one module per table, and the positional row decoder they share.

pub mod positional;

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

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, IdenStatic, Iterable};

    use crate::positional::Positional;
    use crate::*;

    fn columns<E: EntityTrait>() -> Vec<&'static str> {
        E::Column::iter().map(|c| c.as_str()).collect()
    }

    /// Rows are decoded by position: each model's fields must be its entity's columns, in
    /// the order `Entity::find()` selects them.
    #[test]
    fn every_model_reads_its_columns_in_select_order() {
        assert_eq!(
            <activity::Model as Positional>::COLUMNS,
            columns::<activity::Entity>(),
            "activity"
        );
        assert_eq!(
            <api_token::Model as Positional>::COLUMNS,
            columns::<api_token::Entity>(),
            "api_token"
        );
        assert_eq!(
            <appointment::Model as Positional>::COLUMNS,
            columns::<appointment::Entity>(),
            "appointment"
        );
        assert_eq!(
            <contact::Model as Positional>::COLUMNS,
            columns::<contact::Entity>(),
            "contact"
        );
        assert_eq!(
            <contact_identity::Model as Positional>::COLUMNS,
            columns::<contact_identity::Entity>(),
            "contact_identity"
        );
        assert_eq!(
            <contact_tag::Model as Positional>::COLUMNS,
            columns::<contact_tag::Entity>(),
            "contact_tag"
        );
        assert_eq!(
            <conversation::Model as Positional>::COLUMNS,
            columns::<conversation::Entity>(),
            "conversation"
        );
        assert_eq!(
            <custom_field_definition::Model as Positional>::COLUMNS,
            columns::<custom_field_definition::Entity>(),
            "custom_field_definition"
        );
        assert_eq!(
            <custom_field_value::Model as Positional>::COLUMNS,
            columns::<custom_field_value::Entity>(),
            "custom_field_value"
        );
        assert_eq!(
            <job::Model as Positional>::COLUMNS,
            columns::<job::Entity>(),
            "job"
        );
        assert_eq!(
            <message::Model as Positional>::COLUMNS,
            columns::<message::Entity>(),
            "message"
        );
        assert_eq!(
            <message_template::Model as Positional>::COLUMNS,
            columns::<message_template::Entity>(),
            "message_template"
        );
        assert_eq!(
            <note::Model as Positional>::COLUMNS,
            columns::<note::Entity>(),
            "note"
        );
        assert_eq!(
            <note_mention::Model as Positional>::COLUMNS,
            columns::<note_mention::Entity>(),
            "note_mention"
        );
        assert_eq!(
            <notification::Model as Positional>::COLUMNS,
            columns::<notification::Entity>(),
            "notification"
        );
        assert_eq!(
            <opportunity::Model as Positional>::COLUMNS,
            columns::<opportunity::Entity>(),
            "opportunity"
        );
        assert_eq!(
            <outbox::Model as Positional>::COLUMNS,
            columns::<outbox::Entity>(),
            "outbox"
        );
        assert_eq!(
            <pipeline::Model as Positional>::COLUMNS,
            columns::<pipeline::Entity>(),
            "pipeline"
        );
        assert_eq!(
            <plugin::Model as Positional>::COLUMNS,
            columns::<plugin::Entity>(),
            "plugin"
        );
        assert_eq!(
            <plugin_artifact::Model as Positional>::COLUMNS,
            columns::<plugin_artifact::Entity>(),
            "plugin_artifact"
        );
        assert_eq!(
            <plugin_run::Model as Positional>::COLUMNS,
            columns::<plugin_run::Entity>(),
            "plugin_run"
        );
        assert_eq!(
            <stage::Model as Positional>::COLUMNS,
            columns::<stage::Entity>(),
            "stage"
        );
        assert_eq!(
            <tag::Model as Positional>::COLUMNS,
            columns::<tag::Entity>(),
            "tag"
        );
        assert_eq!(
            <task::Model as Positional>::COLUMNS,
            columns::<task::Entity>(),
            "task"
        );
        assert_eq!(
            <user::Model as Positional>::COLUMNS,
            columns::<user::Entity>(),
            "user"
        );
        assert_eq!(
            <workspace::Model as Positional>::COLUMNS,
            columns::<workspace::Entity>(),
            "workspace"
        );
    }
}
