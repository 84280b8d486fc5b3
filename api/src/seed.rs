//! `confab seed`: deterministic, realistic data for benchmarks and demos, written with bulk
//! inserts into a new workspace. The same flags and seed give the same data.
//!
//! Messages per contact follow a long tail (a few contacts write a lot, most a little);
//! conversations, activities, tags, tasks, appointments and notes hang off them as a busy
//! team's would.
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;

use entity::positional::SelectRows;
use entity::{
    activity, appointment, contact, contact_identity, contact_tag, conversation,
    custom_field_value, message, note, opportunity, stage, tag, task,
};

use crate::db::begin_write;
use crate::domain::{now, truncate, workspaces};
use crate::error::{DomainError, DomainResult};

/// What to write; the flags of `confab seed`.
#[derive(Clone, Debug, clap::Args)]
pub struct Plan {
    /// The new workspace's name (it must not exist yet).
    #[arg(long)]
    pub workspace: String,
    #[arg(long, default_value_t = 1_000)]
    pub contacts: usize,
    /// Messages in all, spread over the contacts with a long tail.
    #[arg(long, default_value_t = 20_000)]
    pub messages: usize,
    #[arg(long, default_value_t = 0)]
    pub notes: usize,
    #[arg(long, default_value_t = 0)]
    pub tasks: usize,
    #[arg(long, default_value_t = 0)]
    pub appointments: usize,
    /// Deals in a "Sales" pipeline (Lead, Qualified, Proposal, Negotiation).
    #[arg(long, default_value_t = 0)]
    pub opportunities: usize,
    #[arg(long, default_value_t = 0)]
    pub tags: usize,
    /// Custom contact fields (of every type in turn), each set on about half the contacts.
    #[arg(long, default_value_t = 0)]
    pub custom_fields: usize,
    /// The random seed: the same flags and seed give the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seeded {
    pub workspace: String,
    pub token: String,
    pub contacts: usize,
    pub messages: usize,
    pub activities: usize,
    pub notes: usize,
    pub tasks: usize,
    pub appointments: usize,
    pub opportunities: usize,
    pub tags: usize,
    pub custom_fields: usize,
    pub millis: u128,
}

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Lukas", "Maya", "Noah", "Olga", "Pedro", "Qing", "Rosa", "Sven", "Tara", "Umar", "Vera",
];
const LAST: &[&str] = &[
    "Silva", "Okafor", "Müller", "Tanaka", "Kowalski", "Haddad", "Nguyen", "Larsen", "Rossi",
    "Fischer", "Ibrahim", "Novak", "Martin", "Schmidt", "Costa", "Patel",
];
const INBOUND: &[&str] = &[
    "Hi, is the order shipped yet?",
    "Can we move our call to Thursday?",
    "Thanks, that worked!",
    "I have a question about the invoice",
    "Do you deliver on weekends?",
    "Please call me back when you can",
];
const OUTBOUND: &[&str] = &[
    "Thanks for reaching out, looking into it now.",
    "Your order left our warehouse this morning.",
    "Thursday at 10:00 works for us.",
    "Happy to help. Anything else?",
];

