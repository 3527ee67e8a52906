//! End-to-end tier, the canary loop: a container profile recorded from a run that never took one
//! code path, `cinch verify --record-out` attached to a staging copy while it takes that path,
//! the recordings merged, the profile regenerated; the new profile runs the path, and `cinch
//! diff` names exactly the syscall that was added.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::cinch;
use cinch_tests::docker::{Docker, busybox_image};
use cinch_tests::guard;
use cinch_tests::{ChildGuard, Ready, cinch_bin, output_text as text};

/// Each round stats `/` (and says so in /w/tick); once /w/go exists, it runs `stat -f` (statfs,
/// made nowhere else) once and writes whether it worked to /w/out. Ends when /w/stop exists.
/// Output goes to regular files only: glibc asks a character device such as /dev/null whether
/// it is a terminal (ioctl TCGETS), which would be one more syscall in one branch.
const LOOP: &str = "while [ ! -f /w/stop ]; do \
    stat -c %n / >/w/tick; \
    if [ -f /w/go ] && [ ! -s /w/out ]; then \
        if stat -f -c %t / >/w/fs; then echo ok >/w/out; else echo denied >/w/out; fi; \
    fi; \
    sleep 0.1; \
done";

const NAME: &str = "cinch-e2e-canary";

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The host directory mounted at /w, and the container's `docker run` arguments.
struct Canary {
    w: PathBuf,
    image: String,
    docker: Docker,
}

impl Canary {
    fn reset(&self) {
        for f in ["tick", "go", "out", "fs", "stop"] {
            let _ = std::fs::remove_file(self.w.join(f));
        }
    }

