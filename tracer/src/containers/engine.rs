//! Asking container engines about a container: `docker|podman|nerdctl inspect` (one JSON shape),
//! `crictl inspect`, and, for containerd without nerdctl, `ctr` on containerd's socket (Docker's
//! own containerd, namespace `moby`, included).

use profile_gen::secrets::{SecretEnv, secret_env};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::error::input;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Docker,
    Podman,
    Containerd,
    Crio,
}

impl Engine {
    pub(crate) const ALL: [Engine; 4] = [
        Engine::Docker,
        Engine::Podman,
        Engine::Containerd,
        Engine::Crio,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Containerd => "containerd",
            Engine::Crio => "crio",
        }
    }

    /// The CLI that answers for this engine.
    fn cli(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Containerd => "nerdctl",
            Engine::Crio => "crictl",
        }
    }

    fn available(self) -> bool {
        crate::spawn::resolve(self.cli()).is_some()
            || (self == Engine::Containerd && crate::spawn::resolve("ctr").is_some())
    }
}

/// What the engine says about the seccomp profile a container runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeccompInForce {
    /// `seccomp=unconfined`: everything is visible, but the start-up boundary is the first execve.
    Unconfined,
    /// A custom profile whose default action allows: everything is visible.
    Permissive,
    /// The engine's default or another restrictive profile: denied syscalls are invisible.
    Restrictive,
    Unknown,
}

#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub engine: Engine,
    /// The container's init process, while it runs.
    pub pid: Option<u32>,
    /// The compose service (`com.docker.compose.service` label), if any.
    pub service: Option<String>,
    pub seccomp: SeccompInForce,
    /// The command the engine ran (entrypoint and arguments), when it says.
    pub command: Vec<String>,
    /// Environment variables that look like secrets: names and why, the values dropped.
    pub secret_env: Vec<SecretEnv>,
    /// Destinations of its writable mounts (volumes, bind mounts, tmpfs).
    pub volumes: Vec<String>,
    /// The engine's labels (Kubernetes names its pods and containers in them).
    pub labels: BTreeMap<String, String>,
    /// Its pod's annotations, when it is a pod's and the engine keeps them (on the sandbox).
    pub pod_annotations: BTreeMap<String, String>,
}

impl Container {
    /// A container the engine told nothing about: its id and a name.
    pub(crate) fn unknown(engine: Engine, id: String, name: String) -> Container {
        Container {
            id,
            name,
            image: String::new(),
            engine,
            pid: None,
            service: None,
            seccomp: SeccompInForce::Unknown,
            command: Vec::new(),
            secret_env: Vec::new(),
            volumes: Vec::new(),
            labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
        }
    }

    /// Adds what its pod's sandbox says: the pod's labels (the container's own going first)
    /// and annotations.
    fn add_pod(&mut self, pod: PodMetadata) {
        for (k, v) in pod.labels {
            self.labels.entry(k).or_insert(v);
        }
        self.pod_annotations = pod.annotations;
    }

