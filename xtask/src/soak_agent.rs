//! `cargo xtask soak --agent --minutes N`: `cinch agent` on a node where pod containers come and
//! go for N minutes, with the agent watched from outside every few seconds:
//!
//! - its resident memory (VmRSS) must stay flat once warmed up, as for `cinch record` (the same
//!   rule: [`crate::soak::check_memory`]);
//! - nothing is lost: every pod container started is exactly one recording on disk, counted in
//!   `/metrics`; every container outside a pod is counted as ignored; no slot was ever missing
//!   (`--slots` is small, so slots must be given back), no error, no kernel-side loss;
//! - every profile says how many recordings it was merged from, and that is the number on disk.
//!
//! The containers run under dockerd's own containerd with `ctr run`, labelled as the kubelet
//! labels a pod's containers through the CRI (one sandbox per pod carries the pod's labels),
//! on a busybox root exported from the test harness's image, under the permissive recording
//! profile. SIGTERM ends the agent, which must exit 0.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::soak::{Guarded, Report, Sample, check_memory, vm_rss_kib};
use crate::util::{is_root, output, show, target_dir, workspace_root};

/// dockerd's own containerd, and the namespace the kubelet's containers live in.
const SOCKET: &str = "/run/docker/containerd/containerd.sock";
const NAMESPACE: &str = "k8s.io";
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Few slots, so that a slot not given back shows within seconds.
const SLOTS: &str = "4";

/// A pod of the soak: namespace, name, owner's directory name, and its own labels.
struct Pod {
    name: &'static str,
    owner: &'static str,
    container: &'static str,
    uid: String,
    labels: &'static [&'static str],
}

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

/// What each container does: a little of everything the agent records (files, processes).
const WORK: &str = "sleep 0.2; ls / >/dev/null; cat /etc/passwd >/dev/null; /bin/true";

fn ctr(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let mut cmd = Command::new("ctr");
    cmd.args(["-a", SOCKET, "-n", NAMESPACE]).args(args);
    output(&mut cmd)
}

fn container_id(n: u64) -> String {
    format!(
        "{:064x}",
        (u128::from(std::process::id()) << 64) | u128::from(n)
    )
}

