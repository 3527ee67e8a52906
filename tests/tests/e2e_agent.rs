//! End-to-end tier, the node agent: real containerd (the one dockerd runs), containers started
//! with `ctr run` and the labels the kubelet gives a pod's containers through the CRI, and a
//! sandbox container per pod carrying the pod's own labels, as containerd's CRI plugin makes
//! it. The agent must name each container by pod and owner, merge the replicas of one owner
//! into one SPO `SeccompProfile`, start each container under that profile, count in /metrics
//! exactly what it wrote, give slots back as containers exit, and lose nothing across SIGTERM
//! and a restart.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::node::{self, Mode, Pod, Sandbox, require_ctr};
use cinch_tests::{ChildGuard, cinch_bin, free_port, guard};
use profile_gen::Recording;

const TEMPLATE_HASH: &str = "7c9f8d6b5";

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a container of `pod` to its end under `seccomp`, and asserts it went well.
fn run_to_end(root: &Path, pod: &Pod, container: &str, seccomp: &Path, cmd: &[&str], what: &str) {
    let run = pod.run(root, container, Mode::ToEnd, seccomp, cmd);
    if let Err(e) = run.succeeded(what) {
        panic!("{e}");
    }
}

/// Starts container `container` of `pod` in the background under `seccomp`: its id (removed
/// again, and the test failed, when it does not start).
fn start_long(
    root: &Path,
    pod: &Pod,
    container: &str,
    seccomp: &Path,
    cmd: &[&str],
    what: &str,
) -> String {
    let run = pod.run(root, container, Mode::Detached, seccomp, cmd);
    if let Err(e) = run.succeeded(what) {
        node::remove(&run.id);
        panic!("{e}");
    }
    run.id
}

/// Runs each (pod, container, command) to its end, one after the other, under `seccomp`.
fn run_each(root: &Path, seccomp: &Path, runs: &[(&Pod, &str, &[&str])]) {
    for (pod, container, cmd) in runs {
        run_to_end(root, pod, container, seccomp, cmd, &pod.name);
    }
}

fn sandbox(root: &Path, pod: &Pod) -> Sandbox {
    pod.start_sandbox(root).unwrap_or_else(|e| panic!("{e}"))
}

fn rootfs(dir: &Path) -> PathBuf {
    node::rootfs(dir).unwrap_or_else(|e| panic!("{e}"))
}

/// The agent, running.
struct Agent {
    child: ChildGuard,
    port: u16,
}