    /// The uid of its pod, when it is a pod's, as the kubelet labels it (an API server uid;
    /// anything else stays out of the engines' filter expressions).
    fn pod_uid(&self) -> Option<&str> {
        self.labels
            .get(crate::kubernetes::POD_UID)
            .map(String::as_str)
            .filter(|uid| {
                !uid.is_empty() && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    }
}

const TIMEOUT: Duration = Duration::from_secs(10);
/// How often a running engine CLI is looked at: its answer is waited for by the agent's
/// engine threads, a few milliseconds each time matter for a short container.
const POLL: Duration = Duration::from_millis(2);

/// Runs an engine CLI with a time limit; `None` when it is missing, fails or hangs. Its output
/// is read while it runs: a CLI whose answer outgrows the pipe (`ctr containers ls` on a busy
/// node) would otherwise wait for a reader until the time limit.
fn ask(cli: &str, args: &[&str]) -> Option<String> {
    tracing::debug!(cli, ?args, "asking the container engine");
    let mut child = Command::new(cli)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::Builder::new()
        .name("engine-output".to_owned())
        .spawn(move || {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut out).map(|_| out)
        });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() < TIMEOUT => std::thread::sleep(POLL),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    // The pipe closes with the process, which ends the read.
    let out = reader.ok()?.join().ok()?.ok()?;
    status?.success().then_some(out)
}

/// Asks one engine about `reference` (name or id).
fn inspect(engine: Engine, reference: &str) -> Option<Container> {
    match engine {
        Engine::Crio => return inspect_crictl(reference),
        Engine::Containerd if crate::spawn::resolve("nerdctl").is_none() => {
            return inspect_ctr(reference);
        }
        _ => {}
    }
    let out = ask(engine.cli(), &["inspect", "--type", "container", reference])
        .or_else(|| ask(engine.cli(), &["inspect", reference]))?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let c = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
    let str_at = |ptr: &str| c.pointer(ptr).and_then(Value::as_str).map(str::to_owned);
    let pid = c
        .pointer("/State/Pid")
        .and_then(Value::as_u64)
        .filter(|&p| p > 0);
    let security = c
        .pointer("/HostConfig/SecurityOpt")
        .and_then(Value::as_array);
    Some(Container {
        id: str_at("/Id")?,
        name: str_at("/Name")
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: str_at("/Config/Image")
            .or_else(|| str_at("/ImageName"))
            .unwrap_or_default(),
        engine,
        pid: pid.and_then(|p| u32::try_from(p).ok()),
        service: str_at("/Config/Labels/com.docker.compose.service"),
        seccomp: seccomp_from(security.map(Vec::as_slice).unwrap_or(&[])),
        // Docker, Podman and nerdctl: `Path` and `Args`, the entrypoint and command resolved.
        command: str_at("/Path")
            .into_iter()
            .chain(strings_at(c, "/Args"))
            .collect(),
        secret_env: secret_env(&strings_at(c, "/Config/Env")),
        volumes: engine_volumes(c),
        labels: labels_at(c, "/Config/Labels"),
        pod_annotations: BTreeMap::new(),
    })
}

/// The strings of the array at `ptr` (none when there is no such array).
/// Docker, Podman and nerdctl: the writable `Mounts` and `HostConfig.Tmpfs` destinations.
fn engine_volumes(c: &Value) -> Vec<String> {
    let mut out: Vec<String> = c
        .pointer("/Mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("RW").and_then(Value::as_bool).unwrap_or(true))
        .filter_map(|m| m.get("Destination").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    if let Some(tmpfs) = c.pointer("/HostConfig/Tmpfs").and_then(Value::as_object) {
        out.extend(tmpfs.keys().cloned());
    }
    out.sort();
    out.dedup();
    out
}

/// An OCI runtime spec's mounts at `ptr` that are not read-only, by destination.
fn oci_volumes(v: &Value, ptr: &str) -> Vec<String> {
    let mut out: Vec<String> = v
        .pointer(ptr)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            !m.get("options")
                .and_then(Value::as_array)
                .is_some_and(|o| o.iter().any(|x| x.as_str() == Some("ro")))
        })
        .filter_map(|m| m.get("destination").and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The string values of the object at `ptr`.
fn labels_at(v: &Value, ptr: &str) -> BTreeMap<String, String> {
    v.pointer(ptr)
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

fn strings_at(v: &Value, ptr: &str) -> Vec<String> {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn seccomp_from(opts: &[Value]) -> SeccompInForce {
    for opt in opts.iter().filter_map(Value::as_str) {
        let Some(value) = opt
            .strip_prefix("seccomp=")
            .or_else(|| opt.strip_prefix("seccomp:"))
        else {
            continue;
        };
        if value == "unconfined" {
            return SeccompInForce::Unconfined;
        }
        // Docker keeps the profile's content; Podman the path.
        let content = if value.trim_start().starts_with('{') {
            value.to_owned()
        } else {
            // Bounded: the path comes from the container's configuration, not from cinch.
            profile_gen::files::read_input(std::path::Path::new(value))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let allows = serde_json::from_str::<Value>(&content)
            .ok()
            .and_then(|p| {
                p.get("defaultAction")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .is_some_and(|a| a == "SCMP_ACT_ALLOW" || a == "SCMP_ACT_LOG" || a == "SCMP_ACT_TRACE");
        return if allows {
            SeccompInForce::Permissive
        } else {
            SeccompInForce::Restrictive
        };
    }
    if opts.is_empty() {
        SeccompInForce::Restrictive
    } else {
        SeccompInForce::Unknown
    }
}

fn inspect_crictl(reference: &str) -> Option<Container> {
    let out = ask("crictl", &["inspect", reference])?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let str_at = |ptr: &str| v.pointer(ptr).and_then(Value::as_str).map(str::to_owned);
    Some(Container {
        id: str_at("/status/id")?,
        name: str_at("/status/metadata/name").unwrap_or_default(),
        image: str_at("/status/image/image").unwrap_or_default(),
        engine: Engine::Crio,
        pid: v
            .pointer("/info/pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok()),
        service: None,
        seccomp: SeccompInForce::Unknown,
        command: strings_at(&v, "/info/runtimeSpec/process/args"),
        secret_env: secret_env(&strings_at(&v, "/info/runtimeSpec/process/env")),
        volumes: oci_volumes(&v, "/info/runtimeSpec/mounts"),
        labels: labels_at(&v, "/status/labels"),
        pod_annotations: BTreeMap::new(),
    })
}

/// A container that has just started, by the full id its cgroup gives (`record
/// --new-containers` and the agent): what the engine says of it and, for a pod's container,
/// what its pod's sandbox says ([`Container::add_pod`]). Through `ctr`, with fewer calls than
/// [`inspect`] and [`pod_metadata`] make (no listing to resolve a prefix, no task table for a
/// pid the kernel side does not need, the sandbox asked for where the container was found):
/// each call takes tens of milliseconds, and a short container may be gone before they are
/// done.
pub(crate) fn inspect_new(engine: Engine, id: &str) -> Option<Container> {
    if engine == Engine::Containerd && crate::spawn::resolve("nerdctl").is_none() {
        return in_every_ctr_namespace(|ctr, ns| {
            let info: Value =
                serde_json::from_str(&ctr(&["-n", ns, "containers", "info", id])?).ok()?;
            let mut container = container_from_ctr(id, &info, "");
            if let Some(pod) = container.pod_uid().and_then(|uid| sandbox_in(ctr, ns, uid)) {
                container.add_pod(pod);
            }
            Some(container)
        });
    }
    let mut container = inspect(engine, id)?;
    if let Some(uid) = container.pod_uid().map(str::to_owned) {
        container.add_pod(pod_metadata(engine, &uid));
    }
    Some(container)
}

/// containerd's sockets: `CONTAINERD_ADDRESS`, the system one, and the one dockerd starts for
/// itself when there is no system containerd (Docker 20.10 and later).
fn containerd_sockets() -> Vec<String> {
    let mut sockets: Vec<String> = std::env::var("CONTAINERD_ADDRESS").into_iter().collect();
    for s in [
        "/run/containerd/containerd.sock",
        "/run/docker/containerd/containerd.sock",
    ] {
        if !sockets.iter().any(|k| k == s) {
            sockets.push(s.to_owned());
        }
    }
    sockets.retain(|s| std::path::Path::new(s).exists());
    sockets
}

/// Asks `ctr` in every namespace of every containerd socket, until `find(ctr, namespace)` finds
/// something.
fn in_every_ctr_namespace<T>(
    mut find: impl FnMut(&dyn Fn(&[&str]) -> Option<String>, &str) -> Option<T>,
) -> Option<T> {
    for socket in containerd_sockets() {
        let ctr = |args: &[&str]| {
            let mut all = vec!["-a", socket.as_str()];
            all.extend_from_slice(args);
            ask("ctr", &all)
        };
        let Some(namespaces) = ctr(&["namespaces", "ls", "-q"]) else {
            continue;
        };
        for ns in namespaces.lines().map(str::trim).filter(|n| !n.is_empty()) {
            if let Some(found) = find(&ctr, ns) {
                return Some(found);
            }
        }
    }
    None
}

/// `ctr` knows containers only by id, per namespace: every namespace of every socket is asked,
/// and `reference` matches a whole id or a prefix of exactly one.
fn inspect_ctr(reference: &str) -> Option<Container> {
    in_every_ctr_namespace(|ctr, ns| {
        let ids = ctr(&["-n", ns, "containers", "ls", "-q"])?;
        let ids: Vec<&str> = ids.lines().map(str::trim).collect();
        let id = match ids.iter().find(|&&i| i == reference) {
            Some(&id) => id,
            None => match ids
                .iter()
                .filter(|i| i.starts_with(reference))
                .collect::<Vec<_>>()[..]
            {
                [&id] => id,
                _ => return None,
            },
        };
        let info: Value =
            serde_json::from_str(&ctr(&["-n", ns, "containers", "info", id])?).ok()?;
        let tasks = ctr(&["-n", ns, "tasks", "ls"]).unwrap_or_default();
        Some(container_from_ctr(id, &info, &tasks))
    })
}

/// A container from `ctr containers info` (its OCI spec and labels) and `ctr tasks ls` (a table:
/// TASK, PID, STATUS).
fn container_from_ctr(id: &str, info: &Value, tasks: &str) -> Container {
    let label = |k: &str| {
        info.pointer("/Labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let pid = tasks.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        match (f.next(), f.next(), f.next()) {
            (Some(t), Some(pid), Some("RUNNING")) if t == id => pid.parse().ok(),
            _ => None,
        }
    });
    let seccomp = match info
        .pointer("/Spec/linux/seccomp/defaultAction")
        .and_then(Value::as_str)
    {
        None => SeccompInForce::Unconfined,
        Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG" | "SCMP_ACT_TRACE") => SeccompInForce::Permissive,
        Some(_) => SeccompInForce::Restrictive,
    };
    Container {
        id: id.to_owned(),
        // Kubernetes (CRI) names its containers in labels; others have only the id.
        name: label("io.kubernetes.container.name").unwrap_or_else(|| id.to_owned()),
        // Empty for Docker's containers (namespace moby): dockerd keeps the image itself.
        image: info
            .pointer("/Image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        engine: Engine::Containerd,
        pid,
        service: label("com.docker.compose.service"),
        seccomp,
        command: strings_at(info, "/Spec/process/args"),
        secret_env: secret_env(&strings_at(info, "/Spec/process/env")),
        volumes: oci_volumes(info, "/Spec/mounts"),
        labels: labels_at(info, "/Labels"),
        pod_annotations: BTreeMap::new(),
    }
}

/// What a pod's sandbox says of the pod: its own labels and annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PodMetadata {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// containerd's CRI plugin keeps a sandbox's CRI config (the pod's labels and annotations, as
/// the kubelet passed them) in this container extension, as versioned JSON.
const CRI_SANDBOX_METADATA: &str = "io.cri-containerd.sandbox.metadata";

/// The labels and annotations of the pod whose uid is `uid`, from its sandbox: the kubelet puts
/// a pod's own labels and annotations there, not on its containers. Asked of containerd
/// (through `ctr`) and CRI-O (through `crictl`); empty when neither knows the pod.
fn pod_metadata(engine: Engine, uid: &str) -> PodMetadata {
    let found = match engine {
        Engine::Containerd => in_every_ctr_namespace(|ctr, ns| sandbox_in(ctr, ns, uid)),
        Engine::Crio => {
            let label = format!("{}={uid}", crate::kubernetes::POD_UID);
            ask("crictl", &["pods", "-o", "json", "--label", &label])
                .and_then(|out| serde_json::from_str::<Value>(&out).ok())
                .map(|v| pod_metadata_crictl(&v))
        }
        Engine::Docker | Engine::Podman => None,
    };
    found.unwrap_or_default()
}

/// The sandbox of the pod whose uid is `uid` in containerd namespace `ns`, through `ctr`.
fn sandbox_in(ctr: &dyn Fn(&[&str]) -> Option<String>, ns: &str, uid: &str) -> Option<PodMetadata> {
    let filter = format!(
        "labels.\"{}\"=={uid},labels.\"io.cri-containerd.kind\"==sandbox",
        crate::kubernetes::POD_UID
    );
    let ids = ctr(&["-n", ns, "containers", "ls", "-q", &filter])?;
    let id = ids.split_whitespace().next()?;
    let info: Value = serde_json::from_str(&ctr(&["-n", ns, "containers", "info", id])?).ok()?;
    Some(sandbox_from_ctr(&info))
}

/// A sandbox from `ctr containers info`: its labels, and the annotations in the CRI plugin's
/// metadata extension (base64 of `{"Version": "v1", "Metadata": {"Config": {...}}}`, the
/// pod's CRI config).
fn sandbox_from_ctr(info: &Value) -> PodMetadata {
    use base64::Engine as _;
    let annotations = info
        .pointer(&format!("/Extensions/{CRI_SANDBOX_METADATA}/value"))
        .and_then(Value::as_str)
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|json| serde_json::from_slice::<Value>(&json).ok())
        .map(|meta| labels_at(&meta, "/Metadata/Config/annotations"))
        .unwrap_or_default();
    PodMetadata {
        labels: labels_at(info, "/Labels"),
        annotations,
    }
}

/// A pod from `crictl pods -o json`: the first item's labels and annotations.
fn pod_metadata_crictl(pods: &Value) -> PodMetadata {
    PodMetadata {
        labels: labels_at(pods, "/items/0/labels"),
        annotations: labels_at(pods, "/items/0/annotations"),
    }
}

/// Finds a running container by name or id, asking the given engine or every engine found.
pub(crate) fn resolve(reference: &str, engine: Option<Engine>) -> anyhow::Result<Container> {
    if !super::valid_reference(reference) {
        return Err(input(format!(
            "{reference:?} is not a container name or id (letters, digits, '_', '.', '-')"
        )));
    }
    let engines: Vec<Engine> = match engine {
        Some(e) => vec![e],
        None => Engine::ALL.into_iter().filter(|e| e.available()).collect(),
    };
    if engines.is_empty() {
        return Err(input(format!(
            "no container {reference:?}: no container engine CLI (docker, podman, nerdctl, ctr, crictl) found on PATH"
        )));
    }
    for &e in &engines {
        if let Some(c) = inspect(e, reference) {
            tracing::info!(
                engine = c.engine.as_str(),
                id = %c.id,
                name = %c.name,
                image = %c.image,
                pid = ?c.pid,
                seccomp = ?c.seccomp,
                "container found"
            );
            let pid = c
                .pid
                .with_context(|| format!("container {reference} is not running"));
            return pid.map_err(|e| input(format!("{e:#}"))).map(|_| c);
        }
    }
    let asked: Vec<&str> = engines.iter().map(|e| e.as_str()).collect();
    Err(input(format!(
        "no container named {reference:?}: asked {}",
        asked.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shapes `ctr containers info` and `ctr tasks ls` print (containerd 1.6, dockerd's own).
    #[test]
    fn ctr_output_gives_pid_seccomp_and_labels() {
        let info: Value = serde_json::json!({
            "ID": "2129",
            "Labels": {"io.kubernetes.container.name": "web"},
            "Image": "",
            "Spec": {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}}
        });
        let tasks = "TASK    PID      STATUS\n2129    15818    RUNNING\n21290   77       RUNNING\n";
        let c = container_from_ctr("2129", &info, tasks);
        assert_eq!(c.pid, Some(15818));
        assert_eq!(c.name, "web");
        assert_eq!(c.seccomp, SeccompInForce::Restrictive);
        assert_eq!(c.engine, Engine::Containerd);
        assert_eq!(c.labels["io.kubernetes.container.name"], "web");

        let unconfined: Value = serde_json::json!({"ID": "2129", "Spec": {"linux": {}}});
        let stopped = "TASK    PID      STATUS\n2129    15818    STOPPED\n";
        let c = container_from_ctr("2129", &unconfined, stopped);
        assert_eq!(c.pid, None, "a stopped task has no process to attach to");
        assert_eq!(
            c.name, "2129",
            "without a Kubernetes label the id is the name"
        );
        assert_eq!(c.seccomp, SeccompInForce::Unconfined);
    }

    /// An answer larger than a pipe holds (64 KiB on Linux) comes whole, at once.
    #[test]
    fn a_long_answer_is_read_while_the_cli_runs() {
        let started = Instant::now();
        let out = ask("sh", &["-c", "head -c 300000 /dev/zero | tr '\\0' a"]);
        assert_eq!(out.map(|o| o.len()), Some(300_000));
        assert!(
            started.elapsed() < TIMEOUT / 2,
            "it did not wait for the time limit"
        );
        assert_eq!(
            ask("sh", &["-c", "echo partial; exit 3"]),
            None,
            "a failure"
        );
        assert_eq!(ask("cinch-no-such-engine-cli", &[]), None, "a missing CLI");
    }

    /// A sandbox as `ctr containers info` prints it on a containerd whose CRI plugin made it
    /// (1.6): the pod's labels as container labels, and the pod's CRI config, annotations
    /// included, in the metadata extension (a protobuf `Any` whose bytes JSON shows as
    /// base64: containerd's versioned sandbox metadata, made here by the script in the
    /// comment below).
    #[test]
    fn a_sandbox_gives_its_pods_labels_and_annotations() {
        // json.dumps({"Version": "v1", "Metadata": {"ID": ..., "Config": {"metadata": ...,
        // "labels": {...}, "annotations": {"example.com/record": "true",
        // "kubernetes.io/config.source": "api"}, ...}, "NetNSPath": ..., ...}}), base64'd.
        const METADATA: &str = "eyJWZXJzaW9uIjoidjEiLCJNZXRhZGF0YSI6eyJJRCI6IjhlMWYwYzJhIiwiTmFtZSI6IndlYi03YzlmOGQ2YjUteDJ4OXFfc2hvcF8zZjJhXzAiLCJDb25maWciOnsibWV0YWRhdGEiOnsibmFtZSI6IndlYi03YzlmOGQ2YjUteDJ4OXEiLCJ1aWQiOiIzZjJhIiwibmFtZXNwYWNlIjoic2hvcCJ9LCJob3N0bmFtZSI6IndlYi03YzlmOGQ2YjUteDJ4OXEiLCJsb2dfZGlyZWN0b3J5IjoiL3Zhci9sb2cvcG9kcy9zaG9wX3dlYi03YzlmOGQ2YjUteDJ4OXFfM2YyYSIsImxhYmVscyI6eyJhcHAiOiJ3ZWIiLCJpby5rdWJlcm5ldGVzLnBvZC51aWQiOiIzZjJhIn0sImFubm90YXRpb25zIjp7ImV4YW1wbGUuY29tL3JlY29yZCI6InRydWUiLCJrdWJlcm5ldGVzLmlvL2NvbmZpZy5zb3VyY2UiOiJhcGkifSwibGludXgiOnsiY2dyb3VwX3BhcmVudCI6Ii9rdWJlcG9kcy9iZXN0ZWZmb3J0L3BvZDNmMmEifX0sIk5ldE5TUGF0aCI6Ii92YXIvcnVuL25ldG5zL2NuaS0xIiwiSVAiOiIxMC4wLjAuNyIsIkFkZGl0aW9uYWxJUHMiOm51bGwsIlJ1bnRpbWVIYW5kbGVyIjoiIiwiQ05JUmVzdWx0IjpudWxsLCJQcm9jZXNzTGFiZWwiOiIifX0=";
        let info: Value = serde_json::json!({
            "ID": "8e1f0c2a",
            "Labels": {
                "app": "web",
                "io.cri-containerd.kind": "sandbox",
                "io.kubernetes.pod.uid": "3f2a"
            },
            "Image": "registry.k8s.io/pause:3.6",
            "Extensions": {
                "io.cri-containerd.sandbox.metadata": {
                    "type_url": "github.com/containerd/cri/pkg/store/sandbox/Metadata",
                    "value": METADATA
                }
            }
        });
        let pod = sandbox_from_ctr(&info);
        assert_eq!(pod.labels["app"], "web");
        assert_eq!(
            pod.annotations
                .get("example.com/record")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(pod.annotations.len(), 2);

        // A sandbox some other client made: labels only.
        let bare: Value = serde_json::json!({"ID": "1", "Labels": {"app": "web"}});
        let pod = sandbox_from_ctr(&bare);
        assert_eq!(pod.labels.len(), 1);
        assert!(pod.annotations.is_empty());
    }

    /// `crictl pods -o json` (CRI-O): a pod's labels and annotations.
    #[test]
    fn crictl_gives_a_pods_labels_and_annotations() {
        let pods: Value = serde_json::json!({"items": [{
            "id": "5d0b",
            "metadata": {"name": "web-7c9f8d6b5-x2x9q", "uid": "3f2a", "namespace": "shop", "attempt": 0},
            "state": "SANDBOX_READY",
            "labels": {"app": "web", "io.kubernetes.pod.uid": "3f2a"},
            "annotations": {"example.com/record": "true"},
            "runtimeHandler": ""
        }]});
        let pod = pod_metadata_crictl(&pods);
        assert_eq!(pod.labels["app"], "web");
        assert_eq!(pod.annotations["example.com/record"], "true");
        assert_eq!(
            pod_metadata_crictl(&serde_json::json!({"items": []})),
            PodMetadata::default()
        );
    }
}
