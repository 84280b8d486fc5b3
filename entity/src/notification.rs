//! The `notifications` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "notifications")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub user_id: i64,
        pub kind: String,
        pub text: String,
        pub conversation_id: Option<i64>,
        pub note_id: Option<i64>,
        pub task_id: Option<i64>,
        pub message_id: Option<i64>,
        pub appointment_id: Option<i64>,
        pub created_at: DateTimeUtc,
        pub read_at: Option<DateTimeUtc>,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
