//! The Kubernetes manifests `cinch report --format kubernetes` prints validate, as printed,
//! against the Kubernetes API's schemas (offline, strictly: an unknown field fails): for every
//! shipped profile with its settings, and for settings that use every field the manifest
//! carries (capabilities, a user, a read-only root with a tmpfs and a volume, no network,
//! resource limits, and no-new-privileges left out); and the `docker run` line of a workload on
//! an internal network comes with how to create it.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::Path;

use cinch_tests::{kubernetes, report_snippet, require, workspace_root};

fn manifest(profile: &Path, settings: &Path) -> String {
    report_snippet(profile, settings, "kubernetes")
}

fn available(name: &str) -> bool {
    require(
        name,
        kubernetes::available(),
        "needs kubernetes-validate (cargo xtask setup installs it)",
    )
}

#[test]
fn the_shipped_profiles_manifests_validate() {
    if !available(cinch_tests::test_name!()) {
        return;
    }
    let profiles = workspace_root().join("profiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(&profiles).expect("profiles/") {
        let dir = entry.expect("entry").path();
        let (profile, settings) = (dir.join("seccomp.json"), dir.join("settings.json"));
        if !profile.is_file() || !settings.is_file() {
            continue;
        }
        let yaml = manifest(&profile, &settings);
        assert!(yaml.contains("kind: Pod"), "{yaml}");
        if let Err(e) = kubernetes::validate(&yaml) {
            panic!("{}: {e}", dir.display());
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} shipped profiles found");
}

#[test]
fn every_setting_in_the_manifest_validates() {
    if !available(cinch_tests::test_name!()) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        serde_json::json!({
            "schema_version": 2,
            "cap_drop": ["ALL"],
            "cap_add": ["CHOWN", "NET_BIND_SERVICE"],
            "network": {"mode": "none", "families": ["AF_UNIX"], "why": "it created AF_UNIX sockets only"},
            "no_new_privileges": {"set": false, "why": "ping (1x) gained privileges at exec"},
            "filesystem": {
                "read_only": true,
                "mounts": [
                    {"path": "/tmp", "kind": "tmpfs", "why": "wrote /tmp/x"},
                    {"path": "/var/lib/app", "kind": "volume", "why": "wrote /var/lib/app/db"}
                ],
                "why": "it wrote only under tmpfs /tmp, volume /var/lib/app"
            },
            "user": {"user": "65534:65534", "why": "every process ran as uid 65534 gid 65534"},
            "limits": {"pids": 19, "memory": 44040192, "millicpus": 500, "why": "at most 3 tasks"}
        })
        .to_string(),
    )
    .expect("write settings");
    let profile = workspace_root().join("profiles/busybox-httpd/seccomp.json");
    let yaml = manifest(&profile, &settings);
    for field in [
        "runAsUser: 65534",
        "readOnlyRootFilesystem: true",
        "mountPath: \"/var/lib/app\"",
        "emptyDir: {medium: Memory}",
        "kind: NetworkPolicy",
        "allowPrivilegeEscalation: true",
        "limits: {memory: \"42Mi\", cpu: \"500m\"}",
    ] {
        assert!(yaml.contains(field), "no {field}:\n{yaml}");
    }
    kubernetes::validate(&yaml).unwrap_or_else(|e| panic!("{e}"));
    // The check can fail: a field the API does not have is refused.
    let broken = yaml.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem");
    assert!(kubernetes::validate(&broken).is_err(), "{broken}");

    // A workload with a network: a published port, name lookups, traffic out by class and
    // port, and a sized tmpfs.
    std::fs::write(
        &settings,
        serde_json::json!({
            "schema_version": 2,
            "cap_drop": ["ALL"],
            "cap_add": [],
            "network": {
                "mode": "default",
                "families": ["AF_INET", "AF_INET6"],
                "why": "it created AF_INET sockets",
                "listens": [{"address": "0.0.0.0", "port": 8080}],
                "egress": ["link-local", "private", "public"],
                "dns": true,
                "egress_ports": {"private": [5432], "public": [443, 8443]}
            },
            "filesystem": {
                "read_only": true,
                "mounts": [{"path": "/tmp", "kind": "tmpfs", "why": "wrote /tmp/x", "size": 18874368}],
                "why": "it wrote only under tmpfs /tmp"
            }
        })
        .to_string(),
    )
    .expect("write settings");
    let yaml = manifest(&profile, &settings);
    for field in [
        "containerPort: 8080",
        "sizeLimit: 18Mi",
        "port: 5432",
        "port: 8443",
        "protocol: UDP",
    ] {
        assert!(yaml.contains(field), "no {field}:\n{yaml}");
    }
    kubernetes::validate(&yaml).unwrap_or_else(|e| panic!("{e}"));
}

/// The `docker run` line of a workload on an internal network names a network that must exist:
/// `report --format docker-run` says how to create it, on stderr, so the line on stdout stays
/// pasteable; the compose block creates its own.
#[test]
fn the_internal_network_is_explained_next_to_the_docker_run_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = dir.path().join("settings.json");
    std::fs::write(
        &settings,
        serde_json::json!({
            "schema_version": 2,
            "cap_drop": ["ALL"],
            "cap_add": [],
            "network": {
                "mode": "internal",
                "families": ["AF_INET"],
                "why": "it connected to private addresses",
                "egress": ["private"]
            }
        })
        .to_string(),
    )
    .expect("write settings");
    let profile = workspace_root().join("profiles/busybox-httpd/seccomp.json");
    let out = std::process::Command::new(cinch_tests::cinch_bin())
        .args(["report", "--format", "docker-run"])
        .arg(&profile)
        .arg("--caps")
        .arg(&settings)
        .output()
        .expect("cinch report");
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8_lossy(&out.stdout);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(line.contains("--network cinch-internal"), "{line}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        note.contains("docker network create --internal cinch-internal"),
        "{note}"
    );
    let compose = report_snippet(&profile, &settings, "compose");
    assert!(compose.contains("internal: true"), "{compose}");
}
