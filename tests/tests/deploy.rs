//! The capabilities deploy/agent.yaml gives the cinch agent are enough to record, and each is
//! needed: cinch runs as uid 0 with only those capabilities (`setpriv`: bounding, permitted and
//! effective sets cut to them, no inheritable or ambient ones), as the container runtime runs
//! the agent, and then without each one in turn.
//!
//! - All of them: `cinch record -- /bin/true` names execve and exit_group, and the kernel
//!   callers of its capability checks by name; `record --pid` of another user's process places
//!   its reads, the one in a directory only that user may search included.
//! - Without BPF or PERFMON: recording fails (exit 3).
//! - Without SYSLOG: /proc/kallsyms shows no addresses, so the callers stay bare addresses.
//! - Without SYS_PTRACE: another user's /proc/PID/root cannot be opened, so its reads stay
//!   unresolved (every container's processes are "another user" to the agent).
//! - Without DAC_READ_SEARCH: the read in the other user's 0700 directory is left out.
//!
//! A capability added to the DaemonSet without a proof here fails the test.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cinch_tests::{ChildGuard, cinch_bin, guard, output_text, require, workspace_root};
use serde_json::Value;

/// The user the other process runs as.
const NOBODY: u32 = 65534;

/// `capabilities.add` of the agent's container in deploy/agent.yaml.
fn daemonset_capabilities() -> BTreeSet<String> {
    let path = workspace_root().join("deploy/agent.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let daemonset = text
        .split("\n---\n")
        .filter_map(|doc| serde_norway::from_str::<Value>(doc).ok())
        .find(|d| d["kind"] == "DaemonSet")
        .unwrap_or_else(|| panic!("no DaemonSet in {}", path.display()));
    let caps: BTreeSet<String> = daemonset["spec"]["template"]["spec"]["containers"][0]
        ["securityContext"]["capabilities"]["add"]
        .as_array()
        .expect("capabilities.add")
        .iter()
        .map(|c| c.as_str().expect("a capability name").to_owned())
        .collect();
    assert!(!caps.is_empty(), "the DaemonSet adds no capability");
    caps
}

/// `cinch ARGS` as uid 0 with only `caps` (names as Kubernetes writes them: `SYS_PTRACE`).
fn cinch_with(caps: &BTreeSet<String>, args: &[&str]) -> Output {
    let bounding: Vec<String> = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{}", c.to_lowercase())))
        .collect();
    Command::new("setpriv")
        .args([
            "--inh-caps=-all",
            "--ambient-caps=-all",
            &format!("--bounding-set={}", bounding.join(",")),
            "--",
        ])
        .arg(cinch_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running setpriv")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `cinch record -q -o F -- /bin/true` with only `caps`: its output, and the recording when it
/// wrote one.
fn record_true(caps: &BTreeSet<String>, dir: &Path) -> (Output, Option<Value>) {
    let rec = dir.join("true.json");
    let _ = std::fs::remove_file(&rec);
    let out = cinch_with(
        caps,
        &[
            "record",
            "-q",
            "-o",
            &rec.to_string_lossy(),
            "--",
            "/bin/true",
        ],
    );
    let recording = rec.is_file().then(|| read_json(&rec));
    (out, recording)
}

/// The syscall names of a recording.
fn names(recording: &Value) -> BTreeSet<String> {
    recording["syscalls"]
        .as_object()
        .into_iter()
        .flat_map(|arches| arches.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect()
}

/// The kernel callers of a recording's capability checks.
fn callers(recording: &Value) -> Vec<String> {
    recording["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["caller"].as_str().map(str::to_owned))
        .collect()
}

/// A process of user nobody that reads `dir/private/f` (`private`: nobody's, mode 0700) every
/// 100 ms, and the file's path.
fn other_users_reader(dir: &Path) -> (ChildGuard, String) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let private = dir.join("private");
    std::fs::create_dir(&private).expect("mkdir");
    let file = private.join("f");
    std::fs::write(&file, "x\n").expect("write");
    for p in [&private, &file] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).expect("chown");
    }
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = file.to_string_lossy().into_owned();
    let child = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
            "sh",
            "-c",
            &format!("while :; do read x < {file}; sleep 0.1; done"),
        ])
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the reader");
    (ChildGuard(child), file)
}

