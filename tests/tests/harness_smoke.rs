//! Privileged tier: the machine can record. `cinch doctor` loads and attaches every probe type
//! for real, so this is the first thing to fail on a kernel or set-up cinch cannot use; the
//! harness's own pieces are checked on the way.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::Path;
use std::process::{Command, Stdio};

use cinch_tests::guard;
use cinch_tests::{cinch_bin, require};

#[test]
fn doctor_says_recording_works_here() {
    const NAME: &str = "doctor_says_recording_works_here";
    guard!(root);
    if !require(
        NAME,
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "the kernel has no BTF (/sys/kernel/btf/vmlinux)",
    ) {
        return;
    }
    let out = Command::new(cinch_bin())
        .arg("doctor")
        .stdin(Stdio::null())
        .output()
        .expect("running cinch doctor");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cinch doctor exited with {}:\n{stdout}{stderr}",
        out.status
    );
    // Every line is a verdict, and the ones recording depends on are there.
    for line in stdout.lines().filter(|l| !l.is_empty()) {
        assert!(
            ["ok   ", "warn ", "FAIL "]
                .iter()
                .any(|p| line.starts_with(p))
                || line.starts_with("cinch can record"),
            "unexpected doctor line {line:?}"
        );
    }
    assert!(
        !stdout.contains("\nFAIL "),
        "a FAIL line with exit 0:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ok   syscalls:") && l.contains("cinch record uses this one")),
        "no working sys_enter attach point reported:\n{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("ok   capability source:"))
            || stdout
                .lines()
                .any(|l| l.starts_with("warn capability source:")),
        "no capability source verdict:\n{stdout}"
    );
}

#[test]
fn cinch_bin_runs() {
    let out = Command::new(cinch_bin())
        .arg("--version")
        .output()
        .expect("running cinch --version");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("cinch "));
}
