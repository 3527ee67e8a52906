//! The Kubernetes manifests `cinch report --format kubernetes` prints validate, as printed,
//! against the Kubernetes API's schemas (offline, strictly: an unknown field fails): for every
//! shipped profile with its settings, and for settings that use every field the manifest
//! carries (capabilities, a user, a read-only root with a tmpfs and a volume, no network,
//! resource limits, and no-new-privileges left out); and the `docker run` line of a workload on
//! an internal network comes with how to create it.
//!
//! The manifests in `deploy/` validate too: the Kubernetes kinds strictly against the API's
//! schemas, the Security Profiles Operator's kinds (which `kubernetes-validate` has no schema
//! for) against the fields of SPO's CRDs; and the agent's DaemonSet is not privileged, drops
//! every capability but the five it needs to record, mounts the host read-only except its
//! output directory, and runs the image of this version. That those five capabilities are
//! enough, and each needed, is checked against the kernel in `deploy.rs`.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cinch_tests::{kubernetes, report_snippet, require, workspace_root};
use serde_json::Value;

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

/// The capabilities the agent's DaemonSet adds: what `deploy.rs` proves enough and needed.
const AGENT_CAPABILITIES: &[&str] = &["BPF", "PERFMON", "SYSLOG", "SYS_PTRACE", "DAC_READ_SEARCH"];

/// The API group of the Security Profiles Operator's kinds.
const SPO_GROUP: &str = "security-profiles-operator.x-k8s.io";

/// The YAML files in `deploy/`, sorted.
fn deploy_files() -> Vec<PathBuf> {
    let dir = workspace_root().join("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

/// The documents of a YAML file (split on `---` lines), each as it reads and parsed.
fn documents(path: &Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter()
        .filter_map(|doc| {
            let value: Value = serde_norway::from_str(&doc)
                .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}\n{doc}", path.display()));
            (!value.is_null()).then_some((doc, value))
        })
        .collect()
}

/// The keys of the object at `v` that `allowed` does not list, and the `required` ones it lacks.
fn check_keys(what: &str, v: &Value, allowed: &[&str], required: &[&str]) -> Vec<String> {
    let Some(obj) = v.as_object() else {
        return vec![format!("{what} is not an object: {v}")];
    };
    let mut errors: Vec<String> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("{what}.{k} is not a field of the CRD"))
        .collect();
    errors.extend(
        required
            .iter()
            .filter(|k| !obj.contains_key(**k))
            .map(|k| format!("{what}.{k} is required")),
    );
    errors
}

/// The seccomp actions SPO's CRDs accept (`+kubebuilder:validation:Enum`).
const SPO_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

