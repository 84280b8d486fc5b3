//! The `notes` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "notes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub conversation_id: i64,
        pub author_id: i64,
        pub parent_id: Option<i64>,
        pub body: String,
        pub body_html: String,
        pub created_at: DateTimeUtc,
        pub edited_at: Option<DateTimeUtc>,
        pub deleted_at: Option<DateTimeUtc>,
        /// The plugin that wrote it (its author is then the admin who installed the plugin).
        pub plugin_id: Option<i64>,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
