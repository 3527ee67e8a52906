//! End-to-end tier, containers: the real Docker engine, images built by the harness. Record new
//! containers from their seccomp install, attach to running ones, follow `docker exec` and
//! nested mount namespaces, and prove the generated profiles start the containers.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::cinch;
use cinch_tests::docker::{Docker, busybox_image};
use cinch_tests::guard;
use cinch_tests::{ChildGuard, Ready, cinch_bin, report_snippet, require};
use profile_gen::Recording;

fn recording_profile() -> String {
    cinch_tests::recording_profile().display().to_string()
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read(path: &Path) -> Recording {
    serde_json::from_str(&std::fs::read_to_string(path).expect("recording"))
        .expect("valid recording")
}

fn names(rec: &Recording) -> BTreeSet<String> {
    cinch_tests::recorded_names(rec).into_iter().collect()
}

/// `cinch record --new-containers -o DIR -- docker run --rm --pull never --network none RUN...`;
/// returns the recordings written.
fn record_new(dir: &Path, run: &[&str]) -> Vec<PathBuf> {
    let mut args = vec![
        "record",
        "-q",
        "--new-containers",
        "-o",
        dir.to_str().expect("utf-8"),
        "--",
        "docker",
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
    ];
    args.extend_from_slice(run);
    ok(&cinch(&args), "cinch record --new-containers");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("recordings dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
}

fn generate(recs: &[PathBuf], out: &Path) {
    let mut args = vec!["generate", "-o", out.to_str().expect("utf-8")];
    args.extend(recs.iter().map(|p| p.to_str().expect("utf-8")));
    ok(&cinch(&args), "cinch generate");
}

const WORKLOAD: &str = "ls / >/dev/null; cat /etc/passwd >/dev/null";

fn record_generate_enforce(nnp: bool) {
    let docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = dir.path().join("recs");
    let seccomp = format!("seccomp={}", recording_profile());
    let mut run = vec!["--security-opt", &seccomp];
    if nnp {
        run.extend(["--security-opt", "no-new-privileges"]);
    }
    run.extend([image.as_str(), "sh", "-c", WORKLOAD]);
    let files = record_new(&recs, &run);
    assert_eq!(files.len(), 1, "one recording for one container: {files:?}");
    let rec = read(&files[0]);
    assert!(rec.startup_observed, "the seccomp install was observed");
    match &rec.target {
        profile_gen::recording::Target::Container {
            engine, image: img, ..
        } => {
            assert_eq!(engine, "docker");
            assert_eq!(img, &image);
        }
        other => panic!("not a container target: {other:?}"),
    }
    let got = names(&rec);
    for needed in ["execve", "getdents64", "openat", "write"] {
        assert!(got.contains(needed), "{needed} missing from {got:?}");
    }
    // runc uses these while building the container, before the filter is installed.
    for before in [
        "mount",
        "pivot_root",
        "unshare",
        "setns",
        "keyctl",
        "sethostname",
        "umount2",
    ] {
        assert!(
            !got.contains(before),
            "{before} is runc's, from before the seccomp install"
        );
    }
    let profile = dir.path().join("gen.json");
    let settings = dir.path().join("settings.json");
    let mut args = vec![
        "generate",
        "-o",
        profile.to_str().expect("utf-8"),
        "--caps-out",
    ];
    args.push(settings.to_str().expect("utf-8"));
    args.extend(files.iter().map(|p| p.to_str().expect("utf-8")));
    ok(&cinch(&args), "cinch generate");
    // Listing and reading files needs no capability: the overlayfs xattr checks made with the
    // mounter's borrowed credentials and the allocation heuristics are not the container's.
    let settings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).expect("settings")).expect("JSON");
    assert_eq!(settings["cap_add"], serde_json::json!([]), "{settings}");
    let prof_text = std::fs::read_to_string(&profile).expect("profile");
    for before in [
        "\"mount\"",
        "\"pivot_root\"",
        "\"unshare\"",
        "\"setns\"",
        "\"keyctl\"",
        "\"sethostname\"",
    ] {
        assert!(!prof_text.contains(before), "profile allows {before}");
    }
    let enforce = format!("seccomp={}", profile.display());
    let mut opts = vec![
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--security-opt",
        enforce.as_str(),
    ];
    if nnp {
        opts.extend(["--security-opt", "no-new-privileges"]);
    }
    let out = docker.run(&opts, &image, &["sh", "-c", WORKLOAD]);
    ok(&out, "the container under its generated profile");
    // And the profile is tight: something the recorded workload never did is denied.
    let out = docker.run(&opts, &image, &["sh", "-c", "mkdir /tmp/x"]);
    assert!(
        !out.status.success(),
        "mkdir was never recorded, yet allowed"
    );
}