impl Agent {
    fn start(out: &Path, extra: &[&str]) -> Agent {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(cinch_bin())
            .args(["-v", "agent", "--output", out.to_str().expect("utf-8")])
            .args(["--listen", &listen, "--node", "node-a"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cinch agent starts");
        Agent::wait_healthy(ChildGuard(child), port)
    }

    /// The agent as `deploy/` runs it: under its shipped seccomp profile
    /// (`deploy/cinch-agent.json`) with only the DaemonSet's capabilities, loaded as runc loads
    /// them (`cinch run`).
    fn start_as_deployed(out: &Path, extra: &[&str]) -> Agent {
        let profile = cinch_tests::workspace_root().join("deploy/cinch-agent.json");
        let port = free_port();
        let child = Command::new(cinch_bin())
            .args(["run", "--profile", profile.to_str().expect("utf-8")])
            .args(["--cap-add", &daemonset_capabilities(), "--"])
            .arg(cinch_bin())
            .args(["agent", "--output", out.to_str().expect("utf-8")])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--node", "node-a"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cinch run starts");
        Agent::wait_healthy(ChildGuard(child), port)
    }

    /// Waits until the agent `child` answers /healthz on `port`.
    fn wait_healthy(child: ChildGuard, port: u16) -> Agent {
        let mut agent = Agent { child, port };
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if agent
                .get("/healthz")
                .is_some_and(|(status, _)| status == 200)
            {
                return agent;
            }
            if let Ok(Some(st)) = agent.child.try_wait() {
                panic!("the agent exited ({st}): {}", agent.stderr());
            }
            assert!(Instant::now() < until, "the agent never became healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path`: the status code and body.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        node::http_get(self.port, path).ok()
    }

    fn metrics(&self) -> BTreeMap<String, u64> {
        let (status, body) = self.get("/metrics").expect("/metrics answers");
        assert_eq!(status, 200);
        parse_prometheus(&body)
    }

    fn stderr(&mut self) -> String {
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// SIGTERM, then its exit status and what it said.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                let said = self.stderr();
                return (st, said);
            }
            assert!(Instant::now() < until, "the agent did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until /metrics says `metric` is `n`.
    fn wait_for(&self, metric: &str, n: u64) {
        let until = Instant::now() + Duration::from_secs(30);
        while self.metrics().get(metric) != Some(&n) {
            assert!(
                Instant::now() < until,
                "{metric} never {n}: {:?}",
                self.metrics()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Parses the Prometheus text format strictly enough to catch a malformed exposition: every
/// sample is `name{labels} value`, its family has a `# TYPE` line before it, and each family
/// has one `# HELP` and one `# TYPE`. Returns `name{labels}` → value.
fn parse_prometheus(text: &str) -> BTreeMap<String, u64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest
                .split_whitespace()
                .next()
                .expect("a HELP names its metric");
            assert!(helps.insert(name.to_owned()), "two HELP lines for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut f = rest.split_whitespace();
            let (name, kind) = (f.next().expect("name"), f.next().expect("type"));
            assert!(
                ["counter", "gauge"].contains(&kind),
                "unexpected type {kind}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "two TYPE lines for {name}"
            );
        } else {
            let (key, value) = line.rsplit_once(' ').expect("sample: name value");
            let name = key.split('{').next().expect("name");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
                "metric name {name:?}"
            );
            if let Some(labels) = key.strip_prefix(name) {
                assert!(
                    labels.is_empty()
                        || (labels.starts_with('{')
                            && labels.ends_with('}')
                            && labels.contains("=\"")),
                    "labels {labels:?}"
                );
            }
            assert!(types.contains_key(name), "{name} has no TYPE before it");
            if types[name] == "counter" {
                assert!(name.ends_with("_total"), "counter {name} ends in _total");
            }
            let value: u64 = value
                .parse()
                .unwrap_or_else(|_| panic!("value of {line:?}"));
            samples.insert(key.to_owned(), value);
        }
    }
    assert_eq!(
        helps,
        types.keys().cloned().collect(),
        "every family has HELP and TYPE"
    );
    samples
}

fn read(path: &Path) -> Recording {
    profile_gen::read_recording(path).expect("a recording")
}

/// Every recording under `dir/recordings`.
fn recordings(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("recordings"), &mut out);
    out.sort();
    out
}

fn in_dir(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

fn names(rec: &Recording) -> BTreeSet<String> {
    cinch_tests::recorded_names(rec).into_iter().collect()
}

/// An SPO SeccompProfile: the document, and its spec as the OCI seccomp JSON containerd
/// takes (SPO's spec fields are the runtime spec's).
fn spo(path: &Path) -> (serde_json::Value, PathBuf) {
    let text = std::fs::read_to_string(path).expect("profile");
    let doc: serde_json::Value = serde_norway::from_str(&text).expect("YAML");
    assert_eq!(
        doc["apiVersion"], "security-profiles-operator.x-k8s.io/v1beta1",
        "{text}"
    );
    assert_eq!(doc["kind"], "SeccompProfile");
    let spec = doc["spec"].as_object().expect("spec");
    for field in spec.keys() {
        assert!(
            [
                "defaultAction",
                "architectures",
                "syscalls",
                "flags",
                "baseProfileName"
            ]
            .contains(&field.as_str()),
            "{field} is not a SeccompProfile spec field"
        );
    }
    let json = path.with_extension("oci.json");
    std::fs::write(&json, serde_json::to_vec(&doc["spec"]).expect("JSON")).expect("write");
    (doc, json)
}

fn allowed(doc: &serde_json::Value) -> BTreeSet<String> {
    doc["spec"]["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
        .flat_map(|r| r["names"].as_array().expect("names").iter())
        .map(|n| n.as_str().expect("name").to_owned())
        .collect()
}

fn annotation<'a>(doc: &'a serde_json::Value, key: &str) -> &'a str {
    doc["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no annotation {key}: {doc}"))
}

/// The workloads: each sleeps first, so that it is still there when the agent asks containerd
/// about it, then makes the calls that tell it apart.
const WEB_1: &[&str] = &["/bin/sh", "-c", "sleep 1; cat /etc/passwd >/dev/null"];
const WEB_2: &[&str] = &["/bin/sh", "-c", "sleep 1; sync"];
const DEBUG: &[&str] = &["/bin/sh", "-c", "sleep 1; ls / >/dev/null"];

#[test]
fn the_agent_writes_one_profile_per_owner_and_container_that_starts_them() {
    guard!(bpf);
    if !require_ctr("the_agent_writes_one_profile_per_owner_and_container_that_starts_them") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = rootfs(tmp.path());
    let out = tmp.path().join("agent");
    let recording_profile = cinch_tests::recording_profile();

    let hash = TEMPLATE_HASH;
    let web_a = Pod::new(
        "shop",
        &format!("web-{hash}-x2x9q"),
        &[
            "app=web",
            &format!("pod-template-hash={hash}"),
            "record=yes",
        ],
    );
    let web_b = Pod::new(
        "shop",
        &format!("web-{hash}-q7z4w"),
        &[
            "app=web",
            &format!("pod-template-hash={hash}"),
            "record=yes",
        ],
    );
    let debug = Pod::new("shop", "debug", &["record=yes"]);
    // Left out by the selector: its sandbox lacks the label.
    let other = Pod::new("shop", "cron-28h4k", &["app=cron"]);
    // Left out by namespace.
    let system = Pod::new("kube-system", "dns-6d4b7c9f8-k2l5m", &["record=yes"]);
    // Sandboxes exist before the agent, as they would for running pods.
    let _sandboxes: Vec<Sandbox> = [&web_a, &web_b, &debug, &other, &system]
        .iter()
        .map(|p| sandbox(&root, p))
        .collect();

    // Two slots for five containers: each must be given back, cleared, for the next.
    let agent = Agent::start(
        &out,
        &[
            "--namespace",
            "shop",
            "--selector",
            "record=yes",
            "--slots",
            "2",
        ],
    );
    // The order makes web-a's container take the slot web-b's container had (the kernel's
    // queue hands slots out in turn): what web-b did must not show in web-a's recording.
    run_each(
        &root,
        &recording_profile,
        &[
            (&web_b, "app", WEB_2),
            (&debug, "main", DEBUG),
            (&web_a, "app", WEB_1),
            (&other, "job", DEBUG),
            (&system, "dns", DEBUG),
        ],
    );
    agent.wait_for("cinch_agent_recordings_total", 3);
    agent.wait_for(
        "cinch_agent_containers_ignored_total{reason=\"not_selected\"}",
        2,
    );

    // /metrics, scraped while it runs, counts exactly what is on disk.
    let files = recordings(&out);
    assert_eq!(files.len(), 3, "{files:?}");
    let recs: Vec<Recording> = files.iter().map(|f| read(f)).collect();
    let metrics = agent.metrics();
    let syscalls: u64 = recs
        .iter()
        .flat_map(|r| r.syscalls.values().flatten())
        .map(|s| s.count)
        .sum();
    let processes: u64 = recs.iter().map(|r| r.processes_seen).sum();
    assert_eq!(metrics["cinch_agent_recordings_total"], 3);
    assert_eq!(metrics["cinch_agent_syscalls_total"], syscalls);
    assert_eq!(metrics["cinch_agent_processes_total"], processes);
    assert_eq!(
        metrics["cinch_agent_containers_ignored_total{reason=\"not_selected\"}"], 2,
        "{metrics:?}"
    );
    assert_eq!(metrics["cinch_agent_slots"], 2);
    assert_eq!(metrics["cinch_agent_slots_exhausted_total"], 0);

    // Named by namespace, owner and container; the node in each.
    let web_dir = out.join("recordings/shop/web/app");
    let web: Vec<PathBuf> = in_dir(&web_dir);
    assert_eq!(
        web.len(),
        2,
        "both replicas under their Deployment: {web:?}"
    );
    assert_eq!(in_dir(&out.join("recordings/shop/debug/main")).len(), 1);
    for r in &recs {
        assert_eq!(r.host.node.as_deref(), Some("node-a"));
        assert!(r.startup_observed, "from the seccomp install");
    }
    let web_recs: Vec<Recording> = web.iter().map(|p| read(p)).collect();
    let with_sync = web_recs
        .iter()
        .filter(|r| names(r).contains("sync"))
        .count();
    assert_eq!(
        with_sync, 1,
        "only web-b called sync; a slot given back is cleared"
    );

    // Wait for the profiles (written at most every 2 s).
    std::thread::sleep(Duration::from_secs(3));
    let profiles = out.join("profiles/shop");
    let names_on_disk: Vec<String> = in_dir(&profiles)
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names_on_disk,
        [
            "debug-main-caps.yaml",
            "debug-main.yaml",
            "web-app-caps.yaml",
            "web-app.yaml"
        ],
    );
    assert!(!out.join("profiles/kube-system").exists());
    let (web_profile, web_json) = spo(&profiles.join("web-app.yaml"));
    // SPO's profiles are cluster-scoped (since 0.9): the namespace is in the name.
    assert_eq!(web_profile["metadata"]["name"], "shop-web-app");
    assert!(web_profile["metadata"].get("namespace").is_none());
    assert_eq!(annotation(&web_profile, "cinch/recordings"), "2");
    assert_eq!(annotation(&web_profile, "cinch/nodes"), "node-a");
    let allowed_web = allowed(&web_profile);
    assert!(allowed_web.contains("sync"), "the merge has web-b's sync");
    for r in &web_recs {
        assert!(
            names(r).is_subset(&allowed_web),
            "every replica's calls are allowed"
        );
    }
    let caps: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(profiles.join("web-app-caps.yaml")).expect("caps"),
    )
    .expect("YAML");
    assert_eq!(caps["kind"], "ConfigMap");
    assert_eq!(caps["data"]["cap_drop"], "ALL");
    assert!(
        caps["data"]["settings.json"]
            .as_str()
            .expect("settings")
            .contains("cap_add")
    );

