//! Enforcement for `cinch run`: a profile loaded as runc loads it, and a process left with only
//! the listed capabilities.
//!
//! - [`filter`]: the libseccomp program runc would build for the profile, and installing it;
//! - [`enosys_stub`]: runc's ENOSYS prefix for syscalls newer than the profile;
//! - [`privileges`]: capability sets, `--user`, no_new_privs.
//!
//! What the profile means on this host (Docker's conditions, runc's rule list, what the filter
//! does with each syscall) is decided in `profile_gen::runtime_load`, which `cinch verify` shares.

pub mod enosys_stub;
pub mod filter;
pub mod privileges;

use std::collections::BTreeSet;
use std::path::Path;

use profile_gen::runtime_load::{self, Host, LoadPlan};
use profile_gen::seccomp_spec::read_spec;
use profile_gen::{Arch, Capability};

use crate::error::input;

/// Reads `path` and decides what a runtime would load from it for a process whose bounding set
/// is `bounding`. Every refusal is an input error (exit 2) naming the file.
pub fn load_plan(path: &Path, bounding: &BTreeSet<Capability>) -> anyhow::Result<LoadPlan> {
    let spec = read_spec(path).map_err(|e| input(e.to_string()))?;
    let host = Host {
        native: Arch::native(),
        kernel_release: crate::procfs::kernel_release(),
        bounding: bounding.clone(),
    };
    runtime_load::resolve(&spec, &host, path).map_err(|e| input(e.to_string()))
}
