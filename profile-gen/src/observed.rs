//! What a set of recordings observed, merged.
//!
//! The merge is a join: sets are united and counts take the maximum, so merging is commutative,
//! associative and idempotent (merging a recording with itself, or passing the same file twice,
//! changes nothing). Counts are therefore "at least this many times in one recording", evidence
//! for a reason, not a total.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::arch::Arch;
use crate::arguments;
use crate::naming;
use crate::recording::{CapabilityProof, Recording, Target};

/// One kind of capability check: the same capability, result, syscall and kernel caller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapCheckKey {
    /// Kernel capability number (may be beyond what this build can name).
    pub cap: u32,
    pub granted: bool,
    /// The syscall in progress: architecture and number.
    pub syscall: Option<(Arch, u32)>,
    pub caller: String,
    /// Why the check is not a need ([`crate::cap_rules`]); `None` when it is one (if granted).
    pub not_a_need: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapEvidence {
    /// Largest count seen in one recording.
    pub count: u64,
    pub comms: BTreeSet<String>,
    /// Names the recordings gave the syscall (used when this build cannot name the number).
    pub syscall_names: BTreeSet<String>,
}

/// A container recording and whether it observed the container's start.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerStart {
    pub recording: PathBuf,
    pub engine: String,
    pub name: String,
    pub image: String,
    /// The command the engine ran, when the recording has it.
    pub command: Vec<String>,
    /// False when cinch attached to the running container.
    pub observed: bool,
    /// The workload was recorded from its first execve (a container without a seccomp filter
    /// recorded with `--new-containers`): only the runtime's start-up calls are missing.
    pub entrypoint_observed: bool,
}

/// What is known of the values an argument-sensitive syscall was called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgEvidence {
    /// Every value, masked as the table says.
    Known(BTreeSet<u64>),
    /// Not all values are known; why (the generator then uses Docker's conditions).
    Unknown(BTreeSet<String>),
}

