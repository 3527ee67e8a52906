//! The command-line contract (docs/CLI.md). Every flag is documented with an example.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "cinch",
    version,
    about = "Record the syscalls and capabilities a workload really uses; generate its least-privilege seccomp profile and cap_add allowlist.",
    after_help = "Typical use:\n  cinch record -o rec.json -- ./run-tests.sh\n  cinch generate -o seccomp.json --caps-out settings.json rec.json\n  docker run --security-opt seccomp=seccomp.json --cap-drop ALL --cap-add ... IMAGE"
)]
pub(crate) struct Cli {
    /// More log output on stderr (-v info, -vv debug); CINCH_LOG=... overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line, with the rules clap's attributes cannot say; every refusal is a
    /// usage error, before anything runs.
    pub(crate) fn parse_checked() -> Result<Cli, clap::Error> {
        let cli = <Cli as Parser>::try_parse()?;
        let refuse = |m: &str| {
            Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                m,
            ))
        };
        match &cli.command {
            Command::Record(a)
                if a.duration.is_some()
                    && a.pid.is_none()
                    && a.containers.container.is_none()
                    && !a.containers.new_containers =>
            {
                refuse(
                    "--duration applies to --pid, --container and --new-containers; a COMMAND is recorded until it exits",
                )
            }
            Command::Verify(a)
                if a.duration.is_some()
                    && a.containers.container.is_none()
                    && !a.containers.new_containers =>
            {
                refuse(
                    "--duration applies to --container and --new-containers; a COMMAND is observed until it exits",
                )
            }
            _ => Ok(cli),
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Record the syscalls and capability checks of a command, a process or a container.
    Record(RecordArgs),
    /// Merge recordings into a minimized, validated seccomp profile and capability settings.
    Generate(GenerateArgs),
    /// Compare two profiles or recordings; exit 1 when NEW needs more than OLD allows.
    Diff(DiffArgs),
    /// Risk report and ready-to-paste settings for a profile.
    Report(ReportArgs),
    /// Check the kernel, privileges and container engines; say what works and what to fix.
    Doctor(DoctorArgs),
    /// Attach only an empty program to raw_syscalls:sys_enter until interrupted: the cost floor
    /// `cargo xtask bench` compares cinch against.
    #[command(hide = true)]
    BenchFloor,
    /// Run a command under a seccomp profile (loaded as runc loads it) with only the given
    /// capabilities, for trying a profile without a container engine.
    Run(RunArgs),
    /// Observe a workload without restricting it; exit 1 when the profile or the capability
    /// settings would deny something it did.
    Verify(VerifyArgs),
    /// Write the permissive seccomp profile to run a container under while recording it.
    RecordingProfile(RecordingProfileArgs),
    /// Kubernetes node agent: record every new pod container on this node and keep one SPO
    /// SeccompProfile per owner and container, until SIGTERM.
    Agent(AgentArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cinch agent --output /var/lib/cinch --namespace shop --selector app=web
  curl -s 127.0.0.1:9477/metrics

Each container that starts on the node and belongs to a selected pod is recorded from its
runtime's seccomp install until it exits. Written under --output:
  recordings/NAMESPACE/OWNER/CONTAINER/NODE-ID.json   one per container run
  profiles/NAMESPACE/OWNER-CONTAINER.yaml             SPO SeccompProfile NAMESPACE-OWNER-CONTAINER
  profiles/NAMESPACE/OWNER-CONTAINER-caps.yaml        ConfigMap: cap_drop, cap_add, reasons
OWNER is the pod's Deployment, StatefulSet, DaemonSet or Job (else the pod). SIGTERM records
the containers still running up to that moment and writes everything before exiting.
Recordings from several nodes merge with:
  cinch generate --format spo --name NAMESPACE-OWNER-CONTAINER -o p.yaml FILES...")]
pub(crate) struct AgentArgs {
    /// Directory for the recordings and profiles (created if missing).
    #[arg(short, long, value_name = "DIR", default_value = "/var/lib/cinch")]
    pub output: PathBuf,

    /// Record only pods in this namespace (repeat for more; default: every namespace).
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,

    /// Record only pods with this label (repeat: all must match).
    #[arg(long = "selector", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub selectors: Vec<(String, String)>,

    /// Record only pods with this annotation (repeat: all must match).
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub annotations: Vec<(String, String)>,

    /// Address of the HTTP endpoint serving /metrics (Prometheus text) and /healthz.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9477")]
    pub listen: std::net::SocketAddr,

    /// This node's name in recordings and profiles (default: $NODE_NAME, else the hostname).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// Containers recorded at once (1-256); each takes 8 KiB of kernel memory per CPU. A
    /// container that starts while all are taken is not recorded, and counted in /metrics.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub slots: u32,
}

/// A `KEY=VALUE` label.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cinch recording-profile -o recording-profile.json\n  docker run --security-opt seccomp=recording-profile.json IMAGE\n\nWhy: seccomp runs before cinch sees a syscall, so under the engine's default profile what it\ndenies is never recorded. This profile allows everything, and, unlike seccomp=unconfined,\nstill has the runtime install a filter: `record --new-containers` starts each container's\nrecording at that moment."
)]
pub(crate) struct RecordingProfileArgs {
    /// Where to write it (default: stdout).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("target").required(true).multiple(true).args(["command", "pid", "container", "new_containers"])),
    after_help = "Examples:\n  cinch record -o rec.json -- ./run-tests.sh\n  cinch record --user 1000:1000 -- make check\n  cinch record --pid 4242 --duration 30s\n  cinch record --container web --duration 10m\n  cinch record --new-containers -o recs -- docker compose up --abort-on-container-exit\n\nContainers: seccomp runs before cinch sees a syscall, so a syscall the profile in force denies\nis invisible. Record containers under the permissive recording profile cinch writes:\n  cinch recording-profile -o recording-profile.json\n  docker run --security-opt seccomp=recording-profile.json ..."
)]
pub(crate) struct RecordArgs {
    /// Where to write the recording (default cinch-recording.json); with --new-containers a
    /// directory (default cinch-recordings), one file per container.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Run COMMAND as this user (and group), e.g. `--user 1000:1000` or `--user nobody`.
    #[arg(long, value_name = "UID[:GID]", conflicts_with_all = ["pid", "container", "new_containers"])]
    pub user: Option<String>,

