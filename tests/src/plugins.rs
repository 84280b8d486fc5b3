//! Plugin fixtures: the example plugins built to components with the documented command, and
//! small hostile components written as WAT and turned into components here (no toolchain).
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::{Client, Gql};

/// The example plugin `name` (`follow-up`, `appointment-reminder`, `audit-logger`, or the
/// test fixture `scripted`), built once per test process with `cargo build --release --target
/// wasm32-wasip2 -p <name>`.
pub fn example(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root")
            .to_path_buf();
        // A target folder of its own: the outer `cargo test` holds the lock on the shared one.
        let target = crate::profile_dir()
            .parent()
            .expect("target/<profile>")
            .join("plugin-examples");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--locked",
            ])
            .args([
                "-p",
                "follow-up",
                "-p",
                "appointment-reminder",
                "-p",
                "audit-logger",
                "-p",
                "scripted",
            ])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "the example plugins build (cargo's error above; a toolchain without the \
             wasm32-wasip2 target needs `rustup target add wasm32-wasip2` once)"
        );
        target.join("wasm32-wasip2").join("release")
    });
    let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

pub const PLUGIN_FIELDS: &str =
    "id name version enabled events schedules sha256 installedAt disabledReason limits";

impl Client {
    /// `installPlugin` as a GraphQL multipart request (the upload spec).
    pub async fn install_plugin(&self, name: &str, wasm: Vec<u8>, limits: Option<Value>) -> Gql {
        let query = format!(
            "mutation($input: InstallPluginInput!) {{ installPlugin(input: $input) {{ plugin {{ {PLUGIN_FIELDS} }} }} }}"
        );
        let operations = json!({
            "query": query,
            "variables": { "input": { "name": name, "wasm": null, "limits": limits } },
        });
        let form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", json!({ "0": ["variables.input.wasm"] }).to_string())
            .part(
                "0",
                reqwest::multipart::Part::bytes(wasm)
                    .file_name("plugin.wasm")
                    .mime_str("application/wasm")
                    .expect("a mime type"),
            );
        self.send(self.http.post(&self.url).multipart(form)).await
    }

    /// Installs and returns the plugin, failing the test on any error.
    pub async fn installed(&self, name: &str, wasm: Vec<u8>, limits: Option<Value>) -> Value {
        self.install_plugin(name, wasm, limits).await.data()["installPlugin"]["plugin"].clone()
    }

    /// The plugin's runs, newest first.
    pub async fn runs(&self, plugin_id: &str) -> Vec<Value> {
        let data = self
            .ok(
                "query($id: ID!) { plugin(id: $id) { enabled disabledReason runs(first: 50) { edges { node { id trigger outcome error startedAt durationMicros hostMicros actions } } } } }",
                json!({ "id": plugin_id }),
            )
            .await;
        data["plugin"]["runs"]["edges"]
            .as_array()
            .expect("runs")
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    }

