//! End-to-end tier, smoke: the engine the e2e tests use works here, runs the locally built test
//! image without a registry, and enforces a seccomp profile given with `--security-opt`.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::Path;

use cinch_tests::docker::{Docker, busybox_image};
use cinch_tests::output_text as text;
use cinch_tests::require_root;

const WORKLOAD: &[&str] = &["sh", "-c", "ls / >/dev/null; cat /etc/passwd"];

/// Writes `json` to a profile file in `dir` and returns the `--security-opt` value.
fn profile(dir: &Path, name: &str, json: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, json).expect("writing the profile");
    format!("seccomp={}", path.display())
}

fn setup(name: &str) -> Option<(Docker, String)> {
    if !require_root(name) {
        return None;
    }
    let docker = Docker::require(name)?;
    Some((docker, busybox_image()))
}

#[test]
fn busybox_image_runs() {
    let Some((docker, image)) = setup("busybox_image_runs") else {
        return;
    };
    let out = docker.run(&["--network", "none"], &image, WORKLOAD);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("root:x:0:0:"),
        "{}",
        text(&out)
    );
}

#[test]
fn allow_all_profile_is_accepted() {
    let Some((docker, image)) = setup("allow_all_profile_is_accepted") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let opt = profile(
        dir.path(),
        "allow.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
    );
    let out = docker.run(
        &["--network", "none", "--security-opt", &opt],
        &image,
        WORKLOAD,
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn profile_denying_mkdir_is_enforced() {
    let Some((docker, image)) = setup("profile_denying_mkdir_is_enforced") else {
        return;
    };
    let script = &["sh", "-c", "echo before; mkdir /tmp/x && echo made"];

    // Control: without the rule mkdir works.
    let dir = tempfile::tempdir().expect("tempdir");
    let allow = profile(
        dir.path(),
        "allow.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#,
    );
    let out = docker.run(
        &["--network", "none", "--security-opt", &allow],
        &image,
        script,
    );
    assert!(out.status.success(), "control run: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "before\nmade\n");

    let deny = profile(
        dir.path(),
        "deny-mkdir.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let out = docker.run(
        &["--network", "none", "--security-opt", &deny],
        &image,
        script,
    );
    assert!(
        !out.status.success(),
        "mkdir was not denied: {}",
        text(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "before\n",
        "the rest of the workload must still run: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
        "mkdir must fail with EPERM: {}",
        text(&out)
    );
}
