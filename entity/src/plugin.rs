//! The `plugins` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "plugins")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub name: String,
        pub version: String,
        pub enabled: bool,
        pub events: Json,
        pub schedules: Json,
        pub sha256: String,
        pub wasm: Vec<u8>,
        pub limits: Json,
        pub consecutive_failures: i32,
        pub disabled_reason: Option<String>,
        pub installed_at: DateTimeUtc,
        pub uninstalled_at: Option<DateTimeUtc>,
        pub installed_by_id: Option<i64>,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