/// A Security Profiles Operator resource checked against the fields of SPO's CRDs
/// (`deploy/base-crds/crds/` of kubernetes-sigs/security-profiles-operator, v0.9 to v1.0):
/// `SeccompProfile` of `v1beta1` and `v1`, `ProfileBinding` of `v1alpha1` and `v1`. Unknown
/// fields are errors, as the API server's structural schema prunes them. Err lists every
/// problem.
fn check_spo(doc: &Value) -> Result<(), String> {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let version = api
        .strip_prefix(SPO_GROUP)
        .and_then(|v| v.strip_prefix('/'));
    let kind = doc["kind"].as_str().unwrap_or_default();
    let mut errors = check_keys(
        "",
        doc,
        &["apiVersion", "kind", "metadata", "spec"],
        &["spec"],
    );
    if doc["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        errors.push("metadata.name is required".to_owned());
    }
    let spec = &doc["spec"];
    match (kind, version) {
        ("SeccompProfile", Some("v1beta1" | "v1")) => {
            errors.extend(check_keys(
                "spec",
                spec,
                &[
                    "baseProfileName",
                    "defaultAction",
                    "architectures",
                    "listenerPath",
                    "listenerMetadata",
                    "syscalls",
                    "flags",
                    "state",
                ],
                &["defaultAction"],
            ));
            if !spec["defaultAction"]
                .as_str()
                .is_some_and(|a| SPO_ACTIONS.contains(&a))
            {
                errors.push(format!(
                    "spec.defaultAction {} is not an action",
                    spec["defaultAction"]
                ));
            }
            for arch in spec["architectures"].as_array().into_iter().flatten() {
                if !arch.as_str().is_some_and(|a| a.starts_with("SCMP_ARCH_")) {
                    errors.push(format!("spec.architectures: {arch} is not an architecture"));
                }
            }
            for (i, rule) in spec["syscalls"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let what = format!("spec.syscalls[{i}]");
                errors.extend(check_keys(
                    &what,
                    rule,
                    &["names", "action", "errnoRet", "args"],
                    &["names", "action"],
                ));
                if !rule["action"]
                    .as_str()
                    .is_some_and(|a| SPO_ACTIONS.contains(&a))
                {
                    errors.push(format!("{what}.action {} is not an action", rule["action"]));
                }
                if !rule["names"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty() && n.iter().all(Value::is_string))
                {
                    errors.push(format!("{what}.names is not a list of names"));
                }
                let args = rule["args"].as_array().map_or(&[][..], Vec::as_slice);
                if args.len() > 6 {
                    errors.push(format!("{what}.args has more than 6 items"));
                }
                for (j, arg) in args.iter().enumerate() {
                    errors.extend(check_keys(
                        &format!("{what}.args[{j}]"),
                        arg,
                        &["index", "value", "valueTwo", "op"],
                        &["index", "op"],
                    ));
                }
            }
        }
        ("ProfileBinding", Some("v1alpha1" | "v1")) => {
            let allowed: &[&str] = if version == Some("v1") {
                &["profileRef", "image", "podSelector"]
            } else {
                &["profileRef", "image"]
            };
            errors.extend(check_keys("spec", spec, allowed, &["profileRef", "image"]));
            errors.extend(check_keys(
                "spec.profileRef",
                &spec["profileRef"],
                &["kind", "name"],
                &["kind", "name"],
            ));
            if !matches!(
                spec["profileRef"]["kind"].as_str(),
                Some("SeccompProfile" | "SelinuxProfile" | "AppArmorProfile")
            ) {
                errors.push(format!(
                    "spec.profileRef.kind {} is not a profile kind",
                    spec["profileRef"]["kind"]
                ));
            }
            for field in ["/profileRef/name", "/image"] {
                if spec
                    .pointer(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    errors.push(format!(
                        "spec{} must be a non-empty string",
                        field.replace('/', ".")
                    ));
                }
            }
        }
        _ => errors.push(format!("{api} {kind} is not an SPO kind this check knows")),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// Every YAML file in `deploy/` validates: its Kubernetes documents strictly against the API's
/// schemas (each must be named as passed, so a kind without a schema cannot pass unchecked),
/// its SPO documents against SPO's CRD fields.
#[test]
fn the_deploy_manifests_validate() {
    if !available(cinch_tests::test_name!()) {
        return;
    }
    let mut spo = 0;
    for file in deploy_files() {
        let mut kubernetes_docs = Vec::new();
        let mut expected = Vec::new();
        for (text, doc) in documents(&file) {
            let api = doc["apiVersion"].as_str().unwrap_or_default();
            if api.starts_with(&format!("{SPO_GROUP}/")) {
                check_spo(&doc).unwrap_or_else(|e| panic!("{}:\n{e}\n{text}", file.display()));
                spo += 1;
            } else {
                let kind = doc["kind"].as_str().unwrap_or_default().to_lowercase();
                let name = doc["metadata"]["name"].as_str().unwrap_or_default();
                expected.push(format!("passed for resource {kind}/{name} "));
                kubernetes_docs.push(text);
            }
        }
        if kubernetes_docs.is_empty() {
            continue;
        }
        let said = kubernetes::validate(&kubernetes_docs.join("---\n"))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for passed in expected {
            assert!(
                said.contains(&passed),
                "{}: no `{passed}` in:\n{said}",
                file.display()
            );
        }
    }
    assert!(spo >= 1, "no SPO resource in deploy/");
}

/// The SPO check can fail: a misspelt field, a missing image, an unknown kind, and a field
/// only `v1` has, in `v1alpha1`.
#[test]
fn the_spo_check_refuses_what_the_crds_refuse() {
    let binding = |spec: Value| {
        serde_json::json!({
            "apiVersion": format!("{SPO_GROUP}/v1alpha1"),
            "kind": "ProfileBinding",
            "metadata": {"name": "web-app", "namespace": "shop"},
            "spec": spec,
        })
    };
    let good = serde_json::json!({"profileRef": {"kind": "SeccompProfile", "name": "web-app"}, "image": "web:1"});
    check_spo(&binding(good)).unwrap_or_else(|e| panic!("{e}"));
    for (spec, why) in [
        (
            serde_json::json!({"profileRef": {"kind": "SeccompProfile", "name": "web-app"}, "images": "web:1"}),
            "spec.images",
        ),
        (
            serde_json::json!({"profileRef": {"kind": "SeccompProfile", "name": "web-app"}}),
            "spec.image is required",
        ),
        (
            serde_json::json!({"profileRef": {"kind": "Seccomp", "name": "web-app"}, "image": "web:1"}),
            "not a profile kind",
        ),
        (
            serde_json::json!({"profileRef": {"kind": "SeccompProfile", "name": "web-app"}, "image": "web:1", "podSelector": {}}),
            "spec.podSelector",
        ),
    ] {
        let e = check_spo(&binding(spec)).expect_err(why);
        assert!(e.contains(why), "{why}: {e}");
    }
}

/// What `cinch generate --format spo` writes passes the same check: the profiles the agent
/// writes and docs/kubernetes.md regenerates are resources SPO accepts.
#[test]
fn a_generated_spo_profile_has_only_crd_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recordings = workspace_root().join("profiles/busybox-httpd/recordings");
    let mut recs: Vec<PathBuf> = std::fs::read_dir(&recordings)
        .unwrap_or_else(|e| panic!("{}: {e}", recordings.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    recs.sort();
    let out = dir.path().join("web-app.yaml");
    let o = std::process::Command::new(cinch_tests::cinch_bin())
        .args(["generate", "--format", "spo", "--name", "web-app", "-o"])
        .arg(&out)
        .args(&recs)
        .output()
        .expect("cinch generate");
    assert!(o.status.success(), "{}", cinch_tests::output_text(&o));
    let docs = documents(&out);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let (text, doc) = &docs[0];
    assert_eq!(doc["kind"], "SeccompProfile", "{text}");
    assert_eq!(doc["metadata"]["name"], "web-app", "{text}");
    check_spo(doc).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // `report --format kubernetes` of it names the path SPO installs it under, and the Pod
    // validates.
    let settings = dir.path().join("settings.json");
    let o = std::process::Command::new(cinch_tests::cinch_bin())
        .args(["generate", "-o"])
        .arg(dir.path().join("p.json"))
        .arg("--caps-out")
        .arg(&settings)
        .args(&recs)
        .output()
        .expect("cinch generate");
    assert!(o.status.success(), "{}", cinch_tests::output_text(&o));
    let pod = report_snippet(&out, &settings, "kubernetes");
    assert!(
        pod.contains("localhostProfile: \"operator/web-app.json\""),
        "{pod}"
    );
    assert!(pod.contains("kubectl apply -f"), "{pod}");
    kubernetes::validate(&pod).unwrap_or_else(|e| panic!("{e}"));
}

/// The agent's DaemonSet from deploy/agent.yaml.
fn agent_daemonset() -> Value {
    let file = workspace_root().join("deploy/agent.yaml");
    documents(&file)
        .into_iter()
        .map(|(_, doc)| doc)
        .find(|d| d["kind"] == "DaemonSet" && d["metadata"]["name"] == "cinch-agent")
        .unwrap_or_else(|| panic!("no DaemonSet cinch-agent in {}", file.display()))
}

/// The version of the `cinch` package: tracer/Cargo.toml's, or the workspace's when it
/// inherits it (`version.workspace = true`).
fn cinch_version() -> String {
    /// `version = "X"` in `section` of the manifest at `path`; "workspace" for an inherited one.
    fn version_in(path: &Path, section: &str) -> Option<String> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut in_section = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_section = line == section;
                continue;
            }
            if !in_section {
                continue;
            }
            if line.replace(' ', "") == "version.workspace=true" {
                return Some("workspace".to_owned());
            }
            if let Some(v) = line.strip_prefix("version")
                && let Some(v) = v.trim_start().strip_prefix('=')
            {
                return Some(v.trim().trim_matches('"').to_owned());
            }
        }
        None
    }
    let root = workspace_root();
    let own = version_in(&root.join("tracer/Cargo.toml"), "[package]")
        .expect("tracer/Cargo.toml has a version");
    if own == "workspace" {
        version_in(&root.join("Cargo.toml"), "[workspace.package]")
            .expect("the workspace's Cargo.toml has a version")
    } else {
        own
    }
}

