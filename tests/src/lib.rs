//! The end-to-end harness: builds and starts the real `confab` binary on a fresh database
//! (an SQLite file, or a new PostgreSQL database when `CONFAB_TEST_DATABASE_URL` is set) and
//! gives tests a GraphQL client and the CLI.
pub mod contract;
pub mod plugins;
pub mod ws;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// This process's `target/<profile>` folder: tests run from its `deps/`, the bench from its
/// `examples/`.
pub(crate) fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let dir = exe.parent().expect("the executable has a folder");
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The `confab` binary, built once per test process; `CONFAB_BIN` names a built one instead
/// (to run the bench against two builds side by side, say).
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CONFAB_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        let profile_dir = profile_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "--quiet", "-p", "confab", "--bin", "confab"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("cargo runs");
        assert!(status.success(), "building the confab binary failed");
        profile_dir.join(format!("confab{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A fresh, empty database for one test.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// On PostgreSQL when `CONFAB_TEST_DATABASE_URL` is set, otherwise on SQLite.
    pub async fn new() -> TestDb {
        match std::env::var("CONFAB_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => TestDb::postgres(&admin_url).await,
            None => TestDb::sqlite(),
        }
    }

    fn tag() -> String {
        format!("{}_{:08x}", std::process::id(), rand::random::<u32>())
    }

    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = std::env::temp_dir().join(format!("confab-test-{}", TestDb::tag()));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.join("confab.db").display());
        TestDb {
            url,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new database on the PostgreSQL server `admin_url` points at.
    pub async fn postgres(admin_url: &str) -> TestDb {
        let name = format!("confab_test_{}", TestDb::tag());
        let admin = sea_orm::Database::connect(admin_url)
            .await
            .expect("connect to the PostgreSQL server");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a test database");
        admin.close().await.ok();
        TestDb {
            url: replace_db_name(admin_url, &name),
            cleanup: Cleanup::Postgres {
                admin_url: admin_url.to_string(),
                name,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.cleanup, Cleanup::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; a plain thread with its own runtime may block.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let admin = sea_orm::Database::connect(&admin_url).await.ok()?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await
                            .ok()?;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
        }
    }
}

use sea_orm::ConnectionTrait;

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}

/// Output of one CLI run.
pub struct CliOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `confab ARGS` against `db`.
pub fn cli(db: &TestDb, args: &[&str]) -> CliOutput {
    let out = std::process::Command::new(binary())
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("CONFAB_LOG", "warn")
        .output()
        .expect("run confab");
    CliOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `confab serve` on its own database, with an admin of workspace "acme".
pub struct TestServer {
    // Fields drop in order: the server stops before its database is removed.
    child: Child,
    pub db: TestDb,
    pub url: String,
    pub admin_token: String,
    /// Extra `confab serve` arguments, kept for restarts.
    args: Vec<String>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_on(TestDb::new().await).await
    }

    /// Starts on `db` (which must be new).
    pub async fn start_on(db: TestDb) -> TestServer {
        TestServer::start_with(db, &[]).await
    }

    /// Starts on `db` (which must be new) with extra `confab serve` arguments.
    pub async fn start_with(db: TestDb, args: &[&str]) -> TestServer {
        let boot = cli(
            &db,
            &[
                "bootstrap",
                "--workspace",
                "acme",
                "--admin-email",
                "admin@acme.test",
                "--json",
            ],
        );
        assert!(boot.success, "bootstrap failed: {}", boot.stderr);
        let admin_token = boot.json()["token"].as_str().expect("token").to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, url) = spawn_server(&db, &args).await;
        TestServer {
            db,
            url,
            admin_token,
            child,
            args,
        }
    }

    pub fn client(&self, token: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: format!("{}/graphql", self.url),
            token: Some(token.to_string()),
        }
    }

    pub fn admin(&self) -> Client {
        self.client(&self.admin_token)
    }

    pub fn anonymous(&self) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: format!("{}/graphql", self.url),
            token: None,
        }
    }

    /// A token for `email` in `workspace` (user created with `role` if new).
    pub fn token(&self, workspace: &str, email: &str, role: &str) -> String {
        let out = cli(
            &self.db,
            &[
                "token",
                "create",
                "--workspace",
                workspace,
                "--email",
                email,
                "--role",
                role,
                "--json",
            ],
        );
        assert!(out.success, "token create failed: {}", out.stderr);
        out.json()["token"].as_str().expect("token").to_string()
    }

    /// A second workspace with its own admin; returns the admin's token.
    pub fn other_workspace(&self, name: &str) -> String {
        let email = format!("admin@{name}.test");
        let out = cli(
            &self.db,
            &[
                "bootstrap",
                "--workspace",
                name,
                "--admin-email",
                &email,
                "--json",
            ],
        );
        assert!(out.success, "bootstrap failed: {}", out.stderr);
        out.json()["token"].as_str().expect("token").to_string()
    }

    /// Asks the server to shut down (SIGTERM) and waits for it to exit; returns its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("the server is running");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server exits within 20 s")
            .expect("wait for the server")
    }

    /// Moves the server's clock forward (the test clock); returns the new server time.
    pub async fn advance(&self, seconds: i64) -> String {
        advance_clock(&self.url, seconds).await
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// A second `confab serve` on the same database (another replica).
    pub async fn replica(&self) -> Replica {
        let (child, url) = spawn_server(&self.db, &self.args).await;
        Replica { url, _child: child }
    }

    /// SQL statements the server has run so far (`CONFAB_DEBUG_STATEMENTS`).
    pub async fn statements(&self) -> u64 {
        let resp = reqwest::get(format!("{}/debug/statements", self.url))
            .await
            .expect("statement counter");
        let status = resp.status();
        let text = resp.text().await.expect("a count");
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("statement count: {status} {text:?} ({e})"))
    }

    /// Kills the server at once (SIGKILL): no shutdown, no cleanup.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts the server again on the same database after `kill`.
    pub async fn start_again(&mut self) {
        let (child, url) = spawn_server(&self.db, &self.args).await;
        self.child = child;
        self.url = url;
    }

    /// Stops the server (SIGKILL) and starts it again on the same database.
    pub async fn restart(&mut self) {
        let _ = self.child.kill().await;
        let (child, url) = spawn_server(&self.db, &self.args).await;
        self.child = child;
        self.url = url;
    }
}