    /// Attach to a running process and its future children instead of starting COMMAND.
    #[arg(long, value_name = "PID", conflicts_with_all = ["command", "container", "runtime", "new_containers"])]
    pub pid: Option<u32>,

    /// With --pid, --container or --new-containers: stop after this long (e.g. `90s`, `10m`,
    /// `1h30m`). A COMMAND is recorded until it exits.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// After recording COMMAND, prove each capability it was granted: run it again under its
    /// own generated profile with all of them, then without each; one whose removal leaves
    /// the exit status unchanged is marked not needed (`generate` leaves it out, with the
    /// evidence), one that changes it is kept even where a rule says it is only a query. For
    /// deterministic test runs whose exit status says whether they worked; it cannot see a
    /// need the exit status does not show, or one on a path this run did not take.
    #[arg(long, conflicts_with_all = ["pid", "container", "new_containers"])]
    pub(crate) prove_caps: bool,

    #[command(flatten)]
    pub(crate) containers: ContainerTargets,

    #[command(flatten)]
    pub(crate) live: LiveArgs,

    /// The command to run and record, with its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The container targets `record` and `verify` share.
#[derive(Debug, Args)]
pub(crate) struct ContainerTargets {
    /// Attach to a running container (name or id) instead of running COMMAND: every process in
    /// it, including ones started later with `docker exec`, until it stops.
    #[arg(long, value_name = "ID|NAME", conflicts_with_all = ["command", "new_containers"])]
    pub container: Option<String>,

    /// The container engine to ask (default: every engine found). containerd is asked through
    /// nerdctl, or through ctr on its socket (dockerd's own too) when nerdctl is missing.
    // `requires` alone is not enough: clap waives it when --container would conflict with an
    // argument given (`--runtime docker -- CMD`), and --runtime would be silently ignored.
    #[arg(long, value_enum, requires = "container", conflicts_with_all = ["command", "new_containers"])]
    pub runtime: Option<RuntimeName>,

