//! Privileged tier: `cinch run` and `cinch verify` on small, exact workloads.
//!
//! `cinch run` must leave COMMAND with exactly the kept capabilities in every set, the identity
//! asked for, no_new_privs when it keeps no CAP_SYS_ADMIN, and the profile loaded as runc loads
//! it (default errno, per-rule errno, the ENOSYS stub, kill actions); bad input exits 2 with one
//! sentence. `cinch verify` must name exactly what a profile or a capability set would deny,
//! without breaking the workload.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cinch_tests::cinch;
use cinch_tests::guard;
use cinch_tests::output_text as text;
use cinch_tests::{cinch_bin, profile_without, require, workspace_root};

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("writing a test file");
    path.display().to_string()
}

const ALLOW_ALL: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}"#;

/// `/proc/self/status` of a `cat` run under `cinch run ARGS`, as field → value.
fn status_under(extra: &[&str]) -> std::collections::BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = write(dir.path(), "allow.json", ALLOW_ALL);
    let mut args = vec!["run", "--profile", profile.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "cat", "/proc/self/status"]);
    let out = cinch(&args);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

fn mask(caps: &[u32]) -> String {
    format!("{:016x}", caps.iter().fold(0u64, |m, c| m | 1 << c))
}

const CAP_CHOWN: u32 = 0;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_SYS_ADMIN: u32 = 21;

