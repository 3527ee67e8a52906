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
use cinch_common::{
    EventKind, MNTNS_WATCH_NEW, TARGET_ACTIVE, TARGET_ARMED_EXEC, TARGET_ARMED_SECCOMP,
};
use profile_gen::Recording;

use super::attach::{container_target, seccomp_warning};
use super::poll::{Flow, GRACE, Status, TICK, exit_code, poll};
use super::snapshot::{Snapshot, Span, recording};
use crate::containers::{self, Container};
use crate::error::input;
use crate::probe::{self, Probe, Stats};
use crate::signals;

/// Targets one run can hold; each container takes one. The syscall counters are per CPU:
/// 8 KiB per target and CPU (2 architectures x 512 numbers x u64), so 128 targets take 1 MiB
/// of kernel memory per CPU.
pub(crate) const SLOTS: u32 = 128;
/// After COMMAND exits, how long containers it started get to stop before recording ends.
const SETTLE: Duration = Duration::from_secs(2);

enum Slot {
    /// A container: its engine is asked about it on a thread of its own (an engine answers in
    /// tens of milliseconds, and the next new container's first process may be gone by then).
    Container(std::thread::JoinHandle<Container>),
    /// A container, with the engine's answer.
    Named(Box<Container>),
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

/// A target the kernel side started, and when.
struct Watched {
    slot: Slot,
    started: SystemTime,
    /// The probe's loss counters then: what it loses from then on goes with this target.
    stats: Stats,
}

/// What became of a target when it ended (or when recording stopped).
pub(crate) enum Finished {
    /// A container's recording, with the container as its engine described it.
    Recorded(Box<Container>, Box<Recording>),
    /// A container that never reached its entrypoint: nothing recorded.
    NeverStarted(Box<Container>),
    /// A new mount namespace that was not a container.
    NotContainer,
    /// A container not worth recording ([`Watcher::new`]), given up while it ran.
    GivenUp(Box<Container>),
}

/// How often ended targets are looked for.
const REAP_EVERY: Duration = Duration::from_millis(100);
/// How often every slot is looked at for a target whose start event was lost.
const ADOPT_EVERY: Duration = Duration::from_secs(1);

/// The targets the kernel side hands out in watch mode (`MNTNS_WATCH_NEW`): each is named when
/// it starts, and when its last process exits its recording is taken and its slot given back,
/// so a run holds only as many slots as containers run at once.
///
/// A target that is no container, or a container `wanted` says no to once its engine has
/// answered, is given up at once ([`Probe::give_up`]): its slot goes to the next container
/// instead of waiting for its processes to end, which a pod's sandbox does only with its pod.
pub(crate) struct Watcher {
    targets: BTreeMap<u32, Watched>,
    reaped: Option<Instant>,
    adopted: Option<Instant>,
    wanted: Box<dyn Fn(&Container) -> bool>,
}

impl Watcher {
    pub(crate) fn new(wanted: impl Fn(&Container) -> bool + 'static) -> Watcher {
        Watcher {
            targets: BTreeMap::new(),
            reaped: None,
            adopted: None,
            wanted: Box::new(wanted),
        }
    }

    /// Names the targets this tick's events started. Every new process's cgroup is read
    /// before any engine is asked (an engine answers in tens of milliseconds, and a process
    /// may be gone by then).
    pub(crate) fn started(
        &mut self,
        probe: &Probe,
        events: &[cinch_common::Event],
    ) -> anyhow::Result<()> {
        let started = SystemTime::now();
        let cgroups: Vec<(u32, Option<String>)> = events
            .iter()
            .filter(|e| e.kind == EventKind::NewTarget as u32)
            .map(|e| {
                let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", e.tgid)).ok();
                (e.slot, cgroup)
            })
            .collect();
        if cgroups.is_empty() {
            return Ok(());
        }
        let stats = probe.stats()?;
        for (slot, cgroup) in cgroups {
            tracing::debug!(slot, ?cgroup, "new target");
            self.targets.insert(
                slot,
                Watched {
                    slot: identify(cgroup.as_deref()),
                    started,
                    stats,
                },
            );
        }
        Ok(())
    }

    /// Containers with a live process.
    pub(crate) fn containers_live(&self, probe: &Probe) -> anyhow::Result<u32> {
        self.targets
            .iter()
            .filter(|(_, w)| matches!(w.slot, Slot::Container(_) | Slot::Named(_)))
            .try_fold(0u32, |n, (&slot, _)| probe.target(slot).map(|t| n + t.live))
    }

    /// Targets in use.
    pub(crate) fn active(&self) -> usize {
        self.targets.len()
    }

