//! `--new-containers`: every container that starts while COMMAND runs (or for
//! `--duration`) gets its own recording, from the moment its runtime installs the seccomp filter.
//!
//! The kernel side does the work that cannot wait for userspace: a fork in a mount namespace
//! that did not exist when recording started claims a free target slot, and the new process is
//! counted from its first syscall under a seccomp filter. Userspace only names the target: the
//! new process's cgroup gives the container id, the engine gives its name and image. That
//! happens while the runtime is still setting the container up, so even a container that lives
//! for a few milliseconds is named.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use cinch_common::{EventKind, MNTNS_WATCH_NEW, TARGET_ARMED_EXEC, TARGET_ARMED_SECCOMP};
use profile_gen::Recording;

use super::attach::{container_target, seccomp_warning};
use super::poll::{Flow, GRACE, Status, TICK, exit_code, poll};
use super::snapshot::{Snapshot, Span, recording};
use crate::containers::{self, Container};
use crate::error::input;
use crate::probe::{self, Probe};
use crate::signals;

/// Targets one run can hold; each container takes one. The syscall counters are per CPU:
/// 8 KiB per target and CPU (2 architectures x 512 numbers x u64), so 128 targets take 1 MiB
/// of kernel memory per CPU.
pub(crate) const SLOTS: u32 = 128;
/// After COMMAND exits, how long containers it started get to stop before recording ends.
const SETTLE: Duration = Duration::from_secs(2);

enum Slot {
    Container(Box<Container>),
    /// A new mount namespace that is not a container (a service with a private /tmp, unshare).
    NotContainer,
    /// Its first process exited before its cgroup could be read: recorded, but unnamed.
    Unidentified,
}

/// What `--new-containers` captured.
pub(crate) struct NewContainers {
    /// One recording per container, with the file name it goes by (unique in the run).
    pub recordings: Vec<(String, Recording)>,
    /// COMMAND's status (128 + the signal when it was killed); `None` without COMMAND, or when
    /// it still ran at the end of `--duration`.
    pub exit: Option<u8>,
    /// New containers (or other mount namespaces) that found no free target slot.
    pub slots_exhausted: u64,
    /// Containers that never reached their entrypoint, by name: nothing recorded.
    pub never_started: Vec<String>,
}

