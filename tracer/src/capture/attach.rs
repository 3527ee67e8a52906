//! Attaching to what already runs: a container (`--container`) or a process and its descendants
//! (`--pid`), recorded until it ends, a duration passes, or cinch is interrupted. What ran before
//! cinch attached is not in the recording (`startup_observed: false`).

use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use cinch_common::SECCOMP_MODE_FILTER;
use profile_gen::Recording;
use profile_gen::recording::Target;

use super::poll::{Flow, Status, poll};
use super::snapshot::{Snapshot, Span, recording};
use crate::containers::{self, Container, Engine, SeccompInForce};
use crate::error::{Classify as _, input};
use crate::probe::{self, Probe, Stats};
use crate::{procfs, signals};

const SLOT: u32 = 0;

/// Polls until the target has no live process, `duration` has passed, or a signal came.
fn until_gone(
    probe: &mut Probe,
    duration: Option<Duration>,
    quiet: bool,
) -> anyhow::Result<Status> {
    let mut status = Status::new(quiet);
    let deadline = duration.map(|d| Instant::now() + d);
    poll(probe, &mut status, |probe, _| {
        let done = !probe.target_alive(SLOT)?
            || signals::received().is_some()
            || deadline.is_some_and(|d| Instant::now() >= d);
        Ok(if done { Flow::Stop } else { Flow::Continue })
    })?;
    Ok(status)
}

/// Attaches to a running container and records it until it stops, `duration` ends, or
/// SIGINT/SIGTERM/SIGHUP.
pub(crate) fn capture_container(
    reference: &str,
    engine: Option<Engine>,
    duration: Option<Duration>,
    quiet: bool,
) -> anyhow::Result<Recording> {
    let container = containers::resolve(reference, engine)?;
    let init = container
        .pid
        .ok_or_else(|| input(format!("container {reference} is not running")))?;
    let mntns =
        containers::mntns_of(init).input_err(|| format!("container {reference} (pid {init})"))?;
    signals::install().context("installing signal handlers")?;
    let config = probe::Config {
        slots: 1,
        reserved_slots: 1,
        mntns_mode: cinch_common::MNTNS_TARGETS,
        ..Default::default()
    };
    let mut probe = Probe::load(&config)?;
    let started = SystemTime::now();
    probe.start_container_target(SLOT, mntns, init)?;
    // Everything in the container now: its mount namespace, plus descendants of its init that
    // moved to a nested one.
    let mut members = containers::pids_in_mntns(mntns);
    members.extend(procfs::descendants(init));
    members.insert(init);
    // A process without the filter the container's init runs under is not a descendant of it
    // (filters are inherited and cannot be removed): it is a runtime entering the container
    // (`runc exec` between setns and its seccomp install, `nsenter`).
    let filtered = procfs::seccomp_mode(init) == Some(SECCOMP_MODE_FILTER);
    for pid in members {
        if filtered && procfs::seccomp_mode(pid) == Some(0) {
            probe.attach_entering_process(SLOT, pid)?;
        } else {
            probe.attach_process(SLOT, pid)?;
        }
    }
    crate::ready::signal();
    let mut status = until_gone(&mut probe, duration, quiet)?;
    let span = Span {
        target: container_target(&container),
        startup_observed: false,
        started,
        ended: SystemTime::now(),
    };
    let mut recording = recording(Snapshot::read(&mut probe, SLOT, &Stats::default())?, span);
    drop(probe);
    status.finish();
    recording.warnings.extend(seccomp_warning(&container));
    Ok(recording)
}

/// Attaches to process `pid` and its descendants, and records them until they are gone,
/// `duration` ends, or SIGINT/SIGTERM/SIGHUP.
pub(crate) fn capture_pid(
    pid: u32,
    duration: Option<Duration>,
    quiet: bool,
) -> anyhow::Result<Recording> {
    let comm = procfs::comm(pid).map_err(|_| input(format!("--pid {pid}: no such process")))?;
    if pid == std::process::id() {
        return Err(input("--pid: cinch does not record itself"));
    }
    signals::install().context("installing signal handlers")?;
    let mut probe = Probe::load(&probe::Config::process_tree())?;
    let started = SystemTime::now();
    probe.start_attached_target(SLOT, 0, pid)?;
    probe.attach_process(SLOT, pid)?;
    for child in procfs::descendants(pid) {
        probe.attach_process(SLOT, child)?;
    }
    // The process may have exited between the check and the registration (a zombie has: it
    // makes no more syscalls).
    if !procfs::running(pid) {
        return Err(input(format!(
            "--pid {pid}: the process exited before cinch could attach"
        )));
    }
    crate::ready::signal();
    let mut status = until_gone(&mut probe, duration, quiet)?;
    let span = Span {
        target: Target::Pid { pid, comm },
        startup_observed: false,
        started,
        ended: SystemTime::now(),
    };
    let recording = recording(Snapshot::read(&mut probe, SLOT, &Stats::default())?, span);
    drop(probe);
    status.finish();
    Ok(recording)
}

/// The recording's target for a container, as the engine describes it.
pub(crate) fn container_target(c: &Container) -> Target {
    Target::Container {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        engine: c.engine.as_str().to_owned(),
        command: c.command.clone(),
        secret_env: c.secret_env.clone(),
        volumes: c.volumes.clone(),
    }
}

/// A syscall the profile in force denies never reaches the tracepoint.
pub(crate) fn seccomp_warning(c: &Container) -> Option<String> {
    match c.seccomp {
        SeccompInForce::Restrictive => Some(format!(
            "container {} runs under a restrictive seccomp profile (the engine's default?): syscalls it denies are invisible to the recording; record under the permissive profile `cinch recording-profile` writes instead",
            c.name
        )),
        _ => None,
    }
}
