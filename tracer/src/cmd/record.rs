//! `cinch record`: run or attach to a workload, aggregate its syscalls in the kernel, and write
//! the Recording when it ends (or on SIGINT/SIGTERM/SIGHUP).

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use cinch_common::{EventKind, SECCOMP_MODE_FILTER};
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use profile_gen::Arch;
use profile_gen::recording::{
    ArgumentValues, AttachPoints, Host, Lost, Recording, SyscallCount, Target, ValueCount,
};

use crate::capabilities;
use std::path::Path;

use crate::cli::{RecordArgs, RuntimeName};
use crate::containers::{self, Container, Engine, SeccompInForce};
use crate::error::{Classify as _, input};
use crate::probe::{self, CapabilitySource, Probe, table_arch};
use crate::spawn::{self, ExecFailed, User};
use crate::{procfs, signals};

pub(super) const SLOT: u32 = 0;
/// How long the workload gets to exit after a forwarded SIGINT/SIGTERM before the recording is
/// written anyway.
pub(super) const GRACE: Duration = Duration::from_secs(3);
pub(super) const TICK: Duration = Duration::from_millis(10);

pub fn run(args: RecordArgs) -> anyhow::Result<u8> {
    if args.new_containers {
        return super::record_containers::run(&args);
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| "cinch-recording.json".into());
    crate::output::check_writable(&output)?;
    if let Some(reference) = &args.container {
        return record_container(&args, &output, reference);
    }
    if let Some(pid) = args.pid {
        return record_pid(&args, &output, pid);
    }
    record_command(&args, &output)
}

fn record_command(args: &RecordArgs, output: &Path) -> anyhow::Result<u8> {
    let user = args.user.as_deref().map(User::parse).transpose()?;
    match capture_command(&args.command, user, args.quiet)? {
        Captured::NotStarted(message) => {
            eprintln!("cinch: {message}");
            Ok(127)
        }
        Captured::Recorded { recording, exit } => {
            write(output, &recording, args.quiet)?;
            Ok(exit)
        }
    }
}

/// The outcome of recording a command.
#[expect(
    clippy::large_enum_variant,
    reason = "made once per run and moved straight out; boxing buys nothing"
)]
pub enum Captured {
    /// The command ran; `exit` is its status (128 + signal when killed).
    Recorded { recording: Recording, exit: u8 },
    /// The command could not be started (not found, not executable, --user failed): a shell
    /// would exit 127.
    NotStarted(String),
}

/// Runs `argv` (optionally as `user`) and records it and every process it creates, from its
/// own execve until the last of them exits. SIGINT/SIGTERM/SIGHUP are forwarded when sent to
/// cinch alone; the recording is returned either way.
pub fn capture_command(
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
    loop {
        pump(&mut probe, &mut status)?;
        if exit.is_none() {
            exit = reap(pid)?;
        }
        let live = probe.target(SLOT)?.live;
        if exit.is_some() && live == 0 {
            break;
        }
        if let Some(sig) = signals::received()
            && sig.count > handled_signals
        {
            handled_signals = sig.count;
            if sig.count >= 2 {
                break; // a second signal: stop now
            }
            if sig.from_process && exit.is_none() {
                let _ = nix::sys::signal::kill(pid, sig.signal);
            }
            forwarded_at = Some(Instant::now());
        }
        if forwarded_at.is_some_and(|t| t.elapsed() > GRACE) {
            break;
        }
        std::thread::sleep(TICK);
    }
    let code = exit.unwrap_or_else(|| {
        let sig = signals::received().map_or(Signal::SIGTERM, |s| s.signal);
        128 + sig as u8
    });
    let target = Target::Command {
        argv: argv.to_vec(),
        pid: pid.as_raw() as u32,
    };
    let recording = build(&mut probe, SLOT, target, true, started)?;
    drop(probe);
    status.finish();
    Ok(Captured::Recorded {
        recording,
        exit: code,
    })
}

fn record_container(args: &RecordArgs, output: &Path, reference: &str) -> anyhow::Result<u8> {
    let engine = args.runtime.map(|r| match r {
        RuntimeName::Docker => Engine::Docker,
        RuntimeName::Podman => Engine::Podman,
        RuntimeName::Containerd => Engine::Containerd,
        RuntimeName::Crio => Engine::Crio,
    });
    let recording = capture_container(reference, engine, args.duration, args.quiet)?;
    write(output, &recording, args.quiet)?;
    Ok(0)
}

