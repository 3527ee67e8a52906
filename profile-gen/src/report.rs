//! `cinch report`: the attack surface a profile (and capability settings) leave open, compared
//! with Docker's default, and the settings to apply them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::allowlist::CapSettings;
use crate::arch::Arch;
use crate::arg_rules::{self, Allowance};
use crate::arguments;
use crate::capability::Capability;
use crate::docker_default::docker_default;
use crate::kernel_issued::{self, When};
use crate::network::{NetworkMode, NetworkSetting};
use crate::profile::{LoadedProfile, ProfileFlavor};
use crate::snippets::{self, INTERNAL_NETWORK};

/// Syscalls that widen a container's reach into the kernel or other processes, with one line on
/// why. The list covers what Docker's default profile denies or gates behind a capability for
/// these reasons (moby's `default.json` and docs/security/seccomp.md), plus io_uring.
pub const DANGEROUS_SYSCALLS: &[(&str, &str)] = &[
    (
        "acct",
        "switches process accounting on or off for the whole host",
    ),
    (
        "add_key",
        "adds keys to the kernel keyring, which is not namespaced",
    ),
    (
        "bpf",
        "loads BPF programs and maps into the kernel: a large attack surface with a long CVE history",
    ),
    (
        "clock_settime",
        "sets the system clock, which is not namespaced",
    ),
    ("delete_module", "unloads kernel modules"),
    (
        "finit_module",
        "loads a kernel module from a file: code in the host kernel",
    ),
    (
        "fsconfig",
        "part of the new mount API: configures filesystems to mount",
    ),
    ("fsmount", "part of the new mount API: creates mounts"),
    (
        "fsopen",
        "part of the new mount API: opens a filesystem to mount",
    ),
    (
        "fspick",
        "part of the new mount API: reconfigures existing mounts",
    ),
    (
        "init_module",
        "loads a kernel module from memory: code in the host kernel",
    ),
    (
        "io_uring_enter",
        "io_uring: a large, often exploited kernel interface whose queued operations bypass seccomp",
    ),
    (
        "io_uring_register",
        "io_uring: a large, often exploited kernel interface whose queued operations bypass seccomp",
    ),
    (
        "io_uring_setup",
        "io_uring: a large, often exploited kernel interface whose queued operations bypass seccomp",
    ),
    ("ioperm", "grants direct access to hardware I/O ports"),
    (
        "iopl",
        "raises the I/O privilege level: direct access to all hardware I/O ports",
    ),
    ("kexec_file_load", "loads a new kernel to boot into"),
    ("kexec_load", "loads a new kernel to boot into"),
    (
        "keyctl",
        "manages kernel keyrings, which are not namespaced: keys leak across containers",
    ),
    (
        "mount",
        "mounts filesystems: can expose host paths or hide files from monitoring",
    ),
    (
        "move_mount",
        "part of the new mount API: attaches mounts into the tree",
    ),
    (
        "name_to_handle_at",
        "produces file handles for open_by_handle_at and leaks inode details",
    ),
    (
        "open_by_handle_at",
        "opens files by handle, bypassing path checks: the 'shocker' container breakout",
    ),
    ("open_tree", "part of the new mount API: clones mount trees"),
    (
        "perf_event_open",
        "kernel performance events: information leaks and a long CVE history",
    ),
    (
        "personality",
        "changes the execution domain, e.g. turning off address space randomization",
    ),
    (
        "pivot_root",
        "changes the root filesystem: the basis of escaping a container's root",
    ),
    (
        "process_vm_readv",
        "reads another process's memory directly",
    ),
    (
        "process_vm_writev",
        "writes another process's memory directly",
    ),
    (
        "ptrace",
        "reads and writes other processes' memory and registers: a classic sandbox escape",
    ),
    ("quotactl", "manipulates filesystem quotas of host devices"),
    (
        "reboot",
        "reboots or halts the machine (or the pid namespace)",
    ),
    (
        "request_key",
        "asks the kernel, and its upcalls, for keys from the non-namespaced keyring",
    ),
    (
        "setns",
        "joins other namespaces, e.g. the host's through a leaked file descriptor",
    ),
    (
        "settimeofday",
        "sets the system clock, which is not namespaced",
    ),
    ("swapoff", "disables swap for the whole host"),
    (
        "swapon",
        "enables swap on a device or file for the whole host",
    ),
    (
        "syslog",
        "reads or clears the kernel log, which leaks kernel addresses",
    ),
    (
        "umount2",
        "unmounts filesystems: can reveal what a mount hides (masked /proc paths)",
    ),
    (
        "unshare",
        "creates namespaces, including user namespaces that open privileged kernel code paths",
    ),
    (
        "userfaultfd",
        "stalls page faults from user space: a standard tool for exploiting kernel races",
    ),
];

