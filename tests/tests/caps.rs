//! Privileged tier: capability recording. For each workload the generated `cap_add` must be
//! exactly the capabilities it needs, and the kernel must agree: the workload succeeds with only
//! those (every other capability dropped with setpriv), and fails at the step that needs one when
//! that one is dropped.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cinch_tests::guard;
use cinch_tests::{cinch_bin, require, workload};

/// What `cinch record` then `generate` made of a command.
struct Generated {
    recording: serde_json::Value,
    settings: serde_json::Value,
    /// What generate printed.
    summary: String,
    /// What the command printed while recorded.
    stdout: String,
}

impl Generated {
    fn cap_add(&self) -> BTreeSet<String> {
        self.settings["cap_add"]
            .as_array()
            .expect("cap_add is a list")
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect()
    }
}

/// Runs `cmd` under `cinch record OPTIONS` (inside a fresh network namespace when `netns`) and
/// generates `rec.json`, `seccomp.json` and `settings.json` in `dir`.
fn record_and_generate(dir: &Path, cmd: &[String], netns: bool, options: &[&str]) -> Generated {
    let rec = dir.join("rec.json");
    let settings = dir.join("settings.json");
    let mut record = if netns {
        let mut c = Command::new("unshare");
        c.args(["-n", "--"]).arg(cinch_bin());
        c
    } else {
        Command::new(cinch_bin())
    };
    let out = record
        .args(["record", "-q"])
        .args(options)
        .arg("-o")
        .arg(&rec)
        .arg("--")
        .args(cmd)
        .output()
        .expect("running cinch record");
    assert!(
        out.status.success(),
        "{cmd:?} failed while recorded: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = Command::new(cinch_bin())
        .args(["generate", "-o"])
        .arg(dir.join("seccomp.json"))
        .arg("--caps-out")
        .arg(&settings)
        .arg(&rec)
        .output()
        .expect("running cinch generate");
    assert!(
        out.status.success(),
        "generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).expect("written")).expect("JSON")
    };
    Generated {
        recording: json(&rec),
        settings: json(&settings),
        summary: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout,
    }
}

/// Runs `cmd` under `cinch record` (inside a fresh network namespace when `netns`), generates
/// the settings, and returns `cap_add`, each with a reason.
fn recorded_cap_add(dir: &Path, cmd: &[String], netns: bool) -> BTreeSet<String> {
    let g = record_and_generate(dir, cmd, netns, &[]);
    assert_eq!(g.settings["cap_drop"], serde_json::json!(["ALL"]));
    let cap_add = g.cap_add();
    for c in &cap_add {
        assert!(
            g.settings["reasons"].get(c).is_some(),
            "{c} comes with a reason: {}",
            g.settings
        );
    }
    cap_add
}

/// Records `cmd` with `--prove-caps` and generates its settings.
fn prove(dir: &Path, cmd: &[String]) -> Generated {
    record_and_generate(dir, cmd, false, &["--prove-caps"])
}

/// Runs `cmd` as root with only `caps` (bounding and inheritable sets cut to them, so exec
/// gives root exactly these) and returns its exit code and stderr.
fn run_with_only(cmd: &[String], caps: &BTreeSet<String>, netns: bool) -> (i32, String) {
    let bounding: String = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{}", c.to_lowercase())))
        .collect::<Vec<_>>()
        .join(",");
    let mut c = if netns {
        let mut c = Command::new("unshare");
        c.args(["-n", "--", "setpriv"]);
        c
    } else {
        Command::new("setpriv")
    };
    c.args([
        "--inh-caps=-all",
        &format!("--bounding-set={bounding}"),
        "--",
    ])
    .args(cmd);
    let out = c.output().expect("running setpriv");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How the step that needs a dropped capability shows its failure.
enum Fails {
    /// Any non-zero exit.
    Exit,
    /// This exit code (the workload numbers its steps).
    ExitCode(i32),
    /// The program carries on but says so on stderr (GNU nice only warns).
    Says(&'static str),
}

struct Case {
    name: &'static str,
    cmd: Vec<String>,
    netns: bool,
    expect: &'static [&'static str],
    /// How the workload fails when each expected capability is dropped (same order as
    /// `expect`).
    fails_with: &'static [Fails],
}

/// Checks `case` and returns its settings file.
fn check(case: Case) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let got = recorded_cap_add(dir.path(), &case.cmd, case.netns);
    let want: BTreeSet<String> = case.expect.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        got,
        want,
        "{}: cap_add; settings: {}",
        case.name,
        std::fs::read_to_string(dir.path().join("settings.json")).unwrap_or_default()
    );
    let (code, stderr) = run_with_only(&case.cmd, &want, case.netns);
    assert_eq!(code, 0, "{}: fails with only {want:?}: {stderr}", case.name);
    for fails in case.fails_with {
        if let Fails::Says(text) = fails {
            assert!(
                !stderr.contains(text),
                "{}: {text:?} with every needed capability",
                case.name
            );
        }
    }
    assert_eq!(
        case.expect.len(),
        case.fails_with.len(),
        "one failure mode per capability"
    );
    for (cap, fails) in case.expect.iter().zip(case.fails_with) {
        let mut fewer = want.clone();
        fewer.remove(*cap);
        let (code, stderr) = run_with_only(&case.cmd, &fewer, case.netns);
        match fails {
            Fails::Exit => assert_ne!(code, 0, "{}: still works without {cap}", case.name),
            Fails::ExitCode(c) => assert_eq!(code, *c, "{}: without {cap}", case.name),
            Fails::Says(text) => assert!(
                stderr.contains(text),
                "{}: without {cap} expected {text:?} on stderr, got {stderr:?}",
                case.name
            ),
        }
    }
    serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("settings.json")).expect("settings written"),
    )
    .expect("settings are JSON")
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()]
}

