//! Confab's plugin runtime. The wasmtime host, the WIT world and the SDK land with the
//! plugin issue; until then this crate only reserves its place in the workspace.
