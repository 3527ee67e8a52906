//! A Kubernetes node without a kubelet, for the agent's soak and for recording the agent's own
//! profile: pod containers run under dockerd's own containerd with `ctr run`, labelled as the
//! kubelet labels them through the CRI, one sandbox per pod carrying the pod's labels (as
//! containerd's CRI plugin makes it), on a busybox root exported from the test harness's image,
//! under the permissive recording profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::bail;
use cinch_tests::node::{self, Mode, Pod, Sandbox};

use crate::util::{is_root, workspace_root};

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
const WORK: &[&str] = &[
    "/bin/sh",
    "-c",
    "sleep 1; ls / >/dev/null; cat /etc/passwd >/dev/null; /bin/true",
];

/// A pod of the node, and what owns it.
pub(crate) struct NodePod {
    pod: Pod,
    pub owner: &'static str,
    pub container: &'static str,
}

/// The node: its root, its pods and their sandboxes (removed on drop).
pub(crate) struct Node {
    root: PathBuf,
    seccomp: PathBuf,
    pub pods: Vec<NodePod>,
    /// The pods' sandboxes and the long containers: removed with the node.
    running: Vec<Sandbox>,
}

impl Node {
    /// Checks the prerequisites, exports the root into `dir` (once) and starts the sandboxes.
    pub(crate) fn start(dir: &Path) -> anyhow::Result<Node> {
        if !is_root() {
            bail!("the node runs containers and the agent loads BPF programs: run it as root");
        }
        if let Some(why) = node::missing() {
            bail!("{why}");
        }
        std::fs::create_dir_all(dir)?;
        let root = node::rootfs(dir).map_err(anyhow::Error::msg)?;
        let pods: Vec<NodePod> = PODS
            .iter()
            .map(|(name, owner, container, labels)| NodePod {
                pod: Pod::new(POD_NAMESPACE, name, labels),
                owner,
                container,
            })
            .collect();
        let sandboxes = pods
            .iter()
            .map(|p| p.pod.start_sandbox(&root))
            .collect::<Result<_, _>>()
            .map_err(anyhow::Error::msg)?;
        Ok(Node {
            root,
            seccomp: workspace_root().join("profiles/recording-profile.json"),
            pods,
            running: sandboxes,
        })
    }

    /// Runs a container of pod `i` to its end; whether it ran.
    pub(crate) fn run_pod(&self, i: usize) -> bool {
        let p = &self.pods[i];
        let run = p
            .pod
            .run(&self.root, p.container, Mode::ToEnd, &self.seccomp, WORK);
        self.ran(&run)
    }

    /// Starts `n` long containers that are no pod's, each calling `free` (`sysinfo`, which no
    /// pod container calls) every 0.2 s; removed with the node.
    pub(crate) fn start_busy(&mut self, n: usize) -> anyhow::Result<()> {
        for _ in 0..n {
            let busy = node::start(
                &self.root,
                &[],
                Some(&self.seccomp),
                &[
                    "/bin/sh",
                    "-c",
                    "while :; do free >/dev/null 2>&1; sleep 0.2; done",
                ],
            )
            .map_err(anyhow::Error::msg)?;
            self.running.push(busy);
        }
        Ok(())
    }

    /// Runs a container that is no pod's to its end; whether it ran.
    pub(crate) fn run_other(&self) -> bool {
        let run = node::run(&self.root, &[], Mode::ToEnd, Some(&self.seccomp), WORK);
        self.ran(&run)
    }

    fn ran(&self, run: &node::Run) -> bool {
        let ok = run.succeeded("ctr run").is_ok();
        if !ok {
            node::remove(&run.id);
        }
        ok
    }
}

/// `GET path` of the agent on 127.0.0.1:`port`: the body.
pub(crate) fn get(port: u16, path: &str) -> anyhow::Result<String> {
    Ok(node::http_get(port, path)?.1)
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
