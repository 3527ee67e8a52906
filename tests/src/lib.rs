//! The harness cinch's privileged and end-to-end tests share (docs/DESIGN.md, "Tests").
//!
//! - [`cinch_bin`]: the binary under test (`CINCH_BIN`, else `<workspace>/target/debug/cinch`).
//! - [`require`], [`require_root`], [`require_bpf`]: prerequisites. Outside CI a test whose
//!   prerequisite is missing prints `SKIPPED: <test>: <reason>` and returns; under `CI=true` it
//!   panics instead, so CI never passes by skipping.
//! - [`docker`]: a `dockerd` the harness starts when none answers, and a busybox test image built
//!   locally with `docker import` (no registry is ever contacted).
//! - [`strace`]: `strace -f` ground truth, per architecture.
//! - [`node`]: a Kubernetes node without a kubelet, pod containers under containerd with the
//!   kubelet's CRI labels, for the node agent.
//!
//! Privileged tests run one at a time (`--test-threads=1`): they load BPF programs and start
//! processes whose syscalls are compared with exact sets.

pub mod debian;
pub mod docker;
pub mod kubernetes;
pub mod node;
pub mod podman;
pub mod strace;

use std::path::{Path, PathBuf};

// tests/ci_examples.rs reads YAML with it; the harness's own unit tests do not.
#[cfg(test)]
use serde_norway as _;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub use strace::{strace_run, strace_syscalls};

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace")
        .to_path_buf()
}

/// The `cinch` binary to test: `$CINCH_BIN` (set by `cargo xtask test`), else the debug build in
/// `$CARGO_TARGET_DIR` or `<workspace>/target`. Panics when it does not exist.
pub fn cinch_bin() -> PathBuf {
    let path = match std::env::var_os("CINCH_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| workspace_root().join("target"), PathBuf::from)
            .join("debug")
            .join("cinch"),
    };
    assert!(
        path.is_file(),
        "the cinch binary is not at {}: build it with `cargo build -p cinch`, or point CINCH_BIN at it",
        path.display()
    );
    path
}

/// Whether this is a CI run (`CI=true`), where a missing prerequisite is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A prerequisite of test `name`: true when `ok`, so the test goes on. Otherwise prints
/// `SKIPPED: {name}: {why}` and returns false (the test then returns); under `CI=true` it panics
/// with the same message instead.
pub fn require(name: &str, ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("{name}: missing prerequisite under CI=true: {why}");
    }
    // One `SKIPPED:` line (what `cargo xtask test` counts); details of a long reason follow,
    // indented.
    let mut lines = why.lines();
    println!(
        "SKIPPED: {name}: {}",
        lines.next().unwrap_or("no reason given")
    );
    for line in lines {
        println!("    {line}");
    }
    false
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The name of the enclosing function (the test), for messages.
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        let path = ::std::any::type_name_of_val(&here);
        let path = path.strip_suffix("::here").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}

/// The one guard at the top of a privileged test: `guard!(bpf)` (root, BTF and a cinch that can
/// record here) or `guard!(root)`. A missing prerequisite skips the test, or fails it under
/// `CI=true` ([`require`]). The test then holds [`serial`] until it ends, so privileged tests
/// run one at a time whoever runs them (`cargo test`, an IDE, nextest).
#[macro_export]
macro_rules! guard {
    (bpf) => {
        let _serial = match $crate::require_bpf($crate::test_name!()) {
            true => $crate::serial(),
            false => return,
        };
    };
    (root) => {
        let _serial = match $crate::require_root($crate::test_name!()) {
            true => $crate::serial(),
            false => return,
        };
    };
}

/// An exclusive lock for the machine-wide resources privileged tests use (BPF programs, the
/// Docker daemon, mount namespaces): an `flock` on a file in the temporary directory, so it
/// holds across test threads and test processes alike. Released when dropped.
pub fn serial() -> nix::fcntl::Flock<std::fs::File> {
    let path = std::env::temp_dir().join("cinch-privileged-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", path.display()))
}

/// The test needs root (loading BPF programs, starting dockerd, changing credentials).
pub fn require_root(name: &str) -> bool {
    require(
        name,
        is_root(),
        "needs root (run the privileged tiers as root: sudo -E cargo xtask test)",
    )
}

const BTF: &str = "/sys/kernel/btf/vmlinux";

/// The test loads cinch's BPF programs: root, the kernel's BTF, and a cinch that can record here
/// (`cinch doctor` exits 0; that also rules out a binary built with the AYA_BUILD_SKIP stub).
/// The doctor runs once per test process.
pub fn require_bpf(name: &str) -> bool {
    if !require_root(name) {
        return false;
    }
    if !require(
        name,
        std::fs::File::open(BTF).is_ok(),
        &format!("{BTF} is not readable: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)"),
    ) {
        return false;
    }
    match doctor_verdict() {
        Ok(()) => true,
        Err(why) => require(name, false, why),
    }
}

