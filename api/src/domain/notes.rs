//! Notes: the team's private Markdown beside a conversation, never sent to the contact.
//! Mentions notify teammates; replies hang one level under their root note.
use std::collections::BTreeSet;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, Set,
};
use serde_json::json;

use entity::positional::SelectRows;
use entity::{note, note_mention, user};

use crate::db::begin_write;
use crate::domain::activities;
use crate::domain::notifications::{self, About};
use crate::domain::scoped;
use crate::domain::{ActivityKind, NotificationKind, Role, Scope, conversations, now};
use crate::error::{DomainError, DomainResult};

pub const MAX_NOTE_BYTES: usize = 32 * 1024;

/// Markdown to HTML that is safe to put in a page: no script, no event handlers, no
/// `javascript:` links (ammonia's allow-list), links opened with `rel="noopener noreferrer"`.
pub fn render(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(
        markdown,
        pulldown_cmark::Options::ENABLE_STRIKETHROUGH | pulldown_cmark::Options::ENABLE_TABLES,
    );
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto", "tel"].into())
        .clean(&html)
        .to_string()
}

/// `@handle` and `@email` tokens, lower-cased, in order of appearance, without duplicates.
pub fn mention_tokens(markdown: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let chars: Vec<char> = markdown.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts =
            chars[i] == '@' && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '.'));
        if starts {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || "._+-@".contains(chars[j])) {
                j += 1;
            }
            let token: String = chars[i + 1..j]
                .iter()
                .collect::<String>()
                .trim_end_matches(['.', '-'])
                .to_lowercase();
            if !token.is_empty() && seen.insert(token.clone()) {
                out.push(token);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

/// Teammates of the workspace named by the note's mentions (by handle or email).
async fn mentioned_users(
    txn: &DatabaseTransaction,
    scope: &Scope,
    body: &str,
) -> DomainResult<Vec<user::Model>> {
    let tokens = mention_tokens(body);
    if tokens.is_empty() {
        return Ok(Vec::new());
    }
    let users = user::Entity::find()
        .filter(user::Column::WorkspaceId.eq(scope.workspace_id))
        .filter(user::Column::Role.ne(Role::Integration.as_str()))
        .filter(
            sea_orm::Condition::any()
                .add(user::Column::Handle.is_in(tokens.clone()))
                .add(user::Column::Email.is_in(tokens.clone())),
        )
        .rows(txn)
        .await?;
    let mut ordered: Vec<user::Model> = Vec::new();
    for t in &tokens {
        if let Some(u) = users.iter().find(|u| {
            (&u.handle.to_lowercase() == t || &u.email == t)
                && !ordered.iter().any(|o| o.id == u.id)
        }) {
            ordered.push(u.clone());
        }
    }
    Ok(ordered)
}

fn check_body(body: &str) -> DomainResult<()> {
    if body.trim().is_empty() {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    if body.len() > MAX_NOTE_BYTES {
        return Err(DomainError::invalid(
            "body",
            format!("at most {MAX_NOTE_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Stores the mention rows and tells each newly mentioned teammate (never the author).
async fn mention(
    txn: &DatabaseTransaction,
    scope: &Scope,
    note: &note::Model,
    users: &[user::Model],
    already: &[i64],
) -> DomainResult<()> {
    note_mention::Entity::delete_many()
        .filter(note_mention::Column::NoteId.eq(note.id))
        .exec(txn)
        .await?;
    for u in users {
        note_mention::ActiveModel {
            workspace_id: Set(scope.workspace_id),
            note_id: Set(note.id),
            user_id: Set(u.id),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        if u.id != note.author_id && !already.contains(&u.id) {
            notifications::notify(
                txn,
                scope.workspace_id,
                u.id,
                NotificationKind::Mention,
                format!("{} mentioned you in a note", scope.label),
                About {
                    conversation_id: Some(note.conversation_id),
                    note_id: Some(note.id),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    Ok(())
}

pub async fn add(
    db: &DatabaseConnection,
    scope: &Scope,
    conversation_id: i64,
    body: String,
    parent_id: Option<i64>,
) -> DomainResult<note::Model> {
    scope.require_member("write notes")?;
    check_body(&body)?;
    let txn = begin_write(db).await?;
    let conversation = conversations::scoped(scope)
        .filter(entity::conversation::Column::Id.eq(conversation_id))
        .row(&txn)
        .await?
        .ok_or(DomainError::NotFound("conversation"))?;
    // A reply to a reply attaches to the thread's root: threads are one level deep.
    let parent = match parent_id {
        Some(pid) => {
            let p = scoped(scope)
                .filter(note::Column::Id.eq(pid))
                .filter(note::Column::DeletedAt.is_null())
                .row(&txn)
                .await?
                .ok_or(DomainError::NotFound("note"))?;
            if p.conversation_id != conversation.id {
                return Err(DomainError::invalid(
                    "parentId",
                    "the parent note is in another conversation",
                ));
            }
            Some(p.parent_id.unwrap_or(p.id))
        }
        None => None,
    };
    let at = now();
    let created = note::ActiveModel {
        workspace_id: Set(scope.workspace_id),
        conversation_id: Set(conversation.id),
        author_id: Set(scope.user_id),
        parent_id: Set(parent),
        body_html: Set(render(&body)),
        body: Set(body.clone()),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let users = mentioned_users(&txn, scope, &body).await?;
    mention(&txn, scope, &created, &users, &[]).await?;
    activities::by_user(
        &txn,
        scope,
        Some(conversation.id),
        ActivityKind::NoteAdded,
        if parent.is_some() { "Replied to a note".into() } else { "Added a note".into() },
        json!({ "noteId": created.id, "parentId": parent, "mentions": users.iter().map(|u| u.id).collect::<Vec<_>>() }),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

pub fn scoped(scope: &Scope) -> sea_orm::Select<note::Entity> {
    note::Entity::find().filter(note::Column::WorkspaceId.eq(scope.workspace_id))
}

/// The note, if the caller may change it: its author, or an ADMIN.
async fn editable(txn: &DatabaseTransaction, scope: &Scope, id: i64) -> DomainResult<note::Model> {
    let n = scoped::lock(
        txn,
        scoped(scope).filter(note::Column::DeletedAt.is_null()),
        id,
    )
    .await?;
    if n.author_id != scope.user_id && scope.role != Role::Admin {
        return Err(DomainError::Forbidden(
            "only the note's author or an admin may change it".into(),
        ));
    }
    Ok(n)
}

pub async fn edit(
    db: &DatabaseConnection,
    scope: &Scope,
    id: i64,
    body: String,
) -> DomainResult<note::Model> {
    scope.require_member("edit notes")?;
    check_body(&body)?;
    let txn = begin_write(db).await?;
    let current = editable(&txn, scope, id).await?;
    if current.body == body {
        return Ok(current);
    }
    let before: Vec<i64> = note_mention::Entity::find()
        .filter(note_mention::Column::NoteId.eq(id))
        .rows(&txn)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let mut m = current.clone().into_active_model();
    m.body = Set(body.clone());
    m.body_html = Set(render(&body));
    m.edited_at = Set(Some(now()));
    let updated = m.update(&txn).await?;
    let users = mentioned_users(&txn, scope, &body).await?;
    mention(&txn, scope, &updated, &users, &before).await?;
    activities::by_user(
        &txn,
        scope,
        Some(current.conversation_id),
        ActivityKind::NoteEdited,
        "Edited a note".into(),
        json!({ "noteId": id, "body": { "old": current.body, "new": body } }),
    )
    .await?;
    txn.commit().await?;
    Ok(updated)
}

pub async fn delete(db: &DatabaseConnection, scope: &Scope, id: i64) -> DomainResult<i64> {
    scope.require_member("delete notes")?;
    let txn = begin_write(db).await?;
    let current = editable(&txn, scope, id).await?;
    let mut m = current.clone().into_active_model();
    m.deleted_at = Set(Some(now()));
    m.update(&txn).await?;
    activities::by_user(
        &txn,
        scope,
        Some(current.conversation_id),
        ActivityKind::NoteDeleted,
        "Deleted a note".into(),
        json!({ "noteId": id, "body": current.body }),
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_strips_scripts_handlers_and_javascript_links() {
        let html = render(
            "**hi** <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))",
        );
        assert!(html.contains("<strong>hi</strong>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn mentions_by_handle_and_email() {
        assert_eq!(
            mention_tokens("ping @Bo and @ana@x.test, not mail@host or @bo again."),
            vec!["bo", "ana@x.test"]
        );
        assert!(mention_tokens("no mentions here").is_empty());
    }
}