#[test]
fn chown_needs_chown() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("f");
    std::fs::write(&f, "x").expect("write");
    check(Case {
        name: "chown",
        cmd: vec!["chown".into(), "65534".into(), f.display().to_string()],
        netns: false,
        expect: &["CHOWN"],
        fails_with: &[Fails::Exit],
    });
}

#[test]
fn binding_port_80_needs_net_bind_service() {
    guard!(bpf);
    let start = Command::new("unshare")
        .args(["-n", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"])
        .output()
        .expect("unshare");
    let start = String::from_utf8_lossy(&start.stdout).trim().to_owned();
    assert_eq!(
        start, "1024",
        "a new network namespace starts with ip_unprivileged_port_start 1024"
    );
    check(Case {
        name: "bind 80",
        cmd: vec![
            "python3".into(),
            "-c".into(),
            "import socket; s = socket.socket(); s.bind(('0.0.0.0', 80)); s.listen()".into(),
        ],
        netns: true,
        expect: &["NET_BIND_SERVICE"],
        fails_with: &[Fails::Exit],
    });
}

#[test]
fn negative_nice_needs_sys_nice() {
    guard!(bpf);
    check(Case {
        name: "nice -n -5",
        cmd: vec!["nice".into(), "-n".into(), "-5".into(), "true".into()],
        netns: false,
        expect: &["SYS_NICE"],
        fails_with: &[Fails::Says("cannot set niceness")],
    });
}

#[test]
fn raw_icmp_socket_needs_net_raw() {
    guard!(bpf);
    check(Case {
        name: "raw icmp",
        cmd: vec![
            "python3".into(),
            "-c".into(),
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)"
                .into(),
        ],
        netns: false,
        expect: &["NET_RAW"],
        fails_with: &[Fails::Exit],
    });
}

#[test]
fn reading_another_users_private_file_needs_dac_read_search() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("secret");
    std::fs::write(&f, "x").expect("write");
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "chown 65534:65534 {0} && chmod 600 {0}",
            f.display()
        ))
        .status()
        .expect("sh");
    assert!(ok.success());
    // generic_permission() (fs/namei.c): for a plain read the kernel asks for
    // CAP_DAC_READ_SEARCH first and only then CAP_DAC_OVERRIDE; root has it, so that is the check
    // that is granted and recorded, and the narrower capability is enough.
    check(Case {
        name: "read 0600 file of uid 65534",
        cmd: vec!["cat".into(), f.display().to_string()],
        netns: false,
        expect: &["DAC_READ_SEARCH"],
        fails_with: &[Fails::Exit],
    });
}