/// `cinch doctor`'s verdict, cached: Ok when it exits 0, else its FAIL lines.
fn doctor_verdict() -> &'static Result<(), String> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT.get_or_init(|| {
        let bin = cinch_bin();
        let out = Command::new(&bin)
            .arg("doctor")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {} doctor: {e}", bin.display()));
        if out.status.success() {
            return Ok(());
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let fails: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .chain(stderr.lines().filter(|l| !l.trim().is_empty()))
            .collect();
        Err(format!(
            "`cinch doctor` says cinch cannot record here ({}): {}",
            out.status,
            fails.join("; ")
        ))
    })
}

/// Compiles `tests/workloads/NAME.c` (when the source is newer than the binary) and returns the
/// binary. Binaries live in `target/workloads/`; each is written under a temporary name and
/// renamed, so concurrent test processes never run a half-written one.
pub fn workload(name: &str) -> PathBuf {
    compile_workload(name, false)
}

/// [`workload`], linked statically: for containers whose image has no C library (the busybox
/// test image), where it is bind-mounted and run.
pub fn workload_static(name: &str) -> PathBuf {
    compile_workload(name, true)
}

fn compile_workload(name: &str, static_link: bool) -> PathBuf {
    let src = workspace_root()
        .join("tests/workloads")
        .join(format!("{name}.c"));
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("workloads");
    std::fs::create_dir_all(&dir).expect("creating target/workloads");
    let out = dir.join(if static_link {
        format!("{name}-static")
    } else {
        name.to_owned()
    });
    let stale = match (std::fs::metadata(&src), std::fs::metadata(&out)) {
        (Ok(s), Ok(o)) => s.modified().ok() > o.modified().ok(),
        _ => true,
    };
    if stale {
        let tmp = dir.join(format!(".{name}.{static_link}.{}", std::process::id()));
        let status = Command::new("cc")
            .args(["-O2", "-pthread"])
            .args(static_link.then_some("-static"))
            .arg("-o")
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("running cc (install gcc: cargo xtask setup)");
        assert!(status.success(), "compiling {}", src.display());
        std::fs::rename(&tmp, &out).expect("placing the compiled workload");
    }
    out
}

/// A background process, killed and reaped if the test ends (or fails) before it exits.
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

/// The `NAME: outcome` lines a workload prints (`tests/workloads/argsys.c`), as a map.
pub fn outcome_lines(stdout: &[u8]) -> std::collections::BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A command's status and both outputs, for assertion messages.
/// `cinch ARGS...` with no input, run to the end; its output.
pub fn cinch(args: &[&str]) -> std::process::Output {
    Command::new(cinch_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running cinch")
}

pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(feature = "recordings")]
/// `cinch record -q -o DIR/NAME.json -- ARGV...`, which must succeed; the file and the
/// recording.
pub fn record_command(dir: &Path, name: &str, argv: &[&str]) -> (PathBuf, profile_gen::Recording) {
    let rec = dir.join(format!("{name}.json"));
    let out = Command::new(cinch_bin())
        .args(["record", "-q", "-o"])
        .arg(&rec)
        .arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .expect("running cinch record");
    assert!(
        out.status.success(),
        "record {argv:?}: {}",
        output_text(&out)
    );
    let recording = profile_gen::read_recording(&rec)
        .unwrap_or_else(|e| panic!("record {argv:?} wrote no valid recording: {e}"));
    (rec, recording)
}

#[cfg(feature = "recordings")]
/// The syscall names a recording has, every architecture together.
pub fn recorded_names(recording: &profile_gen::Recording) -> Vec<String> {
    recording
        .syscalls
        .values()
        .flatten()
        .filter_map(|c| c.name.clone())
        .collect()
}