    // The merged profile starts every container it was made from, under containerd.
    let (debug_profile, debug_json) = spo(&profiles.join("debug-main.yaml"));
    assert_eq!(annotation(&debug_profile, "cinch/recordings"), "1");
    for (pod, container, profile, cmd) in [
        (&web_a, "app", &web_json, WEB_1),
        (&web_b, "app", &web_json, WEB_2),
        (&debug, "main", &debug_json, DEBUG),
    ] {
        run_to_end(
            &root,
            pod,
            container,
            profile,
            cmd,
            &format!("{} under its merged profile", pod.name),
        );
    }

    // SIGTERM while a container runs: it is recorded up to then, and everything is written.
    let (st, said) = agent_stop_with_a_running_container(agent, &root, &web_a, &recording_profile);
    assert!(st.success(), "the agent exits 0 on SIGTERM: {st}\n{said}");
    let web_now = in_dir(&web_dir);
    assert_eq!(
        web_now.len(),
        5,
        "2 + the 2 runs under the profile + the one running: {web_now:?}"
    );

    // A restarted agent goes on from the directory: the next replica adds to the same profile.
    let agent = Agent::start(&out, &["--namespace", "shop", "--selector", "record=yes"]);
    run_to_end(
        &root,
        &web_a,
        "app",
        &recording_profile,
        WEB_1,
        "web-a again",
    );
    agent.wait_for("cinch_agent_recordings_total", 1);
    std::thread::sleep(Duration::from_secs(3));
    let (web_profile, _) = spo(&profiles.join("web-app.yaml"));
    assert_eq!(annotation(&web_profile, "cinch/recordings"), "6");
    let (st, said) = agent.stop();
    assert!(st.success(), "{st}\n{said}");

