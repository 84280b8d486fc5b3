//! The `tasks` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "tasks")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub conversation_id: i64,
        pub title: String,
        pub description: Option<String>,
        pub status: String,
        pub due_at: Option<DateTimeUtc>,
        pub remind_at: Option<DateTimeUtc>,
        pub assignee_id: Option<i64>,
        pub created_by_id: Option<i64>,
        pub auto_created: bool,
        pub plugin_id: Option<i64>,
        pub completed_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub deleted_at: Option<DateTimeUtc>,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
