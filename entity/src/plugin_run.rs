//! The `plugin_runs` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "plugin_runs")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub plugin_id: i64,
        pub trigger: String,
        pub outcome: String,
        pub error: Option<String>,
        pub output: Option<String>,
        pub started_at: DateTimeUtc,
        pub duration_micros: i64,
        /// The part of `duration_micros` spent in host lookups.
        pub host_micros: i64,
        pub actions: i32,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
