//! End-to-end tier, argument rules with the real engine: a container that forks, recorded from
//! its start, gets a profile under which Docker refuses to let it create a user namespace, as
//! Docker's own default does, while forking and the sockets it used still work.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

use cinch_tests::docker::{Docker, busybox_image};
use cinch_tests::guard;
use cinch_tests::{cinch_bin, outcome_lines, output_text as text, workload_static};

#[test]
fn a_forking_container_cannot_create_a_user_namespace_under_its_profile() {
    guard!(bpf);
    let docker = Docker::ensure();
    let image = busybox_image();
    let bin = workload_static("argsys");
    let mount = format!("{}:/argsys:ro", bin.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = dir.path().join("recs");
    let seccomp = format!("seccomp={}", cinch_tests::recording_profile().display());
    let out = Command::new(cinch_bin())
        .args(["record", "-q", "--new-containers", "-o"])
        .arg(&recs)
        .args([
            "--",
            "docker",
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            "-v",
            &mount,
            "--security-opt",
            &seccomp,
            &image,
            "/argsys",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running cinch record");
    assert!(out.status.success(), "record: {}", text(&out));
    let files: Vec<PathBuf> = std::fs::read_dir(&recs)
        .expect("recordings")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let profile = dir.path().join("argsys.seccomp.json");
    let out = Command::new(cinch_bin())
        .args(["generate", "-o"])
        .arg(&profile)
        .arg(&files[0])
        .output()
        .expect("running cinch generate");
    assert!(out.status.success(), "generate: {}", text(&out));

    let calls = ["clone-newuser", "socket:2", "socket:16"];
    let run = |security: &[&str]| {
        let mut args = vec![
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "-v",
            mount.as_str(),
        ];
        args.extend_from_slice(security);
        let mut command = vec!["/argsys"];
        command.extend_from_slice(&calls);
        let out = docker.run(&args, &image, &command);
        assert!(
            out.status.success(),
            "docker run {security:?}: {}",
            text(&out)
        );
        outcome_lines(&out.stdout)
    };
    let generated = format!("seccomp={}", profile.display());
    let under = run(&["--security-opt", &generated]);
    assert_eq!(
        under.get("base").map(String::as_str),
        Some("ok"),
        "{under:?}"
    );
    assert_eq!(
        under.get("clone-newuser").map(String::as_str),
        Some("errno 1"),
        "a user namespace under the generated profile: {under:?}"
    );
    assert_eq!(
        under.get("socket:2").map(String::as_str),
        Some("ok"),
        "{under:?}"
    );
    assert_eq!(
        under.get("socket:16").map(String::as_str),
        Some("errno 1"),
        "AF_NETLINK was never used: {under:?}"
    );
    // Docker's own default refuses the user namespace too; the generated profile is not wider.
    let docker_default = run(&[]);
    assert_eq!(
        docker_default.get("clone-newuser").map(String::as_str),
        Some("errno 1"),
        "{docker_default:?}"
    );
    // Without seccomp the kernel allows it: the refusal above is the profile's.
    let unconfined = run(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(
        unconfined.get("clone-newuser").map(String::as_str),
        Some("ok"),
        "{unconfined:?}"
    );
}