/// Attaches to a running container and records it until it stops, `duration` ends, or
/// SIGINT/SIGTERM/SIGHUP.
pub fn capture_container(
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
    let mut status = Status::new(quiet);
    let deadline = duration.map(|d| Instant::now() + d);
    loop {
        pump(&mut probe, &mut status)?;
        if !probe.target_alive(SLOT)?
            || signals::received().is_some()
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        std::thread::sleep(TICK);
    }
    let mut recording = build(
        &mut probe,
        SLOT,
        container_target(&container),
        false,
        started,
    )?;
    drop(probe);
    status.finish();
    if let Some(w) = seccomp_warning(&container) {
        recording.warnings.push(w);
    }
    Ok(recording)
}

pub(super) fn container_target(c: &Container) -> Target {
    Target::Container {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        engine: c.engine.as_str().to_owned(),
        command: c.command.clone(),
    }
}

/// A syscall the profile in force denies never reaches the tracepoint.
pub(super) fn seccomp_warning(c: &Container) -> Option<String> {
    match c.seccomp {
        SeccompInForce::Restrictive => Some(format!(
            "container {} runs under a restrictive seccomp profile (the engine's default?): syscalls it denies are invisible to the recording; record under the permissive profile `cinch recording-profile` writes instead",
            c.name
        )),
        _ => None,
    }
}

fn record_pid(args: &RecordArgs, output: &Path, pid: u32) -> anyhow::Result<u8> {
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
    let mut status = Status::new(args.quiet);
    let deadline = args.duration.map(|d| Instant::now() + d);
    loop {
        pump(&mut probe, &mut status)?;
        if !probe.target_alive(SLOT)?
            || signals::received().is_some()
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            break;
        }
        std::thread::sleep(TICK);
    }
    let target = Target::Pid { pid, comm };
    let recording = build(&mut probe, SLOT, target, false, started)?;
    drop(probe);
    status.finish();
    write(output, &recording, args.quiet)?;
    Ok(0)
}

/// The child's exit code, once it has exited (128 + signal when killed, like a shell).
fn reap(pid: Pid) -> anyhow::Result<Option<u8>> {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ok(Some(code as u8)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(128 + sig as u8)),
        Ok(_) => Ok(None),
        Err(nix::errno::Errno::EINTR) => Ok(None),
        Err(e) => Err(e).context("waiting for the command"),
    }
}

pub(super) fn pump(probe: &mut Probe, status: &mut Status) -> anyhow::Result<()> {
    probe.drain_events(|e| status.event(e));
    status.tick(probe);
    Ok(())
}