#[test]
fn run_passes_the_exit_status_and_signal_through() {
    guard!(root);
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = write(dir.path(), "allow.json", ALLOW_ALL);
    let out = cinch(&["run", "--profile", &profile, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let out = cinch(&[
        "run",
        "--profile",
        &profile,
        "--",
        "sh",
        "-c",
        "kill -TERM $$",
    ]);
    assert_eq!(out.status.signal(), Some(15), "{}", text(&out));
    // SIGPIPE is back to its default for COMMAND (Rust ignores it in cinch itself).
    let out = cinch(&[
        "run",
        "--profile",
        &profile,
        "--",
        "sh",
        "-c",
        "grep SigIgn /proc/self/status",
    ]);
    let ignored = String::from_utf8_lossy(&out.stdout);
    let bits = u64::from_str_radix(ignored.trim().trim_start_matches("SigIgn:").trim(), 16)
        .expect("SigIgn is hex");
    assert_eq!(bits & (1 << (13 - 1)), 0, "SIGPIPE is ignored: {ignored}");
    let out = cinch(&["run", "--profile", &profile, "--", "no-such-command-cinch"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
}

#[test]
fn run_keeps_only_the_listed_capabilities_in_every_set() {
    guard!(root);
    let s = status_under(&["--cap-add", "NET_BIND_SERVICE,CAP_CHOWN"]);
    let kept = mask(&[CAP_CHOWN, CAP_NET_BIND_SERVICE]);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd"] {
        assert_eq!(s[set], kept, "{set}: {s:?}");
    }
    assert_eq!(
        s["CapAmb"],
        mask(&[]),
        "root gets no ambient set, as in Docker"
    );
    assert_eq!(s["NoNewPrivs"], "1", "no SYS_ADMIN kept: no_new_privs");
    assert_eq!(s["Seccomp"], "2", "a filter is installed");
    assert_eq!(s["Uid"], "0\t0\t0\t0");

    let none = status_under(&[]);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(none[set], mask(&[]), "{set} without --cap-add: {none:?}");
    }

    // A settings file: only its cap_add.
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = write(
        dir.path(),
        "s.json",
        r#"{"cap_drop":["ALL"],"cap_add":["SYS_ADMIN"],"reasons":{}}"#,
    );
    let s = status_under(&["--caps", &settings]);
    assert_eq!(s["CapEff"], mask(&[CAP_SYS_ADMIN]));
    assert_eq!(s["CapBnd"], mask(&[CAP_SYS_ADMIN]));
    assert_eq!(
        s["NoNewPrivs"], "0",
        "SYS_ADMIN kept: the filter installs without no_new_privs"
    );
}

#[test]
fn run_as_another_user_keeps_capabilities_across_execve() {
    let name = "run_as_another_user_keeps_capabilities_across_execve";
    guard!(root);
    let s = status_under(&["--user", "65534:65534", "--cap-add", "NET_BIND_SERVICE"]);
    assert_eq!(s["Uid"], "65534\t65534\t65534\t65534");
    assert_eq!(s["Gid"], "65534\t65534\t65534\t65534");
    let kept = mask(&[CAP_NET_BIND_SERVICE]);
    for set in ["CapPrm", "CapEff", "CapAmb", "CapBnd"] {
        assert_eq!(s[set], kept, "{set}: {s:?}");
    }
    let plain = status_under(&["--user", "65534:65534"]);
    assert_eq!(plain["CapEff"], mask(&[]));
    assert_eq!(plain["CapPrm"], mask(&[]));

    // And it works: nobody binds port 80 in a fresh network namespace with the capability,
    // and is refused without it.
    let python = python3();
    if !require(name, python.is_some(), "python3 is not installed") {
        return;
    }
    let python = python.unwrap_or_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = write(dir.path(), "allow.json", ALLOW_ALL);
    let bind = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 80)); print('bound')";
    let in_netns = |caps: &[&str]| {
        let mut c = Command::new("unshare");
        c.args([
            "-n",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(cinch_bin())
        .args(["run", "--profile", &profile, "--user", "65534:65534"])
        .args(caps)
        .args(["--", &python, "-c", bind]);
        c.output().expect("running unshare")
    };
    let out = in_netns(&["--cap-add", "NET_BIND_SERVICE"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bound\n");
    let out = in_netns(&[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PermissionError"),
        "{}",
        text(&out)
    );
}

fn python3() -> Option<String> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .map(str::to_owned)
}

/// A C program printing the errno of a few syscalls (0 when they succeed).
const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
static int err(long r) { return r < 0 ? errno : 0; }
int main(void) {
    int a = err(syscall(SYS_getppid));
    int b = err(syscall(SYS_getpid));
    int c = err(syscall(SYS_membarrier, 0, 0, 0));
    printf("getppid=%d getpid=%d membarrier=%d\n", a, b, c);
    return 0;
}
"#;

fn probe_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("enforce_probe.c");
    let bin = dir.join("enforce_probe");
    std::fs::write(&src, PROBE_C).expect("writing the probe source");
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("running cc");
    assert!(status.success(), "compiling the probe");
    bin
}

/// Everything a small dynamically linked C program needs to start, print and exit, all numbered
/// below getrandom (318) on x86_64 except what it may do without (rseq).
const STARTUP: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "newfstatat",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "pread64",
    "access",
    "execve",
    "exit",
    "exit_group",
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "openat",
    "prlimit64",
    "getrandom",
    "futex",
    "readlink",
    "uname",
    "lseek",
    "ioctl",
];

fn runc_like_profile(default_extra: &str, getpid_rule: &str) -> String {
    let names: Vec<String> = STARTUP.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO"{default_extra},"architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}},{getpid_rule}]}}"#,
        names.join(",")
    )
}

#[cfg(target_arch = "x86_64")]
#[test]
fn run_loads_the_profile_as_runc_does() {
    guard!(root);
    let probe = probe_binary();
    let probe = probe.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |profile: &str| {
        let path = write(dir.path(), "p.json", profile);
        cinch(&["run", "--profile", &path, "--", probe])
    };
    // getppid: not listed, the default (EPERM); getpid: its rule's errnoRet (EINVAL);
    // membarrier (324): numbered above getrandom (318), the highest listed name, so runc's stub
    // answers ENOSYS and programs fall back.
    let out = run(&runc_like_profile(
        "",
        r#"{"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":22}"#,
    ));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "getppid=1 getpid=22 membarrier=38\n",
        "{}",
        text(&out)
    );
    // defaultErrnoRet.
    let out = run(&runc_like_profile(
        r#","defaultErrnoRet":13"#,
        r#"{"names":["getpid"],"action":"SCMP_ACT_ERRNO"}"#,
    ));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "getppid=13 getpid=1 membarrier=38\n",
        "{}",
        text(&out)
    );
    // A kill action.
    let out = run(&runc_like_profile(
        "",
        r#"{"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}"#,
    ));
    assert_eq!(
        out.status.signal(),
        Some(31),
        "killed by SIGSYS: {}",
        text(&out)
    );
}