/// Writes the plan into a new workspace (created here with an admin whose token is returned).
pub async fn seed(db: &DatabaseConnection, plan: &Plan) -> DomainResult<Seeded> {
    let started = std::time::Instant::now();
    if plan.contacts == 0 || plan.messages < plan.contacts {
        return Err(DomainError::invalid(
            "messages",
            "need at least one contact and at least one message per contact",
        ));
    }
    let admin_email = format!("admin@{}.seed", slug(&plan.workspace));
    let boot = workspaces::bootstrap(db, &plan.workspace, &admin_email).await?;
    let scope = workspaces::first_admin(db, &plan.workspace).await?;
    let ws = scope.workspace_id;
    let mut agents = vec![scope.user_id];
    for i in 1..=4 {
        let issued = workspaces::create_token(
            db,
            &plan.workspace,
            &format!("agent{i}@{}.seed", slug(&plan.workspace)),
            crate::domain::Role::Agent,
        )
        .await?;
        agents.push(crate::ids::decode(
            &async_graphql::ID(issued.user_id),
            "User",
            "userId",
        )?);
    }
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let end = truncate(now());
    let start = end - Duration::days(90);
    let counts = long_tail(plan.contacts, plan.messages, &mut rng);

    let txn = begin_write(db).await?;
    // Contacts, their identities and tags.
    let mut contacts = Vec::with_capacity(plan.contacts);
    let mut identities = Vec::with_capacity(plan.contacts);
    for i in 0..plan.contacts {
        let name = format!(
            "{} {}",
            FIRST[rng.random_range(0..FIRST.len())],
            LAST[rng.random_range(0..LAST.len())]
        );
        let email = format!("contact{i}@example.com");
        contacts.push(contact::ActiveModel {
            workspace_id: Set(ws),
            name: Set(Some(name)),
            email: Set(Some(email.clone())),
            status: Set("ACTIVE".into()),
            owner_id: Set(rng
                .random_bool(0.6)
                .then(|| agents[rng.random_range(0..agents.len())])),
            inbound_count: Set(0),
            outbound_count: Set(0),
            created_at: Set(start),
            updated_at: Set(start),
            ..Default::default()
        });
        identities.push((i, email));
    }
    bulk(&txn, contacts, 16).await?;
    let contact_ids = ids_of::<contact::Entity>(&txn, ws, contact::Column::Id).await?;
    bulk(
        &txn,
        identities
            .into_iter()
            .map(|(i, email)| contact_identity::ActiveModel {
                workspace_id: Set(ws),
                contact_id: Set(contact_ids[i]),
                kind: Set("EMAIL".into()),
                value: Set(email),
                created_at: Set(start),
                ..Default::default()
            })
            .collect(),
        6,
    )
    .await?;
    let tag_names: Vec<String> = (0..plan.tags).map(|i| format!("tag-{i}")).collect();
    bulk(
        &txn,
        tag_names
            .iter()
            .map(|n| tag::ActiveModel {
                workspace_id: Set(ws),
                name: Set(n.clone()),
                created_at: Set(start),
                ..Default::default()
            })
            .collect(),
        4,
    )
    .await?;
    let tag_ids = ids_of::<tag::Entity>(&txn, ws, tag::Column::Id).await?;
    if !tag_ids.is_empty() {
        let mut links = Vec::new();
        for &c in &contact_ids {
            let n = rng.random_range(0..=3.min(tag_ids.len()));
            let first = rng.random_range(0..tag_ids.len());
            for k in 0..n {
                links.push(contact_tag::ActiveModel {
                    workspace_id: Set(ws),
                    contact_id: Set(c),
                    tag_id: Set(tag_ids[(first + k) % tag_ids.len()]),
                    ..Default::default()
                });
            }
        }
        bulk(&txn, links, 4).await?;
    }

    // One conversation per contact, then its messages oldest first.
    let mut timelines = Vec::with_capacity(plan.contacts);
    let mut conversations = Vec::with_capacity(plan.contacts);
    for (i, &n) in counts.iter().enumerate() {
        let first = start + Duration::seconds(rng.random_range(0..80 * 86_400));
        let span = (end - first).num_seconds().max(n as i64);
        let mut times: Vec<DateTime<Utc>> = (0..n)
            .map(|_| first + Duration::seconds(rng.random_range(0..span)))
            .collect();
        times.sort();
        let inbound: Vec<bool> = (0..n).map(|k| k == 0 || rng.random_bool(0.6)).collect();
        let unread = inbound.iter().rev().take_while(|b| **b).count() as i32;
        let last = *times.last().unwrap_or(&first);
        conversations.push(conversation::ActiveModel {
            workspace_id: Set(ws),
            contact_id: Set(contact_ids[i]),
            status: Set(if rng.random_bool(0.7) {
                "OPEN"
            } else {
                "COMPLETED"
            }
            .into()),
            starred: Set(rng.random_bool(0.1)),
            unread_count: Set(unread),
            last_message_at: Set(Some(last)),
            created_at: Set(first),
            updated_at: Set(last),
            ..Default::default()
        });
        timelines.push((times, inbound));
    }
    bulk(&txn, conversations, 10).await?;
    let conversation_ids =
        ids_of::<conversation::Entity>(&txn, ws, conversation::Column::Id).await?;
    let mut messages = Vec::with_capacity(plan.messages);
    for (i, (times, inbound)) in timelines.iter().enumerate() {
        for (t, &is_in) in times.iter().zip(inbound) {
            let body = if is_in {
                INBOUND[rng.random_range(0..INBOUND.len())]
            } else {
                OUTBOUND[rng.random_range(0..OUTBOUND.len())]
            };
            messages.push(message::ActiveModel {
                workspace_id: Set(ws),
                conversation_id: Set(conversation_ids[i]),
                channel: Set("EMAIL".into()),
                direction: Set(if is_in { "INBOUND" } else { "OUTBOUND" }.into()),
                status: Set(if is_in { "RECEIVED" } else { "DELIVERED" }.into()),
                body: Set(body.to_string()),
                sender_id: Set((!is_in).then(|| agents[rng.random_range(0..agents.len())])),
                important: Set(false),
                spam: Set(false),
                created_at: Set(*t),
                ..Default::default()
            });
        }
    }
    let message_count = messages.len();
    bulk(&txn, messages, 18).await?;
    // Each message's activity, read back in insert order (ids follow it).
    let rows: Vec<(i64, i64, String, DateTime<Utc>)> = message::Entity::find()
        .filter(sea_orm::ColumnTrait::eq(&message::Column::WorkspaceId, ws))
        .select_only()
        .column(message::Column::Id)
        .column(message::Column::ConversationId)
        .column(message::Column::Direction)
        .column(message::Column::CreatedAt)
        .order_by_asc(message::Column::Id)
        .into_tuple()
        .all(&txn)
        .await?;
    let activities: Vec<activity::ActiveModel> = rows
        .iter()
        .map(|(id, conv, direction, at)| {
            let inbound = direction == "INBOUND";
            activity::ActiveModel {
                workspace_id: Set(ws),
                conversation_id: Set(Some(*conv)),
                kind: Set(if inbound {
                    "MESSAGE_RECEIVED"
                } else {
                    "MESSAGE_SENT"
                }
                .into()),
                actor_kind: Set(if inbound { "CONTACT" } else { "USER" }.into()),
                actor_label: Set(if inbound { "Contact" } else { "Agent" }.into()),
                summary: Set(if inbound {
                    "Message received"
                } else {
                    "Message sent"
                }
                .into()),
                data: Set(json!({ "messageId": id, "channel": "EMAIL" })),
                occurred_at: Set(*at),
                ..Default::default()
            }
        })
        .collect();
    let activity_count = activities.len();
    bulk(&txn, activities, 11).await?;
    // Each conversation's newest message: messages went in oldest first per conversation,
    // so it is the one with the highest id. One UPDATE per few thousand conversations.
    let mut last: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for (id, conv, _, _) in &rows {
        last.insert(*conv, *id);
    }
    let pairs: Vec<(i64, i64)> = last.into_iter().collect();
    for chunk in pairs.chunks(5_000) {
        // Only integers this function computed go into the text.
        let values: Vec<String> = chunk.iter().map(|(c, m)| format!("({c}, {m})")).collect();
        txn.execute_unprepared(&format!(
            "UPDATE conversations SET last_message_id = v.column2 FROM (VALUES {}) AS v \
             WHERE conversations.id = v.column1",
            values.join(", ")
        ))
        .await?;
    }

    // The team's own work on the busiest conversations first.
    let pick = |rng: &mut StdRng| conversation_ids[skewed(rng, conversation_ids.len())];
    let mut notes = Vec::with_capacity(plan.notes);
    for _ in 0..plan.notes {
        let body = "Spoke with them: **follow up** next week.".to_string();
        notes.push(note::ActiveModel {
            workspace_id: Set(ws),
            conversation_id: Set(pick(&mut rng)),
            author_id: Set(agents[rng.random_range(0..agents.len())]),
            body_html: Set(crate::domain::notes::render(&body)),
            body: Set(body),
            created_at: Set(end - Duration::seconds(rng.random_range(0..30 * 86_400))),
            ..Default::default()
        });
    }
    bulk(&txn, notes, 11).await?;
    let mut tasks = Vec::with_capacity(plan.tasks);
    for k in 0..plan.tasks {
        let done = rng.random_bool(0.4);
        tasks.push(task::ActiveModel {
            workspace_id: Set(ws),
            conversation_id: Set(pick(&mut rng)),
            title: Set(format!("Follow-up #{k}")),
            status: Set(if done { "COMPLETED" } else { "OPEN" }.into()),
            due_at: Set(Some(end + Duration::hours(rng.random_range(-72..240)))),
            assignee_id: Set(Some(agents[rng.random_range(0..agents.len())])),
            created_by_id: Set(Some(agents[0])),
            auto_created: Set(false),
            completed_at: Set(done.then_some(end)),
            created_at: Set(end - Duration::days(3)),
            updated_at: Set(end - Duration::days(3)),
            ..Default::default()
        });
    }
    bulk(&txn, tasks, 16).await?;
    let mut appointments = Vec::with_capacity(plan.appointments);
    for _ in 0..plan.appointments {
        let starts = end + Duration::minutes(30 * rng.random_range(-200..600));
        appointments.push(appointment::ActiveModel {
            workspace_id: Set(ws),
            conversation_id: Set(pick(&mut rng)),
            title: Set("Intro call".into()),
            starts_at: Set(starts),
            ends_at: Set(starts + Duration::minutes(30)),
            organizer_id: Set(Some(agents[rng.random_range(0..agents.len())])),
            attendees: Set(json!([])),
            status: Set("SCHEDULED".into()),
            created_at: Set(end - Duration::days(5)),
            updated_at: Set(end - Duration::days(5)),
            ..Default::default()
        });
    }
    bulk(&txn, appointments, 14).await?;
    schedule_alerts(&txn, ws).await?;
    txn.commit().await?;
    if plan.opportunities > 0 {
        opportunities(
            db,
            &scope,
            plan.opportunities,
            &conversation_ids,
            &agents,
            &mut rng,
            end,
        )
        .await?;
    }
    if plan.custom_fields > 0 {
        custom_fields(db, &scope, plan.custom_fields, &contact_ids, &mut rng, end).await?;
    }
    // Fresh bulk data: statistics for the planner (and, on PostgreSQL, the visibility map for
    // index-only scans), as autovacuum would give a database that grew over time.
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => db.execute_unprepared("VACUUM ANALYZE").await?,
        _ => db.execute_unprepared("ANALYZE").await?,
    };
    Ok(Seeded {
        workspace: plan.workspace.clone(),
        token: boot.token,
        contacts: plan.contacts,
        messages: message_count,
        activities: activity_count,
        notes: plan.notes,
        tasks: plan.tasks,
        appointments: plan.appointments,
        opportunities: plan.opportunities,
        tags: plan.tags,
        custom_fields: plan.custom_fields,
        millis: started.elapsed().as_millis(),
    })
}

