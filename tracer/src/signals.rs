//! SIGINT / SIGTERM / SIGHUP: stop recording cleanly and still write the file. The handler only
//! records what arrived; the main loop acts on it.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static COUNT: AtomicU32 = AtomicU32::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);
/// Whether the last signal was sent by a process (kill(2)), not by the terminal driver to the
/// whole foreground process group (which the workload then received too).
static FROM_PROCESS: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let code = unsafe { info.as_ref() }.map_or(0, |i| i.si_code);
    // si_code <= 0 (SI_USER, SI_QUEUE, SI_TKILL) means sent by a process; SI_KERNEL (0x80) is
    // the tty's Ctrl-C / hang-up.
    FROM_PROCESS.store(u32::from(code <= 0), Ordering::SeqCst);
    LAST.store(sig, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

pub fn install() -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only touches atomics.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub count: u32,
    pub signal: Signal,
    pub from_process: bool,
}

pub fn received() -> Option<Received> {
    let count = COUNT.load(Ordering::SeqCst);
    if count == 0 {
        return None;
    }
    let signal = Signal::try_from(LAST.load(Ordering::SeqCst)).unwrap_or(Signal::SIGTERM);
    Some(Received {
        count,
        signal,
        from_process: FROM_PROCESS.load(Ordering::SeqCst) == 1,
    })
}
