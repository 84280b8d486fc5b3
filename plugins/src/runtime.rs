//! The engine, the checks an upload must pass, and one run.
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use crate::host::{Breach, HostState, NoWorkspace};
use crate::output::CappedOutput;
use crate::wit::{Event, Manifest, Plugin, PluginPre};
use crate::{Effect, Limits, WORLD, Workspace};

/// How often the epoch advances: the wall-clock deadline's resolution.
const TICK: Duration = Duration::from_millis(5);
/// The most of a finished run's linear memory kept resident for the next run in its slot.
const KEEP_RESIDENT: usize = 1 << 20;
/// Slots kept warm (resident, with their last module's image) while unused.
const WARM_SLOTS: u32 = 16;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The plugin returned an error, or broke a host-call or output limit.
    Error,
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trapped,
    FuelExhausted,
    TimedOut,
    MemoryExceeded,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "OK",
            Outcome::Error => "ERROR",
            Outcome::Trapped => "TRAPPED",
            Outcome::FuelExhausted => "FUEL_EXHAUSTED",
            Outcome::TimedOut => "TIMED_OUT",
            Outcome::MemoryExceeded => "MEMORY_EXCEEDED",
        }
    }
}

/// What one run did.
#[derive(Debug)]
pub struct RunReport {
    pub outcome: Outcome,
    pub error: Option<String>,
    /// Captured stdout and stderr (capped).
    pub output: String,
    /// The changes asked for; empty unless the outcome is OK.
    pub effects: Vec<Effect>,
    pub host_calls: u32,
    /// The whole run: instantiation, the guest and its host calls.
    pub duration: Duration,
    /// The part of `duration` spent in host lookups (database reads).
    pub host_time: Duration,
}

/// Why an upload was refused; the message is for the admin who uploaded it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// An upload that passed every check.
pub struct Inspected {
    pub manifest: Manifest,
    pub sha256: String,
    /// The precompiled component for this engine ([`Runtime::engine_key`]).
    pub artifact: Vec<u8>,
    pub compiled: Compiled,
}

/// A plugin ready to run: compiled, linked and type-checked once, instantiated per run.
#[derive(Clone)]
pub struct Compiled(Arc<PluginPre<HostState>>);

pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Runtime {
    /// A runtime on the pooling allocator (instances come from pre-reserved slots: about a
    /// third faster per run than allocating each), or on demand where the pool cannot be
    /// reserved (a tight address-space limit) or `CONFAB_PLUGIN_POOLING=off`.
    pub fn new() -> Result<Runtime, String> {
        let pooling = std::env::var("CONFAB_PLUGIN_POOLING").map_or(true, |v| v != "off");
        let engine = match pooling.then(|| Engine::new(&config(true))) {
            Some(Ok(engine)) => engine,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "plugins: no instance pool; allocating on demand");
                Engine::new(&config(false)).map_err(|e| format!("wasm engine: {e}"))?
            }
            None => Engine::new(&config(false)).map_err(|e| format!("wasm engine: {e}"))?,
        };
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| format!("epoch thread: {e}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| format!("wasi: {e}"))?;
        Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| format!("host interface: {e}"))?;
        Ok(Runtime { engine, linker })
    }

    /// Names this engine's compiled-code format: an artifact is reused only by an engine with
    /// the same key (same wasmtime version, settings and CPU features).
    pub fn engine_key(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("wasmtime-{:016x}", hasher.finish())
    }

    /// Checks an upload: it is a component, implements this world, and its manifest is sane
    /// (`known_events` lists the event kinds a plugin may ask for). Compiles it once.
    pub fn inspect(&self, wasm: &[u8], known_events: &[&str]) -> Result<Inspected, Invalid> {
        sniff(wasm)?;
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| Invalid(format!("the component does not validate: {}", root(&e))))?;
        let compiled = self.link(&component)?;
        let limits = Limits::default();
        let (manifest, _) = self.call(&compiled, &limits, Arc::new(NoWorkspace), 0, |p, s| {
            p.call_manifest(s)
        });
        let manifest = manifest.map_err(|(outcome, e)| {
            Invalid(format!("manifest() failed ({}): {e}", outcome.as_str()))
        })?;
        check_manifest(&manifest, known_events)?;
        let artifact = component
            .serialize()
            .map_err(|e| Invalid(format!("could not precompile: {e}")))?;
        Ok(Inspected {
            manifest,
            sha256: hex::encode(Sha256::digest(wasm)),
            artifact,
            compiled,
        })
    }

    /// Loads an artifact [`Runtime::inspect`] produced on an engine with the same key.
    pub fn load(&self, artifact: &[u8]) -> Result<Compiled, Invalid> {
        // SAFETY: artifacts are written only by `inspect` above (Component::serialize) into
        // the server's own database, keyed by `engine_key`; wasmtime additionally refuses
        // artifacts of another version or configuration.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(&self.engine, artifact) }
            .map_err(|e| Invalid(format!("stored artifact does not load: {e}")))?;
        self.link(&component)
    }

    /// Compiles from the original upload (when no artifact fits this engine).
    pub fn compile(&self, wasm: &[u8]) -> Result<(Compiled, Vec<u8>), Invalid> {
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| Invalid(format!("the component does not validate: {}", root(&e))))?;
        let artifact = component
            .serialize()
            .map_err(|e| Invalid(format!("could not precompile: {e}")))?;
        Ok((self.link(&component)?, artifact))
    }

    fn link(&self, component: &Component) -> Result<Compiled, Invalid> {
        let pre = self.linker.instantiate_pre(component).map_err(|e| {
            Invalid(format!(
                "the component needs something Confab does not provide ({}); plugins target {WORLD}",
                root(&e)
            ))
        })?;
        let pre = PluginPre::new(pre).map_err(|e| {
            Invalid(format!(
                "the component does not implement {WORLD}: {}",
                root(&e)
            ))
        })?;
        Ok(Compiled(Arc::new(pre)))
    }

    /// Runs `event` through `plugin` in a fresh store. Blocking: call it off the async runtime.
    pub fn run(
        &self,
        plugin: &Compiled,
        event: &Event,
        limits: &Limits,
        workspace: Arc<dyn Workspace>,
    ) -> RunReport {
        let started = Instant::now();
        let (result, state) = self.call(plugin, limits, workspace, event.occurred_at, |p, s| {
            p.call_on_event(s, event)
        });
        let (outcome, error, effects) = match result {
            Ok(Ok(())) => (Outcome::Ok, None, state.effects),
            Ok(Err(message)) => (Outcome::Error, Some(message), Vec::new()),
            Err((outcome, message)) => (outcome, Some(message), Vec::new()),
        };
        RunReport {
            outcome,
            error,
            output: state.output,
            effects,
            host_calls: state.calls,
            duration: started.elapsed(),
            host_time: state.host_time,
        }
    }

    /// Instantiates `plugin` under `limits` and calls `f`; classifies any failure.
    fn call<R>(
        &self,
        plugin: &Compiled,
        limits: &Limits,
        workspace: Arc<dyn Workspace>,
        now_ms: i64,
        f: impl FnOnce(&Plugin, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> (Result<R, (Outcome, String)>, Finished) {
        let started = Instant::now();
        let output = CappedOutput::new(limits.output_bytes as usize);
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .wall_clock(EventClock(now_ms))
            .monotonic_clock(StillClock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            &self.engine,
            HostState::new(wasi, workspace, limits.clone(), started),
        );
        store.limiter(|s| &mut s.limiter);
        let fueled = store.set_fuel(limits.fuel);
        store.set_epoch_deadline(limits.wall_ms.div_ceil(TICK.as_millis() as u64).max(1));
        store.epoch_deadline_trap();
        let result = fueled
            .and_then(|()| plugin.0.instantiate(&mut store))
            .and_then(|instance| f(&instance, &mut store));
        let state = store.into_data();
        let result = result.map_err(|e| classify(&e, state.limiter.exceeded, limits));
        let finished = Finished {
            effects: state.effects,
            calls: state.calls,
            host_time: state.host_time,
            output: output.text(),
        };
        (result, finished)
    }
}

fn config(pooling: bool) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(1 << 20);
    if pooling {
        // Room for many concurrent runs (the server runs a few per core) and installs; a
        // Rust component is a handful of core instances.
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(640)
            .total_memories(128)
            .total_tables(640)
            .max_memory_size(Limits::CEILING.memory_bytes as usize);
        // A finished run's slot is wiped by rewriting only the pages it touched (the kernel
        // lists them, Linux 6.7+; else the first KEEP_RESIDENT bytes), not handed back to the
        // kernel and faulted in again by the next run (docs/benchmarks.md, 2026-11-30).
        pool.pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .max_unused_warm_slots(WARM_SLOTS);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

struct Finished {
    effects: Vec<Effect>,
    calls: u32,
    host_time: Duration,
    output: String,
}

fn classify(e: &wasmtime::Error, memory_exceeded: bool, limits: &Limits) -> (Outcome, String) {
    if memory_exceeded {
        return (
            Outcome::MemoryExceeded,
            format!("used more than its {} bytes of memory", limits.memory_bytes),
        );
    }
    if let Some(breach) = e.downcast_ref::<Breach>() {
        return match breach {
            Breach::Deadline(_) => (Outcome::TimedOut, breach.to_string()),
            Breach::Limit(_) => (Outcome::Error, breach.to_string()),
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (
            Outcome::FuelExhausted,
            format!("used up its fuel ({} units)", limits.fuel),
        ),
        Some(Trap::Interrupt) => (
            Outcome::TimedOut,
            format!("passed its {} ms wall-clock deadline", limits.wall_ms),
        ),
        Some(trap) => (Outcome::Trapped, format!("trapped: {trap}")),
        None => (Outcome::Trapped, format!("failed: {}", e.root_cause())),
    }
}

/// The innermost message of an error chain (wasmtime wraps the useful part in context).
fn root(e: &wasmtime::Error) -> String {
    let all: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    all.join(": ")
}

/// A quick look at the bytes before compiling: the clearest message for the common mistakes.
fn sniff(wasm: &[u8]) -> Result<(), Invalid> {
    if !wasm.starts_with(b"\0asm") {
        return Err(Invalid(
            "not a WebAssembly file (it does not start with \\0asm)".into(),
        ));
    }
    match wasm.get(4..8) {
        Some([0x0d, 0x00, 0x01, 0x00]) => Ok(()),
        Some([0x01, 0x00, 0x00, 0x00]) => Err(Invalid(
            "a core WebAssembly module, not a component: build with `--target wasm32-wasip2` \
             (or wrap it with `wasm-tools component new`)"
                .into(),
        )),
        _ => Err(Invalid(
            "an unsupported WebAssembly version or layer".into(),
        )),
    }
}

fn check_manifest(m: &Manifest, known_events: &[&str]) -> Result<(), Invalid> {
    let bad = |why: String| Err(Invalid(format!("manifest: {why}")));
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if !name_ok(&m.name) {
        return bad(format!(
            "name {:?} must be 1-64 letters, digits, '-', '_' or '.'",
            m.name
        ));
    }
    if m.version.trim().is_empty() || m.version.len() > 32 {
        return bad(format!("version {:?} must be 1-32 characters", m.version));
    }
    if m.events.is_empty() && m.schedules.is_empty() {
        return bad("declares no events and no schedules, so it would never run".into());
    }
    if m.events.len() > 64 || m.schedules.len() > 16 {
        return bad("declares too many events (64 at most) or schedules (16 at most)".into());
    }
    for event in &m.events {
        if !known_events.contains(&event.as_str()) {
            return bad(format!("unknown event kind {event:?}"));
        }
    }
    for schedule in &m.schedules {
        if let Err(e) = schedule.parse::<cron::Schedule>() {
            return bad(format!(
                "schedule {schedule:?} is not a cron expression: {e}"
            ));
        }
    }
    Ok(())
}

/// The guest's wall clock: frozen at the event's time.
struct EventClock(i64);

impl HostWallClock for EventClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.max(0) as u64)
    }
}

