//! Enforcement for `cinch run`: a profile loaded as runc loads it, and a process left with only
//! the listed capabilities.
//!
//! - [`load_plan`] and [`install`]: the profile read, resolved and compiled by
//!   `profile_gen::seccomp` (the pipeline `verify`, `report` and `generate` share), and the
//!   program installed;
//! - [`privileges`]: capability sets, `--user`, no_new_privs.

pub(crate) mod privileges;

use std::collections::BTreeSet;
use std::path::Path;

use profile_gen::seccomp::compile::CompiledFilter;
use profile_gen::seccomp::load::{self, Host, LoadPlan};
use profile_gen::seccomp::spec::read_spec;
use profile_gen::{Arch, Capability};

use crate::error::input;

/// Reads `path` and decides what a runtime would load from it for a process whose bounding set
/// is `bounding`. Every refusal is an input error (exit 2) naming the file.
pub(crate) fn load_plan(path: &Path, bounding: &BTreeSet<Capability>) -> anyhow::Result<LoadPlan> {
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
pub(crate) fn install(filter: &CompiledFilter) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.program.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: filter.program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points into `filter.program`, which outlives the call; the kernel copies it.
    // prctl and syscall are variadic: every argument is passed as the unsigned long the kernel
    // reads.
    let unused: libc::c_ulong = 0;
    let rc = unsafe {
        if filter.flags == 0 {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::c_ulong::from(libc::SECCOMP_MODE_FILTER),
                std::ptr::from_ref(&prog),
                unused,
                unused,
            )
        } else {
            libc::syscall(
                libc::SYS_seccomp,
                libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
                libc::c_ulong::from(filter.flags),
                std::ptr::from_ref(&prog),
            ) as libc::c_int
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
