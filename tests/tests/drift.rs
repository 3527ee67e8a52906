//! Privileged tier: the CI drift gate. A committed profile and capability settings, then the
//! workload changes: `cinch diff` must exit 1 and its markdown must name the new syscall and the
//! new capability; the unchanged workload must pass the gate.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::{Path, PathBuf};

use cinch_tests::cinch;
use cinch_tests::guard;
use cinch_tests::workload;

fn record(dir: &Path, name: &str, cmd: &[&str]) -> PathBuf {
    let rec = dir.join(name);
    let mut args = vec!["record", "-q", "-o", rec.to_str().expect("utf-8"), "--"];
    args.extend_from_slice(cmd);
    let out = cinch(&args);
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rec
}

#[test]
fn drift_gate_names_the_new_syscall_and_capability() {
    guard!(bpf);
    let w = workload("drift");
    let w = w.to_str().expect("utf-8");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let committed = d.join("seccomp.json");
    let settings = d.join("settings.json");
    let base = record(d, "base.json", &[w]);
    let out = cinch(&[
        "generate",
        "-o",
        committed.to_str().expect("utf-8"),
        "--caps-out",
        settings.to_str().expect("utf-8"),
        base.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gate = |new: &Path| {
        cinch(&[
            "diff",
            "--format",
            "markdown",
            "--old-caps",
            settings.to_str().expect("utf-8"),
            committed.to_str().expect("utf-8"),
            new.to_str().expect("utf-8"),
        ])
    };

    // The same workload again: no drift.
    let again = record(d, "again.json", &[w]);
    let out = gate(&again);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The changed workload: a new syscall and a new capability.
    let changed = record(d, "changed.json", &[w, "new"]);
    let out = gate(&changed);
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "drift must fail the gate: {md}");
    assert!(
        md.contains("memfd_create"),
        "the new syscall is named: {md}"
    );
    assert!(md.contains("IPC_LOCK"), "the new capability is named: {md}");
    assert!(!md.contains("\"mount\""), "{md}");
}
