//! `cinch doctor`: what this machine lets cinch do, found by trying rather than by reading the
//! kernel version. Every attach point cinch may use is loaded and attached for real (then
//! detached), one at a time, from the same embedded object `cinch record` loads, because the
//! version says little: distributions backport hooks, build kernels without kprobes, or refuse
//! fentry/LSM programs by policy.
//!
//! Output is one line per check, `ok   `, `warn ` or `FAIL `, each saying what to fix. Exit 0
//! when recording can work (privileges, the eBPF object, BTF with `sched_process_exit`'s
//! `group_dead` field, a `raw_syscalls:sys_enter` attach point and the fork/exec/exit raw
//! tracepoints), 3 when it cannot. A missing capability source or container engine is a warning:
//! `record -- COMMAND` still works without them.

use std::error::Error as StdError;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aya::programs::{
    BtfTracePoint, FEntry, FExit, KProbe, Lsm, Program, ProgramError, RawTracePoint, TracePoint,
};
use aya::{Ebpf, EbpfLoader};
use cinch_common::names;

use crate::cli::DoctorArgs;

/// The embedded eBPF object (empty when built with AYA_BUILD_SKIP=1). Doctor keeps its own
/// handle on the bytes so it depends on nothing in the loader but the program names.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/cinch"));

fn object() -> &'static [u8] {
    OBJECT
}

const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const CAP_CAPABLE_EVENT: &str = "capability/cap_capable";

// The probe programs `doctor` tries that `record` does not use (ebpf/src/probes/doctor.rs).
const DOCTOR_TRACEPOINT: &str = "doctor_tracepoint";
const DOCTOR_KPROBE: &str = "doctor_kprobe";
const DOCTOR_FENTRY: &str = "doctor_fentry";
const DOCTOR_LSM: &str = "doctor_lsm";

/// How long a container engine's CLI gets to answer.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

// Capability bits (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

pub fn run(_args: DoctorArgs) -> anyhow::Result<u8> {
    let mut out = Checks::default();
    let kernel = kernel_release();
    check_kernel(&mut out, &kernel);
    let btf_ok = check_btf(&mut out);
    let tracefs = check_tracefs(&mut out);
    let privileged = check_privileges(&mut out);
    let can_record = check_probes(&mut out, btf_ok, tracefs.as_deref(), privileged);
    check_engines(&mut out);

    say("");
    if can_record && out.failed == 0 {
        say("cinch can record on this machine.");
        Ok(0)
    } else {
        say("cinch cannot record on this machine: fix the FAIL lines above.");
        Ok(crate::error::ExitKind::Kernel.code())
    }
}

#[derive(Default)]
struct Checks {
    failed: usize,
}

impl Checks {
    fn ok(&mut self, msg: impl AsRef<str>) {
        say(&format!("ok   {}", msg.as_ref()));
    }

    fn warn(&mut self, msg: impl AsRef<str>) {
        say(&format!("warn {}", msg.as_ref()));
    }

    fn fail(&mut self, msg: impl AsRef<str>) {
        self.failed += 1;
        say(&format!("FAIL {}", msg.as_ref()));
    }
}

/// One line on stdout. A closed stdout (`cinch doctor | head`) is not worth a panic: the checks
/// go on and the exit code still tells.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `6.18.44-foo` → (6, 18).
fn major_minor(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn check_kernel(out: &mut Checks, release: &str) {
    let arch = std::env::consts::ARCH;
    match major_minor(release) {
        Some(v) if v >= (5, 8) => out.ok(format!("kernel {release} ({arch})")),
        Some(_) => out.warn(format!(
            "kernel {release} ({arch}) is older than 5.8: BTF-based eBPF programs are unlikely to work; upgrade the kernel"
        )),
        None => out.warn(format!(
            "kernel release {release:?} ({arch}) not understood; the checks below say what works"
        )),
    }
}

fn check_btf(out: &mut Checks) -> bool {
    match std::fs::File::open(BTF_PATH) {
        Ok(_) => {
            out.ok(format!("BTF: {BTF_PATH} is readable"));
            true
        }
        Err(e) => {
            out.fail(format!(
                "BTF: cannot read {BTF_PATH} ({e}); cinch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later) and root to read it"
            ));
            false
        }
    }
}

/// Where tracefs is mounted, from /proc/self/mounts (its `events` directory is root-only, so
/// looking there would call it unmounted for an unprivileged user).
fn tracefs_mount() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, dir, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "tracefs").then(|| dir.to_owned())
    })
}

