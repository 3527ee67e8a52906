//! A Kubernetes node without a kubelet, for the agent's soak and for recording the agent's own
//! profile: pod containers run under dockerd's own containerd with `ctr run`, labelled as the
//! kubelet labels them through the CRI, one sandbox per pod carrying the pod's labels (as
//! containerd's CRI plugin makes it), on a busybox root exported from the test harness's image,
//! under the permissive recording profile.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use crate::util::{is_root, output, workspace_root};

/// dockerd's own containerd, and the namespace the kubelet's containers live in.
const SOCKET: &str = "/run/docker/containerd/containerd.sock";
const NAMESPACE: &str = "k8s.io";
/// The pods' namespace.
pub(crate) const POD_NAMESPACE: &str = "soak";

/// The pods: name, owner, container, the pod's own labels.
const PODS: [(&str, &str, &str, &[&str]); 3] = [
    (
        "web-7c9f8d6b5-x2x9q",
        "web",
        "app",
        &["app=web", "pod-template-hash=7c9f8d6b5"],
    ),
    (
        "web-7c9f8d6b5-q7z4w",
        "web",
        "app",
        &["app=web", "pod-template-hash=7c9f8d6b5"],
    ),
    (
        "db-0",
        "db",
        "server",
        &["app=db", "statefulset.kubernetes.io/pod-name=db-0"],
    ),
];

/// What each container does: a little of everything the agent records (files, processes). It
/// lives a second, as a pod's container lives at least: the agent asks containerd about a new
/// container while it runs, and `ctr run --rm` removes it the moment it exits (the kubelet
/// keeps an exited container until it is collected).
const WORK: &str = "sleep 1; ls / >/dev/null; cat /etc/passwd >/dev/null; /bin/true";

/// A pod of the node.
pub(crate) struct Pod {
    name: &'static str,
    pub owner: &'static str,
    pub container: &'static str,
    uid: String,
    labels: &'static [&'static str],
}

/// The node: its root, its pods and their sandboxes (removed on drop).
pub(crate) struct Node {
    root: PathBuf,
    seccomp: PathBuf,
    pub pods: Vec<Pod>,
    sandboxes: Vec<String>,
    started: u64,
}

fn ctr(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let mut cmd = Command::new("ctr");
    cmd.args(["-a", SOCKET, "-n", NAMESPACE]).args(args);
    output(&mut cmd)
}

impl Node {
    /// Checks the prerequisites, exports the root into `dir` (once) and starts the sandboxes.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Node> {
        if !is_root() {
            bail!("the node runs containers and the agent loads BPF programs: run it as root");
        }
        if !Path::new("/usr/bin/ctr").exists() {
            bail!("ctr is not installed (Debian's containerd package, which docker.io depends on)");
        }
        cinch_tests::docker::Docker::try_ensure().map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(dir)?;
        let mut node = Node {
            root: rootfs(dir)?,
            seccomp: workspace_root().join("profiles/recording-profile.json"),
            pods: PODS
                .iter()
                .enumerate()
                .map(|(i, (name, owner, container, labels))| Pod {
                    name,
                    owner,
                    container,
                    uid: format!("node-{}-{i}", std::process::id()),
                    labels,
                })
                .collect(),
            sandboxes: Vec::new(),
            started: 0,
        };
        for i in 0..node.pods.len() {
            let id = node.next_id();
            let labels = labels(&node.pods[i], "sandbox");
            if !node.run(&id, &labels, false, &["/bin/sleep", "100000"]) {
                bail!("could not start the sandbox of {}", node.pods[i].name);
            }
            node.sandboxes.push(id);
        }
        Ok(node)
    }

    /// A container id as the CRI makes them (64 hex digits), new each time.
    fn next_id(&mut self) -> String {
        self.started += 1;
        format!(
            "{:064x}",
            (u128::from(std::process::id()) << 64) | u128::from(self.started)
        )
    }

    /// Runs a container of pod `i` to its end; whether it ran.
    pub(crate) fn run_pod(&mut self, i: usize) -> bool {
        let id = self.next_id();
        let labels = labels(&self.pods[i], "container");
        self.run_removed(&id, &labels)
    }

    /// Runs a container that is no pod's to its end; whether it ran.
    pub(crate) fn run_other(&mut self) -> bool {
        let id = self.next_id();
        self.run_removed(&id, &[])
    }

    fn run_removed(&self, id: &str, labels: &[String]) -> bool {
        let ran = self.run(id, labels, true, &["/bin/sh", "-c", WORK]);
        if !ran {
            remove(id);
        }
        ran
    }

    /// `ctr run` of one container: to its end under the recording profile, or detached (a
    /// sandbox).
    fn run(&self, id: &str, labels: &[String], to_end: bool, cmd: &[&str]) -> bool {
        let mut args: Vec<String> = vec!["run".into()];
        args.push(if to_end { "--rm" } else { "-d" }.into());
        args.push("--rootfs".into());
        if to_end {
            args.extend([
                "--seccomp".into(),
                "--seccomp-profile".into(),
                self.seccomp.display().to_string(),
            ]);
        }
        for l in labels {
            args.extend(["--label".into(), l.clone()]);
        }
        args.extend([self.root.display().to_string(), id.to_owned()]);
        args.extend(cmd.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ctr(&args).is_ok_and(|o| o.status.success())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for id in &self.sandboxes {
            remove(id);
        }
    }
}

fn labels(pod: &Pod, kind: &str) -> Vec<String> {
    let mut out = vec![
        format!("io.kubernetes.pod.namespace={POD_NAMESPACE}"),
        format!("io.kubernetes.pod.name={}", pod.name),
        format!("io.kubernetes.pod.uid={}", pod.uid),
        format!(
            "io.kubernetes.container.name={}",
            if kind == "sandbox" {
                "POD"
            } else {
                pod.container
            }
        ),
        format!("io.cri-containerd.kind={kind}"),
    ];
    if kind == "sandbox" {
        out.extend(pod.labels.iter().map(|l| (*l).to_owned()));
    }
    out
}

fn remove(id: &str) {
    let _ = ctr(&["task", "kill", "-s", "KILL", id]);
    for _ in 0..50 {
        if ctr(&["task", "rm", id]).is_ok_and(|o| o.status.success()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = ctr(&["container", "rm", id]);
}

/// A busybox root for `ctr run --rootfs`, exported from the harness's image once.
fn rootfs(dir: &Path) -> anyhow::Result<PathBuf> {
    let root = dir.join("rootfs");
    if root.join("bin/busybox").exists() {
        return Ok(root);
    }
    std::fs::create_dir_all(&root)?;
    let image = cinch_tests::docker::try_busybox_image().map_err(anyhow::Error::msg)?;
    let created = output(Command::new("docker").args(["create", &image, "true"]))?;
    if !created.status.success() {
        bail!("docker create {image} failed");
    }
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let export = output(
        Command::new("sh")
            .arg("-c")
            .arg(format!("docker export {id} | tar -C {} -x", root.display())),
    );
    let _ = output(Command::new("docker").args(["rm", &id]));
    if !export?.status.success() {
        bail!("docker export | tar -x failed");
    }
    Ok(root)
}

/// `GET path` of the agent on 127.0.0.1:`port`: the body.
pub(crate) fn get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    Ok(text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned())
}

/// `GET /metrics` of the agent, as `name{labels}` → value.
pub(crate) fn metrics(port: u16) -> anyhow::Result<BTreeMap<String, u64>> {
    Ok(get(port, "/metrics")?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect())
}
