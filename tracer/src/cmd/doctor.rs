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

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aya::Ebpf;

use crate::cli::DoctorArgs;
use crate::probe::attach::{Ladder, Rung};
use crate::probe::outcome::error_text;
use crate::probe::{self, ExitDetection};

/// How long a container engine's CLI gets to answer.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn run(_args: DoctorArgs) -> anyhow::Result<u8> {
    let mut out = Checks::default();
    check_kernel(&mut out, &crate::procfs::kernel_release());
    let btf_ok = check_btf(&mut out);
    check_tracefs(&mut out);
    let privileged = check_privileges(&mut out);
    let can_record = check_probes(&mut out, btf_ok, privileged);
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
    let path = probe::VMLINUX;
    match std::fs::File::open(path) {
        Ok(_) => {
            out.ok(format!("BTF: {path} is readable"));
            true
        }
        Err(e) => {
            out.fail(format!(
                "BTF: cannot read {path} ({e}); cinch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8 or later) and root to read it"
            ));
            false
        }
    }
}

/// Whether tracefs is mounted, mounting it if it is not (as `cinch record` does when it needs
/// a classic tracepoint).
fn check_tracefs(out: &mut Checks) {
    if let Some(dir) = crate::tracefs::mount_point() {
        out.ok(format!("tracefs is mounted on {}", dir.display()));
        return;
    }
    let tracefs = crate::tracefs::TRACEFS;
    match crate::tracefs::ensure_mounted() {
        Ok(()) => out.ok(format!("tracefs was not mounted; mounted it on {tracefs}")),
        Err(e) => out.warn(format!(
            "tracefs is not mounted and mounting it failed ({}); classic tracepoints (the cap_capable tracepoint, the sys_enter fallback) need it: mount -t tracefs nodev {tracefs}",
            crate::error::sentence(&e),
        )),
    }
}