/// Where tracefs is, when it is mounted (or could be mounted now).
fn check_tracefs(out: &mut Checks) -> Option<PathBuf> {
    if let Some(dir) = tracefs_mount() {
        out.ok(format!("tracefs is mounted on {dir}"));
        return Some(PathBuf::from(dir));
    }
    match crate::tracefs::ensure_mounted() {
        Ok(()) => {
            out.ok(format!(
                "tracefs was not mounted; mounted it on {}",
                crate::tracefs::TRACEFS
            ));
            Some(PathBuf::from(crate::tracefs::TRACEFS))
        }
        Err(e) => {
            out.warn(format!(
                "tracefs is not mounted and mounting it failed ({}); classic tracepoints (the cap_capable tracepoint, the sys_enter fallback) need it: mount -t tracefs nodev {}",
                crate::error::sentence(&e),
                crate::tracefs::TRACEFS
            ));
            None
        }
    }
}

/// Effective capabilities from /proc/self/status (`CapEff:` is a hex mask).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Whether the process may load and attach tracing programs at all.
fn check_privileges(out: &mut Checks) -> bool {
    let Some(eff) = effective_caps() else {
        out.warn("privileges: cannot read CapEff from /proc/self/status; the probe checks below say what works");
        return true;
    };
    let has = |bit: u32| eff & (1u64 << bit) != 0;
    let (bpf, perfmon, sys_admin) = (has(CAP_BPF), has(CAP_PERFMON), has(CAP_SYS_ADMIN));
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let summary = format!(
        "CAP_BPF {}, CAP_PERFMON {}, CAP_SYS_ADMIN {}",
        yes_no(bpf),
        yes_no(perfmon),
        yes_no(sys_admin)
    );
    if (bpf && perfmon) || sys_admin {
        out.ok(format!("privileges: {summary}"));
        true
    } else {
        out.fail(format!(
            "privileges: {summary}; loading eBPF tracing programs needs root, or CAP_BPF and CAP_PERFMON (run with sudo)"
        ));
        false
    }
}

/// The result of loading and attaching one program.
enum Outcome {
    Works,
    /// EPERM/EACCES: the kernel has the hook but will not let us use it.
    Refused(String),
    /// The hook or the program type does not exist in this kernel.
    Unavailable(String),
    Failed(String),
}

impl Outcome {
    fn works(&self) -> bool {
        matches!(self, Outcome::Works)
    }

    /// "works", "refused (EPERM: ...)", ...
    fn describe(&self) -> String {
        match self {
            Outcome::Works => "works".to_owned(),
            Outcome::Refused(e) => format!("refused ({e})"),
            Outcome::Unavailable(e) => format!("not available ({e})"),
            Outcome::Failed(e) => format!("failed ({e})"),
        }
    }
}

/// The error and its causes on one line, with a verifier log cut to its first lines.
fn error_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        let s: String = s.lines().take(3).collect::<Vec<_>>().join(" / ");
        let s = if s.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}...", &s[..cut])
        } else {
            s
        };
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The first OS error in an error chain.
fn os_error(err: &(dyn StdError + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
            if io.kind() == std::io::ErrorKind::NotFound {
                return Some(libc::ENOENT);
            }
        }
        cur = e.source();
    }
    None
}

/// ENOTSUPP (524) is kernel-internal but does reach user space from BPF_PROG_LOAD and
/// BPF_LINK_CREATE when a hook type is not built in.
const ENOTSUPP: i32 = 524;

