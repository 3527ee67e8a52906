//! `cinch verify`: observe a workload without restricting it, then say what the profile and the
//! capability settings would deny.
//!
//! How: record, then compare. The workload runs as it would without the profile (no filter, its
//! own capabilities) and is recorded exactly as `cinch record` records it (a command and its
//! process tree, a running container, or every container a command starts). Each recorded
//! syscall (per architecture, with its count) is then put to the filter `cinch run` and runc would
//! load ([`profile_gen::seccomp::load::LoadPlan::verdict`]: Docker's conditions, skipped names,
//! the ENOSYS stub, the architectures), and each capability the workload needed (a granted check
//! that no rule leaves out, as `cinch generate --caps-out` decides) to the kept capabilities.
//!
//! Why not load the profile with a logging action instead: `SCMP_ACT_LOG` reports through the
//! audit log, which is often not configured (and not readable in containers), and a modified
//! filter is no longer the filter being verified. Recording needs neither, sees capabilities too,
//! and never breaks the workload. What it cannot see: syscall arguments (a rule with argument
//! conditions counts as allowing, and is listed), and, with `--container`, whatever the container
//! did before cinch attached.
//!
//! Beyond what was observed, each target gets a note for every syscall the kernel can make it
//! issue without asking ([`profile_gen::kernel_issued`]) that the profile denies: nothing was
//! denied yet, but the workload fails the day the kernel needs one. `--record-out` keeps the
//! observations as recordings, for the canary loop (README, "Use in CI").

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use profile_gen::allowlist::{self, CapReason};
use profile_gen::observed::Observed;
use profile_gen::recording::{Recording, Target};
use profile_gen::seccomp::load::{Action, ENOSYS, LoadPlan, Verdict};
use profile_gen::{Arch, Capability};
use profile_gen::{arg_rules, kernel_issued};
use serde::Serialize;

use super::record;
use crate::capture::{self, Captured};
use crate::cli::{VerifyArgs, VerifyFormat};
use crate::enforce::{self, privileges};
use crate::error::input;
use crate::spawn::User;

/// One recorded workload: a command, or one container.
struct Observation {
    recording: Recording,
    /// The command's exit status, when cinch ran it.
    exit: Option<u8>,
}

pub(super) fn run(args: VerifyArgs) -> anyhow::Result<u8> {
    let kept = if args.caps.is_some() || !args.cap_add.is_empty() {
        Some(privileges::kept_capabilities(
            args.caps.as_deref(),
            &args.cap_add,
        )?)
    } else {
        None
    };
    let bounding = kept.as_ref().map(|k| k.caps.clone()).unwrap_or_default();
    let plan = enforce::load_plan(&args.profile, &bounding)?;
    tracing::info!(
        profile = %args.profile.display(),
        default = %plan.default.describe(),
        architectures = ?plan.architectures,
        rules = plan.rules.len(),
        dropped_by_conditions = plan.dropped_by_conditions,
        skipped = ?plan.skipped,
        "profile loaded as runc loads it"
    );
    if let Some(path) = &args.output {
        crate::output::check_writable(path)?;
    }
    match &args.record_out {
        Some(dir) if args.containers.new_containers => record::prepare_dir(dir)?,
        Some(file) => crate::output::check_writable(file)?,
        None => {}
    }
    let observations = observe(&args)?;
    if let Some(path) = &args.record_out
        && !args.containers.new_containers
    {
        for o in &observations {
            record::write(path, &o.recording)?;
        }
    }
    let report = Report::build(&args.profile, &plan, kept.as_ref(), &observations);
    let text = match args.format {
        VerifyFormat::Text => report.render_text(),
        VerifyFormat::Json => {
            let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
            s.push('\n');
            s
        }
    };
    match &args.output {
        Some(path) => crate::output::write_file(path, text.as_bytes())?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| input(format!("cannot print the verdict on stdout: {e}")))?,
    }
    Ok(if report.denied { 1 } else { 0 })
}

