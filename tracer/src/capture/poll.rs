//! The polling loop every capture shares: drain the probe's events into the live status line,
//! then ask the capture whether to go on, every [`TICK`].

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cinch_common::EventKind;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use profile_gen::Arch;

use crate::probe::{Probe, table_arch};

/// How often the maps and the workload are looked at.
pub(crate) const TICK: Duration = Duration::from_millis(10);
/// How long the workload gets to exit after a forwarded SIGINT/SIGTERM before the recording is
/// written anyway.
pub(crate) const GRACE: Duration = Duration::from_secs(3);

/// Whether a capture goes on after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Polls until `step` says stop: each tick, the probe's events go to the status line, then
/// `step` looks at them (they are rare: a new process, a first syscall) and at the workload.
pub(crate) fn poll(
    probe: &mut Probe,
    status: &mut Status,
    mut step: impl FnMut(&mut Probe, &[cinch_common::Event]) -> anyhow::Result<Flow>,
) -> anyhow::Result<()> {
    let mut events = Vec::new();
    loop {
        probe.drain_events(|e| {
            status.event(e);
            events.push(e);
        });
        status.tick(probe);
        if step(probe, &events)? == Flow::Stop {
            return Ok(());
        }
        events.clear();
        std::thread::sleep(TICK);
    }
}

/// The child's exit code, once it has exited (128 + signal when killed, like a shell).
pub(crate) fn reap(pid: Pid) -> anyhow::Result<Option<u8>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code as u8)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as u8)),
        Ok(_) => Ok(None),
        Err(nix::errno::Errno::EINTR) => Ok(None),
        Err(e) => Err(e).context("waiting for the command"),
    }
}

/// A finished command's exit code, as a shell reports it.
pub(crate) fn exit_code(st: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    st.code()
        .map(|c| c as u8)
        .or_else(|| st.signal().map(|s| 128 + s as u8))
        .unwrap_or(1)
}

/// The one-line live status on a terminal.
pub(crate) struct Status {
    bar: Option<indicatif::ProgressBar>,
    start: Instant,
    seen: BTreeSet<(u32, u32)>,
    processes: u64,
    last_new: String,
    /// Distinct capabilities checked so far (noise included: classifying needs the stacks).
    caps_checked: usize,
    lost: u64,
    last_slow_read: Option<Instant>,
}

impl Status {
    pub(crate) fn new(quiet: bool) -> Status {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(5));
            bar
        });
        Status {
            bar,
            start: Instant::now(),
            seen: BTreeSet::new(),
            processes: 1,
            last_new: String::new(),
            caps_checked: 0,
            lost: 0,
            last_slow_read: None,
        }
    }

    pub(crate) fn event(&mut self, e: cinch_common::Event) {
        if e.kind == EventKind::Fork as u32 {
            self.processes += 1;
        } else if e.kind == EventKind::FirstSyscall as u32 && self.seen.insert((e.arch, e.nr)) {
            let arch = table_arch(Arch::native(), e.arch).unwrap_or(Arch::native());
            self.last_new = profile_gen::naming::syscall_name(arch, e.nr)
                .unwrap_or_else(|| format!("{arch}:{}", e.nr));
        }
    }

    pub(crate) fn tick(&mut self, probe: &Probe) {
        let Some(bar) = &self.bar else {
            return;
        };
        // Counters from the maps about once a second; the status line itself 5 times.
        if self
            .last_slow_read
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_slow_read = Some(Instant::now());
            if let Ok(s) = probe.stats() {
                self.lost = s.syscall_out_of_range + s.counter_miss + s.track_miss + s.ring_drop;
            }
            if let Ok(checks) = probe.all_cap_checks() {
                let caps: BTreeSet<u32> = checks
                    .iter()
                    .filter(|k| k.granted == 1)
                    .map(|k| k.cap)
                    .collect();
                self.caps_checked = caps.len();
            }
        }
        bar.set_message(format!(
            "recording {:.1}s  processes {}  syscalls {}  caps checked {}  lost {}  new: {}",
            self.start.elapsed().as_secs_f64(),
            self.processes,
            self.seen.len(),
            self.caps_checked,
            self.lost,
            self.last_new
        ));
        bar.tick();
    }

    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
