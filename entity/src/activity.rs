//! The `activities` table.
use sea_orm::entity::prelude::*;

crate::positional::model! {
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "activities")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub workspace_id: i64,
        pub conversation_id: Option<i64>,
        pub kind: String,
        pub actor_kind: String,
        pub actor_user_id: Option<i64>,
        pub actor_plugin_id: Option<i64>,
        pub actor_label: String,
        pub summary: String,
        pub data: Json,
        pub occurred_at: DateTimeUtc,
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