    /// The targets whose last process has exited (looked for every [`REAP_EVERY`]), each
    /// finished and its slot released.
    pub(crate) fn reap(&mut self, probe: &mut Probe) -> anyhow::Result<Vec<Finished>> {
        if self.reaped.is_some_and(|t| t.elapsed() < REAP_EVERY) {
            return Ok(Vec::new());
        }
        self.reaped = Some(Instant::now());
        if self.adopted.is_none_or(|t| t.elapsed() >= ADOPT_EVERY) {
            self.adopted = Some(Instant::now());
            self.adopt(probe)?;
        }
        let mut out = self.give_up_unwanted(probe)?;
        let mut ended = Vec::new();
        for &slot in self.targets.keys() {
            let state = probe.target(slot)?;
            // A target is created just before its first process joins it: not ended yet.
            if state.live == 0 && state.processes_seen > 0 {
                ended.push(slot);
            }
        }
        for slot in ended {
            out.push(self.finish(probe, slot, true)?);
        }
        Ok(out)
    }

    /// Takes the engines' answers that have come, and gives up the targets that are no
    /// container or that `wanted` says no to.
    fn give_up_unwanted(&mut self, probe: &mut Probe) -> anyhow::Result<Vec<Finished>> {
        let mut out = Vec::new();
        let slots: Vec<u32> = self.targets.keys().copied().collect();
        for slot in slots {
            let Some(watched) = self.targets.get_mut(&slot) else {
                continue;
            };
            if matches!(&watched.slot, Slot::Container(asking) if asking.is_finished()) {
                let Slot::Container(asking) =
                    std::mem::replace(&mut watched.slot, Slot::Unidentified)
                else {
                    unreachable!("matched just above");
                };
                let container = asking
                    .join()
                    .map_err(|_| anyhow::anyhow!("asking the engine about slot {slot} panicked"))?;
                watched.slot = Slot::Named(Box::new(container));
            }
            let given_up = match &watched.slot {
                Slot::NotContainer => Finished::NotContainer,
                Slot::Named(c) if !(self.wanted)(c) => Finished::GivenUp(c.clone()),
                _ => continue,
            };
            tracing::debug!(slot, "target given up");
            self.targets.remove(&slot);
            probe.give_up(slot)?;
            out.push(given_up);
        }
        Ok(out)
    }

    /// Takes in the targets the kernel side started whose event was lost (a full ring): as
    /// unidentified, so that their slots still come back when they end.
    fn adopt(&mut self, probe: &Probe) -> anyhow::Result<()> {
        for slot in 0..probe.slots() {
            if self.targets.contains_key(&slot) {
                continue;
            }
            if probe.target(slot)?.flags & TARGET_ACTIVE != 0 {
                tracing::debug!(slot, "a target without its start event");
                self.targets.insert(
                    slot,
                    Watched {
                        slot: Slot::Unidentified,
                        started: SystemTime::now(),
                        stats: probe.stats()?,
                    },
                );
            }
        }
        Ok(())
    }

    /// Every target still held, finished: recording ends. Their slots are not released (the
    /// probe is about to be dropped).
    pub(crate) fn finish_all(&mut self, probe: &mut Probe) -> anyhow::Result<Vec<Finished>> {
        let slots: Vec<u32> = self.targets.keys().copied().collect();
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            out.push(self.finish(probe, slot, false)?);
        }
        Ok(out)
    }

    fn finish(&mut self, probe: &mut Probe, slot: u32, release: bool) -> anyhow::Result<Finished> {
        let Some(watched) = self.targets.remove(&slot) else {
            anyhow::bail!("target slot {slot} is not watched");
        };
        let finished = finished(probe, slot, watched)?;
        if release {
            probe.release(slot)?;
        }
        Ok(finished)
    }
}

/// A finished target's recording, from the probe's maps.
fn finished(probe: &mut Probe, slot: u32, watched: Watched) -> anyhow::Result<Finished> {
    let unidentified = matches!(watched.slot, Slot::Unidentified);
    let container = match watched.slot {
        Slot::Container(asking) => match asking.join() {
            Ok(c) => Box::new(c),
            Err(_) => anyhow::bail!("asking the engine about target slot {slot} panicked"),
        },
        Slot::Named(c) => c,
        Slot::NotContainer => return Ok(Finished::NotContainer),
        Slot::Unidentified => Box::new(Container::unknown(
            containers::Engine::Docker,
            String::new(),
            format!("unidentified-{slot}"),
        )),
    };
    let state = probe.target(slot)?;
    if state.flags & (TARGET_ARMED_SECCOMP | TARGET_ARMED_EXEC) == 0 {
        return Ok(Finished::NeverStarted(container));
    }
    let by_seccomp = state.flags & TARGET_ARMED_SECCOMP != 0;
    let span = Span {
        target: container_target(&container),
        startup_observed: by_seccomp,
        started: watched.started,
        ended: SystemTime::now(),
    };
    let mut recording = recording(Snapshot::read(probe, slot, &watched.stats)?, span);
    // From the seccomp install or, without a filter, from the first execve: the workload's
    // own start-up is in the recording either way.
    recording.entrypoint_observed = true;
    if !by_seccomp {
        recording.warnings.push(format!(
            "container {} ran without a seccomp filter: recording started at its first execve, so the runtime's own syscalls after that point are missing; generate with the runtime baseline",
            container.name
        ));
    }
    recording.warnings.extend(seccomp_warning(&container));
    if unidentified {
        if let profile_gen::recording::Target::Container { engine, .. } = &mut recording.target {
            *engine = "unknown".to_owned();
        }
        recording.warnings.push(
            "this container's first process exited before cinch could read its cgroup: its engine, id and name are unknown (its syscalls were counted all the same)".to_owned(),
        );
    }
    Ok(Finished::Recorded(container, Box::new(recording)))
}

