//! `cinch generate`: recordings in, a minimized and validated profile (plus capability settings)
//! out.
//!
//! Minimized means the exact union of what the recordings observed, nothing else except the
//! documented runtime baseline and the syscalls the kernel itself makes a process issue
//! ([`crate::kernel_issued`]: restart_syscall, signal returns, vDSO time fallbacks), and clone3
//! answered with ENOSYS when it was not observed (seccomp runs before the tracer's hook, so a
//! workload recorded under Docker's default never shows clone3: glibc got ENOSYS and fell back
//! to clone; EPERM instead would break it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::allowlist::{self, CapAnalysis};
use crate::arch::Arch;
use crate::arg_rules::{self, ArgDecision};
use crate::baseline::{self, Runtime, Scope};
use crate::capability::Capability;
use crate::docker_default::docker_default;
use crate::formats::{self, Format, RenderError, Rendered};
use crate::kernel_issued;
use crate::naming::{self, NameSource};
use crate::observed::{ArgEvidence, ContainerStart, Observed};
use crate::profile::{self, ENOSYS, EPERM, Profile, STEADY_STATE_ONLY};
use crate::recording::Recording;
use crate::snippets::shell_quote;
use crate::validate::{self, Validated, ValidationError};

/// `--runtime-baseline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaselineChoice {
    /// Flag absent: runc's baseline when a recording did not observe the start; when every
    /// start was observed, the part of it that varies between starts.
    #[default]
    Auto,
    Use(Runtime),
    None,
}

/// `--default-errno`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultErrno {
    #[default]
    Eperm,
    Enosys,
}

impl DefaultErrno {
    pub fn errno(self) -> u32 {
        match self {
            DefaultErrno::Eperm => EPERM,
            DefaultErrno::Enosys => ENOSYS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenerateOptions {
    pub baseline: BaselineChoice,
    pub default_errno: DefaultErrno,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("no recording given; pass at least one file written by `cinch record`")]
    NoRecordings,
    #[error("recording {} has no syscalls; the recording failed or the workload did nothing, so record it again (cinch never writes an empty profile)", path.display())]
    EmptyRecording { path: PathBuf },
    #[error(
        "none of the {count} syscall numbers in {} can be named by libseccomp {libseccomp} or cinch's syscall table (e.g. {example}); the recording is damaged or comes from a much newer kernel, so update cinch or record again (cinch never writes an empty profile)",
        what
    )]
    NothingNamed {
        what: String,
        count: usize,
        example: String,
        libseccomp: &'static str,
    },
    #[error("the generated profile failed validation: {0}")]
    Validation(#[from] ValidationError),
}

/// A syscall number nobody can name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnnamedSyscall {
    pub arch: Arch,
    pub nr: u32,
    /// Names the recordings gave it (from a newer cinch), which cannot be checked here.
    pub recorded_as: BTreeSet<String>,
}

/// A syscall only the built-in table knows: newer than the installed libseccomp.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NewerThanLibseccomp {
    pub arch: Arch,
    pub nr: u32,
    pub name: String,
}

/// The observed syscalls, named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedObservations {
    pub by_arch: BTreeMap<Arch, BTreeSet<String>>,
    pub newer_than_libseccomp: BTreeSet<NewerThanLibseccomp>,
    pub unnamed: BTreeSet<UnnamedSyscall>,
}

