//! The `contacts` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "contacts")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub name: Option<String>,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub whatsapp: Option<String>,
        pub company: Option<String>,
        pub status: String,
        pub owner_id: Option<i64>,
        pub last_activity_at: Option<DateTimeUtc>,
        pub inbound_count: i32,
        pub outbound_count: i32,
        pub last_inbound_at: Option<DateTimeUtc>,
        pub last_outbound_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