    /// Waits (up to `seconds`) until the plugin has at least `n` runs; returns them.
    pub async fn wait_for_runs(&self, plugin_id: &str, n: usize, seconds: u64) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        loop {
            let runs = self.runs(plugin_id).await;
            if runs.len() >= n || std::time::Instant::now() > deadline {
                return runs;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

/// What a WAT plugin's `on-event` does.
pub enum Body {
    /// Returns ok, doing nothing.
    Nothing,
    /// Loops forever.
    Spin,
    /// Grows memory until it is refused.
    GrowMemory,
    /// Executes `unreachable`.
    Trap,
    /// Hands the host one 100,000-byte log line.
    HugeText,
    /// Calls the host without end.
    FloodHostCalls,
    /// Logs "probe" on the given conversation id (whatever workspace it belongs to).
    LogOn(String),
    /// Returns an error string.
    Fail(String),
}

/// A component of the confab:plugin world from hand-written core wasm: its manifest asks
/// for `events`, and `on-event` does `body`.
pub fn wat_plugin(name: &str, events: &[&str], body: Body) -> Vec<u8> {
    wat_component(name, events, &[], body)
}

/// Like [`wat_plugin`], run by cron `schedules` instead of events.
pub fn wat_scheduled(name: &str, schedules: &[&str], body: Body) -> Vec<u8> {
    wat_component(name, &[], schedules, body)
}

fn wat_component(name: &str, events: &[&str], schedules: &[&str], body: Body) -> Vec<u8> {
    // Static layout: manifest record at 1024, its lists and strings after it, the on-event
    // result at 4096, a scratch string area at 8192, the bump heap from 32768, zeros from 65536 (4 pages).
    let mut strings: Vec<u8> = Vec::new();
    let lists = (events.len() + schedules.len()) as u32;
    let base = 1024 + 32 + 8 * lists;
    let mut put = |s: &str| {
        let at = base + strings.len() as u32;
        strings.extend_from_slice(s.as_bytes());
        (at, s.len() as u32)
    };
    let name_at = put(name);
    let version_at = put("0.0.1");
    let item_ats: Vec<(u32, u32)> = events.iter().chain(schedules).map(|e| put(e)).collect();
    let mut manifest = Vec::new();
    let events_list = 1024 + 32;
    let schedules_list = events_list + 8 * events.len() as u32;
    for v in [
        name_at.0,
        name_at.1,
        version_at.0,
        version_at.1,
        events_list,
        events.len() as u32,
        schedules_list,
        schedules.len() as u32,
    ] {
        manifest.extend_from_slice(&v.to_le_bytes());
    }
    for (at, len) in &item_ats {
        manifest.extend_from_slice(&at.to_le_bytes());
        manifest.extend_from_slice(&len.to_le_bytes());
    }
    manifest.extend_from_slice(&strings);
    let escaped: String = manifest.iter().map(|b| format!("\\{b:02x}")).collect();
    let (scratch, code) = match body {
        Body::Nothing => (String::new(), String::new()),
        Body::Spin => (String::new(), "(loop $l (br $l))".to_string()),
        Body::GrowMemory => (
            String::new(),
            "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))".to_string(),
        ),
        Body::Trap => (String::new(), "unreachable".to_string()),
        Body::HugeText => (
            String::new(),
            "(call $log (i32.const 8192) (i32.const 0) (i32.const 65536) (i32.const 100000) (i32.const 4300))"
                .to_string(),
        ),
        Body::FloodHostCalls => (
            "x".to_string(),
            "(loop $l (call $log (i32.const 8192) (i32.const 0) (i32.const 8192) (i32.const 1) (i32.const 4300)) (br $l))"
                .to_string(),
        ),
        Body::LogOn(conversation) => {
            let n = conversation.len();
            let text_at = 8192 + n;
            (
                format!("{conversation}probe"),
                format!(
                    "(call $log (i32.const 8192) (i32.const {n}) (i32.const {text_at}) (i32.const 5) (i32.const 4300))"
                ),
            )
        }
        Body::Fail(message) => {
            let n = message.len();
            (
                message,
                format!(
                    "(i32.store8 (i32.const 4096) (i32.const 1)) (i32.store (i32.const 4100) (i32.const 8192)) (i32.store (i32.const 4104) (i32.const {n}))"
                ),
            )
        }
    };
    let wat = format!(
        r#"(module
  (import "confab:plugin/host@0.1.0" "log-event" (func $log (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 32768))
  (data (i32.const 1024) "{escaped}")
  (data (i32.const 8192) "{scratch}")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (local.get $p))
  (func (export "manifest") (result i32) (i32.const 1024))
  (func (export "cabi_post_manifest") (param i32))
  (func (export "on-event") (param i32) (result i32)
    {code}
    (i32.const 4096))
  (func (export "cabi_post_on-event") (param i32))
)"#
    );
    componentize(&wat, &wit_dir(), "plugin")
}

/// A well-formed component of another world (it exports `run`, nothing of Confab's).
pub fn other_world() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("confab-other-world-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    std::fs::write(
        dir.join("other.wit"),
        "package other:thing@1.0.0;\nworld other { export run: func(); }\n",
    )
    .expect("write wit");
    componentize(r#"(module (func (export "run")))"#, &dir, "other")
}

fn wit_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .join("plugins/wit")
}

fn componentize(wat: &str, wit: &std::path::Path, world: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve.push_dir(wit).expect("the WIT parses");
    let world = resolve
        .select_world(&[pkg], Some(world))
        .expect("the world exists");
    let mut module = wat::parse_str(wat).expect("the WAT parses");
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .expect("metadata embeds");
    wit_component::ComponentEncoder::default()
        .module(&module)
        .expect("the module is accepted")
        .validate(true)
        .encode()
        .expect("the component encodes")
}
