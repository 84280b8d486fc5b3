//! Confab's automation plugin runtime.
//!
//! A plugin is a WebAssembly component of the `confab:plugin` world (`plugins/wit/`). The
//! [`Runtime`] checks and precompiles uploads ([`Runtime::inspect`]), loads precompiled
//! artifacts ([`Runtime::load`]), and runs one event through a plugin in a fresh store under
//! its [`Limits`] ([`Runtime::run`]), returning the [`Effect`]s it asked for. Applying them
//! (in one transaction, as the plugin) is the server's job.
//!
//! Untrusted code never reaches more than the host interface: no filesystem, network,
//! environment or clock (WASI is wired deny-all; the wall clock reads the event's time),
//! and stdout/stderr are captured, capped, into the run record.
mod host;
mod limits;
mod output;
mod runtime;

pub use host::{Effect, NoWorkspace, Workspace};
pub use limits::Limits;
pub use runtime::{Compiled, Inspected, Invalid, Outcome, RunReport, Runtime};

/// The world version this host implements.
pub const WORLD: &str = "confab:plugin/plugin@0.1.0";

/// Types of the world, generated from `plugins/wit/` (the SDK generates its side from the same
/// files).
pub mod wit {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "plugin",
        imports: { default: trappable },
    });

    pub use confab::plugin::types::{
        AppointmentInfo, Channel, ContactInfo, Conversation, NewTask, Recipient, Reminder,
        TaskInfo, Timestamp,
    };
    pub use confab::plugin::{host, types};
}
