//! cinch's generator. No root, no aya: recordings in; minimized, validated seccomp profiles and
//! capability allowlists out.

pub mod arch;
pub mod fsutil;
pub mod naming;
pub mod recording;

pub use arch::Arch;
pub use recording::{Recording, SCHEMA_VERSION};
