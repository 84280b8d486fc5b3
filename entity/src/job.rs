//! The `jobs` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "jobs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub kind: String,
        pub unique_key: String,
        pub payload: Json,
        pub status: String,
        pub due_at: DateTimeUtc,
        pub attempts: i32,
        pub max_attempts: i32,
        pub last_error: Option<String>,
        pub locked_by: Option<String>,
        pub locked_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub finished_at: Option<DateTimeUtc>,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
