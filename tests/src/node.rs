//! A Kubernetes node without a kubelet: pod containers run under dockerd's own containerd with
//! `ctr run`, labelled as the kubelet labels them through the CRI, with a sandbox per pod that
//! carries the pod's own labels (as containerd's CRI plugin makes it), on a busybox root
//! exported from the harness's image. The agent's end-to-end tests, its soak and the recording
//! of its own profile (`cargo xtask soak --agent`, `cargo xtask agent-profile`) run on it.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::docker::{Docker, try_busybox_image};

/// dockerd's own containerd.
pub const SOCKET: &str = "/run/docker/containerd/containerd.sock";
/// The containerd namespace the kubelet's containers live in.
pub const NAMESPACE: &str = "k8s.io";

const CTR: &str = "/usr/bin/ctr";

/// Why no node can run here, if none can: `ctr` is missing.
pub fn missing() -> Option<&'static str> {
    (!Path::new(CTR).exists())
        .then_some("ctr (Debian's containerd package, which docker.io depends on) is not installed")
}

/// The node's prerequisite for test `name` (see [`crate::require`]).
pub fn require_ctr(name: &str) -> bool {
    crate::require(name, missing().is_none(), missing().unwrap_or_default())
}

/// `ctr` on dockerd's containerd, in the kubelet's namespace.
pub fn ctr(args: &[&str]) -> std::io::Result<Output> {
    Command::new(CTR)
        .args(["-a", SOCKET, "-n", NAMESPACE])
        .args(args)
        .stdin(Stdio::null())
        .output()
}

/// A container id as the CRI makes them: 64 hex digits (cinch finds it in the cgroup path).
pub fn container_id() -> String {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A pod: its namespace, name, uid, and its own labels (`KEY=VALUE`, on its sandbox).
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: Vec<String>,
}

/// How a container runs: to its end and removed (`ctr run --rm`), or detached (`ctr run -d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ToEnd,
    Detached,
}

impl Pod {
    pub fn new(namespace: &str, name: &str, labels: &[&str]) -> Pod {
        Pod {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: format!("uid-{}", &container_id()[..16]),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    /// The CRI labels of its container `container`, or of its sandbox (`container` None).
    pub fn cri_labels(&self, container: Option<&str>) -> Vec<String> {
        let mut out = vec![
            format!("io.kubernetes.pod.namespace={}", self.namespace),
            format!("io.kubernetes.pod.name={}", self.name),
            format!("io.kubernetes.pod.uid={}", self.uid),
            format!(
                "io.kubernetes.container.name={}",
                container.unwrap_or("POD")
            ),
            format!(
                "io.cri-containerd.kind={}",
                if container.is_some() {
                    "container"
                } else {
                    "sandbox"
                }
            ),
        ];
        if container.is_none() {
            out.extend(self.labels.iter().cloned());
        }
        out
    }

    /// Runs its container `container` (a new id) on `root` under the seccomp profile `seccomp`.
    pub fn run(
        &self,
        root: &Path,
        container: &str,
        mode: Mode,
        seccomp: &Path,
        cmd: &[&str],
    ) -> Run {
        run(
            root,
            &self.cri_labels(Some(container)),
            mode,
            Some(seccomp),
            cmd,
        )
    }

    /// Starts its sandbox (the pause container, here a long sleep); removed on drop.
    pub fn start_sandbox(&self, root: &Path) -> Result<Sandbox, String> {
        start(
            root,
            &self.cri_labels(None),
            None,
            &["/bin/sleep", "100000"],
        )
    }
}

/// Starts a container with `labels` on `root` in the background (under `seccomp` if given);
/// removed on drop.
pub fn start(
    root: &Path,
    labels: &[String],
    seccomp: Option<&Path>,
    cmd: &[&str],
) -> Result<Sandbox, String> {
    let run = run(root, labels, Mode::Detached, seccomp, cmd);
    let running = Sandbox(run.id.clone());
    run.succeeded("starting a container in the background")?;
    Ok(running)
}

/// One `ctr run`: the container's id and how it went.
#[derive(Debug)]
pub struct Run {
    pub id: String,
    pub output: std::io::Result<Output>,
}

impl Run {
    /// Ok when `ctr run` ran and exited 0; else why not, naming `what`.
    pub fn succeeded(&self, what: &str) -> Result<(), String> {
        match &self.output {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "{what} failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("{what}: ctr did not run: {e}")),
        }
    }
}

/// `ctr run` of a new container with `labels` on `root`, under `seccomp` if given.
pub fn run(
    root: &Path,
    labels: &[String],
    mode: Mode,
    seccomp: Option<&Path>,
    cmd: &[&str],
) -> Run {
    let id = container_id();
    let mut args: Vec<String> = vec![
        "run".into(),
        match mode {
            Mode::ToEnd => "--rm",
            Mode::Detached => "-d",
        }
        .into(),
        "--rootfs".into(),
    ];
    if let Some(profile) = seccomp {
        args.extend([
            "--seccomp".into(),
            "--seccomp-profile".into(),
            profile.display().to_string(),
        ]);
    }
    for l in labels {
        args.extend(["--label".into(), l.clone()]);
    }
    args.extend([root.display().to_string(), id.clone()]);
    args.extend(cmd.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = ctr(&args);
    Run { id, output }
}

/// A container running in the background (a pod's sandbox, a long container); removed on drop.
#[derive(Debug)]
pub struct Sandbox(String);

impl Drop for Sandbox {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// Kills and removes container `id` (its task first), whatever state it is in.
pub fn remove(id: &str) {
    let succeeded = |args: &[&str]| ctr(args).is_ok_and(|o| o.status.success());
    let _ = ctr(&["task", "kill", "-s", "KILL", id]);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && !succeeded(&["task", "rm", id]) {
        let listed = ctr(&["task", "ls", "-q"])
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(id));
        if !listed {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = ctr(&["container", "rm", id]);
}

/// A busybox root for `ctr run --rootfs` in `dir/rootfs`, exported from the harness's image
/// (once: a root already there is kept). dockerd, whose containerd the node uses, is started
/// if it is not running.
pub fn rootfs(dir: &Path) -> Result<PathBuf, String> {
    let docker = Docker::try_ensure()?;
    let root = dir.join("rootfs");
    if root.join("bin/busybox").exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(&root).map_err(|e| format!("creating {}: {e}", root.display()))?;
    let image = try_busybox_image()?;
    let created = docker.cmd(&["create", &image, "true"]);
    if !created.status.success() {
        return Err(format!(
            "docker create {image} failed: {}",
            String::from_utf8_lossy(&created.stderr)
        ));
    }
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let export = Command::new("sh")
        .arg("-c")
        .arg(format!("docker export {id} | tar -C {} -x", root.display()))
        .output();
    let _ = docker.cmd(&["rm", &id]);
    match export {
        Ok(o) if o.status.success() => Ok(root),
        Ok(o) => Err(format!(
            "docker export | tar -x failed: {}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Err(e) => Err(format!("sh did not run: {e}")),
    }
}

/// `GET path` of an HTTP server on 127.0.0.1:`port` (the agent's endpoint): status and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let body = text.split_once("\r\n\r\n").ok_or_else(bad)?.1.to_owned();
    Ok((status, body))
}