fn outcome(result: Result<(), ProgramError>) -> Outcome {
    let err = match result {
        Ok(()) => return Outcome::Works,
        Err(e) => e,
    };
    let text = match &err {
        // The verifier log is empty for a refused load and long for a rejected program: keep
        // its last line, where the verifier says why.
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            match log.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                Some(last) => format!("BPF_PROG_LOAD: {io_error}; verifier: {last}"),
                None => format!("BPF_PROG_LOAD: {io_error}"),
            }
        }
        _ => error_text(&err),
    };
    match os_error(&err) {
        Some(libc::EPERM | libc::EACCES) => Outcome::Refused(text),
        Some(libc::ENOENT | libc::EOPNOTSUPP | ENOTSUPP | libc::ENODEV | libc::ESRCH) => {
            Outcome::Unavailable(text)
        }
        _ => Outcome::Failed(text),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, Outcome>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or_else(|| {
        Outcome::Failed(format!(
            "the embedded eBPF object has no program {name}; rebuild cinch"
        ))
    })?;
    prog.try_into()
        .map_err(|e: ProgramError| Outcome::Failed(error_text(&e)))
}

// One function per program type: load, attach, detach, unload, and say what happened.

/// The program types attached by BTF name (tp_btf, fentry, fexit, LSM) share one shape:
/// `load(name, btf)`, `attach()`.
macro_rules! try_btf_program {
    ($fn_name:ident, $ty:ty) => {
        fn $fn_name(ebpf: &mut Ebpf, name: &str, target: &str, btf: &aya::Btf) -> Outcome {
            let p: &mut $ty = match program(ebpf, name) {
                Ok(p) => p,
                Err(o) => return o,
            };
            let result = (|| {
                p.load(target, btf)?;
                let link = p.attach()?;
                p.detach(link)
            })();
            let _ = p.unload();
            outcome(result)
        }
    };
}

try_btf_program!(try_btf_tracepoint, BtfTracePoint);
try_btf_program!(try_fentry, FEntry);
try_btf_program!(try_fexit, FExit);
try_btf_program!(try_lsm, Lsm);

fn try_raw_tracepoint(ebpf: &mut Ebpf, name: &str, event: &str) -> Outcome {
    let p: &mut RawTracePoint = match program(ebpf, name) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let result = (|| {
        p.load()?;
        let link = p.attach(event)?;
        p.detach(link)
    })();
    let _ = p.unload();
    outcome(result)
}

fn try_tracepoint(ebpf: &mut Ebpf, name: &str, category: &str, event: &str) -> Outcome {
    let p: &mut TracePoint = match program(ebpf, name) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let result = (|| {
        p.load()?;
        let link = p.attach(category, event)?;
        p.detach(link)
    })();
    let _ = p.unload();
    outcome(result)
}

fn try_kprobe(ebpf: &mut Ebpf, name: &str, function: &str) -> Outcome {
    let p: &mut KProbe = match program(ebpf, name) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let result = (|| {
        p.load()?;
        let link = p.attach(function, 0)?;
        p.detach(link)
    })();
    let _ = p.unload();
    outcome(result)
}

/// Loads the object and tries every attach point; true when recording can work.
fn check_probes(out: &mut Checks, btf_ok: bool, tracefs: Option<&Path>, privileged: bool) -> bool {
    if object().is_empty() {
        out.fail("eBPF object: this cinch was built with AYA_BUILD_SKIP=1 and carries no probes; run `cargo xtask setup` and rebuild");
        return false;
    }
    out.ok(format!("eBPF object: embedded ({} bytes)", object().len()));
    let exit_ok = check_group_dead(out, btf_ok);
    if !privileged {
        out.fail("attach points: not tried without the privileges above");
        return false;
    }

    // The one map sized by pid_max is shrunk: doctor never tracks a process.
    let mut ebpf = match EbpfLoader::new()
        .map_max_entries(names::TASK_TARGET, 1)
        .load(object())
    {
        Ok(ebpf) => ebpf,
        Err(e) => {
            out.fail(format!(
                "loading the eBPF object failed: {}",
                error_text(&e)
            ));
            return false;
        }
    };
    let btf = match aya::Btf::from_sys_fs() {
        Ok(btf) => Some(btf),
        Err(e) => {
            if btf_ok {
                out.warn(format!(
                    "parsing the kernel's BTF failed: {}",
                    error_text(&e)
                ));
            }
            None
        }
    };

    let syscalls_ok = check_syscall_attach(out, &mut ebpf, btf.as_ref(), tracefs.is_some());
    let lifecycle_ok = check_lifecycle(out, &mut ebpf);
    check_capability_source(out, &mut ebpf, btf.as_ref(), tracefs);
    btf_ok && exit_ok && syscalls_ok && lifecycle_ok
}