/// Records every container that starts while `command` runs (or for `duration`, or until
/// interrupted), each from its runtime's seccomp install (or its first execve without one).
pub(crate) fn capture_new_containers(
    command: &[String],
    duration: Option<Duration>,
    quiet: bool,
) -> anyhow::Result<NewContainers> {
    signals::install().context("installing signal handlers")?;
    let config = probe::Config {
        slots: SLOTS,
        reserved_slots: 0,
        mntns_mode: MNTNS_WATCH_NEW,
        known_mntns: containers::all_mntns(),
    };
    let mut probe = Probe::load(&config)?;
    let started = SystemTime::now();
    // Every container that starts from now on is recorded.
    crate::ready::signal();
    let mut child = match command.split_first() {
        Some((program, rest)) => {
            let mut cmd = std::process::Command::new(program);
            cmd.args(rest).stdin(Stdio::inherit());
            // SAFETY: the hook only makes async-signal-safe calls (sigaction, sigprocmask).
            unsafe {
                cmd.pre_exec(|| {
                    signals::restore_inherited();
                    Ok(())
                })
            };
            Some(
                cmd.spawn()
                    .map_err(|e| input(format!("cannot run {program}: {e}")))?,
            )
        }
        None => None,
    };
    let deadline = duration.map(|d| Instant::now() + d);
    let mut status = Status::new(quiet);
    let mut slots: BTreeMap<u32, Slot> = BTreeMap::new();
    let mut exit: Option<u8> = None;
    let mut settle_until: Option<Instant> = None;
    poll(&mut probe, &mut status, |probe, events| {
        for e in events
            .iter()
            .filter(|e| e.kind == EventKind::NewTarget as u32)
        {
            slots.insert(e.slot, identify(e.tgid));
        }
        if let Some(c) = child.as_mut()
            && exit.is_none()
            && let Some(st) = c.try_wait().context("waiting for the command")?
        {
            exit = Some(exit_code(st));
            settle_until = Some(Instant::now() + SETTLE);
        }
        let containers_live = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Container(_)))
            .try_fold(0u32, |n, (&slot, _)| probe.target(slot).map(|t| n + t.live))?;
        let done = settle_until.is_some_and(|t| containers_live == 0 || Instant::now() >= t)
            || signals::received().is_some()
            || deadline.is_some_and(|d| Instant::now() >= d);
        Ok(if done { Flow::Stop } else { Flow::Continue })
    })?;
    if let Some(c) = child.as_mut()
        && exit.is_none()
        && let Some(sig) = signals::received()
    {
        // Interrupted: the command got the terminal's signal too, or is forwarded one. As
        // `record -- COMMAND` does, it gets the grace period to stop, and its status (or 128 +
        // the signal) is cinch's.
        if sig.from_process {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig.signal);
        }
        let until = Instant::now() + GRACE;
        while exit.is_none() && Instant::now() < until {
            exit = c.try_wait().ok().flatten().map(exit_code);
            std::thread::sleep(TICK);
        }
        exit = exit.or(Some(128 + sig.signal as u8));
    }

    let ended = SystemTime::now();
    let mut out = NewContainers {
        recordings: Vec::new(),
        exit,
        slots_exhausted: 0,
        never_started: Vec::new(),
    };
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_containers = 0;
    for (&slot, entry) in &slots {
        let unidentified;
        let container = match entry {
            Slot::Container(c) => c.as_ref(),
            Slot::NotContainer => {
                not_containers += 1;
                continue;
            }
            Slot::Unidentified => {
                unidentified = Container {
                    id: String::new(),
                    name: format!("unidentified-{slot}"),
                    image: String::new(),
                    engine: containers::Engine::Docker,
                    pid: None,
                    service: None,
                    seccomp: containers::SeccompInForce::Unknown,
                    command: Vec::new(),
                    secret_env: Vec::new(),
                    volumes: Vec::new(),
                };
                &unidentified
            }
        };
        let state = probe.target(slot)?;
        if state.flags & (TARGET_ARMED_SECCOMP | TARGET_ARMED_EXEC) == 0 {
            out.never_started.push(container.name.clone());
            continue;
        }
        let by_seccomp = state.flags & TARGET_ARMED_SECCOMP != 0;
        let span = Span {
            target: container_target(container),
            startup_observed: by_seccomp,
            started,
            ended,
        };
        let mut recording = recording(Snapshot::read(&mut probe, slot)?, span);
        // From the seccomp install or, without a filter, from the first execve: the workload's
        // own start-up is in the recording either way.
        recording.entrypoint_observed = true;
        if !by_seccomp {
            recording.warnings.push(format!(
                "container {} ran without a seccomp filter: recording started at its first execve, so the runtime's own syscalls after that point are missing; generate with the runtime baseline",
                container.name
            ));
        }
        recording.warnings.extend(seccomp_warning(container));
        if matches!(entry, Slot::Unidentified) {
            if let profile_gen::recording::Target::Container { engine, .. } = &mut recording.target
            {
                *engine = "unknown".to_owned();
            }
            recording.warnings.push(
                "this container's first process exited before cinch could read its cgroup: its engine, id and name are unknown (its syscalls were counted all the same)".to_owned(),
            );
        }
        let base = containers::recording_file_name(container);
        let n = names.entry(base.clone()).or_insert(0);
        *n += 1;
        let file = if *n == 1 {
            format!("{base}.json")
        } else {
            format!("{base}-{n}.json")
        };
        out.recordings.push((file, recording));
    }
    out.slots_exhausted = probe.stats()?.slots_exhausted;
    drop(probe);
    status.finish();
    if not_containers > 0 {
        tracing::info!(
            not_containers,
            "new mount namespaces that were not containers were ignored"
        );
    }
    Ok(out)
}

/// Names the container a new target's first process belongs to.
fn identify(tgid: u32) -> Slot {
    let Ok(cgroup) = std::fs::read_to_string(format!("/proc/{tgid}/cgroup")) else {
        // Gone before userspace looked (a very short-lived container on a loaded machine):
        // its syscalls are in the kernel's counts all the same.
        return Slot::Unidentified;
    };
    let Some((engine, id)) = containers::container_in_cgroup(&cgroup) else {
        return Slot::NotContainer;
    };
    let container = containers::inspect(engine, &id).unwrap_or_else(|| Container {
        name: id.chars().take(12).collect(),
        image: String::new(),
        pid: None,
        service: None,
        seccomp: containers::SeccompInForce::Unknown,
        command: Vec::new(),
        secret_env: Vec::new(),
        volumes: Vec::new(),
        engine,
        id,
    });
    Slot::Container(Box::new(container))
}
