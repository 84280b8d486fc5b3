//! The `conversations` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversations")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub contact_id: i64,
        pub status: String,
        pub starred: bool,
        pub unread_count: i32,
        pub last_message_at: Option<DateTimeUtc>,
        pub last_message_id: Option<i64>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