/// A "Sales" pipeline and `n` deals on the busiest conversations, most of them still open.
async fn opportunities(
    db: &DatabaseConnection,
    scope: &crate::domain::Scope,
    n: usize,
    conversation_ids: &[i64],
    agents: &[i64],
    rng: &mut StdRng,
    end: DateTime<Utc>,
) -> DomainResult<()> {
    let stages = ["Lead", "Qualified", "Proposal", "Negotiation"];
    let pipeline = crate::domain::opportunities::create_pipeline(
        db,
        scope,
        "Sales",
        stages.iter().map(|s| s.to_string()).collect(),
    )
    .await?;
    let stage_ids = ids_of::<stage::Entity>(db, scope.workspace_id, stage::Column::Id).await?;
    let deals = (0..n)
        .map(|k| {
            let status = match rng.random_range(0..10) {
                0..=6 => "OPEN",
                7 | 8 => "WON",
                _ => "LOST",
            };
            let at = end - Duration::days(rng.random_range(0..60));
            opportunity::ActiveModel {
                workspace_id: Set(scope.workspace_id),
                conversation_id: Set(conversation_ids[skewed(rng, conversation_ids.len())]),
                pipeline_id: Set(pipeline.id),
                stage_id: Set(stage_ids[rng.random_range(0..stage_ids.len())]),
                name: Set(format!("Deal #{k}")),
                amount_minor: Set(Some(100 * rng.random_range(50..50_000))),
                currency: Set(Some("EUR".into())),
                status: Set(status.into()),
                owner_id: Set(Some(agents[rng.random_range(0..agents.len())])),
                created_at: Set(at),
                updated_at: Set(at),
                ..Default::default()
            }
        })
        .collect();
    let txn = begin_write(db).await?;
    bulk(&txn, deals, 12).await?;
    Ok(txn.commit().await?)
}