fn observe(args: &VerifyArgs) -> anyhow::Result<Vec<Observation>> {
    if let Some(reference) = &args.containers.container {
        let recording = capture::capture_container(
            reference,
            record::engine(args.containers.runtime),
            args.duration,
            args.live.quiet,
        )?;
        return Ok(vec![Observation {
            recording,
            exit: None,
        }]);
    }
    if args.containers.new_containers {
        return observe_new_containers(args);
    }
    let user = args.user.as_deref().map(User::parse).transpose()?;
    let started = std::time::Instant::now();
    match capture::capture_command(&args.command, user, args.live.quiet)? {
        Captured::NotStarted(message) => Err(input(message)),
        Captured::Recorded {
            mut recording,
            exit,
        } => {
            if args.prove_caps {
                crate::prove::attach_proof(
                    &mut recording,
                    &args.command,
                    args.user.as_deref(),
                    exit,
                    started.elapsed(),
                    args.live.quiet,
                );
            }
            Ok(vec![Observation {
                recording,
                exit: Some(exit),
            }])
        }
    }
}

/// Every container that starts while COMMAND runs, as `record --new-containers` captures them;
/// written into the --record-out directory too, when given.
fn observe_new_containers(args: &VerifyArgs) -> anyhow::Result<Vec<Observation>> {
    let got = capture::capture_new_containers(&args.command, args.duration, args.live.quiet)?;
    if let Some(keep) = &args.record_out {
        record::write_new_containers(keep, &got)?;
    }
    if got.recordings.is_empty() {
        return Err(input(
            "no container started while observing, so nothing was verified; check that COMMAND starts a container",
        ));
    }
    let exit = got.exit.unwrap_or(0);
    let mut out: Vec<Observation> = got
        .recordings
        .into_iter()
        .map(|(_, recording)| Observation {
            recording,
            exit: None,
        })
        .collect();
    if let Some(first) = out.first_mut() {
        first.exit = Some(exit);
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
struct DeniedSyscall {
    arch: Arch,
    nr: u32,
    name: Option<String>,
    /// The recorded argument value the profile denies (`AF_NETLINK`), when only some values
    /// of the syscall are denied.
    #[serde(skip_serializing_if = "Option::is_none")]
    argument: Option<String>,
    /// The processes (comm) that used the denied argument value first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    processes: Vec<String>,
    count: u64,
    /// What happens under the profile.
    outcome: String,
}

/// A path written where the settings' read-only root leaves nothing writable.
#[derive(Debug, Serialize)]
struct DeniedWrite {
    path: String,
    /// The syscalls that wrote it.
    ops: Vec<String>,
    processes: Vec<String>,
    count: u64,
}

#[derive(Debug, Serialize)]
struct MissingCapability {
    capability: Capability,
    reasons: Vec<CapReason>,
}

#[derive(Debug, Serialize)]
struct TargetReport {
    target: String,
    processes: u64,
    syscalls_checked: usize,
    exit: Option<u8>,
    denied_syscalls: Vec<DeniedSyscall>,
    /// Allowed only by rules with argument conditions: not checkable from a recording.
    depends_on_arguments: Vec<String>,
    /// Needed (granted, no rule leaves it out) and not kept; `null` when no settings were given.
    missing_capabilities: Option<Vec<MissingCapability>>,
    needed_capabilities: BTreeSet<Capability>,
    /// Paths written outside the writable mounts of the settings' read-only root.
    denied_writes: Vec<DeniedWrite>,
    /// What the settings' user or limits would stop: ids other than the user's, more tasks
    /// at once than the pids limit.
    denied_settings: Vec<String>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    profile: PathBuf,
    capabilities_from: Option<String>,
    kept_capabilities: Option<BTreeSet<Capability>>,
    denied: bool,
    targets: Vec<TargetReport>,
    notes: Vec<String>,
}

fn target_label(rec: &Recording) -> String {
    match &rec.target {
        Target::Command { argv, .. } => format!("command `{}`", argv.join(" ")),
        Target::Pid { pid, comm } => format!("process {pid} ({comm})"),
        Target::Container {
            name,
            image,
            engine,
            ..
        } => format!("{engine} container {name} ({image})"),
    }
}

fn reason_text(r: &CapReason) -> String {
    let by: Vec<&str> = r.comms.iter().map(String::as_str).collect();
    format!(
        "{} via {} ({}x by {})",
        r.syscall.as_deref().unwrap_or("no syscall"),
        r.caller,
        r.count,
        if by.is_empty() {
            "?".to_owned()
        } else {
            by.join(", ")
        }
    )
}

/// glibc answers ENOSYS from clone3 by calling clone without namespace flags, and the profile
/// checks clone's flags: a denial is named for clone, which is what enforcement will refuse.
fn clone3_fallback(plan: &LoadPlan, arch: Arch, count: u64, denied: &mut Vec<DeniedSyscall>) {
    let Some(nr) = profile_gen::naming::syscall_number(arch, "clone") else {
        return;
    };
    let verdict = plan.verdict_for_value(
        arch,
        nr,
        Some("clone"),
        (0, profile_gen::arguments::CLONE_NS_MASK, 0),
    );
    if verdict.denies() {
        denied.push(DeniedSyscall {
            arch,
            nr,
            name: Some("clone".to_owned()),
            argument: Some("no namespace flags, glibc's fallback from clone3".to_owned()),
            processes: Vec::new(),
            count,
            outcome: verdict.describe(),
        });
    }
}

/// Syscalls the kernel can make the workload issue (restart_syscall, signal returns, vDSO time
/// fallbacks) that it did not happen to issue while observed, but that the profile denies: a
/// note each, since nothing was denied yet, but the workload fails the day the kernel needs one.
fn kernel_issued_denials(plan: &LoadPlan, rec: &Recording) -> Vec<String> {
    let observed: BTreeMap<Arch, BTreeSet<String>> = rec
        .syscalls
        .iter()
        .map(|(arch, calls)| (*arch, calls.iter().filter_map(|c| c.name.clone()).collect()))
        .collect();
    let arches: BTreeSet<Arch> = observed
        .keys()
        .copied()
        .chain(std::iter::once(rec.host.arch))
        .collect();
    let inherited = Observed::from_recording(PathBuf::new(), rec).inherited_handlers;
    let mut out = Vec::new();
    for (arch, names) in kernel_issued::required(&arches, &observed, &inherited) {
        for name in names {
            if observed.get(&arch).is_some_and(|s| s.contains(name)) {
                continue;
            }
            let Some(nr) = profile_gen::naming::syscall_number(arch, name) else {
                continue;
            };
            if let Verdict::Denied(_) | Verdict::EnosysStub | Verdict::BadArch =
                plan.verdict(arch, nr, Some(name))
            {
                let why = kernel_issued::rule(name).map_or("", |r| r.why);
                out.push(format!(
                    "the profile denies {arch} {name}, which the workload did not make here but the kernel can make it issue without asking ({why}); cinch generate always allows it"
                ));
            }
        }
    }
    out
}

impl Report {
    fn build(
        profile: &Path,
        plan: &LoadPlan,
        kept: Option<&privileges::Kept>,
        observations: &[Observation],
    ) -> Report {
        let mut notes = Vec::new();
        if !plan.skipped.is_empty() {
            notes.push(format!(
                "the profile names syscalls libseccomp {} does not know, skipped as runc skips them: {}",
                profile_gen::naming::libseccomp_version(),
                plan.skipped.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if kept.is_none() {
            notes.push("no --caps or --cap-add: the capabilities the workload needed are listed, not checked".to_owned());
        }
        let targets: Vec<TargetReport> = observations
            .iter()
            .map(|o| Self::target(plan, kept, o))
            .collect();
        let denied = targets.iter().any(|t| {
            !t.denied_syscalls.is_empty()
                || !t.denied_writes.is_empty()
                || !t.denied_settings.is_empty()
                || t.missing_capabilities
                    .as_ref()
                    .is_some_and(|m| !m.is_empty())
        });
        Report {
            profile: profile.to_owned(),
            capabilities_from: kept.map(|k| k.source.clone()),
            kept_capabilities: kept.map(|k| k.caps.clone()),
            denied,
            targets,
            notes,
        }
    }

    fn target(plan: &LoadPlan, kept: Option<&privileges::Kept>, o: &Observation) -> TargetReport {
        let rec = &o.recording;
        let mut denied_syscalls = Vec::new();
        let mut depends_on_arguments = Vec::new();
        let mut checked = 0;
        for (arch, calls) in &rec.syscalls {
            for call in calls {
                checked += 1;
                let verdict = plan.verdict(*arch, call.nr, call.name.as_deref());
                let label = call
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("syscall {}", call.nr));
                match verdict {
                    Verdict::Allowed => {}
                    Verdict::DependsOnArguments => {
                        let values = rec
                            .arguments
                            .get(arch)
                            .and_then(|v| v.iter().find(|a| a.nr == call.nr));
                        let Some(values) = values.filter(|v| !v.incomplete) else {
                            depends_on_arguments.push(format!("{arch} {label}"));
                            continue;
                        };
                        let mut undecided = false;
                        for v in &values.values {
                            match plan.verdict_for_value(
                                *arch,
                                call.nr,
                                call.name.as_deref(),
                                (values.index, values.mask, v.value),
                            ) {
                                Verdict::Allowed => {}
                                Verdict::DependsOnArguments => undecided = true,
                                denied => denied_syscalls.push(DeniedSyscall {
                                    arch: *arch,
                                    nr: call.nr,
                                    name: call.name.clone(),
                                    argument: Some(arg_rules::value_name(&label, v.value)),
                                    processes: v.comms.clone(),
                                    count: v.count,
                                    outcome: denied.describe(),
                                }),
                            }
                        }
                        if undecided {
                            depends_on_arguments.push(format!("{arch} {label}"));
                        }
                    }
                    Verdict::Denied(Action::Errno(errno))
                    | Verdict::Denied(Action::Trace(errno))
                        if label == "clone3" && u32::from(errno) == ENOSYS =>
                    {
                        clone3_fallback(plan, *arch, call.count, &mut denied_syscalls);
                    }
                    Verdict::EnosysStub if label == "clone3" => {
                        clone3_fallback(plan, *arch, call.count, &mut denied_syscalls);
                    }
                    Verdict::Denied(_) | Verdict::EnosysStub | Verdict::BadArch => {
                        denied_syscalls.push(DeniedSyscall {
                            arch: *arch,
                            nr: call.nr,
                            name: call.name.clone(),
                            argument: None,
                            processes: Vec::new(),
                            count: call.count,
                            outcome: verdict.describe(),
                        });
                    }
                }
            }
        }
        let mut notes: Vec<String> = rec.warnings.clone();
        notes.extend(kernel_issued_denials(plan, rec));
        let analysis = allowlist::analyze(&Observed::from_recording(PathBuf::new(), rec));
        let needed = analysis.settings.cap_add.clone();
        let missing_capabilities = kept.map(|k| {
            analysis
                .settings
                .reasons
                .iter()
                .filter(|(cap, _)| !k.caps.contains(cap))
                .map(|(cap, reasons)| MissingCapability {
                    capability: *cap,
                    reasons: reasons.clone(),
                })
                .collect::<Vec<_>>()
        });
        if !rec.startup_observed {
            notes.push(
                "observed after it started: what it did before cinch attached is not checked"
                    .to_owned(),
            );
        }
        if rec.lost.syscalls > 0 {
            notes.push(format!(
                "{} syscall observations were lost; the check is incomplete",
                rec.lost.syscalls
            ));
        }
        for (cap, why) in &analysis.settings.not_needed {
            notes.push(format!("granted {cap}, which it does not need: {why}"));
        }
        let refused: BTreeMap<Capability, Vec<CapReason>> = analysis.denied;
        for (cap, reasons) in &refused {
            notes.push(format!(
                "asked for {cap} and was refused (it ran without it): {}",
                reasons
                    .iter()
                    .map(reason_text)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let mut denied_writes = Vec::new();
        if let Some(fs) = kept
            .and_then(|k| k.filesystem.as_ref())
            .filter(|f| f.read_only)
        {
            let volumes: BTreeSet<String> = match &rec.target {
                Target::Container { volumes, .. } => volumes.iter().cloned().collect(),
                _ => BTreeSet::new(),
            };
            match &rec.writes {
                Some(writes) => {
                    for (path, w) in &writes.paths {
                        if !fs.allows(path, &volumes) {
                            denied_writes.push(DeniedWrite {
                                path: path.clone(),
                                ops: w.ops.iter().cloned().collect(),
                                processes: w.comms.iter().cloned().collect(),
                                count: w.count,
                            });
                        }
                    }
                    if !writes.unresolved.is_empty() || writes.lost > 0 {
                        notes.push(format!(
                            "{} writes could not be placed and are not checked against the read-only root",
                            writes.unresolved.len() as u64 + writes.lost
                        ));
                    }
                }
                None => notes.push(
                    "the recording does not say what it wrote: the read-only root is not checked"
                        .to_owned(),
                ),
            }
        }
        let denied_settings = user_and_limits(kept, rec, &mut notes);
        if let Some(code) = o.exit.filter(|&c| c != 0) {
            notes.push(format!(
                "the workload exited with status {code}; what it did not get to do is not checked"
            ));
        }
        TargetReport {
            target: target_label(rec),
            processes: rec.processes_seen,
            syscalls_checked: checked,
            exit: o.exit,
            denied_syscalls,
            depends_on_arguments,
            missing_capabilities,
            needed_capabilities: needed,
            denied_writes,
            denied_settings,
            notes,
        }
    }

    fn render_text(&self) -> String {
        let mut out = String::new();
        let caps_label = match (&self.capabilities_from, &self.kept_capabilities) {
            (Some(src), Some(k)) => {
                format!(" and the capabilities kept by {src} ({})", cap_list(k))
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "cinch verify: checked against {}{caps_label}\n",
            self.profile.display()
        ));
        let mut syscalls = 0;
        let mut capabilities = 0;
        let mut writes = 0;
        let mut settings = 0;
        for t in &self.targets {
            out.push_str(&format!(
                "{}: {} processes, {} distinct syscalls{}\n",
                t.target,
                t.processes,
                t.syscalls_checked,
                t.exit.map(|c| format!(", exit {c}")).unwrap_or_default()
            ));
            for d in &t.denied_syscalls {
                syscalls += 1;
                let mut argument = d
                    .argument
                    .as_deref()
                    .map(|a| format!("({a})"))
                    .unwrap_or_default();
                if !d.processes.is_empty() {
                    argument.push_str(&format!(" by {}", d.processes.join(", ")));
                }
                out.push_str(&format!(
                    "  denied syscall {} {}{argument} (nr {}): called {}; under the profile it {}\n",
                    d.arch,
                    d.name.as_deref().unwrap_or("(no name)"),
                    d.nr,
                    plural(d.count as usize, "time", "times"),
                    d.outcome
                ));
            }
            for m in t.missing_capabilities.iter().flatten() {
                capabilities += 1;
                out.push_str(&format!(
                    "  denied capability {}: needed for {}; not kept\n",
                    m.capability,
                    m.reasons
                        .iter()
                        .map(reason_text)
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
            for w in &t.denied_writes {
                writes += 1;
                out.push_str(&format!(
                    "  denied write {} ({} by {}): the root is read-only and no tmpfs or volume of the settings covers it\n",
                    w.path,
                    w.ops.join(", "),
                    w.processes.join(", ")
                ));
            }
            for d in &t.denied_settings {
                settings += 1;
                out.push_str(&format!("  denied setting: {d}\n"));
            }
            if !t.depends_on_arguments.is_empty() {
                out.push_str(&format!(
                    "  allowed only for some arguments (not checked): {}\n",
                    t.depends_on_arguments.join(", ")
                ));
            }
            if t.missing_capabilities.is_none() && !t.needed_capabilities.is_empty() {
                out.push_str(&format!(
                    "  needed capabilities: {}\n",
                    cap_list(&t.needed_capabilities)
                ));
            }
            for n in &t.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        if self.denied {
            let mut writes = if writes > 0 {
                format!(", {}", plural(writes, "write", "writes"))
            } else {
                String::new()
            };
            if settings > 0 {
                writes.push_str(&format!(", {}", plural(settings, "setting", "settings")));
            }
            out.push_str(&format!(
                "verify: DENIED: {}{writes} and {} would be denied\n",
                plural(syscalls, "syscall", "syscalls"),
                plural(capabilities, "capability", "capabilities")
            ));
        } else {
            out.push_str("verify: ok: nothing the workload did would be denied\n");
        }
        out
    }
}

/// What the settings' user and limits would stop the recorded workload from doing: a process
/// running with other ids than the user's, more tasks at once than the pids limit. Memory and
/// CPU above their limits are notes: the memory figure is an upper bound (the peaks of the
/// processes, summed), and a CPU limit slows, it does not stop.
fn user_and_limits(
    kept: Option<&privileges::Kept>,
    rec: &Recording,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut denied = Vec::new();
    let Some(kept) = kept else {
        return denied;
    };
    if let Some((uid, gid)) = kept.user.as_ref().and_then(|u| u.ids()) {
        for c in rec.credentials.iter().flatten() {
            if (c.euid, c.egid) != (uid, gid) {
                denied.push(format!(
                    "ran as uid {} gid {} ({}); the settings run it as {uid}:{gid}",
                    c.euid,
                    c.egid,
                    c.comms.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    let (Some(limits), Some(used)) = (kept.limits.as_ref(), rec.resources.as_ref()) else {
        return denied;
    };
    if let Some(pids) = limits.pids.filter(|&p| used.threads_peak > p) {
        denied.push(format!(
            "ran {} tasks at once; the pids limit is {pids}",
            used.threads_peak
        ));
    }
    if let Some(memory) = limits.memory.filter(|&m| used.memory_bytes > m) {
        notes.push(format!(
            "its processes' peak resident sets sum to {} MiB, above the memory limit of {} MiB (an upper bound: they need not peak together)",
            used.memory_bytes >> 20,
            memory >> 20
        ));
    }
    if let Some(millicpus) = limits.millicpus {
        let average = used.cpu_ms * 1000 / used.wall_ms.max(1);
        if average > u64::from(millicpus) {
            notes.push(format!(
                "it used {average} thousandths of a CPU on average, above the CPU limit of {millicpus}: it would run slower"
            ));
        }
    }
    denied
}

fn cap_list(caps: &BTreeSet<Capability>) -> String {
    if caps.is_empty() {
        "none".to_owned()
    } else {
        caps.iter()
            .map(|c| c.docker_name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use profile_gen::recording::{
        AttachPoints, CapabilityCheck, Host, Lost, SyscallCount, SyscallRef,
    };
    use profile_gen::seccomp::load::{Host as LoadHost, resolve};
    use profile_gen::seccomp::spec::parse_spec;

    fn recording() -> Recording {
        let call = |nr: u32, name: &str, count: u64| SyscallCount {
            nr,
            name: Some(name.to_owned()),
            count,
        };
        Recording {
            schema_version: profile_gen::SCHEMA_VERSION,
            cinch_version: "test".to_owned(),
            host: Host {
                kernel: "6.18.0".to_owned(),
                arch: Arch::X86_64,
                node: None,
            },
            attach: AttachPoints {
                syscalls: "tp_btf".to_owned(),
                capabilities: "tracepoint".to_owned(),
                lifecycle: "raw_tp".to_owned(),
                results: "tracepoint".to_owned(),
            },
            target: Target::Command {
                argv: vec!["srv".to_owned()],
                pid: 1,
            },
            startup_observed: true,
            entrypoint_observed: true,
            started_at: String::new(),
            ended_at: String::new(),
            processes_seen: 2,
            syscalls: [(
                Arch::X86_64,
                vec![
                    call(0, "read", 10),
                    call(40, "sendfile", 4),
                    call(59, "execve", 1),
                    call(105, "setuid", 2),
                ],
            )]
            .into_iter()
            .collect(),
            arguments: Default::default(),
            capabilities: vec![CapabilityCheck {
                cap: 7,
                name: Some("SETUID".to_owned()),
                granted: true,
                syscall: Some(SyscallRef {
                    arch: Arch::X86_64,
                    nr: 105,
                    name: Some("setuid".to_owned()),
                }),
                caller: "__sys_setuid".to_owned(),
                stack: vec![],
                helpers: vec![],
                own_cred: true,
                noaudit: false,
                result: Some(0),
                count: 2,
                comms: vec!["srv".to_owned()],
                noise: None,
            }],
            lost: Lost::default(),
            warnings: vec![],
            capability_proof: None,
            privileged_execs: Some(BTreeMap::new()),
            writes: Some(Default::default()),
            credentials: Some(Vec::new()),
            resources: None,
            endpoints: None,
            reads: None,
        }
    }

    fn plan(allow: &[&str]) -> LoadPlan {
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":{},"action":"SCMP_ACT_ALLOW"}}]}}"#,
            serde_json::to_string(allow).unwrap_or_default()
        );
        let spec = parse_spec(json.as_bytes(), Path::new("p.json")).expect("parses");
        let host = LoadHost {
            native: Arch::X86_64,
            kernel_release: "6.18.0".to_owned(),
            bounding: BTreeSet::new(),
        };
        resolve(&spec, &host, Path::new("p.json")).expect("loads")
    }

    fn kept(caps: &[Capability]) -> privileges::Kept {
        privileges::Kept {
            caps: caps.iter().copied().collect(),
            source: "s.json".to_owned(),
            filesystem: None,
            user: None,
            limits: None,
        }
    }

    #[test]
    fn names_exactly_what_is_missing() {
        let obs = [Observation {
            recording: recording(),
            exit: Some(0),
        }];
        let full = plan(&["read", "sendfile", "execve", "setuid"]);
        let ok = Report::build(
            Path::new("p.json"),
            &full,
            Some(&kept(&[Capability::SETUID])),
            &obs,
        );
        assert!(!ok.denied, "{}", ok.render_text());
        assert!(
            ok.render_text()
                .ends_with("verify: ok: nothing the workload did would be denied\n")
        );

        let minus = plan(&["read", "execve", "setuid"]);
        let r = Report::build(Path::new("p.json"), &minus, Some(&kept(&[])), &obs);
        assert!(r.denied);
        let t = &r.targets[0];
        let names: Vec<_> = t.denied_syscalls.iter().map(|d| d.name.clone()).collect();
        assert_eq!(names, [Some("sendfile".to_owned())]);
        assert_eq!(t.denied_syscalls[0].count, 4);
        let missing: Vec<_> = t
            .missing_capabilities
            .iter()
            .flatten()
            .map(|m| m.capability)
            .collect();
        assert_eq!(missing, [Capability::SETUID]);
        let text = r.render_text();
        assert!(text.contains("denied syscall x86_64 sendfile (nr 40): called 4 times; under the profile it fails with EPERM"), "{text}");
        assert!(
            text.contains(
                "denied capability SETUID: needed for setuid via __sys_setuid (2x by srv)"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("verify: DENIED: 1 syscall and 1 capability would be denied\n"),
            "{text}"
        );
    }

    #[test]
    fn without_settings_capabilities_are_listed_not_checked() {
        let obs = [Observation {
            recording: recording(),
            exit: Some(3),
        }];
        let r = Report::build(
            Path::new("p.json"),
            &plan(&["read", "sendfile", "execve", "setuid"]),
            None,
            &obs,
        );
        assert!(!r.denied);
        let text = r.render_text();
        assert!(text.contains("needed capabilities: SETUID"), "{text}");
        assert!(text.contains("exited with status 3"), "{text}");
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(
            json["targets"][0]["missing_capabilities"],
            serde_json::Value::Null
        );
        assert_eq!(json["targets"][0]["needed_capabilities"][0], "SETUID");
    }

    /// Settings that run the workload as nobody with a pids limit of 5: a process that ran as
    /// root and eight tasks at once are both named; memory and CPU above their limits are
    /// notes.
    #[test]
    fn names_what_the_user_and_limits_would_stop() {
        let mut rec = recording();
        rec.credentials = Some(vec![profile_gen::user::Credential {
            comms: ["srv".to_owned()].into(),
            count: 1,
            ..Default::default()
        }]);
        rec.resources = Some(profile_gen::limits::Usage {
            threads_peak: 8,
            processes_peak: 2,
            cpu_ms: 900,
            memory_bytes: 100 << 20,
            wall_ms: 1000,
            host_cpus: 2,
            incomplete: None,
        });
        let obs = [Observation {
            recording: rec,
            exit: Some(0),
        }];
        let mut k = kept(&[Capability::SETUID]);
        k.user = Some(profile_gen::user::UserSetting {
            user: Some("65534:65534".to_owned()),
            why: "test".to_owned(),
        });
        k.limits = Some(profile_gen::limits::LimitsSetting {
            pids: Some(5),
            memory: Some(64 << 20),
            millicpus: Some(500),
            why: "test".to_owned(),
        });
        let full = plan(&["read", "sendfile", "execve", "setuid"]);
        let r = Report::build(Path::new("p.json"), &full, Some(&k), &obs);
        assert!(r.denied);
        let text = r.render_text();
        for said in [
            "denied setting: ran as uid 0 gid 0 (srv); the settings run it as 65534:65534",
            "denied setting: ran 8 tasks at once; the pids limit is 5",
            "note: its processes' peak resident sets sum to 100 MiB, above the memory limit of 64 MiB",
            "note: it used 900 thousandths of a CPU on average, above the CPU limit of 500",
            "verify: DENIED: 0 syscalls, 2 settings and 0 capabilities would be denied",
        ] {
            assert!(text.contains(said), "{said}:\n{text}");
        }
    }
}