/// `cinch generate -o DIR/NAME.seccomp.json RECORDINGS...`, which must succeed; the profile and
/// the summary it printed.
pub fn generate_profile(dir: &Path, name: &str, recordings: &[&Path]) -> (PathBuf, String) {
    let profile = dir.join(format!("{name}.seccomp.json"));
    let out = Command::new(cinch_bin())
        .args(["generate", "-o"])
        .arg(&profile)
        .args(recordings)
        .output()
        .expect("running cinch generate");
    assert!(out.status.success(), "generate: {}", output_text(&out));
    (profile, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `cinch generate [OPTIONS] -o DIR/NAME.seccomp.json --caps-out DIR/NAME.settings.json
/// RECORDINGS...`, which must succeed: the profile, the settings file and the summary printed.
pub fn generate_with_settings(
    dir: &Path,
    name: &str,
    recordings: &[PathBuf],
    options: &[&str],
) -> (PathBuf, PathBuf, String) {
    let profile = dir.join(format!("{name}.seccomp.json"));
    let settings = dir.join(format!("{name}.settings.json"));
    let out = Command::new(cinch_bin())
        .arg("generate")
        .args(options)
        .arg("-o")
        .arg(&profile)
        .arg("--caps-out")
        .arg(&settings)
        .args(recordings)
        .output()
        .expect("running cinch generate");
    assert!(out.status.success(), "generate: {}", output_text(&out));
    (
        profile,
        settings,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `cinch report --format FORMAT PROFILE --caps SETTINGS`, which must succeed: what it printed
/// (a snippet for `docker-run`, `compose` and `kubernetes`).
pub fn report_snippet(profile: &Path, settings: &Path, format: &str) -> String {
    let out = Command::new(cinch_bin())
        .args(["report", "--format", format])
        .arg(profile)
        .arg("--caps")
        .arg(settings)
        .output()
        .expect("running cinch report");
    assert!(out.status.success(), "report: {}", output_text(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// A copy of the seccomp profile at `profile`, written into `dir`, with `name` taken out of every
/// allowing rule. Panics when no rule allowed it: a test that removes a syscall the workload
/// never had proves nothing.
pub fn profile_without(profile: &Path, name: &str, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(profile)
        .unwrap_or_else(|e| panic!("reading {}: {e}", profile.display()));
    let mut p: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", profile.display()));
    let mut removed = false;
    for rule in p["syscalls"].as_array_mut().into_iter().flatten() {
        if rule["action"] == "SCMP_ACT_ALLOW"
            && let Some(names) = rule["names"].as_array_mut()
        {
            let before = names.len();
            names.retain(|n| n != name);
            removed |= names.len() < before;
        }
    }
    assert!(removed, "{name} is not allowed by {}", profile.display());
    let out = dir.join(format!("without-{name}.json"));
    std::fs::write(&out, p.to_string()).expect("writing the profile");
    out
}

/// Whether `program` is an executable file on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// The name recordings give this machine's own architecture (`x86_64`, `aarch64`...).
pub const NATIVE: &str = std::env::consts::ARCH;

/// The permissive profile containers are recorded under (`cinch recording-profile` writes the
/// same), in the repository.
pub fn recording_profile() -> PathBuf {
    workspace_root().join("profiles/recording-profile.json")
}

/// The read end of `cinch ... --ready-fd 3`: cinch writes `ready` there once it records (the
/// probe attached, the target registered), so a test acts then instead of after a fixed sleep.
pub struct Ready {
    read: std::os::fd::OwnedFd,
    write: Option<std::os::fd::OwnedFd>,
}

impl Ready {
    /// The descriptor number cinch gets: pass `--ready-fd` [`Ready::FD`].
    pub const FD: &'static str = "3";

    /// Gives `cmd` the write end as descriptor 3. Add `--ready-fd 3` to its arguments.
    pub fn new(cmd: &mut Command) -> Ready {
        use std::os::fd::AsRawFd as _;
        use std::os::unix::process::CommandExt as _;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let raw = write.as_raw_fd();
        // SAFETY: between fork and exec the hook calls only dup2 and fcntl (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || {
                let rc = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ready {
            read,
            write: Some(write),
        }
    }

    /// Waits (at most `limit`) for cinch's `ready` line. Panics when cinch closed the descriptor
    /// without it (it stopped: its error is on its stderr) or took longer.
    pub fn wait(&mut self, limit: std::time::Duration) {
        use std::os::fd::AsFd as _;
        // Only cinch holds the write end now: end-of-file means it is gone.
        self.write = None;
        let deadline = std::time::Instant::now() + limit;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(
                self.read.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let n = nix::poll::poll(&mut fds, ms).expect("poll");
            assert!(n > 0, "cinch was not ready within {limit:?}");
            let mut buf = [0u8; 16];
            let len = nix::unistd::read(&self.read, &mut buf).expect("read");
            got.extend_from_slice(&buf[..len]);
            if got == b"ready\n" {
                return;
            }
            assert!(
                len > 0 && b"ready\n".starts_with(&got),
                "cinch closed --ready-fd without `ready` (it wrote {:?})",
                String::from_utf8_lossy(&got)
            );
        }
    }
}

/// The children of process `pid`'s main thread.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Process `pid`'s command name (empty when it is gone).
pub fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// `pid` or one of its descendants is a `sleep` blocked in its nanosleep: a workload that got
/// past its start-up (`/proc/PID/syscall` names the call a blocked task is in).
pub fn sleeping_below(pid: u32) -> bool {
    let sleeps = [libc::SYS_nanosleep, libc::SYS_clock_nanosleep].map(|nr| nr as u64);
    let in_sleep = |p: u32| {
        comm(p) == "sleep"
            && std::fs::read_to_string(format!("/proc/{p}/syscall"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
                .is_some_and(|nr: u64| sleeps.contains(&nr))
    };
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        if in_sleep(p) {
            return true;
        }
        todo.extend(children(p));
    }
    false
}

/// Waits (at most `limit`) until [`sleeping_below`] `pid`.
pub fn wait_sleeping_below(pid: u32, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while !sleeping_below(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "no sleep below pid {pid} reached its nanosleep within {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_met_prerequisite_goes_on() {
        assert!(require("a_met_prerequisite_goes_on", true, "never printed"));
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
            .expect("reading the workspace manifest");
        assert!(manifest.contains("[workspace]"));
    }
}
