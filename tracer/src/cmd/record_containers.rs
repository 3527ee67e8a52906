//! `cinch record --new-containers`: every container that starts while COMMAND runs (or for
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
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use cinch_common::{EventKind, MNTNS_WATCH_NEW, TARGET_ARMED_EXEC, TARGET_ARMED_SECCOMP};

use super::record::{GRACE, SLOT, Status, TICK, build, container_target, seccomp_warning, write};
use crate::cli::RecordArgs;
use crate::containers::{self, Container};
use crate::error::input;
use crate::probe::{self, Probe};
use crate::signals;

/// Targets one run can hold; each container takes one. The syscall counters are per CPU:
/// 8 KiB per target and CPU (2 architectures x 512 numbers x u64), so 128 targets take 1 MiB
/// of kernel memory per CPU.
const SLOTS: u32 = 128;
/// After COMMAND exits, how long containers it started get to stop before recording ends.
const SETTLE: Duration = Duration::from_secs(2);

enum Slot {
    Container(Box<Container>),
    /// A new mount namespace that is not a container (a service with a private /tmp, unshare).
    NotContainer,
    /// Its first process exited before its cgroup could be read: recorded, but unnamed.
    Unidentified,
}

pub fn run(args: &RecordArgs) -> anyhow::Result<u8> {
    let _ = SLOT;
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("cinch-recordings"));
    prepare_dir(&dir)?;
    if args.command.is_empty() && args.duration.is_none() {
        eprintln!("cinch: recording new containers until interrupted (Ctrl-C)");
    }
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
    let mut command = match args.command.split_first() {
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
    let deadline = args.duration.map(|d| Instant::now() + d);
    let mut status = Status::new(args.quiet);
    let mut slots: BTreeMap<u32, Slot> = BTreeMap::new();
    let mut exit: Option<u8> = None;
    let mut settle_until: Option<Instant> = None;
    loop {
        let mut new = Vec::new();
        probe.drain_events(|e| {
            if e.kind == EventKind::NewTarget as u32 {
                new.push((e.slot, e.tgid));
            }
            status.event(e);
        });
        for (slot, tgid) in new {
            slots.insert(slot, identify(tgid));
        }
        status.tick(&probe);
        if let Some(child) = command.as_mut()
            && exit.is_none()
            && let Some(st) = child.try_wait().context("waiting for the command")?
        {
            exit = Some(exit_code(st));
            settle_until = Some(Instant::now() + SETTLE);
        }
        let containers_live = slots
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Container(_)))
            .try_fold(0u32, |n, (&slot, _)| probe.target(slot).map(|t| n + t.live))?;
        if settle_until.is_some_and(|t| containers_live == 0 || Instant::now() >= t)
            || signals::received().is_some()
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        std::thread::sleep(TICK);
    }
    if let Some(child) = command.as_mut()
        && exit.is_none()
        && let Some(sig) = signals::received()
    {
        // Interrupted: the command got the terminal's signal too, or is forwarded one. As
        // `record -- COMMAND` does, it gets the grace period to stop, and its status (or 128 +
        // the signal) is cinch's.
        if sig.from_process {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig.signal);
        }
        let until = Instant::now() + GRACE;
        while exit.is_none() && Instant::now() < until {
            exit = child.try_wait().ok().flatten().map(exit_code);
            std::thread::sleep(TICK);
        }
        exit = exit.or(Some(128 + sig.signal as u8));
    }

    let mut written: BTreeMap<String, usize> = BTreeMap::new();
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
                };
                &unidentified
            }
        };
        let state = probe.target(slot)?;
        if state.flags & (TARGET_ARMED_SECCOMP | TARGET_ARMED_EXEC) == 0 {
            eprintln!(
                "cinch: warning: container {} never reached its entrypoint (no seccomp install, no execve); nothing recorded",
                container.name
            );
            continue;
        }
        let by_seccomp = state.flags & TARGET_ARMED_SECCOMP != 0;
        let mut recording = build(
            &mut probe,
            slot,
            container_target(container),
            by_seccomp,
            started,
        )?;
        // From the seccomp install or, without a filter, from the first execve: the workload's
        // own start-up is in the recording either way.
        recording.entrypoint_observed = true;
        if !by_seccomp {
            recording.warnings.push(format!(
                "container {} ran without a seccomp filter: recording started at its first execve, so the runtime's own syscalls after that point are missing; generate with the runtime baseline",
                container.name
            ));
        }
        if let Some(w) = seccomp_warning(container) {
            recording.warnings.push(w);
        }
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
        let n = written.entry(base.clone()).or_insert(0);
        *n += 1;
        let file = if *n == 1 {
            format!("{base}.json")
        } else {
            format!("{base}-{n}.json")
        };
        write(&dir.join(file), &recording, args.quiet)?;
    }
    let stats = probe.stats()?;
    tracing::info!(?stats, "probe counters at the end of the recording");
    drop(probe);
    status.finish();
    if stats.slots_exhausted > 0 {
        eprintln!(
            "cinch: warning: {} new containers (or other new mount namespaces) found no free target slot ({SLOTS} per run) and were not recorded",
            stats.slots_exhausted
        );
    }
    if written.is_empty() {
        eprintln!("cinch: no container started while recording");
    }
    if not_containers > 0 {
        tracing::info!(
            not_containers,
            "new mount namespaces that were not containers were ignored"
        );
    }
    Ok(exit.unwrap_or(0))
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
        engine,
        id,
    });
    Slot::Container(Box::new(container))
}

fn exit_code(st: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    st.code()
        .map(|c| c as u8)
        .or_else(|| st.signal().map(|s| 128 + s as u8))
        .unwrap_or(1)
}

pub(super) fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(input(format!(
            "{} is not a directory; --new-containers writes one recording per container into a directory",
            dir.display()
        )));
    }
    profile_gen::fsutil::create_dir_all_for_user(dir).map_err(|e| {
        input(format!(
            "cannot create directory {}: {}",
            dir.display(),
            profile_gen::fsutil::io_message(&e)
        ))
    })?;
    crate::output::check_writable(&dir.join("probe.json"))
}