/// Why `name` is dangerous, when it is.
pub fn syscall_danger(name: &str) -> Option<&'static str> {
    DANGEROUS_SYSCALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DangerousSyscall {
    pub name: String,
    pub why: &'static str,
    /// Allowed only for some argument values.
    pub arg_filtered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DangerousCapability {
    pub name: Capability,
    pub why: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerComparison {
    /// moby tag the default profile comes from.
    pub docker_version: String,
    /// What Docker's default allows on x86_64 with its default capabilities.
    pub docker_allowed: usize,
    /// What this profile allows on x86_64 (`None` without x86_64).
    pub allowed: Option<usize>,
    /// Allowed here, not by Docker's default.
    pub beyond_docker: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CapsSection {
    pub path: PathBuf,
    pub cap_drop: Vec<String>,
    pub cap_add: BTreeSet<Capability>,
    pub outside_docker_default: BTreeSet<Capability>,
    pub dangerous: Vec<DangerousCapability>,
    pub notes: BTreeMap<Capability, String>,
    /// Granted but left out, with why (the settings file's `not_needed`).
    pub not_needed: BTreeMap<Capability, String>,
    /// The network the workload needs, with the evidence.
    pub network: Option<NetworkSetting>,
    /// Container environment variables that look like secrets.
    pub secrets: Vec<crate::secrets::SecretFinding>,
    /// Files read from a container's image that look like secrets.
    pub secret_files: Vec<crate::secrets::SecretFile>,
    /// How much of its image the workload used.
    pub images: Vec<crate::image::ImageUse>,
    /// Whether to set no-new-privileges, and why.
    pub no_new_privileges: Option<crate::no_new_privs::NoNewPrivileges>,
    /// Read-only root and where to mount writable, and why.
    pub filesystem: Option<crate::filesystem::FilesystemSetting>,
    /// The user to run as, and why.
    pub user: Option<crate::user::UserSetting>,
    /// Resource limits, and why.
    pub limits: Option<crate::limits::LimitsSetting>,
}

/// Syscalls the kernel makes a process issue that share one explanation, and whether the
/// profile lets them through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelIssuedGroup {
    pub names: Vec<&'static str>,
    pub why: &'static str,
    pub source: &'static str,
    /// Allowed by the profile (on some architecture of it).
    pub allowed: bool,
    /// Denied although the workload can need it: always for the wait restart and time queries,
    /// and for signal returns when the profile lets handlers be installed.
    pub denied_but_needed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snippets {
    pub docker_run: String,
    pub compose: String,
    pub kubernetes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub profile: PathBuf,
    pub format: &'static str,
    pub default_action: String,
    pub architectures: BTreeSet<Arch>,
    pub other_architectures: BTreeSet<String>,
    pub allowed: BTreeMap<Arch, usize>,
    pub docker: DockerComparison,
    pub dangerous_syscalls: Vec<DangerousSyscall>,
    pub unknown_names: BTreeSet<String>,
    /// What the profile allows of each argument-sensitive syscall it allows ([`Report::with_arguments`]).
    pub arguments: Vec<ArgumentLine>,
    pub kernel_issued: Vec<KernelIssuedGroup>,
    pub capabilities: Option<CapsSection>,
    pub notes: Vec<String>,
    /// Said when the profile covers a container's steady state only: the settings may not start
    /// it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state_only: Option<String>,
    pub apply: Snippets,
}

/// One argument-sensitive syscall the profile allows, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgumentLine {
    pub name: String,
    pub allowed: String,
    /// Values allowed that Docker's default refuses (for the kept capabilities), in words.
    pub beyond_docker: Vec<String>,
}

/// What the profile does with each syscall the kernel can make a process issue, grouped by
/// explanation, in the rules' order.
fn kernel_issued_groups(allowed_sets: &BTreeMap<Arch, BTreeSet<String>>) -> Vec<KernelIssuedGroup> {
    let exists = |name: &str| {
        allowed_sets
            .keys()
            .any(|a| crate::naming::syscall_number(*a, name).is_some())
    };
    let allowed = |name: &str| allowed_sets.values().any(|s| s.contains(name));
    let handlers = kernel_issued::HANDLER_INSTALLERS.iter().any(|n| allowed(n));
    let mut out: Vec<KernelIssuedGroup> = Vec::new();
    for rule in kernel_issued::RULES.iter().filter(|r| exists(r.name)) {
        let is_allowed = allowed(rule.name);
        let needed = match rule.when {
            When::Always => true,
            When::HandlerInstalled => handlers,
        };
        let denied_but_needed = !is_allowed && needed;
        match out.iter_mut().find(|g| {
            g.why == rule.why && g.allowed == is_allowed && g.denied_but_needed == denied_but_needed
        }) {
            Some(g) => g.names.push(rule.name),
            None => out.push(KernelIssuedGroup {
                names: vec![rule.name],
                why: rule.why,
                source: rule.source,
                allowed: is_allowed,
                denied_but_needed,
            }),
        }
    }
    out
}

/// What the network setting makes of the snippets, beyond its `why`: the name lookups, what
/// the NetworkPolicy lets out, and the internal network to create. One line each.
fn network_notes(n: &NetworkSetting) -> Vec<String> {
    let mut notes = Vec::new();
    if n.dns {
        notes.push("DNS: it looked names up (it connected to port 53); lookups are kept apart from egress and the mode, as a resolver's address says nothing of where traffic goes (Docker's embedded one is 127.0.0.11); the NetworkPolicy lets port 53 out to any address over UDP and TCP".to_owned());
    }
    if n.mode != NetworkMode::None
        && let Some(out) = snippets::allowed_out(n)
    {
        notes.push(format!(
            "traffic out: the Kubernetes NetworkPolicy lets {out}"
        ));
    }
    if n.mode == NetworkMode::Internal {
        notes.push(format!(
            "internal network: create it once with `docker network create --internal {INTERNAL_NETWORK}` (compose creates its own); it has no route beyond the containers on it, so attach the services the workload connects to as well"
        ));
    }
    notes
}

/// The report on `profile`, which was loaded for the bounding set of `caps` (without: Docker's
/// default capabilities; [`crate::profile::Target::new`]).
pub fn build(profile: &LoadedProfile, caps: Option<(&Path, &CapSettings)>) -> Report {
    let dd = docker_default();
    let allowed_sets: BTreeMap<Arch, BTreeSet<String>> = profile
        .architectures
        .iter()
        .map(|a| (*a, profile.allowed_on(*a)))
        .collect();
    let all_allowed: BTreeSet<&String> = allowed_sets.values().flatten().collect();
    let arg_filtered = profile.arg_filtered_names();
    let x86_64 = allowed_sets.get(&Arch::X86_64);
    let docker = DockerComparison {
        docker_version: dd.version_label(),
        docker_allowed: dd.allowed_count(),
        allowed: x86_64.map(BTreeSet::len),
        beyond_docker: x86_64
            .map(|s| s.iter().filter(|n| !dd.allows(n)).cloned().collect())
            .unwrap_or_default(),
    };
    let dangerous_syscalls = DANGEROUS_SYSCALLS
        .iter()
        .filter(|(n, _)| all_allowed.contains(&n.to_string()))
        .map(|(n, why)| DangerousSyscall {
            name: (*n).to_owned(),
            why,
            arg_filtered: arg_filtered.contains(*n),
        })
        .collect();
    let kernel_issued = kernel_issued_groups(&allowed_sets);
    let mut notes = Vec::new();
    if let Some(e) = &profile.load_error {
        notes.push(format!(
            "a runtime would refuse this profile ({e}); what it allows is read from its rules as written"
        ));
    }
    if profile.allows_by_default() {
        notes.push(format!(
            "the profile allows every syscall it does not list (defaultAction {}): it restricts almost nothing",
            profile.default_action
        ));
    }
    if !profile.other_architectures.is_empty() {
        notes.push(format!(
            "architectures not analyzed: {}",
            profile
                .other_architectures
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if x86_64.is_none() {
        notes.push(
            "the profile has no x86_64 architecture; Docker's default is compared on x86_64 only"
                .to_owned(),
        );
    }
    let capabilities = caps.map(|(path, settings)| {
        if !settings.drops_all() {
            notes.push(format!(
                "{} does not drop ALL capabilities first: the runtime's defaults stay on top of cap_add",
                path.display()
            ));
        }
        CapsSection {
            path: path.to_owned(),
            cap_drop: settings.cap_drop.clone(),
            cap_add: settings.cap_add.clone(),
            outside_docker_default: settings.outside_docker_default(),
            dangerous: settings
                .cap_add
                .iter()
                .filter_map(|c| c.danger().map(|why| DangerousCapability { name: *c, why }))
                .collect(),
            notes: settings.notes.clone(),
            not_needed: settings.not_needed.clone(),
            network: settings.network.clone(),
            secrets: settings.secrets.clone(),
            secret_files: settings.secret_files.clone(),
            images: settings.images.clone(),
            no_new_privileges: settings.no_new_privileges.clone(),
            filesystem: settings.filesystem.clone(),
            user: settings.user.clone(),
            limits: settings.limits.clone(),
        }
    });
    if capabilities.is_none() {
        notes.push("no --caps settings given: capabilities are not analyzed, the snippets leave them out, and rules that depend on capabilities are read for Docker's default set".to_owned());
    }
    let settings = caps.map(|(_, s)| s);
    let apply = Snippets {
        docker_run: snippets::docker_run_flags(&profile.path, settings),
        compose: snippets::compose_block(&profile.path, settings),
        kubernetes: match &profile.flavor {
            ProfileFlavor::Spo { name: Some(name) } => {
                snippets::kubernetes_manifest_spo(&profile.path, name, settings)
            }
            _ => snippets::kubernetes_manifest(&profile.path, settings),
        },
    };
    let kept = settings.map_or_else(
        || crate::docker_default::default_capabilities().clone(),
        CapSettings::bounding,
    );
    Report {
        profile: profile.path.clone(),
        format: match profile.flavor {
            ProfileFlavor::Json => "docker/oci json",
            ProfileFlavor::Spo { .. } => "spo seccompprofile",
        },
        default_action: profile.default_action.clone(),
        architectures: profile.architectures.clone(),
        other_architectures: profile.other_architectures.clone(),
        allowed: allowed_sets.iter().map(|(a, s)| (*a, s.len())).collect(),
        docker,
        dangerous_syscalls,
        unknown_names: profile.unknown_names(),
        arguments: Vec::new(),
        kernel_issued,
        capabilities,
        notes,
        steady_state_only: profile.steady_state_only.as_ref().map(|comment| {
            format!(
                "the profile covers a container's {}: {comment}; the settings below may not start it. Record its start-up with `cinch record --new-containers` and generate again with both recordings (`cinch generate` on the attach recording prints the commands)",
                crate::profile::STEADY_STATE_ONLY
            )
        }),
        apply,
    }
    .with_arguments(&profile.arguments, &kept)
}

impl Report {
    /// Adds the argument conditions, as a runtime loads the profile (`allowances`), compared
    /// with Docker's default for the capabilities `kept`.
    fn with_arguments(
        mut self,
        allowances: &BTreeMap<String, Allowance>,
        kept: &BTreeSet<Capability>,
    ) -> Report {
        for (name, allowance) in allowances {
            let Some(entry) = arguments::ARG_SYSCALLS.iter().find(|a| a.name == name) else {
                continue;
            };
            let docker = arg_rules::docker_conditions(name, kept);
            let beyond_docker = match (allowance, &docker) {
                (Allowance::Values(values), Some(alts)) => values
                    .iter()
                    .filter(|v| {
                        arg_rules::allows(alts, entry.index, entry.mask, **v) == Some(false)
                    })
                    .map(|v| arg_rules::value_name(name, *v))
                    .collect(),
                (Allowance::Values(values), None) => values
                    .iter()
                    .map(|v| arg_rules::value_name(name, *v))
                    .collect(),
                (Allowance::Any, Some(alts)) if !alts.is_empty() => {
                    vec!["any arguments".to_owned()]
                }
                _ => Vec::new(),
            };
            self.arguments.push(ArgumentLine {
                name: name.clone(),
                allowed: allowance.describe(name),
                beyond_docker,
            });
        }
        self
    }

    fn surface_line(&self) -> String {
        let per_arch: Vec<String> = self
            .allowed
            .iter()
            .map(|(a, n)| format!("{a} {n}"))
            .collect();
        let mut line = format!("syscalls allowed: {}", per_arch.join(", "));
        if let Some(n) = self.docker.allowed {
            let d = self.docker.docker_allowed;
            if n <= d && d > 0 {
                line.push_str(&format!(
                    "; Docker's default ({}) allows {d} on x86_64: {} fewer ({}% of Docker's surface)",
                    self.docker.docker_version,
                    d - n,
                    n * 100 / d
                ));
            } else {
                line.push_str(&format!(
                    "; Docker's default ({}) allows {d} on x86_64",
                    self.docker.docker_version
                ));
            }
        }
        line
    }

    pub fn render_text(&self) -> String {
        let arches: Vec<&str> = self.architectures.iter().map(|a| a.as_str()).collect();
        let mut out = format!(
            "profile: {} ({}, {}, architectures {})\n",
            self.profile.display(),
            self.format,
            self.default_action,
            arches.join(", ")
        );
        out.push_str(&self.surface_line());
        out.push('\n');
        if !self.docker.beyond_docker.is_empty() {
            out.push_str(&format!(
                "  allowed here but not by Docker's default: {}\n",
                self.docker
                    .beyond_docker
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if self.dangerous_syscalls.is_empty() {
            out.push_str("dangerous syscalls allowed: none\n");
        } else {
            out.push_str("dangerous syscalls allowed:\n");
            for d in &self.dangerous_syscalls {
                let args = if d.arg_filtered {
                    " (only some arguments)"
                } else {
                    ""
                };
                out.push_str(&format!("  {}{args}: {}\n", d.name, d.why));
            }
        }
        if !self.arguments.is_empty() {
            out.push_str("arguments:\n");
            for a in &self.arguments {
                out.push_str(&format!("  {}: {}\n", a.name, a.allowed));
            }
            let beyond: Vec<String> = self
                .arguments
                .iter()
                .flat_map(|a| {
                    a.beyond_docker
                        .iter()
                        .map(move |v| format!("{}({v})", a.name))
                })
                .collect();
            if !beyond.is_empty() {
                out.push_str(&format!(
                    "  beyond Docker's default: {}\n",
                    beyond.join(", ")
                ));
            }
        }
        if !self.unknown_names.is_empty() {
            out.push_str(&format!(
                "names no syscall table knows (runtimes ignore them): {}\n",
                self.unknown_names
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let allowed: Vec<&KernelIssuedGroup> =
            self.kernel_issued.iter().filter(|g| g.allowed).collect();
        if !allowed.is_empty() {
            out.push_str("allowed because the kernel can make any process issue them, whatever a recording saw:\n");
            for g in allowed {
                out.push_str(&format!("  {}: {}\n", g.names.join(", "), g.why));
            }
        }
        for g in self.kernel_issued.iter().filter(|g| g.denied_but_needed) {
            out.push_str(&format!(
                "warning: denies {}, which the workload can need without asking: {}\n",
                g.names.join(", "),
                g.why
            ));
        }
        if let Some(c) = &self.capabilities {
            let add: Vec<&str> = c.cap_add.iter().map(|c| c.docker_name()).collect();
            out.push_str(&format!(
                "capabilities ({}): cap_drop {}, cap_add {}\n",
                c.path.display(),
                c.cap_drop.join(", "),
                if add.is_empty() {
                    "nothing".to_owned()
                } else {
                    add.join(", ")
                }
            ));
            if !c.outside_docker_default.is_empty() {
                let outside: Vec<&str> = c
                    .outside_docker_default
                    .iter()
                    .map(|c| c.docker_name())
                    .collect();
                out.push_str(&format!(
                    "  outside Docker's default: {}\n",
                    outside.join(", ")
                ));
            }
            for d in &c.dangerous {
                out.push_str(&format!("  dangerous: {}: {}\n", d.name, d.why));
            }
            for (cap, note) in &c.notes {
                out.push_str(&format!("  note: {cap} is {note}\n"));
            }
            for (cap, why) in &c.not_needed {
                out.push_str(&format!("  granted, not added: {cap} is {why}\n"));
            }
            if let Some(n) = &c.network {
                out.push_str(&format!("network: {}: {}\n", n.label(), n.why));
                for note in network_notes(n) {
                    out.push_str(&format!("  {note}\n"));
                }
            }
            if let Some(fs) = &c.filesystem {
                out.push_str(&format!("filesystem: {}: {}\n", fs.label(), fs.why));
                for m in &fs.mounts {
                    out.push_str(&format!("  {}: {}\n", m.path, m.why));
                }
            }
            if let Some(u) = &c.user {
                out.push_str(&format!("user: {}: {}\n", u.label(), u.why));
            }
            if let Some(l) = &c.limits {
                out.push_str(&format!("limits: {}: {}\n", l.label(), l.why));
            }
            if let Some(n) = &c.no_new_privileges {
                out.push_str(&format!(
                    "no-new-privileges: {}: {}\n",
                    if n.set { "set" } else { "not set" },
                    n.why
                ));
            }
            for i in &c.images {
                out.push_str(&format!("image {}: {}\n", i.image, i.why));
                for (part, paths) in &i.used_parts {
                    out.push_str(&format!("  used its {part}: {}\n", paths.join(", ")));
                }
            }
            for s in &c.secrets {
                out.push_str(&format!("warning: {}\n", s.warning()));
            }
            for s in &c.secret_files {
                out.push_str(&format!("warning: {}\n", s.warning()));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        if let Some(w) = &self.steady_state_only {
            out.push_str(&format!("warning: {w}\n"));
        }
        out.push_str(&format!(
            "\n{}docker run {} IMAGE\n\n",
            self.docker_setup(),
            self.apply.docker_run
        ));
        out.push_str(&self.apply.compose);
        out.push('\n');
        out.push_str(&self.apply.kubernetes);
        out
    }

    /// The shell lines to run before the `docker run` line (the internal network to create),
    /// or nothing.
    fn docker_setup(&self) -> String {
        let network = self.capabilities.as_ref().and_then(|c| c.network.as_ref());
        snippets::docker_setup(network).unwrap_or_default()
    }

    pub fn render_markdown(&self) -> String {
        let mut out = format!("### cinch report: `{}`\n\n", self.profile.display());
        out.push_str(&format!("{}.\n\n", self.surface_line()));
        if !self.docker.beyond_docker.is_empty() {
            let names: Vec<String> = self
                .docker
                .beyond_docker
                .iter()
                .map(|n| format!("`{n}`"))
                .collect();
            out.push_str(&format!(
                "Allowed here but not by Docker's default: {}.\n\n",
                names.join(", ")
            ));
        }
        if self.dangerous_syscalls.is_empty() {
            out.push_str("No dangerous syscall is allowed.\n\n");
        } else {
            out.push_str("| dangerous syscall allowed | why it matters |\n| --- | --- |\n");
            for d in &self.dangerous_syscalls {
                let args = if d.arg_filtered {
                    " (some arguments)"
                } else {
                    ""
                };
                out.push_str(&format!("| `{}`{args} | {} |\n", d.name, d.why));
            }
            out.push('\n');
        }
        if !self.arguments.is_empty() {
            out.push_str(
                "| syscall | arguments allowed | beyond Docker's default |\n| --- | --- | --- |\n",
            );
            for a in &self.arguments {
                out.push_str(&format!(
                    "| `{}` | {} | {} |\n",
                    a.name,
                    a.allowed,
                    if a.beyond_docker.is_empty() {
                        "nothing".to_owned()
                    } else {
                        a.beyond_docker.join(", ")
                    }
                ));
            }
            out.push('\n');
        }
        let code = |names: &[&str]| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let allowed: Vec<&KernelIssuedGroup> =
            self.kernel_issued.iter().filter(|g| g.allowed).collect();
        if !allowed.is_empty() {
            out.push_str("| allowed whatever a recording saw | why the kernel can make any process issue it |\n| --- | --- |\n");
            for g in allowed {
                out.push_str(&format!("| {} | {} |\n", code(&g.names), g.why));
            }
            out.push('\n');
        }
        for g in self.kernel_issued.iter().filter(|g| g.denied_but_needed) {
            out.push_str(&format!(
                "> **Warning:** denies {}, which the workload can need without asking: {}.\n\n",
                code(&g.names),
                g.why
            ));
        }
        if let Some(c) = &self.capabilities {
            let add: Vec<String> = c.cap_add.iter().map(|c| format!("`{c}`")).collect();
            out.push_str(&format!(
                "Capabilities (`{}`): drop {}, add {}.\n\n",
                c.path.display(),
                c.cap_drop.join(", "),
                if add.is_empty() {
                    "nothing".to_owned()
                } else {
                    add.join(", ")
                }
            ));
            if !c.dangerous.is_empty() {
                out.push_str("| dangerous capability | why it matters |\n| --- | --- |\n");
                for d in &c.dangerous {
                    out.push_str(&format!("| `{}` | {} |\n", d.name, d.why));
                }
                out.push('\n');
            }
            for (cap, note) in &c.notes {
                out.push_str(&format!("> `{cap}` is {note}\n\n"));
            }
            for (cap, why) in &c.not_needed {
                out.push_str(&format!("> `{cap}` was granted and left out: {why}\n\n"));
            }
            if let Some(n) = &c.network {
                out.push_str(&format!("**Network**: {}: {}\n\n", n.label(), n.why));
                let notes = network_notes(n);
                for note in &notes {
                    out.push_str(&format!("- {note}\n"));
                }
                if !notes.is_empty() {
                    out.push('\n');
                }
            }
            if let Some(fs) = &c.filesystem {
                out.push_str(&format!("**Filesystem**: {}: {}\n\n", fs.label(), fs.why));
                for m in &fs.mounts {
                    out.push_str(&format!("- `{}`: {}\n", m.path, m.why));
                }
                if !fs.mounts.is_empty() {
                    out.push('\n');
                }
            }
            if let Some(u) = &c.user {
                out.push_str(&format!("**User**: {}: {}\n\n", u.label(), u.why));
            }
            if let Some(l) = &c.limits {
                out.push_str(&format!("**Limits**: {}: {}\n\n", l.label(), l.why));
            }
            if let Some(n) = &c.no_new_privileges {
                out.push_str(&format!(
                    "**no-new-privileges**: {}: {}\n\n",
                    if n.set { "set" } else { "not set" },
                    n.why
                ));
            }
            for i in &c.images {
                out.push_str(&format!("**Image** `{}`: {}\n\n", i.image, i.why));
                for (part, paths) in &i.used_parts {
                    let paths: Vec<String> = paths.iter().map(|p| format!("`{p}`")).collect();
                    out.push_str(&format!("- used its {part}: {}\n", paths.join(", ")));
                }
                if !i.used_parts.is_empty() {
                    out.push('\n');
                }
            }
            for s in &c.secrets {
                out.push_str(&format!(
                    "> **Secret in the environment**: {}\n\n",
                    s.warning()
                ));
            }
            for s in &c.secret_files {
                out.push_str(&format!("> **Secret in the image**: {}\n\n", s.warning()));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("> {note}\n\n"));
        }
        if let Some(w) = &self.steady_state_only {
            out.push_str(&format!("> **Warning:** {w}\n\n"));
        }
        out.push_str(&format!(
            "```sh\n{}docker run {} IMAGE\n```\n\n",
            self.docker_setup(),
            self.apply.docker_run
        ));
        out.push_str(&format!("```yaml\n{}```\n\n", self.apply.compose));
        out.push_str(&format!("```yaml\n{}```\n", self.apply.kubernetes));
        out
    }

    pub fn render_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ProfileError, Target};

    /// A profile loaded for an x86_64 `docker run` without capability options.
    fn parse_profile(bytes: &[u8], path: &Path) -> Result<LoadedProfile, ProfileError> {
        crate::profile::parse_profile(bytes, path, &Target::new("6.18.0", None))
    }

    #[test]
    fn flags_dangerous_syscalls_and_capabilities() {
        let p = parse_profile(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write","ptrace","mount"],"action":"SCMP_ACT_ALLOW"},{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
            Path::new("p.json"),
        )
        .expect("parses");
        let settings = CapSettings::drop_all(
            [Capability::SYS_ADMIN, Capability::NET_BIND_SERVICE]
                .into_iter()
                .collect(),
        );
        let r = build(&p, Some((Path::new("s.json"), &settings)));
        let names: Vec<&str> = r
            .dangerous_syscalls
            .iter()
            .map(|d| d.name.as_str())
            .collect();
        assert_eq!(names, ["mount", "personality", "ptrace"]);
        assert!(
            r.dangerous_syscalls
                .iter()
                .any(|d| d.name == "personality" && d.arg_filtered)
        );
        assert_eq!(r.docker.allowed, Some(5));
        assert!(r.docker.beyond_docker.contains("mount"));
        let caps = r.capabilities.as_ref().expect("caps section");
        assert_eq!(caps.dangerous.len(), 1);
        assert_eq!(
            caps.outside_docker_default,
            [Capability::SYS_ADMIN].into_iter().collect()
        );
        let text = r.render_text();
        assert!(text.contains("ptrace: reads and writes"), "{text}");
        assert!(
            text.contains("--cap-add NET_BIND_SERVICE --cap-add SYS_ADMIN"),
            "{text}"
        );
        assert!(r.render_markdown().contains("| `mount` |"));
        let json: serde_json::Value = serde_json::from_str(&r.render_json()).expect("json");
        assert_eq!(json["docker"]["allowed"], 5);
    }

    /// An internal network is explained with its evidence, DNS and what the NetworkPolicy lets
    /// out, and the `docker run` line comes after the command that creates the network.
    #[test]
    fn explains_dns_and_the_internal_network() {
        let p = parse_profile(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","connect"],"action":"SCMP_ACT_ALLOW"}]}"#,
            Path::new("p.json"),
        )
        .expect("parses");
        let mut settings = CapSettings::drop_all(BTreeSet::new());
        settings.network = Some(NetworkSetting {
            mode: NetworkMode::Internal,
            families: ["AF_INET".to_owned()].into(),
            why: "it created AF_INET sockets; it looked names up over DNS (port 53); it connected to private addresses; it published no port and connected to no public address: an internal network is enough".to_owned(),
            listens: Vec::new(),
            egress: Some(["private".to_owned()].into()),
            dns: true,
            egress_ports: Default::default(),
        });
        let r = build(&p, Some((Path::new("s.json"), &settings)));
        let text = r.render_text();
        for line in [
            "\nnetwork: an internal network: it created AF_INET sockets; it looked names up over DNS (port 53); it connected to private addresses; it published no port",
            "\n  DNS: it looked names up (it connected to port 53)",
            "\n  traffic out: the Kubernetes NetworkPolicy lets out only to port 53 (DNS) and private addresses\n",
            "\n  internal network: create it once with `docker network create --internal cinch-internal`",
            "\ndocker network create --internal cinch-internal\ndocker run --security-opt seccomp=p.json",
            " --network cinch-internal IMAGE\n",
        ] {
            assert!(text.contains(line), "no {line:?} in:\n{text}");
        }
        let markdown = r.render_markdown();
        assert!(
            markdown.contains("\n- internal network: create it once"),
            "{markdown}"
        );
        assert!(
            markdown.contains("```sh\n# cinch-internal is an internal network"),
            "{markdown}"
        );
        // The default network with public addresses: nothing to create, traffic out by class.
        let n = settings.network.as_mut().expect("set");
        n.mode = NetworkMode::Default;
        n.dns = false;
        n.egress = Some(["public".to_owned()].into());
        let text = build(&p, Some((Path::new("s.json"), &settings))).render_text();
        assert!(!text.contains("docker network create"), "{text}");
        assert!(!text.contains("\n  DNS:"), "{text}");
        assert!(
            text.contains(
                "\n  traffic out: the Kubernetes NetworkPolicy lets out only to public addresses\n"
            ),
            "{text}"
        );
    }

    /// Docker's own default, reported on, is Docker's default: rules that need a capability
    /// outside the kept set do not count as allowing (they did, as 42 extra names such as mount
    /// and reboot, when the rules were read as written).
    #[test]
    fn dockers_default_profile_is_as_wide_as_dockers_default() {
        let moby = crate::docker_default::MOBY.as_bytes();
        let r = build(
            &parse_profile(moby, Path::new("default.json")).expect("parses"),
            None,
        );
        let dd = docker_default();
        assert_eq!(r.docker.allowed, Some(dd.allowed_count()));
        assert!(
            r.docker.beyond_docker.is_empty(),
            "{:?}",
            r.docker.beyond_docker
        );
        assert!(
            r.arguments.iter().all(|a| a.beyond_docker.is_empty()),
            "{:?}",
            r.arguments
        );
        // With SYS_ADMIN kept, the rules that need it apply, and say so.
        let settings = CapSettings::drop_all([Capability::SYS_ADMIN].into_iter().collect());
        let target = Target::new("6.18.0", Some(&settings));
        let loaded = crate::profile::parse_profile(moby, Path::new("default.json"), &target)
            .expect("parses");
        let r = build(&loaded, Some((Path::new("caps.json"), &settings)));
        assert!(r.docker.beyond_docker.contains("mount"));
        assert!(!r.docker.beyond_docker.contains("reboot"), "needs SYS_BOOT");
        assert!(
            !r.docker.beyond_docker.contains("chroot"),
            "chroot needs SYS_CHROOT, which is not kept"
        );
    }

    #[test]
    fn explains_kernel_issued_syscalls_and_warns_when_a_profile_denies_them() {
        let with = parse_profile(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","rt_sigaction","rt_sigreturn","restart_syscall","clock_gettime"],"action":"SCMP_ACT_ALLOW"}]}"#,
            Path::new("with.json"),
        )
        .expect("parses");
        let r = build(&with, None);
        let allowed: Vec<&str> = r
            .kernel_issued
            .iter()
            .filter(|g| g.allowed)
            .flat_map(|g| g.names.iter().copied())
            .collect();
        assert_eq!(
            allowed,
            ["restart_syscall", "rt_sigreturn", "clock_gettime"]
        );
        // The other time queries are denied, and said to be needed.
        let denied: Vec<&str> = r
            .kernel_issued
            .iter()
            .filter(|g| g.denied_but_needed)
            .flat_map(|g| g.names.iter().copied())
            .collect();
        assert_eq!(denied, ["clock_getres", "gettimeofday", "time", "getcpu"]);
        let text = r.render_text();
        assert!(
            text.contains("  restart_syscall: the kernel resumes a timed wait"),
            "{text}"
        );
        assert!(
            text.contains("warning: denies clock_getres, gettimeofday"),
            "{text}"
        );
        assert!(r.render_markdown().contains("| `restart_syscall` |"));

        // Without restart_syscall, and with handlers but no way back from them.
        let without = parse_profile(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","rt_sigaction"],"action":"SCMP_ACT_ALLOW"}]}"#,
            Path::new("without.json"),
        )
        .expect("parses");
        let text = build(&without, None).render_text();
        assert!(
            text.contains(
                "warning: denies restart_syscall, which the workload can need without asking"
            ),
            "{text}"
        );
        assert!(text.contains("warning: denies rt_sigreturn"), "{text}");
        // A profile that lets no handler be installed does not need the signal return.
        let no_handlers = parse_profile(
            br#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            Path::new("none.json"),
        )
        .expect("parses");
        assert!(
            !build(&no_handlers, None)
                .render_text()
                .contains("denies rt_sigreturn")
        );
    }

    #[test]
    fn the_issue_list_is_covered() {
        for name in [
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "bpf",
            "perf_event_open",
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "userfaultfd",
            "kexec_load",
            "init_module",
            "finit_module",
            "open_by_handle_at",
            "name_to_handle_at",
            "personality",
            "iopl",
            "ioperm",
            "swapon",
            "reboot",
        ] {
            assert!(syscall_danger(name).is_some(), "{name}");
        }
        let names: Vec<&str> = DANGEROUS_SYSCALLS.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "kept sorted");
    }
}