/// `cinch record --pid PID --duration 1500ms` with only `caps`: the recording's `reads`.
fn record_pid(caps: &BTreeSet<String>, pid: u32, dir: &Path) -> Value {
    let rec = dir.join("pid.json");
    let _ = std::fs::remove_file(&rec);
    let out = cinch_with(
        caps,
        &[
            "record",
            "-q",
            "-o",
            &rec.to_string_lossy(),
            "--pid",
            &pid.to_string(),
            "--duration",
            "1500ms",
        ],
    );
    assert!(
        out.status.success(),
        "record --pid with {caps:?}: {}",
        output_text(&out)
    );
    read_json(&rec)
}

fn has_setpriv(name: &str) -> bool {
    require(
        name,
        cinch_tests::on_path("setpriv"),
        "needs setpriv (util-linux)",
    )
}

/// With exactly the DaemonSet's capabilities, cinch records: `/bin/true`'s execve and
/// exit_group, its capability checks with their callers named, and another user's reads.
#[test]
fn the_daemonsets_capabilities_are_enough_to_record() {
    guard!(bpf);
    if !has_setpriv(cinch_tests::test_name!()) {
        return;
    }
    let caps = daemonset_capabilities();
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, recording) = record_true(&caps, dir.path());
    assert!(
        out.status.success(),
        "record with {caps:?}: {}",
        output_text(&out)
    );
    let recording = recording.expect("a recording");
    let names = names(&recording);
    for n in ["execve", "exit_group"] {
        assert!(names.contains(n), "no {n} in {names:?}");
    }
    // mmap asks for SYS_ADMIN (the overcommit heuristic), which cinch's child lacks here.
    let callers = callers(&recording);
    assert!(
        !callers.is_empty(),
        "no capability check recorded: {}",
        recording["capabilities"]
    );
    assert!(
        callers.iter().all(|c| !c.starts_with("0x")),
        "callers not named: {callers:?}"
    );
    let (reader, file) = other_users_reader(dir.path());
    let reads = record_pid(&caps, reader.id(), dir.path())["reads"].clone();
    let read = &reads["paths"][&file];
    assert_eq!(read["owner"]["uid"], NOBODY, "{file} not placed: {reads}");
}

/// Without any one of the DaemonSet's capabilities, cinch fails to record or records less.
#[test]
fn each_of_the_daemonsets_capabilities_is_needed() {
    guard!(bpf);
    if !has_setpriv(cinch_tests::test_name!()) {
        return;
    }
    let caps = daemonset_capabilities();
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, file) = other_users_reader(dir.path());
    // Give the reader time to run before the first recording attaches to it.
    std::thread::sleep(Duration::from_millis(200));
    for cap in &caps {
        let mut without = caps.clone();
        without.remove(cap);
        match cap.as_str() {
            "BPF" | "PERFMON" => {
                let (out, _) = record_true(&without, dir.path());
                assert_eq!(
                    out.status.code(),
                    Some(3),
                    "record without {cap}: {}",
                    output_text(&out)
                );
            }
            "SYSLOG" => {
                let (out, recording) = record_true(&without, dir.path());
                assert!(
                    out.status.success(),
                    "record without {cap}: {}",
                    output_text(&out)
                );
                let recording = recording.expect("a recording");
                let callers = callers(&recording);
                assert!(
                    !callers.is_empty() && callers.iter().all(|c| c.starts_with("0x")),
                    "without SYSLOG the callers should be bare addresses: {callers:?}"
                );
                assert!(
                    recording["warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|w| w.as_str().is_some_and(|w| w.contains("kallsyms"))),
                    "the recording says the callers could not be named: {}",
                    recording["warnings"]
                );
            }
            "SYS_PTRACE" => {
                let recording = record_pid(&without, reader.id(), dir.path());
                let reads = &recording["reads"];
                assert!(reads["paths"].get(&file).is_none(), "{reads}");
                assert!(
                    reads["unresolved"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|p| p == file.as_str())),
                    "without SYS_PTRACE {file} should be unresolved: {reads}"
                );
                assert!(
                    recording["warnings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|w| w.as_str().is_some_and(|w| w.contains("CAP_SYS_PTRACE"))),
                    "the recording says why its reads are unresolved: {}",
                    recording["warnings"]
                );
            }
            "DAC_READ_SEARCH" => {
                let reads = record_pid(&without, reader.id(), dir.path())["reads"].clone();
                assert!(
                    reads["paths"].get(&file).is_none(),
                    "without DAC_READ_SEARCH {file} should be left out: {reads}"
                );
                // Only what the directory's mode hides is lost.
                assert!(
                    reads["paths"].as_object().is_some_and(|p| !p.is_empty()),
                    "{reads}"
                );
            }
            other => panic!(
                "deploy/agent.yaml adds {other}, which this test has no proof of need for: \
                 add one, or take it out of the DaemonSet"
            ),
        }
    }
}
