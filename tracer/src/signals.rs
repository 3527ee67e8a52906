//! Signals: SIGINT / SIGTERM / SIGHUP stop recording cleanly and still write the file, and the
//! workload starts with the signal dispositions and mask cinch itself was started with.
//!
//! The handler only records what arrived; the main loop acts on it. SIGHUP ignored when cinch
//! started (`nohup`) stays ignored: the caller asked for the recording to outlive the terminal.
//! SIGINT and SIGTERM are always caught: they are how scripts stop a recorder they started in
//! the background, and a non-interactive shell starts background jobs with SIGINT ignored
//! whether or not anyone asked for it.
//!
//! What the workload inherits: handlers are reset by execve, but an ignored signal stays ignored
//! and the mask is kept, so cinch's own handlers would give the workload SIGINT/SIGTERM/SIGHUP at
//! their default action even when the caller ignored them, and Rust's runtime ignores SIGPIPE
//! before `main` runs. So the dispositions and mask are captured before the Rust runtime starts
//! (a function in `.init_array`, which the C runtime calls before `main`), and
//! [`restore_inherited`] puts them back in the child before it execs.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static COUNT: AtomicU32 = AtomicU32::new(0);
static LAST: AtomicI32 = AtomicI32::new(0);
/// Whether the last signal was sent by a process (kill(2)), not by the terminal driver to the
/// whole foreground process group (which the workload then received too).
static FROM_PROCESS: AtomicU32 = AtomicU32::new(0);

/// Signals 1..=64 as bits (bit `n - 1` for signal `n`): ignored, and blocked, when cinch started.
static INHERITED_IGNORED: AtomicU64 = AtomicU64::new(0);
static INHERITED_BLOCKED: AtomicU64 = AtomicU64::new(0);
static CAPTURED: AtomicBool = AtomicBool::new(false);
const SIGNALS: std::ops::RangeInclusive<libc::c_int> = 1..=64;

fn bit(sig: libc::c_int) -> u64 {
    1u64 << (sig - 1)
}

/// Runs before `main` (and so before Rust's runtime ignores SIGPIPE).
extern "C" fn capture_inherited() {
    let mut ignored = 0u64;
    let mut blocked = 0u64;
    // SAFETY: querying dispositions and the mask into zeroed, owned structs.
    unsafe {
        for sig in SIGNALS {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                ignored |= bit(sig);
            }
        }
        let mut mask: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask) == 0 {
            for sig in SIGNALS {
                if libc::sigismember(&mask, sig) == 1 {
                    blocked |= bit(sig);
                }
            }
        }
    }
    INHERITED_IGNORED.store(ignored, Ordering::SeqCst);
    INHERITED_BLOCKED.store(blocked, Ordering::SeqCst);
    CAPTURED.store(true, Ordering::SeqCst);
}

#[used]
#[unsafe(link_section = ".init_array")]
static CAPTURE_INHERITED: extern "C" fn() = capture_inherited;

/// Whether `sig` was ignored when cinch started.
pub(crate) fn ignored_at_start(sig: Signal) -> bool {
    INHERITED_IGNORED.load(Ordering::SeqCst) & bit(sig as libc::c_int) != 0
}

/// Gives the calling process the dispositions and mask cinch was started with: signals that
/// were ignored are ignored, every other one is at its default action, and the mask is the
/// inherited one. For a child between fork and execve (only async-signal-safe calls).
pub(crate) fn restore_inherited() {
    let captured = CAPTURED.load(Ordering::SeqCst);
    let ignored = INHERITED_IGNORED.load(Ordering::SeqCst);
    let blocked = INHERITED_BLOCKED.load(Ordering::SeqCst);
    // SAFETY: sigaction, sigemptyset, sigaddset and sigprocmask are async-signal-safe and only
    // touch the structs built here.
    unsafe {
        for sig in SIGNALS {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // Without the capture (never expected), only what cinch changed itself is reset.
            if !captured
                && ![libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE].contains(&sig)
            {
                continue;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = if ignored & bit(sig) != 0 {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            };
            libc::sigemptyset(&mut action.sa_mask);
            // Fails for the C library's own signals (32, 33) and unknown numbers: those keep
            // what they have, as they would through execve.
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        for sig in SIGNALS {
            if blocked & bit(sig) != 0 {
                libc::sigaddset(&mut mask, sig);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
    }
}

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO.
    let code = unsafe { info.as_ref() }.map_or(0, |i| i.si_code);
    // si_code <= 0 (SI_USER, SI_QUEUE, SI_TKILL) means sent by a process; SI_KERNEL (0x80) is
    // the tty's Ctrl-C / hang-up.
    FROM_PROCESS.store(u32::from(code <= 0), Ordering::SeqCst);
    LAST.store(sig, Ordering::SeqCst);
    COUNT.fetch_add(1, Ordering::SeqCst);
}

/// Catches SIGINT, SIGTERM, and SIGHUP unless it was ignored when cinch started.
pub(crate) fn install() -> anyhow::Result<()> {
    let action = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        if sig == Signal::SIGHUP && ignored_at_start(sig) {
            continue;
        }
        // SAFETY: the handler only touches atomics.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    pub count: u32,
    pub signal: Signal,
    pub from_process: bool,
}

pub(crate) fn received() -> Option<Received> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_state_was_captured_before_main() {
        assert!(CAPTURED.load(Ordering::SeqCst));
        // The test harness starts with SIGKILL never ignorable.
        assert!(!ignored_at_start(Signal::SIGKILL));
    }
}