/// Records every container that starts while `command` runs (or for `duration`, or until
/// interrupted), each from its runtime's seccomp install (or its first execve without one).
pub(crate) fn capture_new_containers(
    command: &[String],
    duration: Option<Duration>,
    quiet: bool,
) -> anyhow::Result<NewContainers> {
    signals::install().context("installing signal handlers")?;
    let mut probe = Probe::load(&watch_config())?;
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
    // Every container is recorded; namespaces that are no container are given up.
    let mut watcher = Watcher::new(|_| true);
    let mut finished: Vec<Finished> = Vec::new();
    let mut exit: Option<u8> = None;
    let mut settle_until: Option<Instant> = None;
    poll(&mut probe, &mut status, |probe, events| {
        watcher.started(probe, events)?;
        finished.extend(watcher.reap(probe)?);
        if let Some(c) = child.as_mut()
            && exit.is_none()
            && let Some(st) = c.try_wait().context("waiting for the command")?
        {
            exit = Some(exit_code(st));
            settle_until = Some(Instant::now() + SETTLE);
        }
        let done = settle_until
            .is_some_and(|t| Instant::now() >= t || watcher.containers_live(probe).ok() == Some(0))
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
    finished.extend(watcher.finish_all(&mut probe)?);

    let mut out = NewContainers {
        recordings: Vec::new(),
        exit,
        slots_exhausted: probe.stats()?.slots_exhausted,
        never_started: Vec::new(),
    };
    drop(probe);
    status.finish();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut not_containers = 0;
    for f in finished {
        match f {
            Finished::Recorded(container, recording) => {
                let base = containers::recording_file_name(&container);
                let n = names.entry(base.clone()).or_insert(0);
                *n += 1;
                let file = if *n == 1 {
                    format!("{base}.json")
                } else {
                    format!("{base}-{n}.json")
                };
                out.recordings.push((file, *recording));
            }
            Finished::NeverStarted(container) => out.never_started.push(container.name),
            Finished::NotContainer => not_containers += 1,
            // Every container is wanted here.
            Finished::GivenUp(_) => {}
        }
    }
    if not_containers > 0 {
        tracing::info!(
            not_containers,
            "new mount namespaces that were not containers were ignored"
        );
    }
    Ok(out)
}

/// The probe's configuration for watching new containers: every mount namespace that exists
/// now is known, and all slots are the kernel side's to hand out.
pub(crate) fn watch_config() -> probe::Config {
    let known_mntns = containers::all_mntns();
    if known_mntns.values().all(|&id| id == 0) {
        tracing::warn!(
            "no mount namespace ids (ioctl NS_GET_MNTNS_ID: Linux 6.10 or later, and allowed by the seccomp profile): a new container given the inode number of one that ran when recording started will be missed"
        );
    }
    probe::Config {
        slots: SLOTS,
        reserved_slots: 0,
        mntns_mode: MNTNS_WATCH_NEW,
        known_mntns,
    }
}

/// Names the container a new target's first process belongs to, from its cgroup file.
fn identify(cgroup: Option<&str>) -> Slot {
    let Some(cgroup) = cgroup else {
        // Gone before userspace looked (a very short-lived container on a loaded machine):
        // its syscalls are in the kernel's counts all the same.
        return Slot::Unidentified;
    };
    let Some((engine, id)) = containers::container_in_cgroup(cgroup) else {
        return Slot::NotContainer;
    };
    let asking = std::thread::Builder::new()
        .name("engine".to_owned())
        .spawn(move || ask_engine(engine, id));
    match asking {
        Ok(handle) => Slot::Container(handle),
        // No thread to spare: the container goes unnamed rather than the loop blocked.
        Err(_) => Slot::Unidentified,
    }
}

/// What the engine says about container `id`, with its pod's labels and annotations when it is
/// a pod's.
fn ask_engine(engine: containers::Engine, id: String) -> Container {
    containers::inspect_new(engine, &id).unwrap_or_else(|| {
        let name = id.chars().take(12).collect();
        Container::unknown(engine, id, name)
    })
}