    // Recordings from another node merge with `cinch generate`, exactly as the agent merges.
    let node_b = tmp.path().join("node-b.json");
    let mut moved = read(&web[0]);
    moved.host.node = Some("node-b".to_owned());
    std::fs::write(&node_b, serde_json::to_vec(&moved).expect("JSON")).expect("write");
    let merged = tmp.path().join("merged.yaml");
    let mut args: Vec<String> = [
        "generate",
        "--format",
        "spo",
        "--name",
        "shop-web-app",
        "-o",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(merged.display().to_string());
    args.extend(in_dir(&web_dir).iter().map(|p| p.display().to_string()));
    args.push(node_b.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&cinch_tests::cinch(&args), "cinch generate across nodes");
    let (merged_doc, _) = spo(&merged);
    assert_eq!(annotation(&merged_doc, "cinch/recordings"), "7");
    assert_eq!(annotation(&merged_doc, "cinch/nodes"), "node-a,node-b");
    assert_eq!(merged_doc["metadata"]["name"], "shop-web-app");
    assert_eq!(
        merged_doc["spec"],
        spo(&profiles.join("web-app.yaml")).0["spec"]
    );
}

/// Starts a long container of `pod`, waits until the agent counts it, and stops the agent.
fn agent_stop_with_a_running_container(
    agent: Agent,
    root: &Path,
    pod: &Pod,
    seccomp: &Path,
) -> (std::process::ExitStatus, String) {
    let id = start_long(
        root,
        pod,
        "app",
        seccomp,
        &["/bin/sh", "-c", "cat /etc/passwd >/dev/null; sleep 600"],
        "a long container",
    );
    let until = Instant::now() + Duration::from_secs(20);
    while agent.metrics().get("cinch_agent_targets") != Some(&1) {
        assert!(
            Instant::now() < until,
            "the long container is never counted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let stopped = agent.stop();
    node::remove(&id);
    stopped
}

/// The capabilities the DaemonSet adds (`deploy/agent.yaml`, `add: [...]`), comma-separated.
fn daemonset_capabilities() -> String {
    let yaml = std::fs::read_to_string(cinch_tests::workspace_root().join("deploy/agent.yaml"))
        .expect("deploy/agent.yaml");
    let line = yaml
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("add:"))
        .expect("the DaemonSet adds capabilities");
    line.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|c| c.trim().trim_matches('"'))
        .collect::<Vec<_>>()
        .join(",")
}

/// The agent's shipped seccomp profile (`cargo xtask agent-profile`, recorded by cinch) is
/// enough for the agent: under it and only the DaemonSet's capabilities, loaded as runc loads
/// them, the agent starts, records pod containers, writes their profile, answers /metrics and
/// stops cleanly on SIGTERM.
#[test]
fn the_agent_runs_under_its_own_profile_and_the_daemonsets_capabilities() {
    guard!(bpf);
    if !require_ctr("the_agent_runs_under_its_own_profile_and_the_daemonsets_capabilities") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = rootfs(tmp.path());
    let out = tmp.path().join("agent");
    let web = Pod::new(
        "shop",
        &format!("web-{TEMPLATE_HASH}-x2x9q"),
        &["app=web", &format!("pod-template-hash={TEMPLATE_HASH}")],
    );
    let _sandbox = sandbox(&root, &web);
    let agent = Agent::start_as_deployed(&out, &[]);
    let recording_profile = cinch_tests::recording_profile();
    for _ in 0..2 {
        run_to_end(&root, &web, "app", &recording_profile, WEB_1, "web");
    }
    agent.wait_for("cinch_agent_recordings_total", 2);
    agent.wait_for("cinch_agent_profiles", 1);
    let (st, said) = agent.stop();
    assert!(st.success(), "the agent under its profile: {st}\n{said}");
    let (doc, _) = spo(&out.join("profiles/shop/web-app.yaml"));
    assert_eq!(annotation(&doc, "cinch/recordings"), "2");
}

/// The kernel gives a gone namespace's inode number to the next namespace made: a container
/// that was running when the agent started, then ends, leaves its mount namespace's number to
/// the next container, which must still be seen as new (by the namespace's unique id), not as
/// the known one it replaces. The agent runs as deployed, so its shipped profile is tested to
/// allow what telling them apart takes.
#[test]
fn a_container_that_reuses_a_gone_containers_namespace_number_is_recorded() {
    guard!(bpf);
    if !require_ctr("a_container_that_reuses_a_gone_containers_namespace_number_is_recorded") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = rootfs(tmp.path());
    let out = tmp.path().join("agent");
    let recording_profile = cinch_tests::recording_profile();
    let web = Pod::new(
        "shop",
        &format!("web-{TEMPLATE_HASH}-x2x9q"),
        &["app=web", &format!("pod-template-hash={TEMPLATE_HASH}")],
    );
    let _sandbox = sandbox(&root, &web);
    // Each container writes its mount namespace (`mnt:[INODE]`) into the shared root.
    let old_file = root.join("mntns-old");
    let new_file = root.join("mntns-new");
    let old_id = start_long(
        &root,
        &web,
        "app",
        &recording_profile,
        &[
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/mnt > /mntns-old; sleep 600",
        ],
        "the container running before the agent",
    );
    let until = Instant::now() + Duration::from_secs(10);
    while !old_file.exists() {
        assert!(Instant::now() < until, "the old container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // As deployed: its profile must let it ask for the namespaces' ids.
    let agent = Agent::start_as_deployed(&out, &["--namespace", "shop"]);
    node::remove(&old_id);
    run_to_end(
        &root,
        &web,
        "app",
        &recording_profile,
        &[
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/mnt > /mntns-new; sleep 1; cat /etc/passwd >/dev/null",
        ],
        "the container after it",
    );
    let inode = |p: &Path| std::fs::read_to_string(p).expect("a namespace written");
    assert_eq!(
        inode(&old_file),
        inode(&new_file),
        "the kernel gave the new container's mount namespace the old one's number, as it does when nothing else makes a namespace in between (the precondition of this test)"
    );
    agent.wait_for("cinch_agent_recordings_total", 1);
    let (st, said) = agent.stop();
    assert!(st.success(), "{st}\n{said}");
    let written = in_dir(&out.join("recordings/shop/web/app"));
    assert_eq!(written.len(), 1, "{written:?}");
    let rec = read(&written[0]);
    assert!(
        names(&rec).contains("readlink") || names(&rec).contains("readlinkat"),
        "the new container's own calls: {:?}",
        names(&rec)
    );
}

/// A pod's sandbox lives as long as its pod, and a container of a pod left out by the
/// selection as long as it runs: the agent gives their slots back as soon as the engine has
/// named them, not when they end. Two slots then serve three running sandboxes, a running
/// container of another pod and the recorded containers, and what the given-up container goes
/// on doing (`free`, whose `sysinfo` no recorded workload calls, every 0.2 s) shows in no
/// recording, though its slot is reused.
#[test]
fn sandboxes_and_containers_left_out_give_their_slots_back_while_they_run() {
    const NAME: &str = "sandboxes_and_containers_left_out_give_their_slots_back_while_they_run";
    guard!(bpf);
    if !require_ctr(NAME) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = rootfs(tmp.path());
    let out = tmp.path().join("agent");
    let recording_profile = cinch_tests::recording_profile();
    let web = Pod::new(
        "shop",
        &format!("web-{TEMPLATE_HASH}-x2x9q"),
        &[
            "app=web",
            &format!("pod-template-hash={TEMPLATE_HASH}"),
            "record=yes",
        ],
    );
    let debug = Pod::new("shop", "debug", &["record=yes"]);
    let other = Pod::new("shop", "cron-28h4k", &["app=cron"]);
    let agent = Agent::start(
        &out,
        &[
            "--namespace",
            "shop",
            "--selector",
            "record=yes",
            "--slots",
            "2",
        ],
    );
    // The sandboxes start after the agent, as a new pod's do, one at a time.
    let mut sandboxes = Vec::new();
    for (i, pod) in [&web, &debug, &other].into_iter().enumerate() {
        sandboxes.push(sandbox(&root, pod));
        agent.wait_for(
            "cinch_agent_containers_ignored_total{reason=\"not_kubernetes\"}",
            i as u64 + 1,
        );
    }
    let busy_id = start_long(
        &root,
        &other,
        "job",
        &recording_profile,
        &[
            "/bin/sh",
            "-c",
            "while :; do free >/dev/null 2>&1; sleep 0.2; done",
        ],
        "a container of a pod left out",
    );
    agent.wait_for(
        "cinch_agent_containers_ignored_total{reason=\"not_selected\"}",
        1,
    );
    run_each(
        &root,
        &recording_profile,
        &[
            (&web, "app", WEB_1),
            (&debug, "main", DEBUG),
            (&web, "app", WEB_2),
            (&web, "app", WEB_1),
        ],
    );
    agent.wait_for("cinch_agent_recordings_total", 4);
    let metrics = agent.metrics();
    node::remove(&busy_id);
    drop(sandboxes);
    let (st, said) = agent.stop();
    assert!(st.success(), "{st}\n{said}");
    assert_eq!(
        metrics.get("cinch_agent_slots_exhausted_total"),
        Some(&0),
        "{metrics:?}"
    );
    let files = recordings(&out);
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        let names = names(&read(f));
        assert!(
            !names.contains("sysinfo"),
            "{}: the given-up container's calls leaked into it: {names:?}",
            f.display()
        );
    }
}