    /// Every container that starts (while COMMAND runs, or for --duration), each from the
    /// moment its runtime installs the seccomp filter, in a recording of its own.
    #[arg(long)]
    pub new_containers: bool,
}

/// How `record` and `verify` report while they watch.
#[derive(Debug, Args)]
pub(crate) struct LiveArgs {
    /// No live status line; only warnings and the final summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Write `ready` and a newline to this inherited file descriptor, and close it, once the
    /// recording has begun (the probe attached, the target registered): start the workload,
    /// `docker exec` or send signals after reading it, instead of sleeping.
    #[arg(long, value_name = "FD")]
    pub ready_fd: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RuntimeName {
    Docker,
    Podman,
    Containerd,
    Crio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProfileFormat {
    /// Docker JSON (also read by Podman).
    Docker,
    /// Plain OCI `linux.seccomp` (containerd, CRI-O).
    Oci,
    /// Kubernetes Localhost profile (OCI JSON) written to -o; a Pod whose container's
    /// securityContext names it is printed on stdout.
    Kubernetes,
    /// Security Profiles Operator `SeccompProfile` resource (YAML).
    Spo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RuntimeBaseline {
    Runc,
    Crun,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub(crate) enum DefaultErrno {
    Eperm,
    Enosys,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cinch generate -o seccomp.json --caps-out settings.json rec.json\n  cinch generate --format spo --name web -o web.yaml a.json b.json"
)]
pub(crate) struct GenerateArgs {
    /// Where to write the profile.
    #[arg(short, long, value_name = "PROFILE", default_value = "seccomp.json")]
    pub output: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ProfileFormat::Docker)]
    pub format: ProfileFormat,

    /// With --format spo: the name of the `SeccompProfile` resource (default: from the output
    /// file name).
    #[arg(long)]
    pub name: Option<String>,

    /// With --format spo: the namespace of the `SeccompProfile` resource, for SPO before 0.9
    /// (its profiles are cluster-scoped since; default: none).
    #[arg(long)]
    pub namespace: Option<String>,

    /// Also write the capability settings ({"cap_drop": ["ALL"], "cap_add": [...], "reasons": {...}}).
    #[arg(long, value_name = "SETTINGS.json")]
    pub caps_out: Option<PathBuf>,

    /// Add the syscalls the container runtime makes after installing the filter (needed when
    /// the recording did not observe container start-up). Without the flag, runc's baseline is
    /// added only for recordings with `startup_observed: false`; `none` never adds one.
    #[arg(long, value_enum)]
    pub runtime_baseline: Option<RuntimeBaseline>,

    /// Errno returned for denied syscalls.
    #[arg(long, value_enum, default_value_t = DefaultErrno::Eperm)]
    pub default_errno: DefaultErrno,

    /// Recordings to merge (exact union).
    #[arg(required = true, value_name = "REC.json")]
    pub recordings: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DiffFormat {
    /// Lines for a terminal or a CI log: what NEW needs that OLD does not allow, then the rest.
    Text,
    /// A Markdown summary for a pull request or `$GITHUB_STEP_SUMMARY`.
    Markdown,
    /// Both sides and the changes as one JSON object, for scripts.
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cinch diff profiles/web/seccomp.json new.json\n  cinch diff --format markdown committed.json rec.json >> \"$GITHUB_STEP_SUMMARY\""
)]
pub(crate) struct DiffArgs {
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// The committed profile or recording.
    pub old: PathBuf,
    /// The new profile or recording.
    pub new: PathBuf,
    /// Capability settings (`cinch generate --caps-out`) that go with OLD when it is a profile.
    #[arg(long, value_name = "SETTINGS.json")]
    pub old_caps: Option<PathBuf>,
    /// Capability settings that go with NEW when it is a profile.
    #[arg(long, value_name = "SETTINGS.json")]
    pub new_caps: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// The whole report for a terminal.
    Text,
    /// The whole report as Markdown (tables), for a pull request or a wiki.
    Markdown,
    /// The whole report as one JSON object, for scripts.
    Json,
    /// Only the `docker run` options that apply the profile and the settings (capabilities,
    /// user, read-only root, limits, network, published ports). An internal network
    /// (`--network cinch-internal`) must exist: `docker network create --internal
    /// cinch-internal`.
    DockerRun,
    /// Only the docker-compose service block (security options, capabilities, user, read-only
    /// root and its tmpfs and volumes, limits, network, ports).
    Compose,
    /// Only the Kubernetes manifest: a Pod with the settings, and a NetworkPolicy (no traffic
    /// for a workload that needs no network; else in to its published ports only, and out to
    /// DNS and the address classes it connected to).
    Kubernetes,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cinch report seccomp.json --caps settings.json\n  cinch report --format compose seccomp.json --caps settings.json"
)]
pub(crate) struct ReportArgs {
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// The profile to report on.
    pub profile: PathBuf,
    /// Capability settings written by `cinch generate --caps-out`.
    #[arg(long, value_name = "SETTINGS.json")]
    pub caps: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  sudo cinch doctor")]
pub(crate) struct DoctorArgs {}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  sudo cinch run --profile seccomp.json --caps settings.json -- nginx -g 'daemon off;'\n  sudo cinch run --profile web.json --cap-add NET_BIND_SERVICE --user 33:33 -- ./server :80\n\nThe profile is loaded as Docker and runc load it: Docker's archMap and includes/excludes\nconditions (capabilities are the kept ones), one rule per name, rules equal to the default\naction and names the installed libseccomp does not know skipped, the native architecture always\nfiltered, and runc's ENOSYS answer for syscalls numbered above the highest one the profile names.\nUnlike runc, a profile that lists architectures but not this machine's is refused (exit 2).\n\nOrder: every capability not kept is dropped from the bounding, permitted, effective, inheritable\nand ambient sets; --user switches groups and ids, keeping the kept capabilities (as ambient\ncapabilities, so they survive execve for a non-root user); no_new_privs is set unless\nSYS_ADMIN is kept; the filter is installed last, and COMMAND is executed in place of cinch\n(its exit status is the exit status). The profile must allow execve."
)]
pub(crate) struct RunArgs {
    /// The seccomp profile to enforce: Docker / OCI JSON, or an SPO SeccompProfile.
    #[arg(long, value_name = "PROFILE.json")]
    pub profile: PathBuf,