#[test]
fn run_accepts_dockers_default_profile() {
    guard!(root);
    let moby = workspace_root().join("profile-gen/data/moby-default-29.7.2.json");
    let moby = moby.to_str().expect("utf-8 path");
    let out = cinch(&[
        "run",
        "--profile",
        moby,
        "--",
        "sh",
        "-c",
        "echo ok; ls / >/dev/null",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
}

/// Exit 2 and exactly one line on stderr that names `what`.
fn assert_input_error(out: &Output, what: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one sentence: {}", text(out));
    assert!(stderr.starts_with("cinch: "), "{}", text(out));
    for w in what {
        assert!(stderr.contains(w), "should name {w}: {}", text(out));
    }
    assert!(out.stdout.is_empty(), "{}", text(out));
}

#[test]
fn run_refuses_bad_input_with_one_sentence() {
    guard!(root);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let allow = write(d, "allow.json", ALLOW_ALL);
    let marker = d.join("ran");
    let touch = ["--", "touch", marker.to_str().expect("utf-8")];
    let run = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend_from_slice(&touch);
        cinch(&all)
    };

    let arm = write(
        d,
        "arm.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],"syscalls":[{"names":["read","execve"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_input_error(
        &run(&["--profile", &arm]),
        &["arm.json", "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    );
    assert_input_error(
        &run(&["--profile", &allow, "--cap-add", "NET_FLY"]),
        &["NET_FLY"],
    );
    let settings = write(d, "s.json", r#"{"cap_drop":["ALL"],"cap_add":["SETFLY"]}"#);
    assert_input_error(
        &run(&["--profile", &allow, "--caps", &settings]),
        &["SETFLY", "s.json"],
    );
    let typo = write(
        d,
        "typo.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","execve","reed"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_input_error(&run(&["--profile", &typo]), &["`reed`", "typo.json"]);
    let no_exec = write(
        d,
        "noexec.json",
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    assert_input_error(&run(&["--profile", &no_exec]), &["execve", "noexec.json"]);
    let notify = write(
        d,
        "notify.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    assert_input_error(&run(&["--profile", &notify]), &["SCMP_ACT_NOTIFY"]);
    let missing = d.join("missing.json");
    assert_input_error(
        &run(&["--profile", missing.to_str().expect("utf-8")]),
        &["missing.json"],
    );
    let rec = write(d, "rec.json", r#"{"schema_version": 1}"#);
    assert_input_error(&run(&["--profile", &rec]), &["recording"]);
    assert!(!marker.exists(), "nothing ran");
}

// --- verify ---------------------------------------------------------------------------------

/// `cinch verify --format json -o FILE ARGS`: its output and the parsed verdict.
fn verify_json(args: &[&str]) -> (Output, serde_json::Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("verdict.json");
    let mut all = vec![
        "verify",
        "-q",
        "--format",
        "json",
        "-o",
        report.to_str().expect("utf-8"),
    ];
    all.extend_from_slice(args);
    let out = cinch(&all);
    let bytes = std::fs::read(&report)
        .unwrap_or_else(|e| panic!("verify wrote no verdict ({e}): {}", text(&out)));
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("verify --format json: {e}: {}", text(&out)));
    (out, json)
}

fn denied_syscalls(v: &serde_json::Value) -> BTreeSet<String> {
    v["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["denied_syscalls"].as_array().cloned().unwrap_or_default())
        .map(|d| {
            format!(
                "{} {}",
                d["arch"].as_str().unwrap_or("?"),
                d["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn missing_caps(v: &serde_json::Value) -> BTreeSet<String> {
    v["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t["missing_capabilities"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|m| m["capability"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Records `cmd`, generates its profile, and returns (profile, settings) paths.
fn record_and_generate(dir: &Path, cmd: &[&str]) -> (String, String) {
    let rec = dir.join("rec.json");
    let mut args = vec!["record", "-q", "-o", rec.to_str().expect("utf-8"), "--"];
    args.extend_from_slice(cmd);
    let out = cinch(&args);
    assert!(out.status.success(), "record: {}", text(&out));
    let profile = dir.join("seccomp.json");
    let settings = dir.join("settings.json");
    let out = Command::new(cinch_bin())
        .args(["generate", "-o"])
        .arg(&profile)
        .arg("--caps-out")
        .arg(&settings)
        .arg(&rec)
        .output()
        .expect("running cinch generate");
    assert!(out.status.success(), "generate: {}", text(&out));
    (
        profile.display().to_string(),
        settings.display().to_string(),
    )
}

/// The profile with `name` taken out of its allow rules.
fn without(profile: &str, name: &str, dir: &Path) -> String {
    profile_without(Path::new(profile), name, dir)
        .display()
        .to_string()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn verify_names_exactly_what_the_profile_would_deny() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let target = d.join("made");
    let script = format!(
        "mkdir {0} && rmdir {0} && mkdir {0} && echo made",
        target.display()
    );
    let cmd = ["sh", "-c", script.as_str()];
    let (profile, settings) = record_and_generate(d, &cmd);
    std::fs::remove_dir(&target).expect("the recorded run made the directory");

    let mut args = vec![
        "--profile",
        profile.as_str(),
        "--caps",
        settings.as_str(),
        "--",
    ];
    args.extend_from_slice(&cmd);
    let (out, v) = verify_json(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(v["denied"], false);
    assert!(denied_syscalls(&v).is_empty());
    std::fs::remove_dir(&target).expect("verify ran the workload");

    let minus = without(&profile, "mkdir", d);
    let mut args = vec![
        "--profile",
        minus.as_str(),
        "--caps",
        settings.as_str(),
        "--",
    ];
    args.extend_from_slice(&cmd);
    let (out, v) = verify_json(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        denied_syscalls(&v),
        ["x86_64 mkdir".to_owned()].into_iter().collect(),
        "{}",
        text(&out)
    );
    let t = &v["targets"][0];
    assert_eq!(t["denied_syscalls"][0]["count"], 2, "{}", text(&out));
    assert_eq!(t["exit"], 0, "the workload was not broken: {}", text(&out));
    assert!(target.is_dir(), "the workload ran unrestricted");

    // Text: one line names it.
    let mut args = vec!["verify", "-q", "--profile", minus.as_str(), "--"];
    args.extend_from_slice(&cmd);
    std::fs::remove_dir(&target).expect("cleanup");
    let out = cinch(&args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("denied syscall"))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].contains("x86_64 mkdir") && lines[0].contains("called 2 times"),
        "{stdout}"
    );
}

#[test]
fn verify_names_exactly_the_missing_capability() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("owned");
    std::fs::write(&file, "x").expect("write");
    let file = file.to_str().expect("utf-8");
    let allow = write(dir.path(), "allow.json", ALLOW_ALL);
    let cmd = ["chown", "65534:65534", file];
    let check = |caps: &[&str]| {
        let mut args = vec!["--profile", allow.as_str()];
        args.extend_from_slice(caps);
        args.push("--");
        args.extend_from_slice(&cmd);
        verify_json(&args)
    };
    let (out, v) = check(&["--cap-add", "CHOWN"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(missing_caps(&v).is_empty());
    let (out, v) = check(&["--cap-add", "SETUID"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        missing_caps(&v),
        ["CHOWN".to_owned()].into_iter().collect(),
        "{}",
        text(&out)
    );
    assert!(denied_syscalls(&v).is_empty());
    // Without settings the capabilities are listed, not checked.
    let (out, v) = check(&[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(v["targets"][0]["needed_capabilities"][0], "CHOWN");
}
