//! Enforcement for `cinch run`: a profile loaded as runc loads it, and a process left with only
//! the listed capabilities.
//!
//! - [`load_plan`] and [`install`]: the profile read, resolved and compiled by
//!   `profile_gen::seccomp` (the pipeline `verify`, `report` and `generate` share), and the
//!   program installed;
//! - [`privileges`]: capability sets, `--user`, no_new_privs.

pub mod privileges;

use std::collections::BTreeSet;
use std::path::Path;

use profile_gen::seccomp::compile::CompiledFilter;
use profile_gen::seccomp::load::{self, Host, LoadPlan};
use profile_gen::seccomp::spec::read_spec;
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
    load::resolve(&spec, &host, path).map_err(|e| input(e.to_string()))
}

/// Installs the filter on the calling thread. Call it last, right before execve: every syscall
/// after it is filtered.
pub fn install(filter: &CompiledFilter) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.program.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: filter.program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points into `filter.program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        if filter.flags == 0 {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        } else {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                libc::c_ulong::from(filter.flags),
                &prog as *const libc::sock_fprog,
            ) as libc::c_int
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