/// Whether the process may load and attach tracing programs at all.
fn check_privileges(out: &mut Checks) -> bool {
    let privileges = match probe::Privileges::of_this_process() {
        Ok(p) => p,
        Err(e) => {
            out.warn(format!("privileges: cannot read this process's effective capabilities ({e}); the probe checks below say what works"));
            return true;
        }
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let summary = format!(
        "CAP_BPF {}, CAP_PERFMON {}, CAP_SYS_ADMIN {}",
        yes_no(privileges.bpf),
        yes_no(privileges.perfmon),
        yes_no(privileges.sys_admin)
    );
    if privileges.suffice() {
        out.ok(format!("privileges: {summary}"));
        true
    } else {
        out.fail(format!(
            "privileges: {summary}; loading eBPF tracing programs needs root, or CAP_BPF and CAP_PERFMON (run with sudo)"
        ));
        false
    }
}

/// Loads the object `cinch record` loads and walks the attach ladders it climbs, trying every
/// rung; true when recording can work.
fn check_probes(out: &mut Checks, btf_ok: bool, privileged: bool) -> bool {
    if !probe::object_present() {
        out.fail("eBPF object: this cinch was built with AYA_BUILD_SKIP=1 and carries no probes; run `cargo xtask setup` and rebuild");
        return false;
    }
    out.ok(format!(
        "eBPF object: embedded ({} bytes)",
        probe::OBJECT.len()
    ));
    let exit_ok = check_exit_detection(out, btf_ok);
    if !privileged {
        out.fail("attach points: not tried without the privileges above");
        return false;
    }

    let mut ebpf = match probe::load_for_trial() {
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

    let syscalls_ok = check_syscall_attach(out, &mut ebpf, btf.as_ref());
    let lifecycle_ok = check_lifecycle(out, &mut ebpf);
    check_syscall_results(out, &mut ebpf, btf.as_ref());
    check_capability_source(out, &mut ebpf, btf.as_ref());
    btf_ok && exit_ok && syscalls_ok && lifecycle_ok
}

/// `cinch record` tells a thread's exit from its process's by the `group_dead` field of
/// `sched_process_exit` (Linux 6.16+), or on older kernels by `signal_struct.live`.
fn check_exit_detection(out: &mut Checks, btf_ok: bool) -> bool {
    if !btf_ok {
        return false;
    }
    let btf = match probe::Btf::from_sys_fs() {
        Ok(btf) => btf,
        Err(e) => {
            out.fail(format!("reading the kernel's BTF failed: {e}"));
            return false;
        }
    };
    match probe::exit_detection(&btf, false) {
        Ok(ExitDetection::GroupDead) => {
            out.ok("process exits: sched_process_exit has group_dead (Linux 6.16+)");
            true
        }
        Ok(ExitDetection::SignalLive { .. }) => {
            out.ok("process exits: no group_dead in sched_process_exit (before Linux 6.16); cinch reads signal_struct.live instead");
            true
        }
        Err(_) => {
            out.fail("process exits: neither sched_process_exit's group_dead nor signal_struct.live is in the kernel's BTF; the recorder cannot tell a process exit from a thread exit");
            false
        }
    }
}

/// "a, b or c".
fn either(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// One line per rung of a ladder, the one `cinch record` would use marked.
fn report_ladder<T>(
    out: &mut Checks,
    what: &str,
    ladder: &'static Ladder<T>,
    ebpf: &mut Ebpf,
    btf: Option<&aya::Btf>,
) -> Option<&'static Rung<T>> {
    let survey = ladder.survey(ebpf, btf);
    let chosen = survey.chosen();
    for (rung, o) in &survey.tried {
        let line = format!("{what}: {} {}", rung.hook, o.describe());
        if o.works() {
            let used = chosen.is_some_and(|c| std::ptr::eq(c, *rung));
            let note = if used {
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
    chosen
}

fn check_syscall_attach(out: &mut Checks, ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> bool {
    let chosen = report_ladder(out, "syscalls", &probe::SYS_ENTER, ebpf, btf);
    if chosen.is_none() {
        let kinds: Vec<&str> = probe::SYS_ENTER
            .rungs
            .iter()
            .map(|r| r.hook.kind())
            .collect();
        out.fail(format!(
            "syscalls: no way to attach to raw_syscalls:sys_enter works; cinch needs {} programs (root, BTF, tracefs)",
            either(&kinds)
        ));
    }
    chosen.is_some()
}

/// Syscall results are optional: without them a capability granted in a syscall that failed
/// anyway counts as a need.
fn check_syscall_results(out: &mut Checks, ebpf: &mut Ebpf, btf: Option<&aya::Btf>) {
    if report_ladder(out, "syscall results", &probe::SYS_EXIT, ebpf, btf).is_none() {
        out.warn("syscall results: the syscall exit events cannot be attached to; a capability granted in a syscall that failed anyway will count as a need");
    }
}

fn check_lifecycle(out: &mut Checks, ebpf: &mut Ebpf) -> bool {
    let mut all = true;
    for rung in probe::PROCESS_EVENTS {
        let o = rung.try_out(ebpf, None);
        if o.works() {
            out.ok(format!("processes: {} works", rung.hook));
        } else {
            all = false;
            out.fail(format!(
                "processes: {} {}; cinch follows forks, execs and exits with it",
                rung.hook,
                o.describe()
            ));
        }
    }
    all
}

fn check_capability_source(out: &mut Checks, ebpf: &mut Ebpf, btf: Option<&aya::Btf>) {
    // The ladder `cinch record` climbs first, then what else this kernel allows.
    let chosen = report_ladder(out, "capabilities", &probe::CAP_CAPABLE, ebpf, btf);
    let mut others = Vec::new();
    for rung in probe::CAP_CAPABLE_OTHERS {
        let o = rung.try_out(ebpf, btf);
        let line = format!("capabilities: {} {}", rung.hook, o.describe());
        if o.works() {
            out.ok(line);
            others.push(rung.hook.to_string());
        } else {
            out.warn(line);
        }
    }
    let lsm = probe::LSM_PROBE.try_out(ebpf, btf);
    let lsm_line = format!(
        "lsm: BPF LSM program on {} {}",
        probe::LSM_PROBE.hook.target(),
        lsm.describe()
    );
    if lsm.works() {
        out.ok(lsm_line);
    } else {
        out.warn(format!("{lsm_line}; cinch does not need it"));
    }
    let rungs = probe::CAP_CAPABLE.rungs;
    match chosen {
        Some(rung) if std::ptr::eq(rung, &rungs[0]) => {
            out.ok(format!("capability source: {}", rung.hook));
        }
        Some(rung) => out.ok(format!(
            "capability source: {} ({} does not work here)",
            rung.hook, rungs[0].hook
        )),
        None if others.is_empty() => out.warn("capability source: none works; cinch records syscalls but no capability checks, so the generated cap_add cannot say which capabilities are needed (use Linux 6.14+ for the cap_capable tracepoint)"),
        None => {
            let tried: Vec<String> = rungs.iter().map(|r| r.hook.to_string()).collect();
            out.warn(format!(
                "capability source: neither {} works here; {} works but cinch does not use it, so recordings carry no capability checks",
                tried.join(" nor "),
                others.join(", ")
            ));
        }
    }
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
    fn alternatives_are_listed() {
        assert_eq!(
            either(&["tp_btf", "raw_tp", "tracepoint"]),
            "tp_btf, raw_tp or tracepoint"
        );
        assert_eq!(either(&["tp_btf"]), "tp_btf");
    }
}