#[test]
fn dropping_to_nobody_needs_setgid_and_setuid() {
    guard!(bpf);
    let w = workload("dropuid");
    check(Case {
        name: "setgroups/setgid/setuid",
        cmd: vec![w.display().to_string()],
        netns: false,
        expect: &["SETGID", "SETUID"],
        // Without SETGID setgroups (the first step) fails; without SETUID, setuid (step 3).
        fails_with: &[Fails::ExitCode(1), Fails::ExitCode(3)],
    });
}

/// A launcher in the gosu/setpriv style, found through a `PATH` whose first entry it cannot
/// search: the shell's exec there is granted DAC_READ_SEARCH and still fails (ENOENT), and
/// setpriv's capset asks for SETPCAP, which keeping its own sets does not need
/// (docs/capability-checks.md). Only SETGID and SETUID are needed, and the kernel agrees.
fn launcher() -> Vec<String> {
    sh(
        "d=$(mktemp -d /tmp/cinch-launcher.XXXXXX); mkdir \"$d/locked\"; chmod 000 \"$d/locked\"; \
         PATH=\"$d/locked:/usr/bin:/bin\" setpriv --reuid=65534 --regid=65534 --clear-groups -- id -u; rc=$?; \
         chmod 700 \"$d/locked\"; rm -rf \"$d\"; exit $rc",
    )
}

#[test]
fn a_launcher_needs_setgid_and_setuid_only() {
    guard!(bpf);
    check(Case {
        name: "setpriv launcher through a PATH it cannot search",
        cmd: launcher(),
        netns: false,
        expect: &["SETGID", "SETUID"],
        fails_with: &[
            Fails::Says("setresgid failed"),
            Fails::Says("setresuid failed"),
        ],
    });
    // The proof re-runs it without each capability it was granted and agrees.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = prove(dir.path(), &launcher());
    assert_eq!(
        p.cap_add(),
        BTreeSet::from(["SETGID".to_owned(), "SETUID".to_owned()]),
        "{}",
        p.settings
    );
    for cap in ["SETPCAP", "DAC_READ_SEARCH"] {
        assert!(
            p.settings["not_needed"][cap]
                .as_str()
                .is_some_and(|n| n.contains("exit 0 without it")),
            "{cap}: {}",
            p.settings
        );
    }
}

/// chmod of a root-owned file whose group root is not in, setting the set-group-ID bit: the
/// kernel asks for FSETID only to decide whether the bit stays (in_group_or_capable); the
/// chmod succeeds without it. A query only: nothing is added, and it runs with nothing.
#[test]
fn a_query_only_check_adds_nothing() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("tool");
    std::fs::write(&f, "x").expect("write");
    let ok = Command::new("chgrp")
        .arg("65534")
        .arg(&f)
        .status()
        .expect("chgrp");
    assert!(ok.success());
    let cmd = vec![
        "chmod".to_owned(),
        "2755".to_owned(),
        f.display().to_string(),
    ];
    let got = recorded_cap_add(dir.path(), &cmd, false);
    assert!(got.is_empty(), "{got:?}");
    // Not vacuous: FSETID was asked for and granted, and the settings say why it is left out.
    let settings: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("settings.json")).expect("settings"),
    )
    .expect("JSON");
    assert!(
        settings["not_needed"]["FSETID"]
            .as_str()
            .is_some_and(|n| n.starts_with("not needed: CAP_FSETID only keeps")),
        "{settings}"
    );
    let (code, stderr) = run_with_only(&cmd, &BTreeSet::new(), false);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn allocation_and_proc_reads_need_nothing() {
    guard!(bpf);
    if !require(
        "allocation_and_proc_reads_need_nothing",
        Path::new("/proc/1/stat").exists(),
        "/proc is mounted",
    ) {
        return;
    }
    let w = workload("memproc");
    let settings = check(Case {
        name: "mmap/brk + /proc reads",
        cmd: sh(&format!(
            "{} && cat /proc/1/stat /proc/sys/net/core/somaxconn >/dev/null",
            w.display()
        )),
        netns: false,
        expect: &[],
        fails_with: &[],
    });
    // Granted, and each left out by the rule that covers it (docs/capability-checks.md Q1-Q3):
    // the overcommit heuristic, ptrace-mode access while reading another process's /proc
    // entry, and the non-audited CAP_NET_ADMIN probe of /proc/sys/net.
    for (cap, rule) in [
        ("SYS_ADMIN", "overcommit heuristic"),
        ("SYS_PTRACE", "ptrace-mode access check while reading /proc"),
        ("NET_ADMIN", "non-audited capability probe (*_noaudit)"),
    ] {
        assert!(
            settings["not_needed"][cap]
                .as_str()
                .is_some_and(|n| n.contains(rule)),
            "{cap}: {rule}: {settings}"
        );
    }
}

