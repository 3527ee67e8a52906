//! tracefs must be mounted for classic tracepoints (their ids live there). Fresh machines and
//! containers often have it unmounted.

use std::path::PathBuf;

use anyhow::Context as _;

pub(crate) const TRACEFS: &str = "/sys/kernel/tracing";

pub(crate) fn is_mounted() -> bool {
    std::path::Path::new(TRACEFS).join("events").is_dir()
        || std::path::Path::new("/sys/kernel/debug/tracing/events").is_dir()
}

/// Where tracefs is mounted, from /proc/self/mounts (its `events` directory is root-only, so
/// looking there would call it unmounted for an unprivileged user).
pub(crate) fn mount_point() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "tracefs").then(|| PathBuf::from(dir))
    })
}

pub(crate) fn ensure_mounted() -> anyhow::Result<()> {
    if is_mounted() {
        return Ok(());
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting tracefs on {TRACEFS}"))
    .map_err(|e| crate::error::kernel(format!("{e:#}")))
}
