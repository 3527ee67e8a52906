//! Privileged tier: signals during `cinch record -- COMMAND`.
//!
//! - SIGINT, SIGTERM and SIGHUP sent to cinch stop the recording cleanly: the signal is forwarded
//!   to the workload, the recording is written (valid, nothing lost), the exit status is the
//!   workload's (128 + signal), and no BPF program or link of cinch's is left in the kernel.
//! - SIGKILL of cinch leaves the workload running (cinch never takes it down with it), writes no
//!   file (not even a temporary one), and the kernel drops every program and link once the
//!   process is gone.
//! - A second SIGINT stops cinch at once, even when the workload ignores SIGINT and would
//!   otherwise be given a grace period.
//!
//! cinch's programs, links and maps are identified by the BPF file descriptors the cinch process
//! holds (`prog_id:` / `link_id:` / `map_id:` in /proc/PID/fdinfo), so a recorder run by another
//! test process at the same time cannot be confused with this one; after cinch exits, none of
//! those ids may still be listed by `bpftool prog show` / `bpftool link show`.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::guard;
use cinch_tests::{ChildGuard, Ready, children, cinch_bin, comm, require, wait_sleeping_below};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The BPF objects a process holds open.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct BpfIds {
    progs: BTreeSet<u32>,
    links: BTreeSet<u32>,
    maps: BTreeSet<u32>,
}

fn bpf_ids(pid: u32) -> BpfIds {
    let mut ids = BpfIds::default();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            let put = |set: &mut BTreeSet<u32>, v: &str| {
                if let Ok(id) = v.trim().parse() {
                    set.insert(id);
                }
            };
            if let Some(v) = line.strip_prefix("prog_id:") {
                put(&mut ids.progs, v);
            } else if let Some(v) = line.strip_prefix("link_id:") {
                put(&mut ids.links, v);
            } else if let Some(v) = line.strip_prefix("map_id:") {
                put(&mut ids.maps, v);
            }
        }
    }
    ids
}