/// Unmounts on drop.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Lookups in an overlayfs mount read its trusted.overlay.* xattrs with the mounter's
/// credentials (override_creds): CAP_SYS_ADMIN is granted to those, not to the workload, which
/// needs nothing (docs/capability-checks.md Q4).
#[test]
fn checks_on_borrowed_credentials_add_nothing() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for sub in ["lower/data", "upper/logs", "work", "merged"] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    std::fs::write(d.join("upper/logs/app.log"), "x").expect("write");
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        d.join("lower").display(),
        d.join("upper").display(),
        d.join("work").display()
    );
    let merged = d.join("merged");
    let ok = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged)
        .status()
        .expect("mount");
    if !require(
        "checks_on_borrowed_credentials_add_nothing",
        ok.success(),
        "an overlayfs mount",
    ) {
        return;
    }
    let _mounted = Mounted(merged.clone());
    let m = merged.display();
    let settings = check(Case {
        name: "lookups in an overlayfs mount",
        cmd: sh(&format!(
            "ls {m}/data {m}/logs >/dev/null && cat {m}/logs/app.log >/dev/null"
        )),
        netns: false,
        expect: &[],
        fails_with: &[],
    });
    assert!(
        settings["not_needed"]["SYS_ADMIN"]
            .as_str()
            .is_some_and(|n| n.contains("credentials the kernel borrowed")),
        "{settings}"
    );
}

/// The fallback for kernels without the cap_capable tracepoint (fexit on cap_capable), forced
/// with CINCH_CAPABILITY_SOURCE=fexit. Where `cinch doctor` finds fexit refused (as on kernels
/// that refuse tracing programs by policy) the recording must say capabilities were not recorded
/// and why, and still hold the syscalls; where it works, it must find CHOWN for chown.
#[test]
fn fexit_fallback_agrees_with_doctor() {
    guard!(bpf);
    let doctor = Command::new(cinch_bin())
        .arg("doctor")
        .output()
        .expect("running cinch doctor");
    let doctor = String::from_utf8_lossy(&doctor.stdout).into_owned();
    let line = doctor
        .lines()
        .find(|l| l.contains("capabilities: fexit on cap_capable"))
        .unwrap_or_else(|| panic!("doctor has no fexit line:\n{doctor}"));
    let fexit_works = line.starts_with("ok ");

    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("f");
    std::fs::write(&f, "x").expect("write");
    let rec = dir.path().join("rec.json");
    let out = Command::new(cinch_bin())
        .env("CINCH_CAPABILITY_SOURCE", "fexit")
        .args(["record", "-q", "-o"])
        .arg(&rec)
        .args(["--", "chown", "65534"])
        .arg(&f)
        .output()
        .expect("running cinch record");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "record failed: {stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rec).expect("recording written"))
            .expect("recording is JSON");
    let source = r["attach"]["capabilities"].as_str().unwrap_or_default();
    let syscalls = r["syscalls"][cinch_tests::NATIVE]
        .as_array()
        .map_or(0, Vec::len);
    assert!(syscalls > 0, "no syscalls recorded: {r}");
    if fexit_works {
        assert_eq!(source, "fexit", "doctor says fexit works: {line}");
        let settings = dir.path().join("settings.json");
        let out = Command::new(cinch_bin())
            .args(["generate", "-o"])
            .arg(dir.path().join("seccomp.json"))
            .arg("--caps-out")
            .arg(&settings)
            .arg(&rec)
            .output()
            .expect("running cinch generate");
        assert!(out.status.success(), "generate failed");
        let settings: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&settings).expect("settings written"))
                .expect("settings are JSON");
        assert_eq!(
            settings["cap_add"],
            serde_json::json!(["CHOWN"]),
            "{settings}"
        );
    } else {
        assert_eq!(source, "none", "doctor says fexit is refused: {line}");
        let warnings = r["warnings"].to_string();
        assert!(
            warnings.contains("fexit on cap_capable could not be attached"),
            "the recording does not say why capabilities are missing: {warnings}"
        );
        assert!(
            stderr.contains("capabilities were not recorded"),
            "no warning on stderr: {stderr}"
        );
    }
}