/// `cinch record` tells a thread's exit from its process's by the `group_dead` field of
/// `sched_process_exit` (Linux 6.16+), or on older kernels by `signal_struct.live`.
fn check_group_dead(out: &mut Checks, btf_ok: bool) -> bool {
    if !btf_ok {
        return false;
    }
    match crate::btf::Btf::from_sys_fs() {
        Ok(btf) if btf.has_member("trace_event_raw_sched_process_exit", "group_dead") => {
            out.ok("process exits: sched_process_exit has group_dead (Linux 6.16+)");
            true
        }
        Ok(btf)
            if btf.has_member("task_struct", "signal")
                && btf.has_member("signal_struct", "live") =>
        {
            out.ok("process exits: no group_dead in sched_process_exit (before Linux 6.16); cinch reads signal_struct.live instead");
            true
        }
        Ok(_) => {
            out.fail("process exits: neither sched_process_exit's group_dead nor signal_struct.live is in the kernel's BTF; the recorder cannot tell a process exit from a thread exit");
            false
        }
        Err(e) => {
            out.fail(format!("reading the kernel's BTF failed: {e}"));
            false
        }
    }
}

fn check_syscall_attach(
    out: &mut Checks,
    ebpf: &mut Ebpf,
    btf: Option<&aya::Btf>,
    tracefs_ok: bool,
) -> bool {
    let tp_btf = match btf {
        Some(btf) => try_btf_tracepoint(ebpf, names::SYS_ENTER_TP_BTF, "sys_enter", btf),
        None => Outcome::Unavailable("no kernel BTF".to_owned()),
    };
    let raw_tp = try_raw_tracepoint(ebpf, names::SYS_ENTER_RAW_TP, "sys_enter");
    let tracepoint = if tracefs_ok {
        try_tracepoint(
            ebpf,
            names::SYS_ENTER_TRACEPOINT,
            "raw_syscalls",
            "sys_enter",
        )
    } else {
        Outcome::Unavailable("tracefs is not mounted".to_owned())
    };
    let tried = [
        ("tp_btf", tp_btf),
        ("raw_tp", raw_tp),
        ("tracepoint", tracepoint),
    ];
    let chosen = tried.iter().find(|(_, o)| o.works()).map(|(kind, _)| *kind);
    for (kind, o) in &tried {
        let line = format!(
            "syscalls: {kind} on raw_syscalls:sys_enter {}",
            o.describe()
        );
        if o.works() {
            let note = if Some(*kind) == chosen {
                " (cinch record uses this one)"
            } else {
                ""
            };
            out.ok(format!("{line}{note}"));
        } else if chosen.is_some() {
            out.warn(format!("{line}; not needed, another attach point works"));
        } else {
            out.warn(line);
        }
    }
    if chosen.is_none() {
        out.fail("syscalls: no way to attach to raw_syscalls:sys_enter works; cinch needs tp_btf, raw_tp or tracepoint programs (root, BTF, tracefs)");
    }
    chosen.is_some()
}

fn check_lifecycle(out: &mut Checks, ebpf: &mut Ebpf) -> bool {
    let mut all = true;
    for (prog, event) in [
        (names::FORK, "sched_process_fork"),
        (names::EXIT, "sched_process_exit"),
        (names::EXEC, "sched_process_exec"),
    ] {
        let o = try_raw_tracepoint(ebpf, prog, event);
        if o.works() {
            out.ok(format!("processes: raw_tp on sched:{event} works"));
        } else {
            all = false;
            out.fail(format!(
                "processes: raw_tp on sched:{event} {}; cinch follows forks, execs and exits with it",
                o.describe()
            ));
        }
    }
    all
}