    /// `docker run` of the loop under `profile`, in the foreground or detached (`-d`).
    fn run_args(&self, profile: &Path, detached: bool) -> Vec<String> {
        let mut args: Vec<String> = ["docker", "run", "--pull", "never", "--network", "none"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        if detached {
            args.extend(["-d".to_owned(), "--name".to_owned(), NAME.to_owned()]);
        } else {
            args.push("--rm".to_owned());
        }
        args.extend([
            "-v".to_owned(),
            format!("{}:/w", self.w.display()),
            "--security-opt".to_owned(),
            format!("seccomp={}", profile.display()),
            self.image.clone(),
            "sh".to_owned(),
            "-c".to_owned(),
            LOOP.to_owned(),
        ]);
        args
    }

    fn out(&self) -> String {
        std::fs::read_to_string(self.w.join("out"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Once a round has run (and, with `go`, the statfs branch has answered), asks the loop to
    /// end.
    fn stop_after_a_round(&self, go: bool) {
        wait_for("a round of the loop", Duration::from_secs(30), || {
            self.w.join("tick").exists()
        });
        if go {
            wait_for("the statfs branch", Duration::from_secs(30), || {
                !self.out().is_empty()
            });
        }
        std::fs::write(self.w.join("stop"), "").expect("stop");
    }

    /// A fresh container under `profile` with /w/go already there: what the statfs branch said.
    fn branch_under(&self, profile: &Path) -> String {
        self.reset();
        std::fs::write(self.w.join("go"), "").expect("go");
        let args = self.run_args(profile, false);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("docker run");
        self.stop_after_a_round(true);
        let status = child.wait().expect("docker run");
        assert!(
            status.success(),
            "the container under {}: {status}",
            profile.display()
        );
        self.out()
    }

    fn remove(&self) {
        let _ = self.docker.cmd(&["rm", "-f", NAME]);
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.remove();
    }
}

#[test]
fn the_canary_loop_adds_what_staging_needed_and_nothing_else() {
    guard!(bpf);
    let docker = Docker::ensure();
    let work = tempfile::tempdir().expect("tempdir");
    let d = work.path();
    let w = d.join("w");
    std::fs::create_dir(&w).expect("mkdir");
    let canary = Canary {
        w,
        image: busybox_image(),
        docker,
    };
    canary.remove();
    let recording_profile = cinch_tests::recording_profile();
    let s = |p: &Path| p.display().to_string();

    // 1. The tests: the loop from its start, never taking the statfs branch.
    let recs = d.join("recs");
    let mut args = vec![
        "record".to_owned(),
        "-q".to_owned(),
        "--new-containers".to_owned(),
        "-o".to_owned(),
        s(&recs),
        "--".to_owned(),
    ];
    args.extend(canary.run_args(&recording_profile, false));
    let recorder = Command::new(cinch_bin())
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("cinch record --new-containers");
    canary.stop_after_a_round(false);
    let out = recorder.wait_with_output().expect("cinch record");
    assert!(out.status.success(), "record: {}", text(&out));
    let tests: Vec<PathBuf> = std::fs::read_dir(&recs)
        .expect("recordings")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(tests.len(), 1, "one container, one recording: {tests:?}");
    let old = d.join("old.json");
    let out = cinch(&["generate", "-o", &s(&old), &s(&tests[0])]);
    assert!(out.status.success(), "generate: {}", text(&out));
    assert_eq!(
        canary.branch_under(&old),
        "denied",
        "the profile from the tests denies the branch they never took"
    );

    // 2. Staging: verify attached, with --record-out, while the branch runs.
    canary.reset();
    let run = canary.run_args(&recording_profile, true);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    let started = canary.docker.cmd(&run[1..]);
    assert!(
        started.status.success(),
        "docker run -d: {}",
        text(&started)
    );
    let verdict = d.join("verdict.json");
    let canary_rec = d.join("canary.json");
    let mut verify = Command::new(cinch_bin());
    verify
        .args([
            "verify",
            "-q",
            "--format",
            "json",
            "-o",
            &s(&verdict),
            "--record-out",
            &s(&canary_rec),
            "--profile",
            &s(&old),
            "--container",
            NAME,
            "--ready-fd",
            Ready::FD,
        ])
        .stdin(Stdio::null());
    let mut ready = Ready::new(&mut verify);
    let verifier = ChildGuard(verify.spawn().expect("cinch verify"));
    // Attaching (engine lookup, probe load, listing the container's processes) takes under half
    // a second with the debug build here.
    ready.wait(Duration::from_secs(30));
    std::fs::write(canary.w.join("go"), "").expect("go");
    wait_for(
        "the statfs branch under verify",
        Duration::from_secs(30),
        || !canary.out().is_empty(),
    );
    assert_eq!(canary.out(), "ok", "staging runs unrestricted");
    canary.remove();
    let mut verifier = verifier;
    let status = verifier.0.wait().expect("cinch verify");
    assert_eq!(status.code(), Some(1), "verify names a denial");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&verdict).expect("verdict")).expect("json");
    let denied: Vec<&str> = v["targets"][0]["denied_syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(denied, ["statfs"], "{v:#}");

    // 3. Merge, regenerate, diff: exactly statfs was added.
    let new = d.join("new.json");
    let out = cinch(&["generate", "-o", &s(&new), &s(&tests[0]), &s(&canary_rec)]);
    assert!(out.status.success(), "generate: {}", text(&out));
    let diff = cinch(&["diff", "--format", "json", &s(&old), &s(&new)]);
    assert_eq!(diff.status.code(), Some(1), "drift: {}", text(&diff));
    let j: serde_json::Value = serde_json::from_slice(&diff.stdout).expect("diff json");
    assert_eq!(
        j["added"]["syscalls"],
        serde_json::json!({ cinch_tests::NATIVE: ["statfs"] }),
        "{j:#}"
    );
    assert_eq!(
        j["removed"]["syscalls"],
        serde_json::json!({}),
        "the merged profile keeps everything: {j:#}"
    );
    let diff = cinch(&["diff", &s(&old), &s(&new)]);
    assert!(
        String::from_utf8_lossy(&diff.stdout).contains("  + x86_64: statfs\n"),
        "{}",
        text(&diff)
    );

    // 4. The new profile runs the branch.
    assert_eq!(canary.branch_under(&new), "ok");
}