/// The guest's monotonic clock: it does not move (no timing side channel).
struct StillClock;

impl HostMonotonicClock for StillClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(events: &[&str], schedules: &[&str]) -> Manifest {
        Manifest {
            name: "x".into(),
            version: "1".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            schedules: schedules.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn manifests_name_known_events_and_valid_schedules() {
        let known = ["MESSAGE_RECEIVED"];
        assert!(check_manifest(&manifest(&["MESSAGE_RECEIVED"], &[]), &known).is_ok());
        assert!(check_manifest(&manifest(&[], &["0 0 9 * * Mon-Fri"]), &known).is_ok());
        let unknown = check_manifest(&manifest(&["MESSAGE_EXPLODED"], &[]), &known);
        assert!(unknown.unwrap_err().0.contains("MESSAGE_EXPLODED"));
        let cron = check_manifest(&manifest(&[], &["every tuesday"]), &known);
        assert!(cron.unwrap_err().0.contains("cron"));
        let idle = check_manifest(&manifest(&[], &[]), &known);
        assert!(idle.unwrap_err().0.contains("never run"));
    }

    #[test]
    fn non_components_are_named_for_what_they_are() {
        assert!(sniff(b"hello").unwrap_err().0.contains("not a WebAssembly"));
        let core = b"\0asm\x01\0\0\0";
        assert!(
            sniff(core)
                .unwrap_err()
                .0
                .contains("core WebAssembly module")
        );
        assert!(sniff(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
