//! Privileged tier: argument rules. A workload that forks, opens AF_UNIX and AF_INET sockets,
//! queries its personality and uses termios on a pseudo-terminal is recorded; its profile must
//! let it do exactly that, and refuse what Docker's default refuses (a user namespace,
//! AF_ALG, AF_VSOCK, a personality change) and what it never did (AF_NETLINK, AF_PACKET,
//! TIOCSTI). The kernel's answers are the ground truth: under an allow-all profile none of those
//! calls fails with EPERM, under the generated one each does.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use cinch_tests::guard;
use cinch_tests::{
    cinch_bin, generate_profile, outcome_lines, output_text as text, record_command, workload,
};

/// `cinch run --profile PROFILE --cap-add NET_RAW,SYS_ADMIN -- argsys EXTRA...`: each extra
/// call's outcome (`ok` or `errno N`). NET_RAW and SYS_ADMIN are kept so that only the profile
/// can refuse AF_PACKET and TIOCSTI on a terminal that is not the caller's.
fn outcomes(bin: &str, profile: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let out = Command::new(cinch_bin())
        .arg("run")
        .arg("--profile")
        .arg(profile)
        .args(["--cap-add", "NET_RAW,SYS_ADMIN", "--", bin])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("running cinch run");
    assert!(
        out.status.success(),
        "the workload's base calls under {}: {}",
        profile.display(),
        text(&out)
    );
    outcome_lines(&out.stdout)
}

const EPERM: &str = "errno 1";

#[test]
fn the_profile_allows_the_observed_arguments_and_refuses_the_rest() {
    guard!(bpf);
    let bin = workload("argsys");
    let bin = bin.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    let (rec, recording) = record_command(d, "argsys", &[bin]);
    let values = |syscall: &str| -> Vec<u64> {
        recording
            .arguments
            .values()
            .flatten()
            .filter(|a| a.name.as_deref() == Some(syscall))
            .flat_map(|a| a.values.iter().map(|v| v.value))
            .collect()
    };
    assert_eq!(values("socket"), [1, 2], "AF_UNIX and AF_INET");
    assert_eq!(values("clone"), [0], "a fork: no namespace flags");
    assert_eq!(values("personality"), [0xffff_ffff], "the query");
    let ioctls = values("ioctl");
    for (request, what) in [(0x5401, "TCGETS"), (0x5413, "TIOCGWINSZ")] {
        assert!(ioctls.contains(&request), "{what} in {ioctls:x?}");
    }
    assert!(
        !ioctls.contains(&0x5412),
        "no TIOCSTI was made: {ioctls:x?}"
    );

    let (profile, summary) = generate_profile(d, "argsys", &[&rec]);
    assert!(
        summary.contains("socket: AF_UNIX, AF_INET only")
            && summary.contains("clone: no namespace flags only"),
        "{summary}"
    );

    let refused = [
        "clone-newuser",
        "socket:16",
        "socket:17",
        "socket:38",
        "socket:40",
        "tiocsti",
        "personality:0x0040000",
    ];
    let allowed = ["socket:2", "personality:0xffffffff"];
    let all: Vec<&str> = refused.iter().chain(&allowed).copied().collect();
    let allow_all = cinch_tests::recording_profile();
    let bare = outcomes(bin, &allow_all, &all);
    for call in &all {
        let got = bare.get(*call).map(String::as_str);
        assert!(
            got.is_some() && got != Some(EPERM),
            "{call} under an allow-all profile: {got:?} (the kernel itself refuses it, so the test proves nothing)"
        );
    }
    let under = outcomes(bin, &profile, &all);
    for call in refused {
        assert_eq!(
            under.get(call).map(String::as_str),
            Some(EPERM),
            "{call}: {under:?}"
        );
    }
    for call in allowed {
        assert_eq!(
            under.get(call).map(String::as_str),
            Some("ok"),
            "{call}: {under:?}"
        );
    }

    // verify names the argument the profile would refuse.
    let verdict = d.join("verdict.json");
    let out = Command::new(cinch_bin())
        .args(["verify", "-q", "--format", "json", "-o"])
        .arg(&verdict)
        .arg("--profile")
        .arg(&profile)
        .args(["--", bin, "socket:16"])
        .output()
        .expect("running cinch verify");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&verdict).expect("verdict")).expect("json");
    let denied: Vec<(String, String, String)> = v["targets"][0]["denied_syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("?").to_owned(),
                d["argument"].as_str().unwrap_or("").to_owned(),
                d["processes"][0].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        denied,
        [(
            "socket".to_owned(),
            "AF_NETLINK".to_owned(),
            "argsys".to_owned()
        )],
        "the value and the process that used it: {v:#}"
    );
}

/// A recording of the old schema has no argument values: its argument-sensitive syscalls get
/// Docker's conditions, never the bare name.
#[test]
fn an_old_recording_gets_dockers_conditions() {
    guard!(bpf);
    let bin = workload("argsys");
    let bin = bin.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (rec, _) = record_command(d, "argsys", &[bin]);
    // What a schema 1 recording of the same run looks like.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rec).expect("recording")).expect("json");
    v["schema_version"] = 1.into();
    v.as_object_mut().expect("object").remove("arguments");
    let old = d.join("old.json");
    std::fs::write(&old, v.to_string()).expect("writing");
    let (profile, summary) = generate_profile(d, "old", &[&old]);
    assert!(
        summary.contains("socket: Docker's default conditions (recorded with schema 1"),
        "{summary}"
    );
    let under = outcomes(
        bin,
        &profile,
        &[
            "clone-newuser",
            "socket:38",
            "socket:40",
            "socket:16",
            "personality:0x0040000",
        ],
    );
    // Docker's conditions: refuses what Docker refuses, allows what Docker allows.
    for call in [
        "clone-newuser",
        "socket:38",
        "socket:40",
        "personality:0x0040000",
    ] {
        assert_eq!(
            under.get(call).map(String::as_str),
            Some(EPERM),
            "{call}: {under:?}"
        );
    }
    assert_eq!(
        under.get("socket:16").map(String::as_str),
        Some("ok"),
        "{under:?}"
    );
}

/// A value Docker's default refuses, used by the workload, stays allowed and is named with the
/// process that used it.
#[test]
fn a_value_beyond_dockers_default_is_named_with_its_process() {
    guard!(bpf);
    let bin = workload("argsys");
    let bin = bin.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // AF_ALG: the call fails here (no such socket type for datagrams), but it was made.
    let (rec, _) = record_command(d, "alg", &[bin, "socket:38"]);
    let (profile, summary) = generate_profile(d, "alg", &[&rec]);
    assert!(
        summary.contains(
            "beyond Docker's default, allowed because the workload did it: socket(AF_ALG) by argsys"
        ),
        "{summary}"
    );
    let out = Command::new(cinch_bin())
        .args(["report", "--format", "json"])
        .arg(&profile)
        .output()
        .expect("running cinch report");
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let socket = report["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == "socket")
        .unwrap_or_else(|| panic!("no socket line: {report:#}"));
    assert_eq!(
        socket["beyond_docker"],
        serde_json::json!(["AF_ALG"]),
        "{report:#}"
    );
}