pub fn name_observations(obs: &Observed) -> NamedObservations {
    let mut out = NamedObservations::default();
    for (arch, table) in &obs.syscalls {
        for (nr, recorded) in table {
            match naming::resolve(*arch, *nr) {
                Some(n) => {
                    if n.source == NameSource::TableOnly {
                        out.newer_than_libseccomp.insert(NewerThanLibseccomp {
                            arch: *arch,
                            nr: *nr,
                            name: n.name.clone(),
                        });
                    }
                    out.by_arch.entry(*arch).or_default().insert(n.name);
                }
                None => {
                    out.unnamed.insert(UnnamedSyscall {
                        arch: *arch,
                        nr: *nr,
                        recorded_as: recorded.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The runtime baseline that went into the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedBaseline {
    pub runtime: Runtime,
    /// The whole baseline, or only its calls that vary between starts.
    pub scope: Scope,
    /// Added because these recordings did not observe the start (flag absent, whole scope), or
    /// because these container recordings each observed one start (varying scope); empty when
    /// the user asked for it.
    pub because: BTreeSet<PathBuf>,
    /// Baseline syscalls the recordings had not observed themselves.
    pub added: BTreeSet<String>,
}

/// Everything `generate` produced, for writing and for the summary.
#[derive(Debug, Clone)]
pub struct Generated {
    pub recordings: Vec<PathBuf>,
    pub observed: Observed,
    pub named: NamedObservations,
    pub baseline: Option<AppliedBaseline>,
    /// clone3 was recorded, and is answered with ENOSYS all the same (glibc falls back to clone).
    pub clone3_refused: bool,
    /// What is allowed of each argument-sensitive syscall in the profile.
    pub arguments: BTreeMap<String, ArgDecision>,
    pub profile: Profile,
    pub validated: Validated,
    pub caps: CapAnalysis,
}

/// Generates from recordings read from the given paths. Each recording must have syscalls and at
/// least one that can be named.
pub fn generate(
    recordings: &[(PathBuf, Recording)],
    opts: &GenerateOptions,
) -> Result<Generated, GenerateError> {
    if recordings.is_empty() {
        return Err(GenerateError::NoRecordings);
    }
    let mut merged = Observed::default();
    for (path, rec) in recordings {
        if rec.syscall_entries() == 0 {
            return Err(GenerateError::EmptyRecording { path: path.clone() });
        }
        let obs = Observed::from_recording(path.clone(), rec);
        check_nameable(&obs, &format!("recording {}", path.display()))?;
        merged.merge_in(&obs);
    }
    generate_observed(
        merged,
        recordings.iter().map(|(p, _)| p.clone()).collect(),
        opts,
    )
}

fn check_nameable(obs: &Observed, what: &str) -> Result<(), GenerateError> {
    let named = name_observations(obs);
    if named.by_arch.values().all(BTreeSet::is_empty) {
        let example = named
            .unnamed
            .iter()
            .next()
            .map(|u| format!("{} number {}", u.arch, u.nr))
            .unwrap_or_else(|| "none".to_owned());
        return Err(GenerateError::NothingNamed {
            what: what.to_owned(),
            count: named.unnamed.len(),
            example,
            libseccomp: naming::libseccomp_version(),
        });
    }
    Ok(())
}

/// Generates from merged observations (the core of `generate`; also what the property tests
/// drive).
pub fn generate_observed(
    observed: Observed,
    recordings: Vec<PathBuf>,
    opts: &GenerateOptions,
) -> Result<Generated, GenerateError> {
    if observed.syscall_count() == 0 {
        return Err(GenerateError::EmptyRecording {
            path: recordings
                .first()
                .cloned()
                .unwrap_or_else(|| PathBuf::from("(merged recordings)")),
        });
    }
    check_nameable(&observed, "the recordings")?;
    let named = name_observations(&observed);
    let mut by_arch = named.by_arch.clone();
    by_arch.retain(|_, names| !names.is_empty());

    let chosen = match opts.baseline {
        BaselineChoice::None => None,
        BaselineChoice::Use(rt) => Some((rt, Scope::Whole, BTreeSet::new())),
        // A recording that observed the same image's start has the runtime's start-up calls:
        // merged with attach recordings of it (the canary loop), it covers their start too.
        // But one start shows only the calls that start happened to make: those that vary
        // between starts are added for every container.
        BaselineChoice::Auto => {
            let uncovered = observed.uncovered_starts();
            let starts: BTreeSet<PathBuf> = observed
                .container_starts
                .iter()
                .map(|c| c.recording.clone())
                .collect();
            if !uncovered.is_empty() {
                Some((Runtime::Runc, Scope::Whole, uncovered))
            } else if !starts.is_empty() {
                Some((Runtime::Runc, Scope::Varies, starts))
            } else {
                None
            }
        }
    };
    let mut applied = None;
    if let Some((rt, scope, because)) = chosen {
        let mut added = BTreeSet::new();
        // The runtime runs natively: its calls belong to the host architectures.
        for host in &observed.hosts {
            let names = by_arch.entry(*host).or_default();
            for name in baseline::baseline(rt).calls(scope) {
                if naming::syscall_number(*host, name).is_some() && names.insert(name.clone()) {
                    added.insert(name.clone());
                }
            }
        }
        applied = Some(AppliedBaseline {
            runtime: rt,
            scope,
            because,
            added,
        });
    }

    let architectures: BTreeSet<Arch> = observed
        .hosts
        .iter()
        .copied()
        .chain(by_arch.keys().copied())
        .collect();
    let observed_or_baseline: BTreeSet<String> = by_arch.values().flatten().cloned().collect();
    for (arch, names) in
        kernel_issued::required(&architectures, &by_arch, &observed.inherited_handlers)
    {
        let have = by_arch.entry(arch).or_default();
        have.extend(names.into_iter().map(str::to_owned));
    }
    let mut caps = allowlist::analyze(&observed);
    caps.settings.network = Some(crate::network::analyze(&observed));
    caps.settings.secrets = observed.secrets.iter().cloned().collect();
    caps.settings.secret_files = observed.secret_files.iter().cloned().collect();
    caps.settings.images = observed
        .images
        .iter()
        .filter_map(|(image, reads)| crate::image::analyze(image, reads))
        .collect();
    caps.settings.no_new_privileges = Some(crate::no_new_privs::analyze(&observed));
    caps.settings.limits = Some(crate::limits::analyze(
        &observed.usages,
        &observed.usage_unknown,
    ));
    let filesystem = crate::filesystem::analyze(
        Some(&observed.writes),
        &observed.writes_unknown,
        &observed.volumes,
    );
    let low_ports: BTreeSet<u16> = observed
        .endpoints
        .iter()
        .filter(|e| e.call == "bind" && e.port != 0 && e.port < 1024)
        .map(|e| e.port)
        .collect();
    caps.settings.user = Some(crate::user::analyze(
        &observed.credentials,
        &observed.credentials_unknown,
        &crate::user::RootEvidence {
            cap_add: &caps.settings.cap_add,
            reads: observed.reads_unknown.is_empty().then_some(&observed.reads),
            writes: observed
                .writes_unknown
                .is_empty()
                .then_some(&observed.writes),
            filesystem: &filesystem,
            low_ports: &low_ports,
        },
    ));
    caps.settings.filesystem = Some(filesystem);
    let kept = &caps.settings.cap_add;
    // clone3's flags are behind a pointer: no rule can keep it from creating namespaces. As
    // Docker's default does (without SYS_ADMIN), it is answered with ENOSYS even when recorded;
    // glibc then falls back to clone, whose namespace flags the rules check, so clone is allowed
    // for the flags glibc's fallback uses (none) even if the recording never saw it.
    let clone3_recorded = by_arch.values().any(|n| n.contains("clone3"));
    let clone3_refused = clone3_recorded && !kept.contains(&Capability::SYS_ADMIN);
    let mut extra: BTreeMap<String, ArgEvidence> = BTreeMap::new();
    if clone3_refused {
        for names in by_arch.values_mut() {
            names.remove("clone3");
        }
        for host in &observed.hosts {
            if naming::syscall_number(*host, "clone").is_some() {
                by_arch.entry(*host).or_default().insert("clone".to_owned());
            }
        }
        extra.insert("clone".to_owned(), ArgEvidence::Known([0].into()));
    }
    let allow: BTreeSet<String> = by_arch.values().flatten().cloned().collect();
    let kernel_only: BTreeSet<String> = allow
        .difference(&observed_or_baseline)
        .filter(|n| !(clone3_refused && *n == "clone"))
        .cloned()
        .collect();
    let enosys: BTreeSet<String> = if allow.contains("clone3") {
        BTreeSet::new()
    } else {
        ["clone3".to_owned()].into_iter().collect()
    };
    if let Some(b) = &applied {
        // The baseline lists names, not values: runc's own prctl options are not the workload's.
        for name in baseline::baseline(b.runtime).calls(b.scope) {
            extra.insert(
                name.clone(),
                ArgEvidence::Unknown(
                    [
                        "the container runtime's baseline needs it with values no recording shows"
                            .to_owned(),
                    ]
                    .into(),
                ),
            );
        }
    }
    let arguments = arg_rules::decide(&observed, &allow, kept, &extra);
    let conditions = arguments
        .iter()
        .filter(|(_, d)| !d.alternatives.is_empty())
        .map(|(name, d)| (name.clone(), d.alternatives.clone()))
        .collect();
    let profile = Profile {
        default_errno: opts.default_errno.errno(),
        architectures,
        allow,
        kernel_issued: kernel_only,
        conditions,
        enosys,
        baseline: applied.as_ref().map(|b| (b.runtime, b.scope)),
        steady_state_only: observed
            .container_starts
            .iter()
            .filter(|c| {
                observed.uncovered_starts().contains(&c.recording) && !c.entrypoint_observed
            })
            .map(|c| c.name.clone())
            .collect(),
    };
    let validated = validate::validate(&profile)?;
    Ok(Generated {
        recordings,
        observed,
        named,
        baseline: applied,
        clone3_refused,
        arguments,
        profile,
        validated,
        caps,
    })
}

/// The engine's command-line tool that starts a container again, for the engines that have one.
fn engine_cli(engine: &str) -> Option<&'static str> {
    match engine {
        "docker" => Some("docker"),
        "podman" => Some("podman"),
        "containerd" => Some("nerdctl"),
        _ => None,
    }
}

/// What `generate` says of a container recorded only after it started: the profile covers its
/// steady state, and the commands that record its start-up and merge it with `recordings`.
pub fn startup_advice(start: &ContainerStart, recordings: &[PathBuf]) -> Vec<String> {
    let mut out = vec![format!(
        "start-up: {} attached to {} container {} ({}) while it ran: this profile covers its {STEADY_STATE_ONLY}, and the container may not start under it (its own start-up calls, such as socket, bind or listen, were never seen; the runtime baseline stands in for the runtime's calls only). Record the start-up and merge it:",
        start.recording.display(),
        start.engine,
        start.name,
        if start.image.is_empty() {
            "image unknown"
        } else {
            &start.image
        }
    )];
    let merged: Vec<String> = recordings
        .iter()
        .map(|p| shell_quote(&p.display().to_string()))
        .collect();
    match engine_cli(&start.engine).filter(|_| !start.image.is_empty()) {
        Some(cli) => {
            let mut run = format!(
                "sudo cinch record --new-containers -o startup -- {cli} run --rm --security-opt seccomp=recording-profile.json"
            );
            if let Some((entrypoint, args)) = start.command.split_first() {
                run.push_str(&format!(" --entrypoint {}", shell_quote(entrypoint)));
                run.push_str(&format!(" {}", shell_quote(&start.image)));
                for a in args {
                    run.push_str(&format!(" {}", shell_quote(a)));
                }
            } else {
                run.push_str(&format!(" {}", shell_quote(&start.image)));
            }
            out.push("    cinch recording-profile -o recording-profile.json".to_owned());
            out.push(format!("    {run}"));
            out.push(format!(
                "    cinch generate -o PROFILE {} startup/*.json",
                merged.join(" ")
            ));
            out.push(format!(
                "  (with the container's other `{cli} run` options: ports, volumes, environment, user; stop it once it serves)"
            ));
        }
        None => {
            out.push(format!(
                "    sudo cinch record --new-containers -o startup, then start the container again (e.g. restart its pod), then: cinch generate -o PROFILE {} startup/*.json",
                merged.join(" ")
            ));
        }
    }
    out
}

impl Generated {
    pub fn render(
        &self,
        format: Format,
        output: &Path,
        name: Option<&str>,
    ) -> Result<Rendered, RenderError> {
        self.render_in(format, output, name, None)
    }

    /// [`Generated::render`], with the namespace an SPO resource goes in.
    pub fn render_in(
        &self,
        format: Format,
        output: &Path,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Rendered, RenderError> {
        // A file given twice is one recording, as the merge counts it.
        let recordings: BTreeSet<&PathBuf> = self.recordings.iter().collect();
        let meta = formats::SpoMeta {
            name,
            namespace,
            recordings: recordings.len(),
            nodes: &self.observed.nodes,
        };
        formats::render(&self.profile, format, output, &meta, &self.caps.settings)
    }

    /// The allowed names per architecture (what the profile lets through on each).
    pub fn allowed_by_arch(&self) -> BTreeMap<Arch, BTreeSet<String>> {
        profile::allowed_by_arch(&self.profile)
    }

    /// The short summary `cinch generate` prints on stderr, one line per item.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        let dd = docker_default();
        let allowed = self.allowed_by_arch();
        let per_arch: Vec<String> = allowed
            .iter()
            .map(|(a, n)| format!("{a} {}", n.len()))
            .collect();
        let x86_64 = allowed.get(&Arch::X86_64);
        let mut line = format!(
            "syscalls: {} names allowed (per architecture: {})",
            self.profile.allow.len(),
            per_arch.join(", ")
        );
        if let Some(names) = x86_64 {
            let docker = dd.allowed_count();
            if names.len() <= docker {
                line.push_str(&format!(
                    "; Docker's default ({}) allows {docker} on x86_64, {} more",
                    dd.version_label(),
                    docker - names.len()
                ));
            } else {
                line.push_str(&format!(
                    "; Docker's default ({}) allows {docker} on x86_64",
                    dd.version_label()
                ));
            }
            let beyond: Vec<&str> = names
                .iter()
                .filter(|n| !dd.allows(n))
                .map(String::as_str)
                .collect();
            out.push(line);
            if !beyond.is_empty() {
                out.push(format!(
                    "  not allowed by Docker's default: {}",
                    beyond.join(", ")
                ));
            }
        } else {
            out.push(line);
        }
        if !self.arguments.is_empty() {
            out.push("arguments:".to_owned());
            for d in self.arguments.values() {
                out.push(format!("  {}", arg_rules::describe(d)));
            }
            let beyond: Vec<String> = self
                .arguments
                .values()
                .flat_map(|d| {
                    d.beyond_docker.iter().map(|v| {
                        let by = self
                            .observed
                            .argument_comms
                            .get(&(d.name.clone(), *v))
                            .filter(|c| !c.is_empty())
                            .map(|c| {
                                format!(" by {}", c.iter().cloned().collect::<Vec<_>>().join(", "))
                            })
                            .unwrap_or_default();
                        format!("{}({}){by}", d.name, arg_rules::value_name(&d.name, *v))
                    })
                })
                .collect();
            if !beyond.is_empty() {
                out.push(format!(
                    "  beyond Docker's default, allowed because the workload did it: {}",
                    beyond.join(", ")
                ));
            }
        }
        if self.clone3_refused {
            out.push("clone3: recorded, but answered with ENOSYS all the same: its flags are behind a pointer, where no rule can check them; glibc falls back to clone, allowed without namespace flags (as Docker's default does without SYS_ADMIN)".to_owned());
        } else if !self.profile.enosys.is_empty() {
            out.push(format!(
                "{}: not recorded, answered with ENOSYS so glibc falls back to clone",
                self.profile
                    .enosys
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !self.profile.kernel_issued.is_empty() {
            let names: Vec<&str> = self
                .profile
                .kernel_issued
                .iter()
                .map(String::as_str)
                .collect();
            out.push(format!(
                "kernel-issued: {} allowed though not recorded: the kernel makes a process issue them (a wait resumed after a signal, a signal handler's return, a time query the vDSO hands to the kernel); `cinch report` says why for each",
                names.join(", ")
            ));
        }
        let uncovered = self.observed.uncovered_starts();
        for start in self
            .observed
            .container_starts
            .iter()
            .filter(|c| uncovered.contains(&c.recording) && !c.entrypoint_observed)
        {
            out.extend(startup_advice(start, &self.recordings));
        }
        let attached = self.observed.startup_unobserved();
        if self
            .baseline
            .as_ref()
            .is_none_or(|b| b.scope != Scope::Whole)
            && !attached.is_empty()
            && self.observed.uncovered_starts().is_empty()
        {
            let observed: Vec<String> = self
                .observed
                .container_starts
                .iter()
                .filter(|c| c.observed)
                .map(|c| c.recording.display().to_string())
                .collect();
            let attached: Vec<String> = attached.iter().map(|p| p.display().to_string()).collect();
            out.push(format!(
                "runtime baseline: not added whole: {} observed the start of the same image that {} attached to",
                observed.join(", "),
                attached.join(", ")
            ));
        }
        if let Some(b) = &self.baseline {
            let data = baseline::baseline(b.runtime);
            let added = if b.added.is_empty() {
                "nothing new".to_owned()
            } else {
                format!(
                    "{} syscalls not recorded ({})",
                    b.added.len(),
                    b.added.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            if b.scope == Scope::Varies {
                out.push(format!(
                    "runtime baseline: {} {} ({}) calls that vary between starts added {added}: a recording shows the calls of the one start it observed, and {}'s own calls differ from start to start; --runtime-baseline none leaves them out",
                    b.runtime, data.version, data.status, b.runtime
                ));
            } else if b.because.is_empty() {
                out.push(format!(
                    "runtime baseline: {} {} ({}) added {added}",
                    b.runtime, data.version, data.status
                ));
            } else {
                let files: Vec<String> =
                    b.because.iter().map(|p| p.display().to_string()).collect();
                out.push(format!(
                    "runtime baseline: {} {} ({}) added {added}, because {} did not observe the container start (startup_observed: false); --runtime-baseline none leaves it out, --runtime-baseline crun picks crun's",
                    b.runtime,
                    data.version,
                    data.status,
                    files.join(", ")
                ));
            }
        }
        let settings = &self.caps.settings;
        if settings.cap_add.is_empty() {
            out.push("capabilities: cap_drop ALL, cap_add nothing (no granted capability check was a real need)".to_owned());
        } else {
            let add: Vec<&str> = settings.cap_add.iter().map(|c| c.docker_name()).collect();
            out.push(format!(
                "capabilities: cap_drop ALL, cap_add {}",
                add.join(", ")
            ));
            for (cap, reasons) in &settings.reasons {
                let why: Vec<String> = reasons.iter().map(reason_text).collect();
                out.push(format!("  {cap}: {}", why.join("; ")));
            }
            let outside: Vec<&str> = settings
                .outside_docker_default()
                .iter()
                .map(|c| c.docker_name())
                .collect();
            if !outside.is_empty() {
                out.push(format!(
                    "  outside Docker's default capabilities: {}",
                    outside.join(", ")
                ));
            }
            for (cap, note) in &settings.notes {
                out.push(format!("  note: {cap} is {note}"));
            }
        }
        for (cap, why) in &settings.not_needed {
            out.push(format!("  granted, not added: {cap} is {why}"));
        }
        if let Some(network) = &settings.network {
            out.push(format!("network: {}: {}", network.label(), network.why));
        }
        if let Some(fs) = &settings.filesystem {
            out.push(format!("filesystem: {}: {}", fs.label(), fs.why));
        }
        if let Some(u) = &settings.user {
            out.push(format!("user: {}: {}", u.label(), u.why));
        }
        if let Some(l) = &settings.limits {
            out.push(format!("limits: {}: {}", l.label(), l.why));
        }
        for i in &settings.images {
            out.push(format!("image {}: {}", i.image, i.why));
        }
        if let Some(n) = &settings.no_new_privileges {
            out.push(format!(
                "no-new-privileges: {}: {}",
                if n.set { "set" } else { "not set" },
                n.why
            ));
        }
        for secret in &settings.secrets {
            out.push(format!("warning: {}", secret.warning()));
        }
        for secret in &settings.secret_files {
            out.push(format!("warning: {}", secret.warning()));
        }
        for (cap, reasons) in &self.caps.denied {
            let why: Vec<String> = reasons.iter().map(reason_text).collect();
            out.push(format!(
                "  denied, not added: {cap} ({}); the workload ran without it",
                why.join("; ")
            ));
        }
        for nr in &self.caps.unknown {
            out.push(format!(
                "warning: capability number {nr} is unknown to this cinch and was not added"
            ));
        }
        for n in &self.named.newer_than_libseccomp {
            out.push(format!(
                "warning: {} ({} number {}) is newer than libseccomp {} here: it is in the profile but could not be checked, and a runtime linked with this libseccomp ignores the name (the call is then denied)",
                n.name,
                n.arch,
                n.nr,
                naming::libseccomp_version()
            ));
        }
        for u in &self.named.unnamed {
            let recorded = if u.recorded_as.is_empty() {
                String::new()
            } else {
                format!(
                    " (recorded as {})",
                    u.recorded_as.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            };
            out.push(format!(
                "warning: {} syscall number {}{recorded} cannot be named by libseccomp {} or cinch's syscall table; it is left out of the profile",
                u.arch,
                u.nr,
                naming::libseccomp_version()
            ));
        }
        for (path, lost) in &self.observed.lost_syscalls {
            out.push(format!(
                "warning: {} lost {lost} syscall observations; the profile may miss syscalls, record again",
                path.display()
            ));
        }
        for (path, warnings) in &self.observed.warnings {
            for w in warnings {
                out.push(format!("warning: {}: {w}", path.display()));
            }
        }
        out
    }
}

fn reason_text(r: &allowlist::CapReason) -> String {
    let by = if r.comms.is_empty() {
        String::new()
    } else {
        format!(
            " by {}",
            r.comms.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    match &r.syscall {
        Some(s) => format!("{s} via {} ({}x{by})", r.caller, r.count),
        None => format!("{} ({}x{by})", r.caller, r.count),
    }
}
