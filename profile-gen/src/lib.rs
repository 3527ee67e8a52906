//! cinch's generator. No root, no aya: recordings in; minimized, validated seccomp profiles and
//! capability allowlists out.
//!
//! The tracer calls [`naming::syscall_name`] while recording, writes a [`Recording`] and reuses
//! [`files::write_atomic`]; `cinch generate`, `diff` and `report` are thin wrappers over
//! [`generate::generate`], [`diff::diff`] and [`report::build`].

pub mod allowlist;
pub mod arch;
pub mod arg_rules;
pub mod arguments;
pub mod baseline;
pub mod cap_rules;
pub mod capability;
pub mod diff;
pub mod docker_default;
pub mod files;
pub mod filesystem;
pub mod formats;
pub mod generate;
pub mod image;
pub mod kernel_issued;
pub mod limits;
pub mod naming;
pub mod network;
pub mod no_new_privs;
pub mod observed;
pub mod profile;
pub mod recording;
pub mod report;
pub mod seccomp;
pub mod secrets;
pub mod snippets;
pub mod user;
pub mod validate;

// The property tests (tests/properties.rs) use it, the unit tests do not.
#[cfg(test)]
use proptest as _;

pub use arch::Arch;
pub use capability::Capability;
pub use recording::{Recording, RecordingError, SCHEMA_VERSION, read_recording};