    /// Capability settings written by `cinch generate --caps-out`: only its cap_add is kept.
    #[arg(long, value_name = "SETTINGS.json", conflicts_with = "cap_add")]
    pub caps: Option<PathBuf>,

    /// Keep these capabilities (e.g. `NET_BIND_SERVICE` or `CAP_CHOWN`; repeat or separate with
    /// commas); every other one is dropped. Without --caps or --cap-add, none is kept.
    #[arg(long = "cap-add", value_name = "CAP", num_args = 1.., value_delimiter = ',')]
    pub cap_add: Vec<String>,

    /// Run COMMAND as this user (and group), e.g. `--user 33:33` or `--user www-data`.
    #[arg(long, value_name = "UID[:GID]")]
    pub user: Option<String>,

    /// The command to run, with its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VerifyFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(
    group(ArgGroup::new("target").required(true).multiple(true).args(["command", "container", "new_containers"])),
    after_help = "Examples:\n  sudo cinch verify --profile seccomp.json --caps settings.json -- ./run-tests.sh\n  sudo cinch verify --profile seccomp.json --caps settings.json --container web --duration 5m\n  sudo cinch verify --profile web.json --caps web-caps.json --new-containers -- docker compose up\n\nHow: the workload runs unrestricted (no profile, all its capabilities) and is recorded as\n`cinch record` records it; then every syscall it made is checked against what the filter\n`cinch run` and runc would load does with it (per architecture, with its count), and every\ncapability it needed (granted checks no rule leaves out) against the kept capabilities.\nNothing depends on the audit log. Exit 0 when nothing would be denied, 1 otherwise.\nWith --container, what the container did before cinch attached is not checked; use\n--new-containers -- COMMAND to observe containers from their start.\n\nCanary loop: run verify attached to a staging container with --record-out FILE for as long\nas it takes, then `cinch generate OLD-RECORDINGS... FILE` and `cinch diff OLD NEW` to see\nwhat the tests missed."
)]
pub(crate) struct VerifyArgs {
    /// The seccomp profile to check against: Docker / OCI JSON, or an SPO SeccompProfile.
    #[arg(long, value_name = "PROFILE.json")]
    pub profile: PathBuf,

    /// Capability settings written by `cinch generate --caps-out`. Without --caps or --cap-add
    /// the capabilities the workload needed are listed but not checked.
    #[arg(long, value_name = "SETTINGS.json", conflicts_with = "cap_add")]
    pub caps: Option<PathBuf>,

    /// The capabilities the workload will keep (as `cinch run --cap-add`).
    #[arg(long = "cap-add", value_name = "CAP", num_args = 1.., value_delimiter = ',')]
    pub cap_add: Vec<String>,

    /// Run COMMAND as this user (and group), as `cinch run --user` would.
    #[arg(long, value_name = "UID[:GID]", conflicts_with_all = ["container", "new_containers"])]
    pub user: Option<String>,

    /// With --container or --new-containers: stop observing after this long (e.g. `30s`). A
    /// COMMAND is observed until it exits.
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,

    /// Write the verdict to this file instead of stdout (which the workload shares).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Also keep what was observed as a Recording, as `cinch record -o` writes it: a file for a
    /// COMMAND or --container, a directory (one file per container) for --new-containers. Merge
    /// it into the next `cinch generate` to add what the profile missed.
    #[arg(long, value_name = "PATH")]
    pub record_out: Option<PathBuf>,

    /// After checking COMMAND, prove each capability it was granted, as `record --prove-caps`
    /// does: one it runs the same without is not counted as needed, and the verdict says why.
    #[arg(long, conflicts_with_all = ["container", "new_containers"])]
    pub(crate) prove_caps: bool,

    #[command(flatten)]
    pub containers: ContainerTargets,

    #[command(flatten)]
    pub live: LiveArgs,

    /// The command to run and observe, with its arguments (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `90s`, `10m`, `1h30m`, `500ms`, or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration (use e.g. 30s, 10m, 1h30m)");
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u128 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        total_ms = n
            .checked_mul(ms_per)
            .and_then(|v| v.checked_add(total_ms))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    if total_ms == 0 {
        return Err(format!("{s:?} is zero; a duration must be positive"));
    }
    u64::try_from(total_ms)
        .map(std::time::Duration::from_millis)
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("12"), Ok(Duration::from_secs(12)));
        for bad in ["", "s", "10x", "1.5m", "-3s", "0s", "m10"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