fn labels(pod: &Pod, kind: &str) -> Vec<String> {
    let mut out = vec![
        "io.kubernetes.pod.namespace=soak".to_owned(),
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

/// `ctr run` of one container: detached (a sandbox) or to its end; returns whether it ran.
fn run(root: &Path, id: &str, labels: &[String], seccomp: Option<&Path>, cmd: &[&str]) -> bool {
    let mut args: Vec<String> = vec!["run".into()];
    args.push(if seccomp.is_some() { "--rm" } else { "-d" }.into());
    args.push("--rootfs".into());
    if let Some(p) = seccomp {
        args.extend([
            "--seccomp".into(),
            "--seccomp-profile".into(),
            p.display().to_string(),
        ]);
    }
    for l in labels {
        args.extend(["--label".into(), l.clone()]);
    }
    args.extend([root.display().to_string(), id.to_owned()]);
    args.extend(cmd.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ctr(&args).is_ok_and(|o| o.status.success())
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

/// The sandboxes, removed on drop.
struct Sandboxes(Vec<String>);

impl Drop for Sandboxes {
    fn drop(&mut self) {
        for id in &self.0 {
            remove(id);
        }
    }
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

/// `GET /metrics` of the agent, as `name{labels}` → value.
fn metrics(port: u16) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect())
}

/// Runs the agent soak for `duration` with the cinch binary `cinch`. Err when it could not run
/// at all; a run that found problems is Ok with `failures`.
pub(crate) fn soak_agent(cinch: &Path, duration: Duration) -> anyhow::Result<Report> {
    if !is_root() {
        bail!("the agent soak loads BPF programs and runs containers: run it as root");
    }
    if !Path::new("/usr/bin/ctr").exists() {
        bail!("ctr is not installed (Debian's containerd package, which docker.io depends on)");
    }
    cinch_tests::docker::Docker::try_ensure().map_err(anyhow::Error::msg)?;
    let dir = target_dir()?.join("soak-agent");
    std::fs::create_dir_all(&dir)?;
    let root = rootfs(&dir)?;
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let seccomp = workspace_root().join("profiles/recording-profile.json");

    let pods: Vec<Pod> = PODS
        .iter()
        .enumerate()
        .map(|(i, (name, owner, container, labels))| Pod {
            name,
            owner,
            container,
            uid: format!("soak-{}-{i}", std::process::id()),
            labels,
        })
        .collect();
    let mut n: u64 = 0;
    let mut sandboxes = Sandboxes(Vec::new());
    for pod in &pods {
        n += 1;
        let id = container_id(n);
        if !run(
            &root,
            &id,
            &labels(pod, "sandbox"),
            None,
            &["/bin/sleep", "100000"],
        ) {
            bail!("could not start the sandbox of {}", pod.name);
        }
        sandboxes.0.push(id);
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = Command::new(cinch);
    cmd.args(["agent", "--output"])
        .arg(&out)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--node", "soak"])
        .args(["--slots", SLOTS])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    println!("==> {}", show(&cmd));
    let mut agent = Guarded(
        cmd.spawn()
            .with_context(|| format!("starting `{}`", show(&cmd)))?,
    );
    let pid = agent.0.id();
    let ready_by = Instant::now() + Duration::from_secs(60);
    while metrics(port).is_err() {
        if Instant::now() > ready_by || agent.0.try_wait()?.is_some() {
            bail!("the agent did not answer on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let (mut pod_runs, mut other_runs, mut failed_runs) = (BTreeMap::new(), 0u64, 0u64);
    let mut failures = Vec::new();
    let mut i = 0usize;
    while started.elapsed() < duration {
        if started.elapsed() >= next_sample {
            next_sample += SAMPLE_EVERY;
            if let Some(rss_kib) = vm_rss_kib(pid) {
                let s = Sample {
                    at: started.elapsed(),
                    rss_kib,
                    tracked: 0,
                    live: 0,
                };
                println!(
                    "soak-agent {:>4}s  agent VmRSS {:>6} KiB  pod containers {:>5}",
                    s.at.as_secs(),
                    s.rss_kib,
                    pod_runs.values().sum::<u64>()
                );
                samples.push(s);
            }
        }
        if agent.0.try_wait()?.is_some() {
            failures.push("the agent exited during the soak".to_owned());
            break;
        }
        n += 1;
        let id = container_id(n);
        i += 1;
        // Every fifth container is no pod's: the agent must ignore it, and count it.
        let ran = if i.is_multiple_of(5) {
            let ok = run(&root, &id, &[], Some(&seccomp), &["/bin/sh", "-c", WORK]);
            other_runs += u64::from(ok);
            ok
        } else {
            let pod = &pods[i % pods.len()];
            let ok = run(
                &root,
                &id,
                &labels(pod, "container"),
                Some(&seccomp),
                &["/bin/sh", "-c", WORK],
            );
            if ok {
                *pod_runs.entry((pod.owner, pod.container)).or_insert(0u64) += 1;
            }
            ok
        };
        if !ran {
            failed_runs += 1;
            remove(&id);
        }
    }
    // The last containers reaped, then SIGTERM.
    std::thread::sleep(Duration::from_secs(3));
    let seen = metrics(port).unwrap_or_default();
    // SAFETY: kill(2) on the agent, our child, which has not been reaped yet.
    let _ = unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let stop_by = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = agent.0.try_wait()? {
            break Some(st);
        }
        if Instant::now() > stop_by {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(sandboxes);

    let mut lines = Vec::new();
    match status {
        Some(st) if st.success() => {}
        Some(st) => failures.push(format!("the agent exited with {st} on SIGTERM")),
        None => failures.push("the agent did not stop within 60 s of SIGTERM".to_owned()),
    }
    check_memory(duration, &samples, &mut lines, &mut failures);
    let pods_total: u64 = pod_runs.values().sum();
    lines.push(format!(
        "containers: {pods_total} of pods, {other_runs} of none, {failed_runs} that ctr could not run; {} s",
        started.elapsed().as_secs()
    ));
    if failed_runs * 100 > pods_total + other_runs {
        failures.push(format!("ctr could not run {failed_runs} containers"));
    }
    let metric = |k: &str| seen.get(k).copied().unwrap_or(0);
    let expect = [
        ("cinch_agent_recordings_total", pods_total),
        (
            "cinch_agent_containers_ignored_total{reason=\"not_kubernetes\"}",
            other_runs,
        ),
        ("cinch_agent_slots_exhausted_total", 0),
        ("cinch_agent_errors_total", 0),
        ("cinch_agent_targets", 0),
    ];
    for (k, want) in expect {
        lines.push(format!("{k} = {} (expected {want})", metric(k)));
        if metric(k) != want {
            failures.push(format!("{k} is {}, expected {want}", metric(k)));
        }
    }
    for (k, v) in seen
        .iter()
        .filter(|(k, _)| k.starts_with("cinch_agent_lost_total"))
    {
        if *v != 0 {
            failures.push(format!("{k} is {v}"));
        }
    }
    for ((owner, container), runs) in &pod_runs {
        let recs = out.join(format!("recordings/soak/{owner}/{container}"));
        let on_disk = std::fs::read_dir(&recs).map_or(0, |d| d.count() as u64);
        let profile = out.join(format!("profiles/soak/{owner}-{container}.yaml"));
        let said = std::fs::read_to_string(&profile)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.trim().strip_prefix("cinch/recordings: "))
                    .map(|v| v.trim_matches('\'').to_owned())
            })
            .unwrap_or_default();
        lines.push(format!(
            "{owner}/{container}: {runs} runs, {on_disk} recordings, the profile says {said}"
        ));
        if on_disk != *runs || said != runs.to_string() {
            failures.push(format!(
                "{owner}/{container}: {runs} runs but {on_disk} recordings and a profile of {said}"
            ));
        }
    }
    Ok(Report {
        duration,
        lines,
        failures,
    })
}