fn check_capability_source(
    out: &mut Checks,
    ebpf: &mut Ebpf,
    btf: Option<&aya::Btf>,
    tracefs: Option<&Path>,
) {
    let no_btf = || Outcome::Unavailable("no kernel BTF".to_owned());
    // The tracepoint exists since Linux 6.14; say so rather than show an attach error.
    let missing_event = match tracefs.map(|t| t.join("events").join(CAP_CAPABLE_EVENT)) {
        Some(dir) if !dir.is_dir() => Some(format!(
            "{} does not exist; the tracepoint was added in Linux 6.14",
            dir.display()
        )),
        _ => None,
    };
    let tp_btf = match (&missing_event, btf) {
        (Some(why), _) => Outcome::Unavailable(why.clone()),
        (None, None) => no_btf(),
        (None, Some(btf)) => {
            try_btf_tracepoint(ebpf, names::CAP_CAPABLE_TP_BTF, "cap_capable", btf)
        }
    };
    let tracepoint = match (&missing_event, tracefs) {
        (Some(why), _) => Outcome::Unavailable(why.clone()),
        (None, None) => Outcome::Unavailable("tracefs is not mounted".to_owned()),
        (None, Some(_)) => try_tracepoint(ebpf, DOCTOR_TRACEPOINT, "capability", "cap_capable"),
    };
    let kprobe = match try_kprobe(ebpf, DOCTOR_KPROBE, "cap_capable") {
        Outcome::Unavailable(e) if !kprobes_built_in() => {
            Outcome::Unavailable(format!("kprobes are not compiled into this kernel: {e}"))
        }
        o => o,
    };
    let fentry = btf.map_or_else(no_btf, |btf| {
        try_fentry(ebpf, DOCTOR_FENTRY, "cap_capable", btf)
    });
    // The fallback itself, not an empty stand-in: the verifier checks its real body.
    let fexit = btf.map_or_else(no_btf, |btf| {
        try_fexit(ebpf, names::CAP_CAPABLE_FEXIT, "cap_capable", btf)
    });
    let lsm = btf.map_or_else(no_btf, |btf| try_lsm(ebpf, DOCTOR_LSM, "file_open", btf));

    // `cinch record` attaches the first that works of tp_btf and fexit (its fallback for kernels
    // without the tracepoint); the others say what else this kernel allows.
    let sources = [
        ("tp_btf on capability:cap_capable", &tp_btf),
        ("tracepoint capability:cap_capable", &tracepoint),
        ("kprobe on cap_capable", &kprobe),
        ("fentry on cap_capable", &fentry),
        ("fexit on cap_capable", &fexit),
    ];
    let used = if tp_btf.works() {
        Some(0)
    } else if fexit.works() {
        Some(4)
    } else {
        None
    };
    for (i, (what, o)) in sources.iter().enumerate() {
        let line = format!("capabilities: {what} {}", o.describe());
        match (o.works(), Some(i) == used) {
            (true, true) => out.ok(format!("{line} (cinch record uses this one)")),
            (true, false) => out.ok(line),
            (false, _) => out.warn(line),
        }
    }
    let lsm_line = format!("lsm: BPF LSM program on file_open {}", lsm.describe());
    if lsm.works() {
        out.ok(lsm_line);
    } else {
        out.warn(format!("{lsm_line}; cinch does not need it"));
    }
    let others: Vec<&str> = sources[1..4]
        .iter()
        .filter(|(_, o)| o.works())
        .map(|(what, _)| *what)
        .collect();
    if tp_btf.works() {
        out.ok("capability source: tp_btf on capability:cap_capable");
    } else if fexit.works() {
        out.ok("capability source: fexit on cap_capable (the capability:cap_capable tracepoint does not work here)");
    } else if others.is_empty() {
        out.warn("capability source: none works; cinch records syscalls but no capability checks, so the generated cap_add cannot say which capabilities are needed (use Linux 6.14+ for the cap_capable tracepoint)");
    } else {
        out.warn(format!(
            "capability source: neither tp_btf on capability:cap_capable nor fexit on cap_capable works here; {} works but cinch does not use it, so recordings carry no capability checks",
            others.join(", ")
        ));
    }
}

/// Kprobes exist when the kernel has the kprobe PMU (perf_event_open) or tracefs kprobe_events.
fn kprobes_built_in() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || Path::new(crate::tracefs::TRACEFS)
            .join("kprobe_events")
            .exists()
}