/// `record --prove-caps` on a command that needs CHOWN (chgrp to a group root is not in) and
/// is granted FSETID only as a query (chmod g+s keeps the bit with it, clears it without), and
/// DAC_READ_SEARCH inside an exec that fails anyway (the first `PATH` entry, which it cannot
/// search). Re-run without each, it fails only without CHOWN: `cap_add` is exactly CHOWN, and
/// the settings carry both verdicts: the rule's and the re-run's.
#[test]
fn proving_capabilities_keeps_only_what_the_command_cannot_do_without() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "d=$(mktemp -d /tmp/cinch-prove-test.XXXXXX); mkdir \"$d/locked\"; chmod 000 \"$d/locked\"; touch \"$d/f\"; \
                  PATH=\"$d/locked:/usr/bin:/bin\"; export PATH; chgrp 65534 \"$d/f\" && chmod 2755 \"$d/f\"; rc=$?; \
                  chmod 700 \"$d/locked\"; rm -rf \"$d\"; exit $rc";
    let cmd = sh(script);
    // Without the proof, the rules already leave out FSETID and DAC_READ_SEARCH.
    let plain = recorded_cap_add(dir.path(), &cmd, false);
    assert_eq!(plain, BTreeSet::from(["CHOWN".to_owned()]));
    let p = prove(dir.path(), &cmd);
    let proof = &p.recording["capability_proof"];
    assert_eq!(proof["exit_with_all"], 0, "{proof}");
    assert_eq!(proof["exit_without"]["CHOWN"], 1, "{proof}");
    assert_eq!(proof["exit_without"]["FSETID"], 0, "{proof}");
    assert_eq!(proof["exit_without"]["DAC_READ_SEARCH"], 0, "{proof}");
    assert!(proof.get("inconclusive").is_none(), "{proof}");
    for (cap, rule) in [
        ("FSETID", "CAP_FSETID only keeps"),
        (
            "DAC_READ_SEARCH",
            "granted inside a syscall that failed anyway",
        ),
    ] {
        let line = format!("granted, not added: {cap} is not needed: {rule}");
        assert!(p.summary.contains(&line), "{line:?} in {}", p.summary);
    }
    let s = &p.settings;
    let kept = p.cap_add();
    assert_eq!(kept, BTreeSet::from(["CHOWN".to_owned()]), "{s}");
    assert!(
        s["notes"]["CHOWN"]
            .as_str()
            .is_some_and(|n| n.starts_with("needed: exit 1 without it")),
        "{s}"
    );
    let fsetid = s["not_needed"]["FSETID"].as_str().unwrap_or_default();
    assert!(
        fsetid.starts_with("not needed: CAP_FSETID only keeps")
            && fsetid.contains("exit 0 without it"),
        "both verdicts for FSETID: {s}"
    );
    // And the kernel agrees: with CHOWN alone the command works.
    let (code, stderr) = run_with_only(&cmd, &kept, false);
    assert_eq!(code, 0, "{stderr}");
    // A proof that cannot run (no temporary directory for its profile) costs no recording: it
    // is written, with the reason as a warning and no proof.
    let rec = dir.path().join("unproved.json");
    let out = Command::new(cinch_bin())
        .args(["record", "-q", "--prove-caps", "-o"])
        .arg(&rec)
        .arg("--")
        .args(&cmd)
        .env("TMPDIR", dir.path().join("no-such-dir"))
        .output()
        .expect("running cinch record --prove-caps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recording: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rec).expect("recording")).expect("JSON");
    assert!(recording.get("capability_proof").is_none(), "{recording}");
    assert!(
        recording["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w
                .as_str()
                .is_some_and(|w| w.contains("--prove-caps could not run"))),
        "{recording}"
    );
}

