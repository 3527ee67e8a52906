//! tracefs must be mounted for classic tracepoints (their ids live there). Fresh machines and
//! containers often have it unmounted.

use anyhow::Context as _;

pub const TRACEFS: &str = "/sys/kernel/tracing";

pub fn is_mounted() -> bool {
    std::path::Path::new(TRACEFS).join("events").is_dir()
        || std::path::Path::new("/sys/kernel/debug/tracing/events").is_dir()
}

pub fn ensure_mounted() -> anyhow::Result<()> {
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