/// `n` custom contact fields, each type in turn, each set on about half the contacts.
async fn custom_fields(
    db: &DatabaseConnection,
    scope: &crate::domain::Scope,
    n: usize,
    contact_ids: &[i64],
    rng: &mut StdRng,
    end: DateTime<Utc>,
) -> DomainResult<()> {
    use crate::domain::CustomFieldType as T;
    let types = [T::Text, T::Number, T::Select, T::Boolean, T::Date];
    let plans = ["Free", "Team", "Business"];
    let mut defs = Vec::with_capacity(n);
    for i in 0..n {
        let kind = types[i % types.len()];
        let options = if kind == T::Select {
            plans.iter().map(|p| p.to_string()).collect()
        } else {
            Vec::new()
        };
        let def = crate::domain::custom_fields::define(
            db,
            scope,
            &format!("field_{i}"),
            &format!("Field {i}"),
            kind,
            options,
        )
        .await?;
        defs.push((def.id, kind));
    }
    let mut values = Vec::new();
    for &contact in contact_ids {
        for &(definition, kind) in &defs {
            if !rng.random_bool(0.5) {
                continue;
            }
            let value = match kind {
                T::Text => json!(format!("note {}", rng.random_range(0..1_000))),
                T::Number => json!(rng.random_range(0..10_000)),
                T::Select => json!(plans[rng.random_range(0..plans.len())]),
                T::Boolean => json!(rng.random_bool(0.5)),
                T::Date => json!(
                    (end - Duration::days(rng.random_range(0..365)))
                        .format("%Y-%m-%d")
                        .to_string()
                ),
            };
            values.push(custom_field_value::ActiveModel {
                workspace_id: Set(scope.workspace_id),
                contact_id: Set(contact),
                definition_id: Set(definition),
                value: Set(value),
                updated_at: Set(end),
                ..Default::default()
            });
        }
    }
    let txn = begin_write(db).await?;
    bulk(&txn, values, 5).await?;
    Ok(txn.commit().await?)
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// `total` messages over `contacts`, at least one each, by a Zipf-like weight (rank^-1.1)
/// assigned to contacts in random order.
fn long_tail(contacts: usize, total: usize, rng: &mut StdRng) -> Vec<usize> {
    let weights: Vec<f64> = (0..contacts)
        .map(|r| 1.0 / ((r + 1) as f64).powf(1.1))
        .collect();
    let sum: f64 = weights.iter().sum();
    let spare = (total - contacts) as f64;
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|w| 1 + (spare * w / sum).floor() as usize)
        .collect();
    let mut left = total - counts.iter().sum::<usize>();
    let mut r = 0;
    while left > 0 {
        counts[r % contacts] += 1;
        left -= 1;
        r += 1;
    }
    // Shuffle which contact gets which rank (Fisher-Yates).
    for i in (1..counts.len()).rev() {
        counts.swap(i, rng.random_range(0..=i));
    }
    counts
}

