//! The `messages` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub conversation_id: i64,
        pub channel: String,
        pub direction: String,
        pub status: String,
        pub subject: Option<String>,
        pub body: String,
        pub sender_id: Option<i64>,
        pub important: bool,
        pub spam: bool,
        pub external_id: Option<String>,
        pub failed_reason: Option<String>,
        pub created_at: DateTimeUtc,
        pub sent_at: Option<DateTimeUtc>,
        pub delivered_at: Option<DateTimeUtc>,
        pub read_at: Option<DateTimeUtc>,
        pub deleted_at: Option<DateTimeUtc>,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
