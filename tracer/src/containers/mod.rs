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

use std::collections::{BTreeMap, BTreeSet};

/// Mount namespace inode of a process.
pub(crate) fn mntns_of(pid: u32) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let ino = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino();
    u32::try_from(ino).map_err(|_| std::io::Error::other("mount namespace inode beyond 32 bits"))
}

/// Every mount namespace some process is in now: its inode number and its unique id (0 where
/// the kernel does not say, before Linux 6.10).
pub(crate) fn all_mntns() -> BTreeMap<u32, u64> {
    let mut all = BTreeMap::new();
    for pid in crate::procfs::pids() {
        if let Ok(inum) = mntns_of(pid)
            && !all.contains_key(&inum)
        {
            all.insert(inum, mntns_id(pid).unwrap_or(0));
        }
    }
    all
}

/// The unique id of `pid`'s mount namespace: `ioctl(NS_GET_MNTNS_ID)` on its nsfs file (Linux
/// 6.10 and later), the value the kernel side reads at `OFF_MNT_NS_ID`. Unlike the inode
/// number, it is never given to another namespace.
fn mntns_id(pid: u32) -> std::io::Result<u64> {
    use std::os::fd::AsRawFd as _;
    // _IOR(NSIO = 0xb7, 0x5, __u64), include/uapi/linux/nsfs.h.
    const NS_GET_MNTNS_ID: libc::c_ulong = 0x8008_b705;
    let file = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    let mut id: u64 = 0;
    // SAFETY: the request writes one u64 through the pointer, which points at `id`.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_MNTNS_ID, &raw mut id) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(id)
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