async fn spawn_server(db: &TestDb, args: &[String]) -> (Child, String) {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo"])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("CONFAB_DEBUG_STATEMENTS", "1")
        .env("CONFAB_TEST_CLOCK", "1")
        .env(
            "CONFAB_LOG",
            std::env::var("CONFAB_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start confab serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix("Confab listening on ") {
                return rest.trim().trim_end_matches("/graphql").to_string();
            }
        }
        panic!("confab exited before listening");
    })
    .await
    .expect("confab starts listening within a minute");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// A GraphQL-over-HTTP client with one bearer token.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub token: Option<String>,
}

/// One GraphQL response.
#[derive(Debug, Clone)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    /// `data`, asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of the first error, asserting there is one.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code, got {}", self.body))
    }
}

impl Client {
    pub async fn gql(&self, query: &str, variables: Value) -> Gql {
        let req = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        self.send(req).await
    }

    /// Sends a prepared POST with this client's token; reads the GraphQL response.
    pub async fn send(&self, mut req: reqwest::RequestBuilder) -> Gql {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request reaches the server");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("a JSON body");
        Gql { status, body }
    }

    /// Runs `query` and returns its data, failing the test on any error.
    pub async fn ok(&self, query: &str, variables: Value) -> Value {
        self.gql(query, variables).await.data().clone()
    }

    /// `receiveMessage` with the usual fields; returns the payload.
    pub async fn receive(
        &self,
        channel: &str,
        from: &str,
        body: &str,
        external_id: Option<&str>,
    ) -> Value {
        self.ok(
            RECEIVE,
            json!({ "input": { "channel": channel, "from": from, "body": body, "externalId": external_id } }),
        )
        .await["receiveMessage"]
            .clone()
    }
}

pub const RECEIVE: &str = "mutation($input: ReceiveMessageInput!) { receiveMessage(input: $input) {
    duplicate
    message { id body channel direction status externalId createdAt }
    conversation { id status unreadCount lastMessageAt }
    contact { id name email phone whatsapp }
} }";

/// Another server process on the same database; stopped when dropped.
pub struct Replica {
    pub url: String,
    _child: Child,
}

/// Moves the clock of the server at `url` forward by `seconds`; returns its new time (RFC 3339).
pub async fn advance_clock(url: &str, seconds: i64) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{url}/debug/clock?advance={seconds}"))
        .send()
        .await
        .expect("the test clock answers");
    assert!(
        resp.status().is_success(),
        "the server runs with CONFAB_TEST_CLOCK=1"
    );
    resp.text().await.expect("a time")
}
