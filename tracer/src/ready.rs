//! `--ready-fd N`: tells whoever started cinch that the recording has begun, so that a script or
//! a test starts its workload, `docker exec` or signal only once cinch sees it, instead of
//! sleeping and hoping.
//!
//! The protocol is the one `s6` and `sd_notify` users know: cinch writes `ready\n` to the
//! inherited descriptor N once the probe is attached and the target registered, then closes it.
//! A reader that gets end-of-file without the line knows cinch stopped before it was ready (its
//! error is on stderr). The descriptor is close-on-exec from the start, so the workload never
//! inherits it.

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::sync::Mutex;

use crate::error::input;

static READY: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Takes descriptor `fd` for the readiness line. Refuses a descriptor that is not open or is
/// one of stdin, stdout and stderr.
pub(crate) fn take(fd: RawFd) -> anyhow::Result<()> {
    if fd <= 2 {
        return Err(input(format!(
            "--ready-fd {fd}: stdin, stdout and stderr are not for the readiness line; pass another descriptor (e.g. 3)"
        )));
    }
    // SAFETY: F_GETFD/F_SETFD on a number only inspect or flag the descriptor table.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(input(format!(
            "--ready-fd {fd}: no such open file descriptor"
        )));
    }
    // SAFETY: as above; the workload must not inherit it.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open (checked above) and given to cinch by its parent for this
    // purpose alone; nothing else in cinch uses it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    *READY.lock().unwrap_or_else(|e| e.into_inner()) = Some(owned);
    Ok(())
}

/// Writes the readiness line and closes the descriptor; later calls do nothing. A reader that
/// went away is not cinch's problem: the recording goes on.
pub(crate) fn signal() {
    let Some(fd) = READY.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    tracing::debug!(fd = fd.as_raw_fd(), "ready");
    let mut file = std::fs::File::from(fd);
    let _ = file.write_all(b"ready\n");
}