/// The agent runs unprivileged with only the capabilities it needs, reads the host only
/// through read-only mounts (its output directory aside), and runs this version's image.
#[test]
fn the_agent_daemonset_is_least_privilege() {
    let ds = agent_daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1, "{pod}");
    let c = &containers[0];
    assert_eq!(pod["hostPID"], true, "the agent needs the host's processes");
    for field in ["hostNetwork", "hostIPC"] {
        assert!(
            pod[field].is_null() || pod[field] == false,
            "{field}: {pod}"
        );
    }
    assert_eq!(pod["automountServiceAccountToken"], false, "{pod}");

    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false, "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{sc}");
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{sc}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{sc}"
    );
    let added: BTreeSet<&str> = sc["capabilities"]["add"]
        .as_array()
        .expect("capabilities.add")
        .iter()
        .map(|c| c.as_str().expect("a capability name"))
        .collect();
    assert_eq!(
        added,
        AGENT_CAPABILITIES.iter().copied().collect::<BTreeSet<_>>(),
        "the DaemonSet's capabilities changed: prove the new set in tests/tests/deploy.rs"
    );
    assert_eq!(sc["seccompProfile"]["type"], "Localhost", "{sc}");
    assert_eq!(
        sc["seccompProfile"]["localhostProfile"], "cinch/cinch-agent.json",
        "{sc}"
    );

    // Host paths: read-only, but the output directory.
    let volumes = pod["volumes"].as_array().expect("volumes");
    let host_path = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["hostPath"]["path"].as_str())
    };
    let mut mounted = BTreeSet::new();
    for m in c["volumeMounts"].as_array().expect("volumeMounts") {
        let name = m["name"].as_str().expect("a mount's volume name");
        let Some(path) = host_path(name) else {
            continue;
        };
        mounted.insert(path);
        let read_only = m["readOnly"] == true;
        if path == "/var/lib/cinch" {
            assert!(!read_only, "the output directory must be writable: {m}");
        } else {
            assert!(read_only, "host path {path} is mounted writable: {m}");
        }
    }
    for path in [
        "/sys/kernel/btf",
        "/sys/kernel/tracing",
        "/sys/fs/cgroup",
        "/run/containerd/containerd.sock",
        "/var/lib/cinch",
    ] {
        assert!(mounted.contains(path), "{path} is not mounted: {mounted:?}");
    }

    let version = cinch_version();
    assert_eq!(
        c["image"],
        format!("cinch-agent:{version}"),
        "image of version {version}"
    );
    assert_eq!(c["imagePullPolicy"], "Never", "{c}");
    assert_eq!(
        c["args"],
        serde_json::json!([
            "agent",
            "--output",
            "/var/lib/cinch",
            "--listen",
            "0.0.0.0:9477"
        ])
    );
    let node = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(node["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName");
    assert_eq!(c["ports"][0]["containerPort"], 9477, "{c}");
    assert_eq!(c["ports"][0]["name"], "metrics", "{c}");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
    }
    assert!(c["resources"]["limits"]["memory"].is_string(), "{c}");
    assert!(
        pod["tolerations"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null())),
        "the agent must tolerate every taint: {pod}"
    );
}
