//! `-- COMMAND`: cinch starts the workload itself and records it, and every process it creates,
//! from its own execve until the last of them exits.

use std::time::{Instant, SystemTime};

use anyhow::Context as _;
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use profile_gen::Recording;
use profile_gen::recording::Target;

use super::poll::{Flow, GRACE, Status, poll, reap};
use super::snapshot::{Snapshot, Span, recording};
use crate::probe::{self, Probe, Stats};
use crate::signals;
use crate::spawn::{self, ExecFailed, User};

const SLOT: u32 = 0;

/// The outcome of recording a command.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per run and moved straight out; boxing buys nothing"
)]
pub(crate) enum Captured {
    /// The command ran; `exit` is its status (128 + signal when killed).
    Recorded { recording: Recording, exit: u8 },
    /// The command could not be started (not found, not executable, --user failed): a shell
    /// would exit 127.
    NotStarted(String),
}

/// Runs `argv` (optionally as `user`) and records it and every process it creates, from its
/// own execve until the last of them exits. SIGINT/SIGTERM/SIGHUP are forwarded when sent to
/// cinch alone; the recording is returned either way.
pub(crate) fn capture_command(
    argv: &[String],
    user: Option<User>,
    quiet: bool,
) -> anyhow::Result<Captured> {
    let program = &argv[0];
    let Some(path) = spawn::resolve(program) else {
        return Ok(Captured::NotStarted(format!(
            "command not found or not executable: {program}"
        )));
    };
    signals::install().context("installing signal handlers")?;
    let mut probe = Probe::load(&probe::Config::process_tree())?;
    let started = SystemTime::now();
    let mut child = spawn::fork_held(&path, argv, user)?;
    let pid = child.pid;
    probe.start_target(SLOT, pid.as_raw() as u32, true)?;
    let mut status = Status::new(quiet);
    if let Err(e) = child.release(&path) {
        // The child exits by itself after reporting; reap it.
        let _ = waitpid(pid, None);
        status.finish();
        return match e.downcast::<ExecFailed>() {
            Ok(failed) => Ok(Captured::NotStarted(failed.0)),
            Err(e) => Err(e),
        };
    }
    crate::ready::signal();

    let mut exit: Option<u8> = None;
    let mut forwarded_at: Option<Instant> = None;
    let mut handled_signals = 0;
    poll(&mut probe, &mut status, |probe, _| {
        if exit.is_none() {
            exit = reap(pid)?;
        }
        if exit.is_some() && probe.target(SLOT)?.live == 0 {
            return Ok(Flow::Stop);
        }
        if let Some(sig) = signals::received()
            && sig.count > handled_signals
        {
            handled_signals = sig.count;
            if sig.count >= 2 {
                return Ok(Flow::Stop); // a second signal: stop now
            }
            if sig.from_process && exit.is_none() {
                let _ = nix::sys::signal::kill(pid, sig.signal);
            }
            forwarded_at = Some(Instant::now());
        }
        Ok(if forwarded_at.is_some_and(|t| t.elapsed() > GRACE) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    })?;
    let code = exit.unwrap_or_else(|| {
        let sig = signals::received().map_or(Signal::SIGTERM, |s| s.signal);
        128 + sig as u8
    });
    let span = Span {
        target: Target::Command {
            argv: argv.to_vec(),
            pid: pid.as_raw() as u32,
        },
        startup_observed: true,
        started,
        ended: SystemTime::now(),
    };
    let recording = recording(Snapshot::read(&mut probe, SLOT, &Stats::default())?, span);
    drop(probe);
    status.finish();
    Ok(Captured::Recorded {
        recording,
        exit: code,
    })
}