#[test]
fn new_container_profile_starts_the_container() {
    guard!(bpf);
    record_generate_enforce(false);
}

#[test]
fn new_container_profile_with_no_new_privileges() {
    guard!(bpf);
    record_generate_enforce(true);
}

#[test]
fn short_lived_containers_are_recorded_completely() {
    guard!(bpf);
    let _docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let seccomp = format!("seccomp={}", recording_profile());
    let files = record_new(dir.path(), &["--security-opt", &seccomp, &image, "true"]);
    assert_eq!(files.len(), 1);
    let rec = read(&files[0]);
    let got = names(&rec);
    assert!(
        got.contains("execve") && got.contains("exit_group"),
        "{got:?}"
    );
    assert!(
        matches!(&rec.target, profile_gen::recording::Target::Container { name, .. } if !name.is_empty()),
        "the container was named although it lived for milliseconds: {:?}",
        rec.target
    );
}

/// runc's own syscalls between its seccomp install and the entrypoint must all be in the
/// generator's runc baseline, or an attached recording's profile would not start the container.
#[test]
fn runc_baseline_is_covered() {
    guard!(bpf);
    let docker = Docker::ensure();
    // An image whose entrypoint's only syscall is exit(2): everything else is runc's.
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("exit0.S");
    std::fs::write(
        &src,
        ".globl _start\n_start:\n  mov $60, %eax\n  xor %edi, %edi\n  syscall\n",
    )
    .expect("write");
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).expect("mkdir");
    let built = Command::new("cc")
        .args(["-nostdlib", "-static", "-o"])
        .arg(rootfs.join("exit0"))
        .arg(&src)
        .status()
        .expect("cc");
    assert!(built.success());
    let import = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | docker import - cinch-test/exit0:latest",
            rootfs.display()
        ))
        .output()
        .expect("docker import");
    ok(&import, "docker import");
    let baseline: serde_json::Value =
        serde_json::from_str(include_str!("../../profile-gen/data/baseline-runc.json"))
            .expect("baseline JSON");
    let baseline: BTreeSet<String> = baseline["syscalls"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("name").to_owned())
        .collect();
    let seccomp = format!("seccomp={}", recording_profile());
    for nnp in [false, true] {
        let dir = work.path().join(format!("recs-{nnp}"));
        let mut run = vec!["--security-opt", &seccomp];
        if nnp {
            run.extend(["--security-opt", "no-new-privileges"]);
        }
        run.extend(["cinch-test/exit0:latest", "/exit0"]);
        let files = record_new(&dir, &run);
        let mut runc = names(&read(&files[0]));
        runc.remove("exit");
        let missing: Vec<_> = runc.difference(&baseline).collect();
        assert!(
            missing.is_empty(),
            "runc (no-new-privileges: {nnp}) also needs {missing:?}: update profile-gen/data/baseline-runc.json"
        );
    }
    let _ = docker.cmd(&["image", "rm", "cinch-test/exit0:latest"]);
}

/// How long `cinch record --container` may take to attach (engine lookup, probe load, listing
/// the container's processes): under half a second with the debug build here.
const ATTACH_LIMIT: Duration = Duration::from_secs(30);

