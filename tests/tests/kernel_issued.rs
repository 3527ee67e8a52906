//! Privileged tier: profiles hold when the kernel makes the workload issue syscalls its code
//! never asked for, which a test run may never show.
//!
//! Each workload is recorded in a run that does not make the kernel issue the syscall, put
//! under its generated profile in a run that does (10 times where timing plays a part), and
//! then under the same profile without that syscall, which must fail: the rule is what makes
//! the difference, not luck.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::guard;
use cinch_tests::{
    cinch_bin, generate_profile, output_text as text, profile_without, record_command,
    recorded_names, require, workload,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `cinch record` of `cmd` into `dir/NAME.json`; the recorded syscall names.
fn record(dir: &Path, name: &str, cmd: &[&str]) -> (PathBuf, Vec<String>) {
    let (rec, recording) = record_command(dir, name, cmd);
    (rec, recorded_names(&recording))
}

/// `cinch generate` of `rec` into `dir/NAME.seccomp.json`; the path and the summary.
fn generate(dir: &Path, name: &str, rec: &Path) -> (PathBuf, String) {
    generate_profile(dir, name, &[rec])
}

fn run_under(profile: &Path, cmd: &[&str]) -> Output {
    Command::new(cinch_bin())
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .arg("--")
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .expect("running cinch run")
}

fn kernel_issued_line(summary: &str) -> &str {
    summary
        .lines()
        .find(|l| l.trim_start().starts_with("kernel-issued:"))
        .unwrap_or_else(|| panic!("no kernel-issued line in the summary:\n{summary}"))
}

#[test]
fn a_timed_wait_restarted_after_sigchld_holds_under_the_profile() {
    guard!(bpf);
    let bin = workload("timed_wait");
    let bin = bin.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // Ground truth: the concurrent run makes the kernel restart the wait, the recorded one not.
    let (_, concurrent) = record(d, "concurrent", &[bin, "concurrent"]);
    assert!(
        concurrent.iter().any(|n| n == "restart_syscall"),
        "the concurrent run restarted no wait, so it tests nothing: {concurrent:?}"
    );
    let (rec, sequential) = record(d, "sequential", &[bin, "sequential"]);
    assert!(
        !sequential.iter().any(|n| n == "restart_syscall"),
        "the recorded run must not restart a wait: {sequential:?}"
    );
    let (profile, summary) = generate(d, "timed-wait", &rec);
    assert!(
        kernel_issued_line(&summary).contains("restart_syscall"),
        "{summary}"
    );
    for round in 1..=10 {
        let out = run_under(&profile, &[bin, "concurrent"]);
        assert!(
            out.status.success(),
            "round {round} of 10 under the profile: {}",
            text(&out)
        );
    }
    // The same profile without restart_syscall: glibc's futex wait gets EPERM and gives up.
    let minus = profile_without(&profile, "restart_syscall", d);
    let out = run_under(&minus, &[bin, "concurrent"]);
    assert!(
        !out.status.success(),
        "without restart_syscall the restarted wait should fail: {}",
        text(&out)
    );
}

/// `cinch run --profile PROFILE -- sleep 1`, stopped and continued while it sleeps.
fn sleep_stopped_and_continued(profile: &Path) -> Output {
    let child = Command::new(cinch_bin())
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .args(["--", "sleep", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running cinch run");
    // cinch run execs sleep in its own place: the pid is sleep's once it sleeps.
    let pid = Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(Instant::now() < deadline, "sleep did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    kill(pid, Signal::SIGSTOP).expect("SIGSTOP");
    std::thread::sleep(Duration::from_millis(200));
    kill(pid, Signal::SIGCONT).expect("SIGCONT");
    child.wait_with_output().expect("waiting for sleep")
}

#[test]
fn a_process_stopped_and_continued_finishes_under_its_profile() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (rec, names) = record(d, "sleep", &["sleep", "0.1"]);
    assert!(!names.iter().any(|n| n == "restart_syscall"), "{names:?}");
    let (profile, _) = generate(d, "sleep", &rec);
    let out = sleep_stopped_and_continued(&profile);
    assert!(
        out.status.success(),
        "sleep stopped and continued under its profile: {}",
        text(&out)
    );
    let minus = profile_without(&profile, "restart_syscall", d);
    let out = sleep_stopped_and_continued(&minus);
    assert!(
        !out.status.success(),
        "without restart_syscall the resumed sleep should fail: {}",
        text(&out)
    );
    // verify, on a run that never needed it, still warns that the profile denies it.
    let out = Command::new(cinch_bin())
        .arg("verify")
        .arg("-q")
        .arg("--profile")
        .arg(&minus)
        .args(["--", "sleep", "0.1"])
        .output()
        .expect("running cinch verify");
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                .contains("note: the profile denies x86_64 restart_syscall"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_signal_handler_first_run_under_the_profile_returns() {
    guard!(bpf);
    let bin = workload("handler");
    let bin = bin.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // Recorded without a signal: the handler is installed, never run.
    let rec = d.join("handler.json");
    let out = Command::new(cinch_bin())
        .args(["record", "-q", "-o"])
        .arg(&rec)
        .args(["--", bin, "0.1"])
        .output()
        .expect("running cinch record");
    assert_eq!(
        out.status.code(),
        Some(3),
        "nobody signalled: {}",
        text(&out)
    );
    let names = recorded_names(&profile_gen::read_recording(&rec).expect("a valid recording"));
    assert!(names.iter().any(|n| n == "rt_sigaction"), "{names:?}");
    assert!(!names.iter().any(|n| n == "rt_sigreturn"), "{names:?}");
    let (profile, summary) = generate(d, "handler", &rec);
    assert!(
        kernel_issued_line(&summary).contains("rt_sigreturn"),
        "{summary}"
    );

    let signalled = |profile: &Path| {
        let mut child = Command::new(cinch_bin())
            .arg("run")
            .arg("--profile")
            .arg(profile)
            .args(["--", bin, "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running cinch run");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut ready = [0u8; 6];
        std::io::Read::read_exact(&mut stdout, &mut ready).expect("the workload says ready");
        assert_eq!(&ready, b"ready\n");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGUSR1).expect("SIGUSR1");
        let status = child.wait().expect("waiting");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).expect("stdout");
        (status, rest)
    };
    let (status, rest) = signalled(&profile);
    assert!(
        status.success() && rest == "handled\n",
        "the handler's first run under the profile: {status}, {rest:?}"
    );
    let minus = profile_without(&profile, "rt_sigreturn", d);
    let (status, rest) = signalled(&minus);
    assert!(
        !status.success(),
        "without rt_sigreturn the handler cannot return: {status}, {rest:?}"
    );
}

#[cfg(target_arch = "x86_64")]
#[test]
fn a_vsyscall_time_query_is_allowed_though_no_recording_sees_it() {
    let name = "a_vsyscall_time_query_is_allowed_though_no_recording_sees_it";
    guard!(bpf);
    if !require(
        name,
        std::fs::read_to_string("/proc/self/maps").is_ok_and(|m| m.contains("[vsyscall]")),
        "the kernel maps no vsyscall page (vsyscall=none)",
    ) {
        return;
    }
    let bin = workload("vsyscall_time");
    let bin = bin.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (rec, names) = record(d, "vsyscall", &[bin]);
    assert!(
        !names.iter().any(|n| n == "time"),
        "the emulated call fires no sys_enter, so the recording cannot have it: {names:?}"
    );
    let (profile, _) = generate(d, "vsyscall", &rec);
    let out = run_under(&profile, &[bin]);
    assert!(out.status.success(), "under the profile: {}", text(&out));
    let minus = profile_without(&profile, "time", d);
    let out = run_under(&minus, &[bin]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "seccomp still filters the emulated call: {}",
        text(&out)
    );
}