impl ArgEvidence {
    pub fn join(&mut self, other: &ArgEvidence) {
        match (&mut *self, other) {
            (ArgEvidence::Known(mine), ArgEvidence::Known(theirs)) => {
                mine.extend(theirs.iter().copied());
            }
            (ArgEvidence::Unknown(mine), ArgEvidence::Unknown(theirs)) => {
                mine.extend(theirs.iter().cloned());
            }
            (ArgEvidence::Unknown(_), ArgEvidence::Known(_)) => {}
            (ArgEvidence::Known(_), ArgEvidence::Unknown(why)) => {
                *self = ArgEvidence::Unknown(why.clone());
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Native architectures of the recording hosts: always in the profile's architectures.
    pub hosts: BTreeSet<Arch>,
    /// The nodes the recordings were made on, where a node agent said.
    pub nodes: BTreeSet<String>,
    /// Syscall numbers per architecture, with the names the recordings gave them.
    pub syscalls: BTreeMap<Arch, BTreeMap<u32, BTreeSet<String>>>,
    pub capabilities: BTreeMap<CapCheckKey, CapEvidence>,
    /// The argument-sensitive syscalls observed (`crate::arguments`), by architecture and name.
    pub arguments: BTreeMap<(Arch, String), ArgEvidence>,
    /// The processes (comm) that used each argument value first, by syscall name and value.
    pub argument_comms: BTreeMap<(String, u64), BTreeSet<String>>,
    /// What each container recording saw of its container's start.
    pub container_starts: BTreeSet<ContainerStart>,
    /// Recordings that lost syscall observations, with the largest loss.
    pub lost_syscalls: BTreeMap<PathBuf, u64>,
    /// Warnings the recordings carry, by file.
    pub warnings: BTreeMap<PathBuf, BTreeSet<String>>,
    /// `record --prove-caps` results, by recording.
    pub capability_proofs: BTreeMap<PathBuf, CapabilityProof>,
    /// Host architectures on which the recorded processes may run signal handlers installed
    /// before the recording began: a container recording (its runtime ran first) or an attach.
    /// Only a `-- COMMAND` recording sees every handler installed (execve resets them).
    pub inherited_handlers: BTreeSet<Arch>,
    /// Environment variables of the recorded containers that look like secrets.
    pub secrets: BTreeSet<crate::secrets::SecretFinding>,
    /// Programs exec'd that gained privileges, with the most seen in one recording.
    pub privileged_execs: BTreeMap<String, u64>,
    /// Recordings that cannot say whether an exec gained privileges.
    pub privileged_execs_unknown: BTreeSet<PathBuf>,
    /// The paths written, all recordings joined.
    pub writes: crate::filesystem::FileWrites,
    /// Recordings that cannot say what they wrote.
    pub writes_unknown: BTreeSet<PathBuf>,
    /// Writable volume destinations of the recorded containers.
    pub volumes: BTreeSet<String>,
    /// The ids processes ran with, all recordings joined.
    pub credentials: Vec<crate::user::Credential>,
    /// Recordings that cannot say which ids their processes ran with.
    pub credentials_unknown: BTreeSet<PathBuf>,
    /// What each recording's target used.
    pub usages: Vec<crate::limits::Usage>,
    /// Recordings that cannot say what their target used.
    pub usage_unknown: BTreeSet<PathBuf>,
    /// The Internet addresses sockets named, all recordings joined.
    pub endpoints: Vec<crate::network::Endpoint>,
    /// Recordings that cannot say which addresses their sockets named.
    pub endpoints_unknown: BTreeSet<PathBuf>,
    /// Every recording's reads joined.
    pub reads: crate::image::FileReads,
    /// Reads of targets with a root of their own, by image.
    pub images: BTreeMap<String, crate::image::FileReads>,
    /// Files read from a container's root that look like secrets.
    pub secret_files: BTreeSet<crate::secrets::SecretFile>,
    /// Recordings that cannot say which files they read.
    pub reads_unknown: BTreeSet<PathBuf>,
}

/// `1 recording`, `3 recordings`: how many recordings cannot say something.
pub(crate) fn recordings(n: usize) -> String {
    if n == 1 {
        "1 recording".to_owned()
    } else {
        format!("{n} recordings")
    }
}

impl Observed {
    /// The observations of one recording read from `path`.
    pub fn from_recording(path: PathBuf, rec: &Recording) -> Observed {
        let mut out = Observed::default();
        out.hosts.insert(rec.host.arch);
        out.nodes.extend(rec.host.node.iter().cloned());
        for (arch, calls) in &rec.syscalls {
            let table = out.syscalls.entry(*arch).or_default();
            for call in calls {
                let names = table.entry(call.nr).or_default();
                if let Some(name) = &call.name {
                    names.insert(name.clone());
                }
            }
        }
        for (arch, calls) in &rec.syscalls {
            for call in calls {
                let Some(name) = naming::syscall_name(*arch, call.nr) else {
                    continue;
                };
                if !arguments::names().contains(name.as_str()) {
                    continue;
                }
                let evidence = match arguments::lookup(*arch, &name) {
                    None => ArgEvidence::Unknown(
                        [format!(
                            "{name} takes its arguments through a pointer on {arch}"
                        )]
                        .into(),
                    ),
                    Some(entry) => {
                        let values = rec.arguments.get(arch).and_then(|v| {
                            v.iter().find(|a| {
                                a.nr == call.nr && a.index == entry.index && a.mask == entry.mask
                            })
                        });
                        match values {
                            Some(v) if !v.incomplete => {
                                for c in &v.values {
                                    out.argument_comms
                                        .entry((name.clone(), c.value))
                                        .or_default()
                                        .extend(c.comms.iter().cloned());
                                }
                                ArgEvidence::Known(v.values.iter().map(|c| c.value).collect())
                            }
                            Some(_) => ArgEvidence::Unknown(
                                ["some argument values were lost while recording".to_owned()]
                                    .into(),
                            ),
                            None if rec.schema_version < 2 => ArgEvidence::Unknown(
                                [format!(
                                    "recorded with schema {}, which has no argument values",
                                    rec.schema_version
                                )]
                                .into(),
                            ),
                            None => ArgEvidence::Unknown(
                                [format!("no argument values were recorded on {arch}")].into(),
                            ),
                        }
                    }
                };
                out.arguments
                    .entry((*arch, name))
                    .and_modify(|e| e.join(&evidence))
                    .or_insert(evidence);
            }
        }
        for check in &rec.capabilities {
            let key = CapCheckKey {
                cap: check.cap,
                granted: check.granted,
                syscall: check.syscall.as_ref().map(|s| (s.arch, s.nr)),
                caller: check.caller.clone(),
                not_a_need: crate::cap_rules::not_a_need(check),
            };
            let ev = out.capabilities.entry(key).or_default();
            ev.count = ev.count.max(check.count);
            ev.comms.extend(check.comms.iter().cloned());
            if let Some(name) = check.syscall.as_ref().and_then(|s| s.name.clone()) {
                ev.syscall_names.insert(name);
            }
        }
        match &rec.target {
            Target::Container {
                engine,
                name,
                image,
                command,
                secret_env,
                volumes,
                ..
            } => {
                out.volumes.extend(volumes.iter().cloned());
                out.secrets
                    .extend(secret_env.iter().map(|s| crate::secrets::SecretFinding {
                        container: name.clone(),
                        variable: s.name.clone(),
                        why: s.why.clone(),
                    }));
                out.container_starts.insert(ContainerStart {
                    recording: path.clone(),
                    engine: engine.clone(),
                    name: name.clone(),
                    image: image.clone(),
                    command: command.clone(),
                    entrypoint_observed: rec.entrypoint_observed,
                    observed: rec.startup_observed,
                });
            }
            Target::Pid { pid, comm } if !rec.startup_observed => {
                out.warnings.entry(path.clone()).or_default().insert(format!(
                    "attached to process {pid} ({comm}) while it ran: what it did before is not in the profile (no container runtime baseline is added: it is not a container)"
                ));
            }
            _ => {}
        }
        if !matches!(rec.target, Target::Command { .. }) {
            out.inherited_handlers.insert(rec.host.arch);
        }
        if let Some(proof) = &rec.capability_proof {
            out.capability_proofs.insert(path.clone(), proof.clone());
        }
        match &rec.privileged_execs {
            Some(execs) => out.privileged_execs.extend(execs.clone()),
            None => {
                out.privileged_execs_unknown.insert(path.clone());
            }
        }
        match &rec.writes {
            Some(writes) => out.writes.merge_in(writes),
            None => {
                out.writes_unknown.insert(path.clone());
            }
        }
        match &rec.credentials {
            Some(creds) => out.credentials.extend(creds.iter().cloned()),
            None => {
                out.credentials_unknown.insert(path.clone());
            }
        }
        match &rec.endpoints {
            Some(e) => out.endpoints.extend(e.iter().cloned()),
            None => {
                out.endpoints_unknown.insert(path.clone());
            }
        }
        match &rec.reads {
            Some(reads) => {
                out.reads.merge_in(reads);
                if let Target::Container { name, .. } = &rec.target {
                    let image_files = reads.paths.iter().filter(|(_, r)| !r.mounted);
                    out.secret_files.extend(image_files.filter_map(|(path, _)| {
                        Some(crate::secrets::SecretFile {
                            container: name.clone(),
                            path: path.clone(),
                            why: crate::secrets::secret_file(path)?.to_owned(),
                        })
                    }));
                }
                if reads.image.is_some() {
                    let image = match &rec.target {
                        Target::Container { image, .. } => image.clone(),
                        Target::Command { argv, .. } => format!(
                            "the root of {}",
                            argv.first().map_or("the command", String::as_str)
                        ),
                        Target::Pid { comm, .. } => format!("the root of {comm}"),
                    };
                    out.images.entry(image).or_default().merge_in(reads);
                }
            }
            None => {
                out.reads_unknown.insert(path.clone());
            }
        }
        match &rec.resources {
            Some(usage) => out.usages.push(usage.clone()),
            None => {
                out.usage_unknown.insert(path.clone());
            }
        }
        if rec.schema_version < 3
            && rec
                .capabilities
                .iter()
                .any(|c| c.granted && c.syscall.is_some())
        {
            out.warnings.entry(path.clone()).or_default().insert(format!(
                "recorded with schema {}, which has no syscall results: a capability granted in a syscall that failed anyway counts as a need; record again to tell them apart",
                rec.schema_version
            ));
        }
        if rec.lost.syscalls > 0 {
            out.lost_syscalls.insert(path.clone(), rec.lost.syscalls);
        }
        if !rec.warnings.is_empty() {
            out.warnings
                .entry(path)
                .or_default()
                .extend(rec.warnings.iter().cloned());
        }
        out
    }

    /// The join of two observations.
    pub fn merge(&self, other: &Observed) -> Observed {
        let mut out = self.clone();
        out.merge_in(other);
        out
    }

    pub fn merge_in(&mut self, other: &Observed) {
        self.hosts.extend(other.hosts.iter().copied());
        self.nodes.extend(other.nodes.iter().cloned());
        for (arch, table) in &other.syscalls {
            let mine = self.syscalls.entry(*arch).or_default();
            for (nr, names) in table {
                mine.entry(*nr).or_default().extend(names.iter().cloned());
            }
        }
        for (key, comms) in &other.argument_comms {
            self.argument_comms
                .entry(key.clone())
                .or_default()
                .extend(comms.iter().cloned());
        }
        for (key, ev) in &other.arguments {
            self.arguments
                .entry(key.clone())
                .and_modify(|e| e.join(ev))
                .or_insert_with(|| ev.clone());
        }
        for (key, ev) in &other.capabilities {
            let mine = self.capabilities.entry(key.clone()).or_default();
            mine.count = mine.count.max(ev.count);
            mine.comms.extend(ev.comms.iter().cloned());
            mine.syscall_names.extend(ev.syscall_names.iter().cloned());
        }
        self.container_starts
            .extend(other.container_starts.iter().cloned());
        for (path, lost) in &other.lost_syscalls {
            let mine = self.lost_syscalls.entry(path.clone()).or_default();
            *mine = (*mine).max(*lost);
        }
        for (path, warnings) in &other.warnings {
            self.warnings
                .entry(path.clone())
                .or_default()
                .extend(warnings.iter().cloned());
        }
        self.inherited_handlers
            .extend(other.inherited_handlers.iter().copied());
        self.secrets.extend(other.secrets.iter().cloned());
        for (program, n) in &other.privileged_execs {
            let mine = self.privileged_execs.entry(program.clone()).or_default();
            *mine = (*mine).max(*n);
        }
        self.privileged_execs_unknown
            .extend(other.privileged_execs_unknown.iter().cloned());
        self.writes.merge_in(&other.writes);
        self.writes_unknown
            .extend(other.writes_unknown.iter().cloned());
        self.volumes.extend(other.volumes.iter().cloned());
        for c in &other.credentials {
            if !self.credentials.contains(c) {
                self.credentials.push(c.clone());
            }
        }
        self.credentials_unknown
            .extend(other.credentials_unknown.iter().cloned());
        self.usages.extend(other.usages.iter().cloned());
        self.endpoints.extend(other.endpoints.iter().cloned());
        self.endpoints_unknown
            .extend(other.endpoints_unknown.iter().cloned());
        self.reads.merge_in(&other.reads);
        for (image, reads) in &other.images {
            self.images
                .entry(image.clone())
                .or_default()
                .merge_in(reads);
        }
        self.secret_files.extend(other.secret_files.iter().cloned());
        self.reads_unknown
            .extend(other.reads_unknown.iter().cloned());
        self.usage_unknown
            .extend(other.usage_unknown.iter().cloned());
        for (path, proof) in &other.capability_proofs {
            self.capability_proofs
                .entry(path.clone())
                .or_insert_with(|| proof.clone());
        }
    }

    /// Container recordings that attached (did not observe the start).
    pub fn startup_unobserved(&self) -> BTreeSet<PathBuf> {
        self.container_starts
            .iter()
            .filter(|c| !c.observed)
            .map(|c| c.recording.clone())
            .collect()
    }

    /// Attach recordings whose start no recording in the merge covers: none of the same engine
    /// and image observed a start. (One that did has the runtime's start-up calls for that
    /// container; the runtime baseline is for the others.)
    pub fn uncovered_starts(&self) -> BTreeSet<PathBuf> {
        let covered: BTreeSet<(&str, &str)> = self
            .container_starts
            .iter()
            .filter(|c| c.observed)
            .map(|c| (c.engine.as_str(), c.image.as_str()))
            .collect();
        self.container_starts
            .iter()
            .filter(|c| !c.observed && !covered.contains(&(c.engine.as_str(), c.image.as_str())))
            .map(|c| c.recording.clone())
            .collect()
    }

    /// Number of distinct (architecture, number) syscalls.
    pub fn syscall_count(&self) -> usize {
        self.syscalls.values().map(BTreeMap::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(recording: &str, image: &str, observed: bool) -> ContainerStart {
        ContainerStart {
            recording: PathBuf::from(recording),
            engine: "docker".to_owned(),
            name: image.to_owned(),
            image: image.to_owned(),
            command: Vec::new(),
            observed,
            entrypoint_observed: false,
        }
    }

    #[test]
    fn an_observed_start_of_the_same_image_covers_an_attach() {
        let mut obs = Observed::default();
        obs.container_starts
            .insert(start("canary.json", "web", false));
        assert_eq!(obs.uncovered_starts().len(), 1, "an attach alone");
        obs.container_starts.insert(start("db.json", "db", true));
        assert_eq!(obs.uncovered_starts().len(), 1, "another image's start");
        obs.container_starts.insert(start("web.json", "web", true));
        assert!(obs.uncovered_starts().is_empty(), "the same image's start");
        assert_eq!(obs.startup_unobserved().len(), 1);
    }

    #[test]
    fn a_process_attached_by_pid_is_no_container_start() {
        let rec: Recording = serde_json::from_str(
            r#"{"schema_version":1,"cinch_version":"0","host":{"kernel":"6","arch":"x86_64"},
                "attach":{"syscalls":"tp_btf","capabilities":"tracepoint","lifecycle":"tp"},
                "target":{"kind":"pid","pid":7,"comm":"app"},"startup_observed":false,
                "started_at":"","ended_at":"","processes_seen":1,
                "syscalls":{"x86_64":[{"nr":0,"name":"read","count":1}]},
                "lost":{"syscalls":0,"ring_buffer_drops":0,"map_full":0,"capability_checks":0}}"#,
        )
        .expect("a recording");
        let obs = Observed::from_recording(PathBuf::from("pid.json"), &rec);
        assert!(obs.container_starts.is_empty());
        assert!(obs.uncovered_starts().is_empty());
        let warnings = &obs.warnings[&PathBuf::from("pid.json")];
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("attached to process 7 (app)")),
            "{warnings:?}"
        );
    }
}