/// `cinch ARGS... --ready-fd 3` in the background, killed if the test fails before it ends;
/// returned once cinch says it records. `args` must not contain `--`.
fn spawn_cinch(args: &[&str]) -> ChildGuard {
    let mut cmd = Command::new(cinch_bin());
    cmd.args(args)
        .args(["--ready-fd", Ready::FD])
        .stdin(Stdio::null());
    let mut ready = Ready::new(&mut cmd);
    let child = ChildGuard(cmd.spawn().expect("cinch"));
    ready.wait(ATTACH_LIMIT);
    child
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(start.elapsed() < limit, "cinch did not finish in {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_gone(path: &Path) {
    let start = Instant::now();
    while path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} was not consumed",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A container that loops, and syncs (a syscall nothing else here makes) when /w/go appears.
const LOOP: &str = "while :; do if [ -f /w/go ]; then sync; rm /w/go; fi; sleep 0.1; done";

/// A container (Docker or Podman) running [`LOOP`], with a host directory mounted at /w.
struct Looper {
    cli: &'static str,
    image: String,
    name: &'static str,
    work: tempfile::TempDir,
}

impl Looper {
    fn new(cli: &'static str, image: String, name: &'static str) -> Looper {
        let work = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(work.path().join("w")).expect("mkdir");
        let looper = Looper {
            cli,
            image,
            name,
            work,
        };
        looper.remove();
        looper
    }

    fn engine(&self, args: &[&str]) -> Output {
        Command::new(self.cli)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running the engine CLI")
    }

    /// Starts it under the seccomp profile at `profile`.
    fn start(&self, profile: &str) {
        let volume = format!("{}:/w", self.work.path().join("w").display());
        let seccomp = format!("seccomp={profile}");
        let out = self.engine(&[
            "run",
            "-d",
            "--pull",
            "never",
            "--network",
            "none",
            "--name",
            self.name,
            "-v",
            &volume,
            "--security-opt",
            &seccomp,
            &self.image,
            "sh",
            "-c",
            LOOP,
        ]);
        ok(&out, &format!("{} run -d", self.cli));
    }

    /// Makes it sync once, and waits until it has.
    fn poke(&self) {
        let go = self.work.path().join("w/go");
        std::fs::write(&go, "").expect("go");
        wait_gone(&go);
    }

    fn remove(&self) {
        // Podman waits 10 s for a SIGTERM the shell ignores unless told otherwise.
        let timeout: &[&str] = if self.cli == "podman" {
            &["-t", "1"]
        } else {
            &[]
        };
        let mut args = vec!["rm", "-f"];
        args.extend_from_slice(timeout);
        args.push(self.name);
        let _ = self.engine(&args);
    }

    fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// `ENGINE inspect -f FORMAT NAME`, trimmed.
    fn inspect(&self, format: &str) -> String {
        let out = self.engine(&["inspect", "-f", format, self.name]);
        ok(&out, &format!("{} inspect", self.cli));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Attaches `cinch record --container NAME` (no --runtime: the engines found are asked in
    /// turn), pokes, stops the container; returns the recording and its path.
    fn record_attached(&self) -> (Recording, PathBuf) {
        self.record_attached_as(self.name, &[])
    }

    /// [`Looper::record_attached`] with another reference (an id prefix) and more arguments.
    fn record_attached_as(&self, reference: &str, extra: &[&str]) -> (Recording, PathBuf) {
        self.record_attached_while(reference, extra, || self.poke())
    }

    /// Attaches `cinch record --container REFERENCE EXTRA...`, runs `act` once it has had time
    /// to attach, stops the container; returns the recording and its path.
    fn record_attached_while(
        &self,
        reference: &str,
        extra: &[&str],
        act: impl FnOnce(),
    ) -> (Recording, PathBuf) {
        let rec = self.work.path().join("rec.json");
        let mut args = vec![
            "record",
            "-q",
            "-o",
            rec.to_str().expect("utf-8"),
            "--container",
            reference,
        ];
        args.extend_from_slice(extra);
        let mut recorder = spawn_cinch(&args);
        act();
        self.remove();
        let status = wait(&mut recorder, Duration::from_secs(30));
        assert!(status.success(), "cinch record --container: {status}");
        (read(&rec), rec)
    }
}

#[test]
fn attach_to_a_running_container() {
    guard!(bpf);
    let _docker = Docker::ensure();
    let looper = Looper::new("docker", busybox_image(), "cinch-e2e-attach");
    looper.start(&recording_profile());
    let (recording, rec) = looper.record_attached();
    assert!(!recording.startup_observed);
    // The engine's command, for recording the start-up again.
    match &recording.target {
        profile_gen::recording::Target::Container { command, .. } => {
            assert_eq!(command, &["sh", "-c", LOOP], "the command docker ran");
        }
        other => panic!("not a container target: {other:?}"),
    }
    let got = names(&recording);
    assert!(
        got.contains("sync"),
        "the syscall made after attaching: {got:?}"
    );

    // The generated profile (with runc's baseline, since start-up was not seen) starts a fresh
    // copy, which then runs its loop, sync included.
    let profile = looper.work.path().join("gen.json");
    generate(std::slice::from_ref(&rec), &profile);
    looper.start(&profile.display().to_string());
    looper.poke();
    assert!(
        looper.running(),
        "the fresh copy runs under the generated profile"
    );
    looper.remove();
}

#[test]
fn docker_exec_is_recorded() {
    guard!(bpf);
    let docker = Docker::ensure();
    let image = busybox_image();
    let work = tempfile::tempdir().expect("tempdir");
    let name = "cinch-e2e-exec";
    let _ = docker.cmd(&["rm", "-f", name]);
    let seccomp = format!("seccomp={}", recording_profile());
    ok(
        &docker.cmd(&[
            "run",
            "-d",
            "--pull",
            "never",
            "--network",
            "none",
            "--name",
            name,
            "--security-opt",
            &seccomp,
            &image,
            "sleep",
            "60",
        ]),
        "docker run -d",
    );
    let rec = work.path().join("rec.json");
    let mut recorder = spawn_cinch(&[
        "record",
        "-q",
        "-o",
        rec.to_str().expect("utf-8"),
        "--container",
        name,
    ]);
    ok(&docker.cmd(&["exec", name, "sync"]), "docker exec sync");
    ok(&docker.cmd(&["rm", "-f", name]), "docker rm -f");
    assert!(wait(&mut recorder, Duration::from_secs(20)).success());
    let got = names(&read(&rec));
    assert!(
        got.contains("sync"),
        "the exec'd command's syscall: {got:?}"
    );
    // runc exec's own namespace juggling happened before its seccomp install.
    assert!(!got.contains("setns"), "setns is runc's: {got:?}");
}

/// A process that is inside the container's mount namespace but not under its seccomp filter
/// when cinch attaches is a runtime entering it (`runc exec` between setns and its seccomp
/// install; `nsenter` here, which can be held there): it is counted from its next execve, not
/// from the moment cinch attached.
#[test]
fn a_process_entering_the_container_is_counted_from_its_exec() {
    let name = "a_process_entering_the_container_is_counted_from_its_exec";
    guard!(bpf);
    if !require(
        name,
        Path::new("/usr/bin/nsenter").exists(),
        "nsenter (util-linux) is not installed",
    ) {
        return;
    }
    let _docker = Docker::ensure();
    let looper = Looper::new("docker", busybox_image(), "cinch-e2e-entering");
    looper.start(&recording_profile());
    let init = looper.inspect("{{.State.Pid}}");
    let mntns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    // The container's shell, entered without the container's filter: it waits for /w/enter,
    // then calls umask (nothing else in the container does) before its execve, sync after.
    let mut entering = ChildGuard(
        Command::new("nsenter")
            .args(["-t", &init, "-m", "--", "/bin/sh", "-c"])
            .arg("while [ ! -f /w/enter ]; do sleep 0.1; done; umask 022; exec /bin/busybox sync")
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter"),
    );
    let pid = entering.id().to_string();
    let start = Instant::now();
    while mntns(&pid) != mntns(&init) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nsenter did not enter"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (recording, _) = looper.record_attached_while(looper.name, &[], || {
        std::fs::write(looper.work.path().join("w/enter"), "").expect("enter");
        let status = wait(&mut entering, Duration::from_secs(20));
        assert!(status.success(), "the entering shell: {status}");
    });
    let got = names(&recording);
    assert!(
        got.contains("sync"),
        "made after the entering process's execve: {got:?}"
    );
    assert!(
        !got.contains("umask"),
        "made before it, by a process without the container's filter: {got:?}"
    );
}

#[test]
fn nested_mount_namespace_stays_in_the_container() {
    guard!(bpf);
    let _docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let seccomp = format!("seccomp={}", recording_profile());
    let files = record_new(
        dir.path(),
        &[
            "--cap-add",
            "SYS_ADMIN",
            "--security-opt",
            &seccomp,
            "--security-opt",
            "apparmor=unconfined",
            &image,
            "sh",
            "-c",
            "unshare -m sh -c 'sync; true'",
        ],
    );
    assert_eq!(
        files.len(),
        1,
        "the nested namespace is not a container of its own: {files:?}"
    );
    let got = names(&read(&files[0]));
    assert!(got.contains("unshare"), "{got:?}");
    assert!(
        got.contains("sync"),
        "made inside the nested mount namespace: {got:?}"
    );
}

#[test]
fn unknown_container_is_a_clear_error() {
    guard!(bpf);
    let _docker = Docker::ensure();
    let out = cinch(&[
        "record",
        "-o",
        "/tmp/cinch-never.json",
        "--container",
        "cinch-no-such-container",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    assert!(
        err.contains("cinch-no-such-container") && err.contains("docker"),
        "{err}"
    );
    assert!(!Path::new("/tmp/cinch-never.json").exists());
}

#[test]
fn attach_to_a_podman_container_by_name() {
    use cinch_tests::podman::{podman_busybox_image, require_podman};
    guard!(bpf);
    if !require_podman("attach_to_a_podman_container_by_name") {
        return;
    }
    let looper = Looper::new("podman", podman_busybox_image(), "cinch-e2e-podman");
    looper.start(&recording_profile());
    let (recording, _) = looper.record_attached();
    let (engine, _, name) = container_target(&recording);
    assert_eq!(engine, "podman");
    assert_eq!(name, looper.name);
    assert_saw_the_poke_under_the_recording_profile(&recording);
}

/// (engine, id, name) of a container recording.
fn container_target(recording: &Recording) -> (&str, &str, &str) {
    match &recording.target {
        profile_gen::recording::Target::Container {
            engine, id, name, ..
        } => (engine, id, name),
        other => panic!("not a container target: {other:?}"),
    }
}

/// The looper's `sync`, made after attaching, is recorded, and the permissive recording
/// profile was recognised (no warning that syscalls may be invisible).
fn assert_saw_the_poke_under_the_recording_profile(recording: &Recording) {
    assert!(
        names(recording).contains("sync"),
        "the syscall made after attaching: {:?}",
        names(recording)
    );
    assert!(
        recording.warnings.is_empty(),
        "the permissive recording profile is recognised: {:?}",
        recording.warnings
    );
}

/// Docker's containers seen through containerd: `--runtime containerd` without nerdctl asks
/// `ctr` on dockerd's own containerd socket, in every namespace (Docker's is `moby`), and a
/// prefix of the id is enough.
#[test]
fn attach_through_containerd_to_a_docker_container() {
    guard!(bpf);
    if !require(
        "attach_through_containerd_to_a_docker_container",
        Path::new("/usr/bin/ctr").exists(),
        "ctr (Debian's containerd package, which docker.io depends on) is not installed",
    ) {
        return;
    }
    let _docker = Docker::ensure();
    let looper = Looper::new("docker", busybox_image(), "cinch-e2e-containerd");
    looper.start(&recording_profile());
    let id = looper.inspect("{{.Id}}");
    let (recording, _) = looper.record_attached_as(&id[..12], &["--runtime", "containerd"]);
    let (engine, got, _) = container_target(&recording);
    assert_eq!(engine, "containerd");
    assert_eq!(got, id, "the whole id, from a 12-character prefix");
    assert!(!recording.startup_observed);
    // The profile is read from the OCI spec here, not from the engine's inspect output.
    assert_saw_the_poke_under_the_recording_profile(&recording);
}

#[test]
fn unconfined_and_default_profiles_are_reported() {
    guard!(bpf);
    let docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");

    // Without seccomp there is no install to see: counting starts at the entrypoint's execve,
    // and the generator adds runc's baseline for what runc does between there and the install.
    let unconfined = dir.path().join("unconfined");
    let files = record_new(
        &unconfined,
        &[
            "--security-opt",
            "seccomp=unconfined",
            &image,
            "sh",
            "-c",
            WORKLOAD,
        ],
    );
    let rec = read(&files[0]);
    assert!(!rec.startup_observed);
    assert!(
        rec.warnings.iter().any(|w| w.contains("first execve")),
        "{:?}",
        rec.warnings
    );
    let profile = dir.path().join("unconfined.json");
    generate(&files, &profile);
    let enforce = format!("seccomp={}", profile.display());
    ok(
        &docker.run(
            &["--network", "none", "--security-opt", &enforce],
            &image,
            &["sh", "-c", WORKLOAD],
        ),
        "the container under the profile generated from its unconfined recording",
    );

    // Docker's default profile hides what it denies: the recording says so.
    let default = dir.path().join("default");
    let files = record_new(&default, &[&image, "true"]);
    let rec = read(&files[0]);
    assert!(
        rec.warnings
            .iter()
            .any(|w| w.contains("restrictive seccomp profile")),
        "{:?}",
        rec.warnings
    );
}

/// A JSON file written by cinch (settings).
fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

/// `cinch generate` of one recording into DIR (its settings file), then `cinch report` of
/// the result: the settings' path and both outputs, each checked to have worked.
fn generate_and_report(dir: &Path, recording: &Path) -> (PathBuf, Output, Output) {
    let profile = dir.join("p.json");
    let settings = dir.join("s.json");
    let generate = cinch(&[
        "generate",
        "-o",
        profile.to_str().expect("utf-8"),
        "--caps-out",
        settings.to_str().expect("utf-8"),
        recording.to_str().expect("utf-8"),
    ]);
    ok(&generate, "cinch generate");
    let report = cinch(&[
        "report",
        profile.to_str().expect("utf-8"),
        "--caps",
        settings.to_str().expect("utf-8"),
    ]);
    ok(&report, "cinch report");
    (settings, generate, report)
}

/// A container started with secrets in its environment: the recording, the settings,
/// `generate`'s summary and `report` name each variable and say how to move it, and the values
/// appear in none of them.
#[test]
fn secrets_in_the_environment_are_named_never_shown() {
    guard!(bpf);
    let _docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = dir.path().join("recs");
    let password = "correct-horse-battery-staple-7731";
    let token = "ghp_cinchTestTokenThatIsNotReal0123456789";
    let env_password = format!("DB_PASSWORD={password}");
    let env_token = format!("UPSTREAM_AUTH={token}");
    let seccomp = format!("seccomp={}", recording_profile());
    // Long enough for the engine to be asked about it while it runs.
    let run = [
        "--security-opt",
        seccomp.as_str(),
        "-e",
        env_password.as_str(),
        "-e",
        env_token.as_str(),
        "-e",
        "LOG_LEVEL=debug",
        image.as_str(),
        "sleep",
        "1",
    ];
    let files = record_new(&recs, &run);
    assert_eq!(files.len(), 1, "{files:?}");
    let (settings, generate, report) = generate_and_report(dir.path(), &files[0]);
    let outputs = [
        (
            "recording",
            std::fs::read_to_string(&files[0]).expect("recording"),
        ),
        (
            "settings",
            std::fs::read_to_string(&settings).expect("settings"),
        ),
        (
            "generate",
            String::from_utf8_lossy(&generate.stderr).into_owned(),
        ),
        (
            "report",
            String::from_utf8_lossy(&report.stdout).into_owned(),
        ),
    ];
    for (what, text) in &outputs {
        assert!(
            !text.contains(password) && !text.contains(token),
            "a secret's value is in the {what}"
        );
    }
    for (what, text) in &outputs[1..] {
        for (var, why) in [
            ("DB_PASSWORD", "its name"),
            ("UPSTREAM_AUTH", "its value looks like a GitHub token"),
        ] {
            assert!(
                text.contains(var) && text.contains(why),
                "{what} names {var} ({why}): {text}"
            );
        }
        assert!(!text.contains("LOG_LEVEL"), "{what}: {text}");
    }
    assert!(
        outputs[3].1.contains("/run/secrets"),
        "report says how to move it: {}",
        outputs[3].1
    );
}

/// The regular files of `image` and their bytes, from `docker export` of a container created
/// from it, without what the engine mounts over at run time (another filesystem then): the
/// bind mounts of `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, and the tmpfs `/dev`.
fn image_files(docker: &Docker, image: &str) -> (u64, u64) {
    let created = docker.cmd(&["create", "--pull", "never", image, "true"]);
    ok(&created, "docker create");
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let export = Command::new("sh")
        .args(["-c", &format!("docker export {id} | tar -tvf -")])
        .output()
        .expect("docker export");
    docker.cmd(&["rm", &id]);
    ok(&export, "docker export | tar -tv");
    let (mut files, mut bytes) = (0, 0);
    for line in String::from_utf8_lossy(&export.stdout).lines() {
        // GNU tar: `-rw-r--r-- 0/0 1234 2024-01-01 00:00 etc/passwd`.
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !line.starts_with('-') || fields.len() < 6 {
            continue;
        }
        if ["etc/hosts", "etc/hostname", "etc/resolv.conf"].contains(&fields[5])
            || fields[5].starts_with("dev/")
        {
            continue;
        }
        files += 1;
        bytes += fields[2].parse::<u64>().expect("a size");
    }
    (files, bytes)
}

/// A container that reads a key file from its image and one from /run/secrets: the recording
/// takes stock of its image (checked against `docker export`) and names the files it read;
/// the settings, `generate` and `report` warn about the key in the image only, and say how
/// much of the image was used.
#[test]
fn the_image_it_used_and_the_secret_files_it_read_from_it() {
    guard!(bpf);
    let docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let recs = dir.path().join("recs");
    let mounted = dir.path().join("db.key");
    std::fs::write(&mounted, "mounted the right way").expect("write");
    let volume = format!("{}:/run/secrets/db.key:ro", mounted.display());
    let seccomp = format!("seccomp={}", recording_profile());
    // The stock of the image is taken at its first read, before the key file is written.
    let run = [
        "--security-opt",
        seccomp.as_str(),
        "-v",
        volume.as_str(),
        image.as_str(),
        "sh",
        "-c",
        "sleep 1; echo k > /etc/app.key; cat /etc/app.key /run/secrets/db.key >/dev/null",
    ];
    let files = record_new(&recs, &run);
    assert_eq!(files.len(), 1, "{files:?}");
    let rec = read(&files[0]);
    let reads = rec.reads.as_ref().expect("reads recorded");
    let inv = reads.image.as_ref().expect("the image taken stock of");
    let (want_files, want_bytes) = image_files(&docker, &image);
    assert_eq!((inv.files, inv.bytes), (want_files, want_bytes), "{inv:?}");
    // /bin/sh and /bin/cat are links to busybox, resolved in the container's root.
    let busybox = reads.paths.get("/bin/busybox").expect("busybox read");
    assert!(busybox.exec, "{busybox:?}");
    assert!(reads.paths.contains_key("/etc/app.key"), "{reads:?}");
    // A mounted file is never the image's: marked so when its process still ran when the
    // tracer looked, unresolved when it was gone (its mount gone with it).
    assert!(
        reads
            .paths
            .iter()
            .all(|(p, r)| r.mounted == p.starts_with("/run/secrets")),
        "{reads:?}"
    );
    assert!(
        reads.paths.contains_key("/run/secrets/db.key")
            || reads.unresolved.iter().any(|p| p == "/run/secrets/db.key"),
        "{reads:?}"
    );

    let (settings, generate, report) = generate_and_report(dir.path(), &files[0]);
    let s = json(&settings);
    let secret_files = s["secret_files"].as_array().expect("secret_files");
    assert_eq!(secret_files.len(), 1, "{secret_files:?}");
    assert_eq!(secret_files[0]["path"], "/etc/app.key");
    assert_eq!(secret_files[0]["why"], "a private key");
    let used = &s["images"][0];
    assert_eq!(used["image"], image.as_str(), "{used}");
    assert_eq!(used["total"]["files"], want_files, "{used}");
    assert_eq!(
        used["used"]["files"].as_u64(),
        Some(reads.paths.values().filter(|r| !r.mounted).count() as u64),
        "{used}"
    );
    for text in [
        String::from_utf8_lossy(&generate.stderr).into_owned(),
        String::from_utf8_lossy(&report.stdout).into_owned(),
    ] {
        assert!(
            text.contains("it read /etc/app.key from its image")
                && text.contains("/run/secrets/NAME"),
            "{text}"
        );
        assert!(
            text.contains(&format!("of the image's {want_files} files")),
            "{text}"
        );
        assert!(!text.contains("db.key"), "{text}");
    }
}

/// A container that ran as root without needing it (it read only files anyone may, and wrote
/// only under /tmp, a tmpfs) gets `nobody`, and works under its whole generated line; one that
/// read a file only root may read from its image keeps root, naming the file, and `nobody`
/// indeed cannot read it.
#[test]
fn root_is_kept_only_when_it_was_needed() {
    guard!(bpf);
    let docker = Docker::ensure();
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let seccomp = format!("seccomp={}", recording_profile());

    // Alive past the tracer's next look: the reads of a container gone before it are not
    // placed (and keep root).
    let script = "cat /etc/passwd >/dev/null; echo noted > /tmp/note; cat /tmp/note; sleep 0.5";
    let free = dir.path().join("free");
    std::fs::create_dir(&free).expect("mkdir");
    let files = record_new(
        &free.join("recs"),
        &["--security-opt", &seccomp, &image, "sh", "-c", script],
    );
    assert_eq!(files.len(), 1, "{files:?}");
    let (settings, _, _) = generate_and_report(&free, &files[0]);
    let s = json(&settings);
    assert_eq!(s["user"]["user"], "65534:65534", "{}", s["user"]);
    let line = report_snippet(&free.join("p.json"), &settings, "docker-run");
    assert!(
        line.contains("--user 65534:65534") && line.contains("--network none"),
        "{line}"
    );
    let mut argv: Vec<String> = ["run", "--rm", "--pull", "never"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    argv.extend(line.split_whitespace().map(str::to_owned));
    argv.extend([
        image.clone(),
        "sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
    ]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = docker.cmd(&argv);
    ok(&out, "the container under its whole generated line");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "noted");

    // An image with a file only root may read, committed from a container of the test image.
    let private = "cinch-test/busybox-private:latest";
    let name = "cinch-root-needed-build";
    docker.cmd(&["rm", "-f", name]);
    ok(
        &docker.cmd(&[
            "run",
            "--name",
            name,
            "--pull",
            "never",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            "echo s > /etc/app.conf && chmod 600 /etc/app.conf",
        ]),
        "making a root-only file",
    );
    ok(&docker.cmd(&["commit", name, private]), "docker commit");
    docker.cmd(&["rm", "-f", name]);
    let needs = dir.path().join("needs");
    std::fs::create_dir(&needs).expect("mkdir");
    let files = record_new(
        &needs.join("recs"),
        &[
            "--security-opt",
            &seccomp,
            private,
            "sh",
            "-c",
            "cat /etc/app.conf; sleep 0.5",
        ],
    );
    let (settings, _, _) = generate_and_report(&needs, &files[0]);
    let s = json(&settings);
    assert!(s["user"]["user"].is_null(), "{}", s["user"]);
    let why = s["user"]["why"].as_str().expect("why");
    assert!(why.contains("/etc/app.conf (600)"), "{why}");
    let denied = docker.cmd(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--user",
        "65534:65534",
        private,
        "cat",
        "/etc/app.conf",
    ]);
    assert!(
        !denied.status.success(),
        "nobody read a root-only file: {denied:?}"
    );
}