/// A container engine CLI and how to ask it whether its daemon/runtime answers.
struct Engine {
    name: &'static str,
    args: &'static [&'static str],
    /// The engine's default API socket and the variable that overrides it: when the variable is
    /// unset and nothing listens there, the engine does not answer (some CLIs wait a long time
    /// before saying so).
    socket: Option<(&'static str, &'static str)>,
    fix: &'static str,
}

const ENGINES: &[Engine] = &[
    Engine {
        name: "docker",
        args: &["version", "--format", "{{.Server.Version}}"],
        socket: Some(("/var/run/docker.sock", "DOCKER_HOST")),
        fix: "start the daemon: systemctl start docker (or dockerd)",
    },
    Engine {
        name: "podman",
        args: &["version", "--format", "{{.Version}}"],
        socket: None,
        fix: "check `podman info`",
    },
    Engine {
        name: "nerdctl",
        args: &["info", "--format", "{{.ServerVersion}}"],
        socket: Some(("/run/containerd/containerd.sock", "CONTAINERD_ADDRESS")),
        fix: "start containerd: systemctl start containerd",
    },
    Engine {
        name: "ctr",
        args: &["version"],
        socket: Some(("/run/containerd/containerd.sock", "CONTAINERD_ADDRESS")),
        fix: "start containerd: systemctl start containerd",
    },
    Engine {
        name: "crictl",
        args: &["version"],
        socket: None,
        fix: "start the CRI runtime and set its endpoint in /etc/crictl.yaml",
    },
];

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            let p = dir.join(name);
            std::fs::metadata(&p).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt as _;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// Runs a command with a deadline; Ok(stdout) when it exits 0 in time.
fn run_with_timeout(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", timeout.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    // The pipes are small and the commands print little; read after exit.
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    if status.success() {
        Ok(stdout)
    } else {
        let why = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no output")
            .to_owned();
        Err(format!("{status}: {why}"))
    }
}

fn check_engines(out: &mut Checks) {
    let mut answering = Vec::new();
    let mut absent = Vec::new();
    for engine in ENGINES {
        if !on_path(engine.name) {
            absent.push(engine.name);
            continue;
        }
        let answer = match engine.socket {
            Some((socket, var))
                if std::env::var_os(var).is_none()
                    && std::os::unix::net::UnixStream::connect(socket).is_err() =>
            {
                Err(format!("nothing listens on {socket}"))
            }
            _ => run_with_timeout(engine.name, engine.args, ENGINE_TIMEOUT),
        };
        match answer {
            Ok(stdout) => {
                // A one-line answer is the version (the formatted queries above); others are
                // multi-line reports not worth repeating.
                let answer = stdout.trim();
                let detail = if !answer.is_empty() && !answer.contains('\n') {
                    format!(" ({answer})")
                } else {
                    String::new()
                };
                out.ok(format!("container engine: {} answers{detail}", engine.name));
                answering.push(engine.name);
            }
            Err(why) => out.warn(format!(
                "container engine: {} is installed but does not answer ({why}); {}",
                engine.name, engine.fix
            )),
        }
    }
    if !absent.is_empty() {
        out.ok(format!(
            "container engines not installed: {}",
            absent.join(", ")
        ));
    }
    if answering.is_empty() {
        out.warn("container engines: none answers; `cinch record -- COMMAND` and `--pid` work, `--container` needs a running engine");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(major_minor("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(major_minor("5.8.0"), Some((5, 8)));
        assert_eq!(major_minor("6.1"), Some((6, 1)));
        assert_eq!(major_minor("garbage"), None);
    }

    #[test]
    fn errors_are_classified_by_errno() {
        let syscall = |errno| {
            Err(ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_prog_load",
                io_error: std::io::Error::from_raw_os_error(errno),
            }))
        };
        assert!(matches!(outcome(syscall(libc::EPERM)), Outcome::Refused(_)));
        assert!(matches!(
            outcome(syscall(libc::ENOENT)),
            Outcome::Unavailable(_)
        ));
        assert!(matches!(
            outcome(syscall(ENOTSUPP)),
            Outcome::Unavailable(_)
        ));
        assert!(matches!(outcome(syscall(libc::EINVAL)), Outcome::Failed(_)));
        assert!(outcome(Ok(())).works());
    }
}