/// Ids `bpftool -j KIND show` lists (`prog` or `link`).
fn loaded(kind: &str) -> BTreeSet<u32> {
    let out = Command::new("bpftool")
        .args(["-j", kind, "show"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running bpftool {kind} show: {e}"));
    assert!(out.status.success(), "bpftool {kind} show failed");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bpftool's JSON");
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_u64())
        .filter_map(|id| u32::try_from(id).ok())
        .collect()
}

/// Waits until none of `ids` is loaded any more (the kernel frees them shortly after the last
/// file descriptor closes); panics naming what is left.
fn assert_released(ids: &BpfIds, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let progs: Vec<u32> = loaded("prog").intersection(&ids.progs).copied().collect();
        let links: Vec<u32> = loaded("link").intersection(&ids.links).copied().collect();
        if progs.is_empty() && links.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: cinch's BPF programs {progs:?} and links {links:?} are still in the kernel 10 s after it exited"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose parent is `pid`.
/// Running and not a zombie.
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z" | "X"))
}

/// `cinch record -q -o OUT -- WORKLOAD...` in its own process group (so that whatever is left of
/// it can be killed by that group's id at the end), once its programs are attached and the
/// workload has started.
struct Recorder {
    child: Child,
    pid: u32,
    /// cinch's stderr, in a file: a pipe would stay open as long as the workload that inherited
    /// it runs.
    stderr: tempfile::NamedTempFile,
    ids: BpfIds,
    /// The workload's first process.
    workload: u32,
}

impl Recorder {
    fn start(out: &Path, workload: &[&str], workload_comm: &str) -> Recorder {
        let stderr = tempfile::NamedTempFile::new().expect("a file for cinch's stderr");
        let mut cmd = Command::new(cinch_bin());
        cmd.args(["record", "-q", "--ready-fd", Ready::FD, "-o"])
            .arg(out)
            .arg("--")
            .args(workload)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr.reopen().expect("reopening the stderr file"))
            .process_group(0);
        let mut ready = Ready::new(&mut cmd);
        let child = cmd.spawn().expect("starting cinch record");
        let pid = child.id();
        // Owned by the guard from here on: a failed assertion still kills and reaps it.
        let mut rec = Recorder {
            child,
            pid,
            stderr,
            ids: BpfIds::default(),
            workload: 0,
        };
        // Ready: the programs are attached and the workload has been exec'd.
        ready.wait(Duration::from_secs(20));
        rec.ids = bpf_ids(pid);
        assert!(
            !rec.ids.progs.is_empty() && !rec.ids.links.is_empty(),
            "cinch is ready without programs {:?} / links {:?}",
            rec.ids.progs,
            rec.ids.links
        );
        rec.workload = children(pid)
            .into_iter()
            .find(|&c| comm(c) == workload_comm)
            .unwrap_or_else(|| panic!("cinch is ready but {workload_comm} is not its child"));
        // Past its start-up: a sleep of the workload blocks in the kernel (the recording then has
        // its syscalls, and a shell has set its traps).
        wait_sleeping_below(rec.workload, Duration::from_secs(20));
        // What "released" is checked against is really listed while cinch runs.
        assert!(
            rec.ids.progs.is_subset(&loaded("prog")) && rec.ids.links.is_subset(&loaded("link")),
            "bpftool does not list cinch's programs {:?} / links {:?}",
            rec.ids.progs,
            rec.ids.links
        );
        rec
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid as i32), sig).expect("signalling cinch");
    }

    /// Waits for cinch to exit (at most `limit`); its status, stderr and how long it took.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, String, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for cinch") {
                let took = start.elapsed();
                let err = std::fs::read_to_string(self.stderr.path()).unwrap_or_default();
                return (status, err, took);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("cinch did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // cinch, if still there, and what is left of the workload: the process group cinch led.
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn prerequisites(name: &str) -> bool {
    require(
        name,
        Command::new("bpftool")
            .arg("version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "bpftool is not installed (cargo xtask setup installs it)",
    )
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("listing the output directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

fn read_valid(path: &Path, what: &str) -> profile_gen::Recording {
    let rec = profile_gen::read_recording(path)
        .unwrap_or_else(|e| panic!("{what}: the recording is not valid: {e}"));
    let names: Vec<&str> = rec
        .syscalls
        .values()
        .flatten()
        .filter_map(|c| c.name.as_deref())
        .collect();
    assert!(names.contains(&"execve"), "{what}: no execve in {names:?}");
    assert_eq!(rec.lost.syscalls, 0, "{what}: lost syscalls");
    rec
}

#[test]
fn sigint_sigterm_sighup_write_a_valid_recording() {
    guard!(bpf);
    if !prerequisites("sigint_sigterm_sighup_write_a_valid_recording") {
        return;
    }
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let what = sig.as_str();
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("rec.json");
        let mut rec = Recorder::start(&out, &["sleep", "100"], "sleep");
        let sleep = rec.workload;
        rec.signal(sig);
        let (status, err, took) = rec.wait(Duration::from_secs(10));
        assert_eq!(
            status.code(),
            Some(128 + sig as i32),
            "{what}: the workload's status (killed by the forwarded signal); stderr: {err}"
        );
        assert!(
            took < Duration::from_secs(3),
            "{what}: cinch took {took:?} to stop"
        );
        assert!(
            !err.contains("panicked") && err.lines().count() == 1,
            "{what}: one summary line on stderr: {err}"
        );
        let recording = read_valid(&out, what);
        let names: Vec<&str> = recording
            .syscalls
            .values()
            .flatten()
            .filter_map(|c| c.name.as_deref())
            .collect();
        assert!(
            names.contains(&"clock_nanosleep") || names.contains(&"nanosleep"),
            "{what}: sleep's sleep is not in {names:?}"
        );
        assert!(!running(sleep), "{what}: the workload was not stopped");
        assert_eq!(temp_files(dir.path()), Vec::<String>::new(), "{what}");
        assert_released(&rec.ids, what);
    }
}

#[test]
fn sigkill_leaves_the_workload_running_and_nothing_attached() {
    guard!(bpf);
    if !prerequisites("sigkill_leaves_the_workload_running_and_nothing_attached") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    let mut rec = Recorder::start(&out, &["sleep", "100"], "sleep");
    let sleep = rec.workload;
    rec.signal(Signal::SIGKILL);
    let (status, _, _) = rec.wait(Duration::from_secs(10));
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(Signal::SIGKILL as i32)
    );
    assert_released(&rec.ids, "SIGKILL");
    assert!(
        running(sleep),
        "the workload (pid {sleep}) died with cinch; it must keep running"
    );
    assert!(!out.exists(), "a recording appeared after SIGKILL");
    assert_eq!(
        temp_files(dir.path()),
        Vec::<String>::new(),
        "temporary files after SIGKILL"
    );
    // The workload is killed with the process group when `rec` drops.
}

#[test]
fn a_second_sigint_stops_at_once() {
    guard!(bpf);
    if !prerequisites("a_second_sigint_stops_at_once") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    // The workload ignores SIGINT, so the first one (forwarded) does not end it and cinch waits
    // its grace period (3 s) for it.
    let mut rec = Recorder::start(&out, &["sh", "-c", "trap '' INT; sleep 100; :"], "sh");
    let sh = rec.workload;
    rec.signal(Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rec.child.try_wait().expect("try_wait").is_none(),
        "cinch stopped at the first SIGINT although the workload ignores it"
    );
    assert!(running(sh), "the workload should have ignored SIGINT");
    rec.signal(Signal::SIGINT);
    let (status, err, took) = rec.wait(Duration::from_secs(10));
    assert!(
        took < Duration::from_millis(1500),
        "cinch took {took:?} after the second SIGINT (the grace period is 3 s)"
    );
    assert_eq!(status.code(), Some(130), "128 + SIGINT; stderr: {err}");
    read_valid(&out, "second SIGINT");
    assert_released(&rec.ids, "second SIGINT");
    assert!(
        running(sh),
        "the workload keeps running: cinch does not kill it"
    );
}

/// `sh -c SCRIPT`: its status and stdout.
fn shell(script: &str) -> (ExitStatus, String) {
    let out = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .expect("running sh");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_workload_inherits_the_signals_the_caller_ignored() {
    guard!(bpf);
    if !prerequisites("the_workload_inherits_the_signals_the_caller_ignored") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    let cinch = cinch_bin().display().to_string();
    let allow = cinch_tests::recording_profile();
    let allow = allow.display();
    let workload = "sh -c 'kill -INT $$; kill -HUP $$; echo survived'";
    let (status, out) = shell(&format!("trap '' INT HUP; {workload}"));
    assert!(
        status.success() && out == "survived\n",
        "bare: {status} {out:?}"
    );
    for (what, prefix) in [
        ("record", format!("{cinch} record -q -o {d}/rec.json --")),
        (
            "verify",
            format!("{cinch} verify -q --profile {allow} -o {d}/verdict.txt --"),
        ),
        ("run", format!("{cinch} run --profile {allow} --")),
    ] {
        let (status, out) = shell(&format!("trap '' INT HUP; {prefix} {workload}"));
        assert!(
            status.success() && out == "survived\n",
            "{what}: the workload did not inherit the ignored SIGINT and SIGHUP: {status} {out:?}"
        );
    }
}

/// What `/proc/self/status` says of a process's ignored and blocked signals, for `cinch ARGS
/// -- grep ...` (or the bare grep when `args` is empty), started with SIGINT, SIGHUP, SIGPIPE and
/// SIGUSR2 ignored and SIGUSR1 and SIGCHLD blocked.
fn signal_state(args: &[String]) -> String {
    use std::os::unix::process::CommandExt as _;
    let grep = ["grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"];
    let mut cmd = if args.is_empty() {
        let mut c = Command::new(grep[0]);
        c.args(&grep[1..]);
        c
    } else {
        let mut c = Command::new(cinch_bin());
        c.args(args).arg("--").args(grep);
        c
    };
    // SAFETY: only sigaction and sigprocmask between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, signal, sigprocmask};
            for sig in [
                Signal::SIGINT,
                Signal::SIGHUP,
                Signal::SIGPIPE,
                Signal::SIGUSR2,
            ] {
                signal(sig, SigHandler::SigIgn)?;
            }
            let mut blocked = SigSet::empty();
            blocked.add(Signal::SIGUSR1);
            blocked.add(Signal::SIGCHLD);
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&blocked), None)?;
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().expect("running grep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("Sig"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_workload_starts_with_cinchs_dispositions_and_mask() {
    guard!(bpf);
    if !prerequisites("the_workload_starts_with_cinchs_dispositions_and_mask") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let s = |p: &Path| p.display().to_string();
    let allow = s(&cinch_tests::recording_profile());
    let bare = signal_state(&[]);
    let bits = |field: &str| {
        bare.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {field} in {bare}"))
    };
    let set = |sigs: &[Signal]| sigs.iter().fold(0u64, |m, s| m | 1 << (*s as u32 - 1));
    let ignored = set(&[
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGPIPE,
        Signal::SIGUSR2,
    ]);
    let blocked = set(&[Signal::SIGUSR1, Signal::SIGCHLD]);
    assert_eq!(
        bits("SigIgn:") & ignored,
        ignored,
        "the bare process: {bare}"
    );
    assert_eq!(bits("SigBlk:"), blocked, "the bare process: {bare}");
    for (what, args) in [
        (
            "record",
            vec![
                "record".into(),
                "-q".into(),
                "-o".into(),
                s(&dir.path().join("r.json")),
            ],
        ),
        (
            "verify",
            vec![
                "verify".into(),
                "-q".into(),
                "--profile".into(),
                allow.clone(),
                "-o".into(),
                s(&dir.path().join("v.txt")),
            ],
        ),
        ("run", vec!["run".into(), "--profile".into(), allow]),
    ] {
        assert_eq!(signal_state(&args), bare, "{what}");
    }
}

#[test]
fn a_signal_ignored_when_cinch_started_does_not_stop_the_recording() {
    guard!(bpf);
    if !prerequisites("a_signal_ignored_when_cinch_started_does_not_stop_the_recording") {
        return;
    }
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    let done = dir.path().join("done");
    // As under nohup: SIGHUP ignored for cinch and, through it, for the workload.
    let mut cmd = Command::new(cinch_bin());
    cmd.args(["record", "-q", "-o"])
        .arg(&out)
        .args(["--", "sh", "-c", "sleep 1; echo > \"$0\""])
        .arg(&done)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only sigaction between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::signal(Signal::SIGHUP, nix::sys::signal::SigHandler::SigIgn)
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().expect("starting cinch record");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !children(pid).into_iter().any(|c| comm(c) == "sh") {
        assert!(Instant::now() < deadline, "the workload did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(Pid::from_raw(pid as i32), Signal::SIGHUP).expect("SIGHUP");
    let status = child.wait().expect("waiting for cinch");
    assert!(
        status.success(),
        "cinch stopped on a SIGHUP it was started ignoring: {status}"
    );
    assert!(done.exists(), "the workload did not finish");
    read_valid(&out, "SIGHUP ignored");
}

/// `record --new-containers -- COMMAND` interrupted while COMMAND runs: COMMAND gets the signal,
/// and cinch's status is COMMAND's (it used to exit 0 at once, COMMAND left running).
#[test]
fn new_containers_interrupted_passes_the_command_status_through() {
    guard!(bpf);
    if !prerequisites("new_containers_interrupted_passes_the_command_status_through") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(cinch_bin());
    cmd.args([
        "record",
        "-q",
        "--ready-fd",
        Ready::FD,
        "--new-containers",
        "-o",
    ])
    .arg(dir.path().join("recs"))
    .args(["--", "sleep", "100"])
    .stdin(Stdio::null())
    .stderr(Stdio::null())
    .process_group(0);
    let mut ready = Ready::new(&mut cmd);
    let mut child = ChildGuard(cmd.spawn().expect("cinch record --new-containers"));
    ready.wait(Duration::from_secs(20));
    wait_sleeping_below(child.id(), Duration::from_secs(20));
    let sleep = children(child.id())[0];
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cinch did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(130),
        "sleep died of the forwarded SIGINT"
    );
    assert!(!running(sleep), "the command was left running");
}
