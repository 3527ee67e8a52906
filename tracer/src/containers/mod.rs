//! Containers: resolving a name or id to its processes and mount namespace, and recognising the
//! container a process belongs to from its cgroup.
//!
//! Engines are asked through their own CLIs (`docker`, `podman`, `nerdctl`, `crictl`, and
//! containerd's `ctr` where nerdctl is missing): every engine ships one, they share the `inspect`
//! shape (crictl and ctr aside), and this keeps one code path for all instead of an API client
//! per engine.

mod cgroup;
mod engine;

pub(crate) use cgroup::container_in_cgroup;
pub(crate) use engine::{Container, Engine, SeccompInForce, inspect_new, resolve};

use std::collections::BTreeSet;

/// Mount namespace inode of a process.
pub(crate) fn mntns_of(pid: u32) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let ino = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino();
    u32::try_from(ino).map_err(|_| std::io::Error::other("mount namespace inode beyond 32 bits"))
}

/// Every mount namespace some process is in now.
pub(crate) fn all_mntns() -> BTreeSet<u32> {
    crate::procfs::pids()
        .filter_map(|p| mntns_of(p).ok())
        .collect()
}

/// Processes in mount namespace `inum`.
pub(crate) fn pids_in_mntns(inum: u32) -> BTreeSet<u32> {
    crate::procfs::pids()
        .filter(|&p| mntns_of(p).ok() == Some(inum))
        .collect()
}

/// Container names and ids as engines accept them; anything else is refused before it goes near
/// a command line or a path.
pub(crate) fn valid_reference(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A file name for a container's recording: its compose service, else its name.
pub(crate) fn recording_file_name(c: &Container) -> String {
    let base = c.service.as_deref().unwrap_or(&c.name);
    let clean: String = base
        .trim_start_matches('/')
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-') {
                ch
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        c.id.chars().take(12).collect()
    } else {
        clean.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        for ok in ["web", "my_app-1", "9df17d790aeb", "a.b"] {
            assert!(valid_reference(ok), "{ok}");
        }
        for bad in ["", "-rm", "../x", "a/b", "a b", "$(id)", ".hidden"] {
            assert!(!valid_reference(bad), "{bad}");
        }
    }
}