/// An index into `n` items, favouring low ones (the busiest conversations get most work).
fn skewed(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.random();
    ((u * u) * n as f64) as usize % n
}

/// Inserts in statements of as many rows as the database's parameter limit allows.
async fn bulk<A>(db: &impl ConnectionTrait, rows: Vec<A>, columns: usize) -> DomainResult<()>
where
    A: ActiveModelTrait + Send,
{
    let per = (30_000 / columns.max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// What the app would have scheduled for the seeded tasks and appointments: each open
/// task's overdue alert and each upcoming appointment's reminders (times already past get
/// none), so a seeded workspace alerts as a used one would, and its job queue holds what a
/// used one's does.
async fn schedule_alerts(db: &impl ConnectionTrait, ws: i64) -> DomainResult<()> {
    use crate::scheduler::jobs;
    let workspace = entity::workspace::Entity::find_by_id(ws).row(db).await?;
    let minutes = jobs::reminder_minutes(workspace.as_ref());
    let mut due = Vec::new();
    for t in crate::domain::scoped::rows::<task::Entity>(ws)
        .rows(db)
        .await?
    {
        due.extend(jobs::task_occurrences(&t));
    }
    for a in crate::domain::scoped::rows::<appointment::Entity>(ws)
        .rows(db)
        .await?
    {
        due.extend(jobs::appointment_occurrences(&a, &minutes));
    }
    let created_at = now();
    let rows = due.into_iter().map(|o| jobs::row(o, created_at)).collect();
    bulk(db, rows, 9).await
}

/// The ids of a new workspace's rows of one table, in insert order.
async fn ids_of<E>(db: &impl ConnectionTrait, ws: i64, id: E::Column) -> DomainResult<Vec<i64>>
where
    E: EntityTrait + crate::domain::scoped::Scoped,
{
    Ok(crate::domain::scoped::rows::<E>(ws)
        .select_only()
        .column(id)
        .order_by_asc(id)
        .into_tuple()
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_tail_adds_up_and_gives_everyone_a_message() {
        let mut rng = StdRng::seed_from_u64(7);
        let counts = long_tail(1_000, 20_000, &mut rng);
        assert_eq!(counts.iter().sum::<usize>(), 20_000);
        assert!(counts.iter().all(|&c| c >= 1));
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top_tenth: usize = sorted[..100].iter().sum();
        assert!(
            top_tenth > 20_000 / 2,
            "the busiest 10% write most: {top_tenth}"
        );
        assert_eq!(
            long_tail(1_000, 20_000, &mut StdRng::seed_from_u64(7)),
            counts
        );
    }
}