/// `verify --prove-caps`: `setuid(getuid())` as root asks for SETUID first (__sys_setuid) and,
/// refused, succeeds anyway because the id is already the real one: no rule can see that, a
/// re-run can. Without the proof verify finds SETUID needed and not kept; with it, not needed.
#[test]
fn verify_proves_capabilities_too() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = vec![workload("setuid_self").display().to_string()];
    let g = record_and_generate(dir.path(), &cmd, false, &[]);
    assert_eq!(g.cap_add(), BTreeSet::from(["SETUID".to_owned()]));
    let verify = |prove: bool| {
        let mut c = Command::new(cinch_bin());
        c.args(["verify", "-q", "--format", "json", "--profile"])
            .arg(dir.path().join("seccomp.json"));
        if prove {
            c.arg("--prove-caps");
        }
        c.arg("--").args(&cmd);
        c.output().expect("running cinch verify")
    };
    let out = verify(false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v["targets"][0]["needed_capabilities"],
        serde_json::json!(["SETUID"])
    );
    let out = verify(true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let t = &v["targets"][0];
    assert_eq!(t["needed_capabilities"], serde_json::json!([]), "{t}");
    assert!(
        t["notes"].as_array().expect("notes").iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.starts_with("granted SETUID, which it does not need")
                && n.contains("exit 0 without it"))),
        "{t}"
    );
}

/// no-new-privileges from evidence: a set-user-ID-root copy of `id`, run as nobody, gains
/// privileges at exec (euid 0): the settings do not set no-new-privileges and name it, and the
/// kernel agrees (with the flag it prints nobody's uid). A workload whose execs gain nothing
/// gets it set.
#[test]
fn no_new_privileges_is_set_unless_an_exec_gains_privileges() {
    guard!(bpf);
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let suid = dir.path().join("suid-id");
    std::fs::copy("/usr/bin/id", &suid).expect("copy id");
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).expect("chmod u+s");
    let g = record_and_generate(
        dir.path(),
        &[suid.display().to_string(), "-u".to_owned()],
        false,
        &["--user", "65534:65534"],
    );
    assert_eq!(g.stdout.trim(), "0", "set-user-ID root");
    let s = &g.settings;
    let nnp = &s["no_new_privileges"];
    assert_eq!(nnp["set"], false, "{s}");
    assert!(
        nnp["why"]
            .as_str()
            .is_some_and(|w| w.starts_with("suid-id (1x) gained privileges")),
        "{s}"
    );
    let out = Command::new(cinch_bin())
        .args(["report", "--format", "docker-run"])
        .arg(dir.path().join("seccomp.json"))
        .arg("--caps")
        .arg(dir.path().join("settings.json"))
        .output()
        .expect("running cinch report");
    assert!(out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("no-new-privileges"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The kernel agrees: with the flag, the exec gains nothing.
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--no-new-privs",
        ])
        .arg(&suid)
        .arg("-u")
        .output()
        .expect("setpriv");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65534");
    // Execs that gain nothing: set.
    let g = record_and_generate(dir.path(), &sh("id -u >/dev/null; true"), false, &[]);
    assert_eq!(
        g.settings["no_new_privileges"]["set"], true,
        "{}",
        g.settings
    );
    assert_eq!(
        g.settings["no_new_privileges"]["why"],
        "no exec of the workload gained privileges"
    );
}