pub(super) fn build(
    probe: &mut Probe,
    slot: u32,
    target: Target,
    startup_observed: bool,
    started: SystemTime,
) -> anyhow::Result<Recording> {
    let native = Arch::native();
    // The last events, for who used which argument value.
    probe.drain_events(|_| {});
    let stats = probe.stats()?;
    tracing::info!(?stats, "probe counters at the end of the recording");
    let mut recording = Recording {
        schema_version: profile_gen::SCHEMA_VERSION,
        cinch_version: env!("CARGO_PKG_VERSION").to_owned(),
        host: Host {
            kernel: procfs::kernel_release(),
            arch: native,
        },
        attach: AttachPoints {
            syscalls: probe.syscall_attach.as_str().to_owned(),
            capabilities: probe.capability_source.as_str().to_owned(),
            lifecycle: "raw_tp".to_owned(),
        },
        target,
        startup_observed,
        entrypoint_observed: startup_observed,
        started_at: humantime::format_rfc3339_seconds(started).to_string(),
        ended_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        processes_seen: probe.processes_seen(slot)?,
        syscalls: Default::default(),
        arguments: Default::default(),
        capabilities: capabilities::build(&probe.cap_checks(slot)?, capabilities::symbols()),
        lost: Lost {
            syscalls: stats.syscall_out_of_range + stats.counter_miss,
            ring_buffer_drops: stats.ring_drop,
            map_full: stats.track_miss,
            capability_checks: stats.cap_miss,
        },
        warnings: Vec::new(),
    };
    for ((table, nr), count) in probe.counts(slot)? {
        let Some(arch) = table_arch(native, table) else {
            recording.warnings.push(format!(
                "syscall {nr} counted in a compat table this architecture does not have"
            ));
            continue;
        };
        let name = profile_gen::naming::syscall_name(arch, nr);
        if name.is_none() {
            recording.warnings.push(format!(
                "{arch} syscall number {nr} has no known name; kept by number"
            ));
        }
        recording
            .syscalls
            .entry(arch)
            .or_default()
            .push(SyscallCount { nr, name, count });
    }
    for ((table, nr), recorded) in probe.arg_values(slot)? {
        let Some(arch) = table_arch(native, table) else {
            continue;
        };
        let name = profile_gen::naming::syscall_name(arch, nr);
        let Some(entry) = name
            .as_deref()
            .and_then(|n| profile_gen::arguments::lookup(arch, n))
        else {
            continue;
        };
        recording
            .arguments
            .entry(arch)
            .or_default()
            .push(ArgumentValues {
                nr,
                name,
                index: entry.index,
                mask: entry.mask,
                values: recorded
                    .values
                    .into_iter()
                    .map(|(value, count)| ValueCount {
                        value,
                        count,
                        comms: recorded
                            .comms
                            .get(&value)
                            .map(|c| c.iter().cloned().collect())
                            .unwrap_or_default(),
                    })
                    .collect(),
                incomplete: recorded.lost,
            });
    }
    if stats.arg_miss > 0 {
        recording.warnings.push(format!(
            "{} argument values could not be stored: those syscalls get Docker's conditions instead of the values seen",
            stats.arg_miss
        ));
    }
    if let CapabilitySource::None(why) = &probe.capability_source {
        recording
            .warnings
            .push(format!("capabilities were not recorded: {why}"));
    }
    if stats.cap_miss > 0 {
        recording.warnings.push(format!(
            "{} capability checks could not be stored (too many distinct checks)",
            stats.cap_miss
        ));
    }
    if stats.stack_miss > 0 {
        recording.warnings.push(format!(
            "{} capability checks have no kernel stack (caller unknown)",
            stats.stack_miss
        ));
    }
    if stats.read_failed > 0 {
        recording.warnings.push(format!(
            "{} kernel reads failed; some syscalls may be filed under the wrong architecture",
            stats.read_failed
        ));
    }
    if recording.lost.syscalls > 0 {
        recording.warnings.push(format!(
            "{} syscall observations could not be stored (numbers out of range)",
            recording.lost.syscalls
        ));
    }
    if recording.lost.map_full > 0 {
        recording.warnings.push(format!(
            "{} new processes could not be tracked (pid beyond the tracking map)",
            recording.lost.map_full
        ));
    }
    Ok(recording)
}

pub(super) fn write(path: &Path, recording: &Recording, quiet: bool) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(recording).context("serializing the recording")?;
    json.push(b'\n');
    crate::output::write_file(path, &json)?;
    let distinct: usize = recording.syscalls.values().map(Vec::len).sum();
    let per_arch: Vec<String> = recording
        .syscalls
        .iter()
        .map(|(a, v)| format!("{a}: {}", v.len()))
        .collect();
    let lost = recording.lost.syscalls + recording.lost.map_full;
    for w in &recording.warnings {
        eprintln!("cinch: warning: {w}");
    }
    // The summary is printed with --quiet too (docs/CLI.md): --quiet only silences the live status.
    let _ = quiet;
    let needed: BTreeSet<&str> = recording
        .capabilities
        .iter()
        .filter(|c| c.granted && c.noise.is_none())
        .filter_map(|c| c.name.as_deref())
        .collect();
    let caps = if needed.is_empty() {
        "no capabilities".to_owned()
    } else {
        format!(
            "capabilities {}",
            needed.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    eprintln!(
        "cinch: recorded {distinct} distinct syscalls ({}) and {caps} from {} processes, {lost} lost -> {}",
        per_arch.join(", "),
        recording.processes_seen,
        path.display()
    );
    Ok(())
}

/// The one-line live status on a terminal.
pub(super) struct Status {
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
    pub(super) fn new(quiet: bool) -> Status {
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

    pub(super) fn event(&mut self, e: cinch_common::Event) {
        if e.kind == EventKind::Fork as u32 {
            self.processes += 1;
        } else if e.kind == EventKind::FirstSyscall as u32 && self.seen.insert((e.arch, e.nr)) {
            let arch = table_arch(Arch::native(), e.arch).unwrap_or(Arch::native());
            self.last_new = profile_gen::naming::syscall_name(arch, e.nr)
                .unwrap_or_else(|| format!("{arch}:{}", e.nr));
        }
    }

    pub(super) fn tick(&mut self, probe: &Probe) {
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

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
