//! One seccomp pipeline, the one a container runtime runs, used by every command that reads,
//! writes or enforces a profile:
//!
//! 1. [`spec`] parses a profile file (Docker / Podman JSON, OCI `linux.seccomp`, an SPO
//!    `SeccompProfile` in YAML or JSON) with every field a runtime acts on;
//! 2. [`load`] resolves it as moby and runc do on a given host (Docker's `includes` /
//!    `excludes`, `archMap`, skipped names, errno defaults) into a [`load::LoadPlan`];
//!    [`verdict`] answers what the loaded filter does with a syscall and an argument value;
//! 3. [`compile`] turns the plan into the BPF program runc would install, with its ENOSYS stub
//!    ([`enosys_stub`]).
//!
//! `cinch run` installs the compiled program; `verify` and `report` ask the plan; `diff` reads
//! both sides through [`spec`]; `generate` parses, resolves and compiles each profile it writes
//! ([`crate::validate`]) and compares it with Docker's default resolved the same way
//! ([`crate::arg_rules`]).

pub mod compile;
pub mod enosys_stub;
pub mod load;
pub mod spec;
pub mod verdict;
