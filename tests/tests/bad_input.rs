//! Privileged tier: bad input across the command line. Every case runs the real binary (with
//! `RUST_BACKTRACE=1`, so a panic could not hide) and must give:
//!
//! - the exit code docs/CLI.md assigns: 2 usage or input error, 3 kernel or privileges, 127 a command
//!   that cannot be started (`record`, `run`), or 0/1 where the input is not an error at all;
//! - exactly one line on stderr, `cinch: ...`, naming the bad thing; never "panicked" or a
//!   backtrace; nothing on stdout;
//! - no output file and no temporary file left behind, an existing output file unchanged, and a
//!   command that was refused never started.
//!
//! The tables are grouped by what they need: file inputs nothing; `run`/`verify` root; the
//! recorder root and BPF; the container cases Docker; the stub case a second cinch built with
//! `AYA_BUILD_SKIP=1` (into `target/stub`, cached by cargo).
//!
//! Decisions recorded here:
//! - a recording, profile or settings file larger than 64 MiB
//!   (`profile_gen::files::MAX_INPUT_BYTES`) is refused before parsing; real ones are a few KiB
//!   to a few MiB, and `/dev/zero` must not exhaust memory;
//! - an output path that exists and is not a regular file (a pipe, `/dev/null`) is refused:
//!   renaming over it would replace the device node itself;
//! - `diff` ignores a syscall name no table knows (runtimes skip it too) and says so on stderr;
//!   its exit code stays the drift verdict;
//! - a container that stops while `record --container` is attached ends the recording: the file
//!   is written and the exit code is 0 (the container's own status belongs to its engine);
//! - `--pid` of a process that has already exited (a zombie included) is exit 2 with no file; one
//!   that exits while recorded ends the recording normally (exit 0);
//! - `verify -- COMMAND` that cannot start is exit 2 (verify does not return the command's
//!   status), where `record` and `run` exit 127 like a shell.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::docker::{Docker, busybox_image};
use cinch_tests::guard;
use cinch_tests::{Ready, cinch_bin, require, workspace_root};

/// One bad input.
struct Case {
    what: String,
    /// Program and arguments cinch runs under (setpriv, capsh); empty for none.
    wrapper: Vec<OsString>,
    bin: PathBuf,
    args: Vec<OsString>,
    code: i32,
    /// Each must appear in the diagnosis.
    names: Vec<String>,
    /// A file the command must not create, or must leave unchanged when it exists.
    output: Option<PathBuf>,
    /// The diagnosis is doctor's report on stdout, not a line on stderr.
    report_on_stdout: bool,
    /// Not an error: stdout carries the command's normal output (diff's verdict).
    stdout_ok: bool,
}

impl Case {
    /// `line` is split on whitespace: the temporary paths used here have none.
    fn new(what: &str, code: i32, line: &str, names: &[&str]) -> Case {
        Case {
            what: what.to_owned(),
            wrapper: Vec::new(),
            bin: cinch_bin(),
            args: line.split_whitespace().map(OsString::from).collect(),
            code,
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            output: None,
            report_on_stdout: false,
            stdout_ok: false,
        }
    }

    fn output(mut self, path: &Path) -> Case {
        self.output = Some(path.to_owned());
        self
    }

    fn bin(mut self, bin: &Path) -> Case {
        self.bin = bin.to_owned();
        self
    }

    fn wrapped(mut self, wrapper: &[&str]) -> Case {
        self.wrapper = wrapper.iter().map(OsString::from).collect();
        self
    }

    fn report_on_stdout(mut self) -> Case {
        self.report_on_stdout = true;
        self
    }

    fn stdout_ok(mut self) -> Case {
        self.stdout_ok = true;
        self
    }
}

/// Path as an argument in a case line.
fn p(path: &Path) -> String {
    let s = path.display().to_string();
    assert!(!s.contains(char::is_whitespace), "{s} has whitespace");
    s
}

/// Files in a directory (names), for "nothing left behind".
fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// The content of a regular file (a pipe given as output is not read: that would block).
fn read_regular(path: &PathBuf) -> Option<Vec<u8>> {
    if is_special(path) {
        return None;
    }
    std::fs::read(path).ok()
}

fn run(case: &Case) -> Output {
    let mut cmd = match case.wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(&case.bin);
            c
        }
        None => Command::new(&case.bin),
    };
    cmd.args(&case.args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}: running cinch: {e}", case.what))
}

/// What was wrong with one case's outcome (empty: it kept the contract).
fn problems(case: &Case, o: &Output, stdout: &str, stderr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if o.status.code() != Some(case.code) {
        problems.push(format!(
            "exit {:?}, expected {}",
            o.status.code(),
            case.code
        ));
    }
    if [stdout, stderr].iter().any(|t| {
        let t = t.to_lowercase();
        t.contains("panicked") || t.contains("backtrace")
    }) {
        problems.push("a panic or a backtrace".to_owned());
    }
    let diagnosis = if case.report_on_stdout {
        if !stderr.trim().is_empty() {
            problems.push("doctor wrote to stderr".to_owned());
        }
        stdout
    } else {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() != 1 {
            problems.push(format!("{} lines on stderr, expected 1", lines.len()));
        }
        if !lines.iter().all(|l| l.starts_with("cinch: ")) {
            problems.push("stderr does not start with `cinch: `".to_owned());
        }
        if !case.stdout_ok && !stdout.is_empty() {
            problems.push("output on stdout".to_owned());
        }
        stderr
    };
    for name in &case.names {
        if !diagnosis.contains(name.as_str()) {
            problems.push(format!("{name:?} not named"));
        }
    }
    problems
}

/// Runs every case; panics listing every case that broke the contract.
fn assert_table(table: &str, cases: &[Case], scratch: &Path) {
    let mut failures = Vec::new();
    for case in cases {
        let out_dir = case
            .output
            .as_ref()
            .and_then(|p| p.parent())
            .filter(|d| d.is_dir() && *d != scratch);
        let before = (files(scratch), out_dir.map(files));
        let before_output = case.output.as_ref().and_then(read_regular);
        let o = run(case);
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut found = problems(case, &o, &stdout, &stderr);
        if let Some(path) = &case.output {
            match (&before_output, &read_regular(path)) {
                (None, Some(_)) => found.push(format!("{} was written", path.display())),
                (Some(b), Some(a)) if a != b => {
                    found.push(format!("{} was changed", path.display()));
                }
                (Some(_), None) => found.push(format!("{} was removed", path.display())),
                _ => {}
            }
        }
        let after = (files(scratch), out_dir.map(files));
        if after != before {
            found.push(format!("files left behind: {before:?} -> {after:?}"));
        }
        if !found.is_empty() {
            let out: Vec<&str> = stdout.lines().take(3).collect();
            failures.push(format!(
                "{}: {}\n      stderr: {}\n      stdout: {}",
                case.what,
                found.join("; "),
                stderr.trim_end(),
                out.join(" | ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{table}: {} of {} bad inputs broke the contract:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    println!(
        "{table}: {} bad inputs, each refused in one sentence",
        cases.len()
    );
}

fn testdata(name: &str) -> PathBuf {
    workspace_root().join("profiles/testdata").join(name)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("writing a test input");
    path
}

/// An executable script that leaves a mark when it runs: a refused command must never start.
fn marker_script(dir: &Path, scratch: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let marker = scratch.join("the-command-ran");
    let script = write(
        dir,
        "mark.sh",
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    );
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, marker)
}

/// A real recording, edited.
fn recording_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let bytes = std::fs::read(testdata("web.json")).expect("reading web.json");
    let mut v: serde_json::Value = serde_json::from_slice(&bytes).expect("web.json is JSON");
    edit(&mut v);
    v.to_string()
}

/// 100 MB of valid JSON: `head`, a list of strings, `tail`.
fn huge_json(path: &Path, head: &str, tail: &str) {
    use std::io::Write as _;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("creating"));
    f.write_all(head.as_bytes()).expect("writing");
    let item = format!("\"{}\",", "x".repeat(126));
    for _ in 0..(100 * 1024 * 1024 / item.len()) {
        f.write_all(item.as_bytes()).expect("writing");
    }
    f.write_all(tail.as_bytes()).expect("writing");
    f.flush().expect("flushing");
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// An unknown syscall name in an otherwise good profile.
const UNKNOWN_SYSCALL_PROFILE: &str = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read","write","exit_group","execve","brk","mmap","frobnicate"],"action":"SCMP_ACT_ALLOW"}]}"#;

const TOO_LARGE: &str = "larger than 64 MiB";

#[test]
fn file_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scratch = d.join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let out = scratch.join("out.json");
    let rec = p(&testdata("web.json"));
    let profile = p(&testdata("golden/web.docker.json"));
    let text = std::fs::read_to_string(testdata("web.json")).expect("web.json");
    let obj = |v: &mut serde_json::Value| v.as_object_mut().expect("object").clone();

    let malformed = write(
        d,
        "malformed.json",
        "{\"schema_version\": 1,, \"host\": {}}",
    );
    let truncated = write(d, "truncated.json", &text[..text.len() / 2]);
    let latin1 = write(
        d,
        "latin1.json",
        b"{\"schema_version\": 1, \"cinch_version\": \"\xe9\xff\"}",
    );
    let nested = write(d, "nested.json", "[".repeat(100_000) + &"]".repeat(100_000));
    let nested_obj = write(
        d,
        "nested-obj.json",
        "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000),
    );
    let empty = write(d, "empty.json", "");
    let v99 = write(
        d,
        "v99.json",
        recording_with(|v| v["schema_version"] = 99.into()),
    );
    let v_str = write(
        d,
        "vstr.json",
        recording_with(|v| v["schema_version"] = "1".into()),
    );
    let no_syscalls = write(
        d,
        "no-syscalls.json",
        recording_with(|v| v["syscalls"] = serde_json::json!({})),
    );
    let mips = write(
        d,
        "mips.json",
        recording_with(|v| {
            let calls = v["syscalls"]["x86_64"].take();
            v["syscalls"] = serde_json::json!({ "mips": calls });
        }),
    );
    let no_host = write(
        d,
        "no-host.json",
        recording_with(|v| {
            let mut o = obj(v);
            o.remove("host");
            *v = o.into();
        }),
    );
    let huge_rec = d.join("huge-recording.json");
    let head = recording_with(|v| {
        let mut o = obj(v);
        o.remove("warnings");
        *v = o.into();
    });
    huge_json(
        &huge_rec,
        &format!("{},\"warnings\":[", head.trim_end_matches('}')),
        "\"end\"]}",
    );
    let huge_profile = d.join("huge-profile.json");
    huge_json(
        &huge_profile,
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"action":"SCMP_ACT_ALLOW","names":["#,
        r#""read"]}]}"#,
    );
    let truncated_profile = write(
        d,
        "truncated-profile.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read""#,
    );
    let no_default = write(d, "no-default.json", r#"{"syscalls": []}"#);
    let bad_yaml = write(
        d,
        "bad.yaml",
        "apiVersion: x\nkind: SeccompProfile\nspec: [\n",
    );
    let unknown_syscall = write(d, "unknown-syscall.json", UNKNOWN_SYSCALL_PROFILE);
    let unknown_cap = write(
        d,
        "caps.json",
        r#"{"cap_drop":["ALL"],"cap_add":["NET_BIND_SERVICE","FLY"]}"#,
    );
    let fifo = scratch.join("fifo.json");
    mkfifo(&fifo);
    let existing = write(&scratch, "existing.json", "a profile written earlier\n");
    let a_dir = scratch.join("a-directory");
    std::fs::create_dir(&a_dir).expect("mkdir");

    let (out_s, nested_s) = (p(&out), p(&nested));
    let g = |what: &str, input: &Path, names: &[&str]| {
        Case::new(what, 2, &format!("generate -o {out_s} {}", p(input)), names).output(&out)
    };
    #[rustfmt::skip]
    let cases = vec![
        g("generate: malformed JSON", &malformed, &["malformed.json", "not valid JSON", "line 1, column 22"]),
        g("generate: truncated recording", &truncated, &["truncated.json", "not valid JSON"]),
        g("generate: non-UTF-8 bytes", &latin1, &["latin1.json", "not valid JSON"]),
        g("generate: 100 MB recording", &huge_rec, &["huge-recording.json", TOO_LARGE]),
        g("generate: 100,000 nested arrays", &nested, &["nested.json", "recursion limit"]),
        g("generate: 50,000 nested objects", &nested_obj, &["nested-obj.json", "recursion limit"]),
        g("generate: empty file", &empty, &["empty.json", "is empty"]),
        g("generate: schema version 99", &v99, &["v99.json", "schema version 99", "reads 1"]),
        g("generate: schema version as a string", &v_str, &["vstr.json", "schema_version"]),
        g("generate: recording with no syscalls", &no_syscalls, &["no-syscalls.json", "no syscalls"]),
        g("generate: unknown architecture", &mips, &["mips.json", "mips"]),
        g("generate: missing field", &no_host, &["no-host.json", "`host`"]),
        g("generate: a profile for a recording", &testdata("golden/web.docker.json"), &["web.docker.json", "not a recording"]),
        g("generate: nonexistent recording", &d.join("nope.json"), &["nope.json", "no such file"]),
        g("generate: /dev/zero as a recording", Path::new("/dev/zero"), &["/dev/zero", TOO_LARGE]),
        Case::new("generate: bad input keeps the existing output", 2, &format!("generate -o {} {}", p(&existing), p(&malformed)), &["malformed.json"]).output(&existing),
        Case::new("generate: output directory missing", 2, &format!("generate -o {}/no/such/p.json {rec}", p(&scratch)), &["no/such", "does not exist"]),
        Case::new("generate: output path is a directory", 2, &format!("generate -o {} {rec}", p(&a_dir)), &["a-directory", "is a directory"]),
        Case::new("generate: output is a pipe", 2, &format!("generate -o {} {rec}", p(&fifo)), &["fifo.json", "not a regular file"]).output(&fifo),
        Case::new("generate: output directory is /proc", 2, &format!("generate -o /proc/cinch.json {rec}"), &["/proc/cinch.json"]),
        Case::new("generate: unknown --format", 2, &format!("generate --format seccomp2 -o {out_s} {rec}"), &["seccomp2", "--format"]).output(&out),
        Case::new("diff: malformed NEW", 2, &format!("diff {profile} {}", p(&malformed)), &["malformed.json", "not valid JSON"]),
        Case::new("diff: 100 MB NEW", 2, &format!("diff {profile} {}", p(&huge_rec)), &["huge-recording.json", TOO_LARGE]),
        Case::new("diff: deeply nested OLD", 2, &format!("diff {nested_s} {rec}"), &["nested.json", "recursion limit"]),
        Case::new("diff: schema version 99", 2, &format!("diff {profile} {}", p(&v99)), &["v99.json", "schema version 99"]),
        // Not an error: the name is ignored (as runc ignores it) and named on stderr; the exit
        // code is the drift verdict (web.json needs more than this small profile allows).
        Case::new("diff: unknown syscall name in a profile", 1, &format!("diff {} {rec}", p(&unknown_syscall)), &["unknown-syscall.json", "frobnicate"]).stdout_ok(),
        Case::new("diff: unknown capability in --new-caps", 2, &format!("diff {profile} {profile} --new-caps {}", p(&unknown_cap)), &["caps.json", "FLY"]),
        Case::new("diff: one side missing", 2, &format!("diff {profile}"), &["NEW"]),
        Case::new("report: truncated profile", 2, &format!("report {}", p(&truncated_profile)), &["truncated-profile.json", "not valid JSON"]),
        Case::new("report: 100 MB profile", 2, &format!("report {}", p(&huge_profile)), &["huge-profile.json", TOO_LARGE]),
        Case::new("report: no defaultAction", 2, &format!("report {}", p(&no_default)), &["no-default.json", "defaultAction"]),
        Case::new("report: broken SeccompProfile YAML", 2, &format!("report {}", p(&bad_yaml)), &["bad.yaml", "SeccompProfile"]),
        Case::new("report: a recording for a profile", 2, &format!("report {rec}"), &["web.json", "recording, not a profile"]),
        Case::new("report: unknown capability name", 2, &format!("report {profile} --caps {}", p(&unknown_cap)), &["caps.json", "unknown capability \"FLY\""]),
        Case::new("report: non-UTF-8 profile", 2, &format!("report {}", p(&latin1)), &["latin1.json"]),
        Case::new("doctor: an argument it does not take", 2, "doctor --fix", &["--fix"]),
    ];
    assert_table("file_inputs", &cases, &scratch);
    assert!(
        std::fs::symlink_metadata(&fifo).is_ok_and(|m| m.file_type().is_fifo()),
        "the pipe given as output is still a pipe"
    );
}

/// `run` and `verify` refuse a bad profile or capability before starting anything.
#[test]
fn enforcement_inputs() {
    guard!(root);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scratch = d.join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let (mark, marker) = marker_script(d, &scratch);
    let mark = p(&mark);
    let ok = p(&cinch_tests::recording_profile());
    let unknown_syscall = p(&write(d, "unknown-syscall.json", UNKNOWN_SYSCALL_PROFILE));
    let unknown_cap = p(&write(
        d,
        "caps.json",
        r#"{"cap_drop":["ALL"],"cap_add":["FLY"]}"#,
    ));
    let other_arch = p(&write(
        d,
        "arm.json",
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64"]}"#,
    ));
    let truncated = p(&write(
        d,
        "truncated.json",
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"#,
    ));
    let fifo = scratch.join("verdict.fifo");
    mkfifo(&fifo);
    let c = |what: &str, code, line: String, names: &[&str]| Case::new(what, code, &line, names);
    #[rustfmt::skip]
    let cases = vec![
        c("run: unknown syscall name in the profile", 2, format!("run --profile {unknown_syscall} -- {mark}"), &["unknown-syscall.json", "frobnicate"]),
        c("verify: unknown syscall name in the profile", 2, format!("verify --profile {unknown_syscall} -- {mark}"), &["unknown-syscall.json", "frobnicate"]),
        c("run: unknown capability in --cap-add", 2, format!("run --profile {ok} --cap-add FLY -- {mark}"), &["FLY", "unknown capability"]),
        c("run: unknown capability in --caps", 2, format!("run --profile {ok} --caps {unknown_cap} -- {mark}"), &["caps.json", "FLY"]),
        c("verify: unknown capability in --cap-add", 2, format!("verify --profile {ok} --cap-add CAP_FLY -- {mark}"), &["CAP_FLY"]),
        c("run: --caps with --cap-add", 2, format!("run --profile {ok} --caps {unknown_cap} --cap-add CHOWN -- {mark}"), &["--caps", "--cap-add"]),
        c("run: profile for another architecture", 2, format!("run --profile {other_arch} -- {mark}"), &["arm.json", "SCMP_ARCH_X86_64"]),
        c("run: truncated profile", 2, format!("run --profile {truncated} -- {mark}"), &["truncated.json", "not valid JSON"]),
        c("run: /dev/zero as the profile", 2, format!("run --profile /dev/zero -- {mark}"), &["/dev/zero", TOO_LARGE]),
        c("run: command not found", 127, format!("run --profile {ok} -- cinch-no-such-command"), &["cinch-no-such-command"]),
        c("verify: command not found", 2, format!("verify --profile {ok} -- cinch-no-such-command"), &["cinch-no-such-command"]),
        c("verify: verdict output is a pipe", 2, format!("verify --profile {ok} -o {} -- {mark}", p(&fifo)), &["verdict.fifo", "not a regular file"]).output(&fifo),
        c("verify: --container with a COMMAND", 2, format!("verify --profile {ok} --container web -- {mark}"), &["--container"]),
        c("verify: --runtime with a COMMAND", 2, format!("verify --profile {ok} --runtime docker -- {mark}"), &["--runtime"]),
        c("verify: --duration with a COMMAND", 2, format!("verify --profile {ok} --duration 5s -- {mark}"), &["--duration"]),
        c("verify: --record-out in a missing directory", 2, format!("verify --profile {ok} --record-out {}/no-such-dir/rec.json -- {mark}", p(&scratch)), &["no-such-dir", "does not exist"]),
        c("verify: --record-out is a directory", 2, format!("verify --profile {ok} --record-out {} -- {mark}", p(&scratch)), &["is a directory"]),
        c("run: no --profile", 2, format!("run -- {mark}"), &["--profile"]),
    ];
    assert_table("enforcement_inputs", &cases, &scratch);
    assert!(
        !marker.exists(),
        "a refused run or verify started its command"
    );
}

/// A read-only bind mount of a directory, undone on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(dir: &Path) -> ReadOnlyMount {
        for args in [
            ["--bind", &p(dir), &p(dir)],
            ["-o", "remount,bind,ro", &p(dir)],
        ] {
            let st = Command::new("mount")
                .args(args)
                .status()
                .expect("running mount");
            assert!(st.success(), "mount {args:?}");
        }
        ReadOnlyMount(dir.to_owned())
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A pid no process has: a child that has exited and was reaped.
fn free_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawning true");
    let pid = child.id();
    child.wait().expect("reaping true");
    pid
}

#[test]
fn record_inputs() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let scratch = d.join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let (mark, marker) = marker_script(d, &scratch);
    let mark = p(&mark);
    let out = scratch.join("rec.json");
    let o = p(&out);
    let read_only = d.join("read-only");
    std::fs::create_dir(&read_only).expect("mkdir");
    let _ro = ReadOnlyMount::new(&read_only);
    let fifo = scratch.join("rec.fifo");
    mkfifo(&fifo);
    let existing = write(&scratch, "existing.json", "a recording from yesterday\n");
    let gone = free_pid();
    // A child that exits at once and is never reaped: a zombie, which makes no more syscalls.
    let mut zombie = Command::new("true").spawn().expect("spawning true");
    std::thread::sleep(Duration::from_millis(300));
    let zombie_pid = zombie.id();

    let c = |what: &str, code, line: String, names: &[&str]| {
        Case::new(what, code, &format!("record -q {line}"), names).output(&out)
    };
    #[rustfmt::skip]
    let cases = vec![
        c("record: command not found", 127, format!("-o {o} -- cinch-no-such-command"), &["cinch-no-such-command", "not found"]),
        c("record: command not executable", 127, format!("-o {o} -- /etc/passwd"), &["/etc/passwd"]),
        c("record: output directory missing", 2, format!("-o {}/no/such/rec.json -- {mark}", p(&scratch)), &["no/such", "does not exist"]),
        c("record: output directory is /proc", 2, format!("-o /proc/cinch-rec.json -- {mark}"), &["/proc/cinch-rec.json", "not writable"]),
        c("record: output directory is /sys", 2, format!("-o /sys/cinch-rec.json -- {mark}"), &["/sys/cinch-rec.json", "not writable"]),
        c("record: output directory is a read-only mount", 2, format!("-o {}/rec.json -- {mark}", p(&read_only)), &["read-only/rec.json", "read-only file system"]).output(&read_only.join("rec.json")),
        c("record: output path is a directory", 2, format!("-o {} -- {mark}", p(&scratch)), &["is a directory"]),
        c("record: output is a pipe", 2, format!("-o {} -- {mark}", p(&fifo)), &["rec.fifo", "not a regular file"]).output(&fifo),
        c("record: --pid of no process", 2, format!("-o {o} --pid {gone}"), &[&format!("--pid {gone}"), "no such process"]),
        c("record: --pid of a process that already exited", 2, format!("-o {o} --pid {zombie_pid}"), &[&format!("--pid {zombie_pid}"), "exited"]),
        c("record: --pid 0", 2, format!("-o {o} --pid 0"), &["--pid 0"]),
        c("record: --pid not a number", 2, format!("-o {o} --pid web"), &["'web'", "--pid"]),
        c("record: --duration malformed", 2, format!("-o {o} --duration 5x --pid 1"), &["5x", "not a duration"]),
        c("record: --duration overflows", 2, format!("-o {o} --duration 99999999999999999999d --pid 1"), &["99999999999999999999d"]),
        c("record: --duration with a COMMAND", 2, format!("-o {o} --duration 10s -- {mark}"), &["--duration"]),
        c("record: --pid with --container", 2, format!("-o {o} --pid 1 --container web"), &["--pid", "--container"]),
        c("record: --pid with a COMMAND", 2, format!("-o {o} --pid 1 -- {mark}"), &["--pid"]),
        c("record: --user with --pid", 2, format!("-o {o} --user nobody --pid 1"), &["--user"]),
        c("record: --runtime with a COMMAND", 2, format!("-o {o} --runtime docker -- {mark}"), &["--runtime"]),
        c("record: --runtime with --pid", 2, format!("-o {o} --runtime docker --pid 1"), &["--runtime", "--pid"]),
        c("record: nothing to record", 2, format!("-o {o}"), &["COMMAND", "--pid", "--container", "--new-containers"]),
        c("record: --user of no such user", 2, format!("-o {o} --user cinch-nobody-at-all -- {mark}"), &["cinch-nobody-at-all"]),
        c("record: a container name that is a shell command", 2, format!("-o {o} --container $(touch${{IFS}}/tmp/x)"), &["$(touch${IFS}/tmp/x)", "not a container name"]),
        c("record: a container name that is a path", 2, format!("-o {o} --container ../../etc/passwd"), &["../../etc/passwd", "not a container name"]),
        c("record: --new-containers into a file", 2, format!("--new-containers -o {} --duration 1s", p(&existing)), &["existing.json", "not a directory"]).output(&existing),
        c("record: bad input keeps the existing recording", 2, format!("-o {} --duration 1 -- {mark}", p(&existing)), &["--duration"]).output(&existing),
    ];
    assert_table("record_inputs", &cases, &scratch);
    zombie.wait().expect("reaping the zombie");
    assert!(!marker.exists(), "a refused record started its command");
}

/// `cinch agent`: every refusal comes before the probe loads or anything is written (a case
/// that passed would run until killed: none may).
#[test]
fn agent_inputs() {
    // The output directory is made once the probe has loaded.
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).expect("mkdir");
    let out = p(&scratch.join("agent"));
    // Not /proc: its listing, which the table compares before and after, changes with every
    // process on the machine.
    let under_file = write(&scratch, "a-file", "").join("agent");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("its address").port();
    let c = |what: &str, line: String, names: &[&str]| {
        Case::new(what, 2, &format!("agent {line}"), names).output(&scratch.join("agent"))
    };
    #[rustfmt::skip]
    let cases = vec![
        c("agent: --selector without =", format!("-o {out} --selector app"), &["'app'", "KEY=VALUE"]),
        c("agent: --selector without a key", format!("-o {out} --selector =web"), &["'=web'", "KEY=VALUE"]),
        c("agent: --annotation without =", format!("-o {out} --annotation example.com/record"), &["'example.com/record'", "KEY=VALUE"]),
        c("agent: --namespace not a namespace name", format!("-o {out} --namespace Shop_1"), &["Shop_1", "namespace"]),
        c("agent: --node not a node name", format!("-o {out} --node a/b"), &["a/b", "node name"]),
        c("agent: --slots 0", format!("-o {out} --slots 0"), &["'0'", "--slots"]),
        c("agent: --slots beyond 256", format!("-o {out} --slots 257"), &["'257'", "--slots"]),
        c("agent: --listen not an address", format!("-o {out} --listen localhost"), &["'localhost'", "--listen"]),
        c("agent: --listen on a port in use", format!("-o {out} --listen 127.0.0.1:{port}"), &[&format!("127.0.0.1:{port}"), "address already in use"]),
        c("agent: --output under a regular file", format!("-o {}", p(&under_file)), &[&p(&under_file), "cannot create"]).output(&under_file),
    ];
    assert_table("agent_inputs", &cases, &scratch);
    drop(taken);
}

/// Only the summary on stderr (`record` prints it with `-q` too).
fn assert_summary_only(stderr: &[u8]) {
    let err = String::from_utf8_lossy(stderr);
    assert!(
        err.lines().count() == 1 && err.starts_with("cinch: recorded "),
        "only the summary on stderr: {err}"
    );
}

fn syscall_names(rec: &profile_gen::Recording) -> Vec<&str> {
    rec.syscalls
        .values()
        .flatten()
        .filter_map(|c| c.name.as_deref())
        .collect()
}

/// A process that exits while it is recorded ends the recording: exit 0, a valid file.
#[test]
fn record_pid_that_exits_while_recorded() {
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    // The process goes on (and ends) only once cinch records: it waits for a line on stdin.
    let mut target = Command::new("sh")
        .args(["-c", "read go; ls / > /dev/null"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawning sh");
    let started = Instant::now();
    let mut record = Command::new(cinch_bin());
    record
        .args(["record", "-q", "--pid", &target.id().to_string(), "-o"])
        .arg(&out)
        .args(["--ready-fd", Ready::FD])
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut ready = Ready::new(&mut record);
    let cinch = record.spawn().expect("running cinch record --pid");
    ready.wait(Duration::from_secs(30));
    {
        use std::io::Write as _;
        let mut stdin = target.stdin.take().expect("sh's stdin");
        stdin.write_all(b"go\n").expect("writing to sh");
    }
    let o = cinch.wait_with_output().expect("waiting for cinch");
    target.wait().expect("reaping sh");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_summary_only(&o.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the recording ended with the process"
    );
    let rec = profile_gen::read_recording(&out).expect("a valid recording");
    let names = syscall_names(&rec);
    for needed in ["wait4", "exit_group"] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
    assert!(!rec.startup_observed);
}

/// The cinch binary copied where an unprivileged user can run it, and a directory it can write.
fn unprivileged_copy(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let chmod = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    chmod(dir, 0o755);
    let bin = dir.join("cinch");
    std::fs::copy(cinch_bin(), &bin).expect("copying cinch");
    chmod(&bin, 0o755);
    let out_dir = dir.join("out");
    std::fs::create_dir(&out_dir).expect("mkdir");
    chmod(&out_dir, 0o777);
    (bin, out_dir)
}

/// Not root, or root without the capabilities eBPF needs: exit 3, naming what is missing.
#[test]
fn missing_privileges() {
    const NAME: &str = "missing_privileges";
    guard!(bpf);
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !require(
        NAME,
        have("setpriv") && have("capsh"),
        "setpriv (util-linux) and capsh (libcap2-bin) are needed",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, out_dir) = unprivileged_copy(dir.path());
    let out = out_dir.join("rec.json");
    let o = p(&out);
    let nobody = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--",
    ];
    // capsh runs cinch through a shell: `capsh --drop=CAPS -- -c "exec cinch ..."`.
    let without = |what: &str, caps: &str, names: &[&str]| {
        let mut case = Case::new(what, 3, "", names)
            .bin(Path::new("capsh"))
            .output(&out);
        case.args = vec![
            format!("--drop={caps}").into(),
            "--".into(),
            "-c".into(),
            format!("exec {} record -q -o {o} -- /bin/true", p(&bin)).into(),
        ];
        case
    };
    #[rustfmt::skip]
    let cases = vec![
        Case::new("record: not root", 3, &format!("record -q -o {o} -- /bin/true"), &["Operation not permitted", "CAP_BPF", "CAP_PERFMON", "sudo"]).bin(&bin).wrapped(&nobody).output(&out),
        Case::new("record --pid: not root", 3, &format!("record -q -o {o} --pid 1 --duration 1s"), &["CAP_BPF"]).bin(&bin).wrapped(&nobody).output(&out),
        without("record: without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN", "cap_bpf,cap_perfmon,cap_sys_admin", &["lacks CAP_BPF and CAP_PERFMON"]),
        without("record: without CAP_PERFMON and CAP_SYS_ADMIN", "cap_perfmon,cap_sys_admin", &["lacks CAP_PERFMON"]),
        Case::new("doctor: not root", 3, "doctor", &["FAIL privileges", "CAP_BPF no", "CAP_PERFMON no"]).bin(&bin).wrapped(&nobody).report_on_stdout(),
    ];
    assert_table(NAME, &cases, &out_dir);
}

/// A cinch built with `AYA_BUILD_SKIP=1` (no eBPF object), in `target/stub`: built once, then
/// reused (cargo finds it up to date).
fn stub_cinch() -> PathBuf {
    let target = workspace_root().join("target").join("stub");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-q", "-p", "cinch"])
        .current_dir(workspace_root())
        .env("AYA_BUILD_SKIP", "1")
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("running cargo build for the stub cinch");
    assert!(status.success(), "building the stub cinch failed");
    target.join("debug").join("cinch")
}

#[test]
fn stub_ebpf_object() {
    guard!(root);
    let stub = stub_cinch();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    let o = p(&out);
    #[rustfmt::skip]
    let cases = vec![
        Case::new("record: stub object", 3, &format!("record -q -o {o} -- /bin/true"), &["without its eBPF object", "AYA_BUILD_SKIP", "cargo xtask setup"]).bin(&stub).output(&out),
        Case::new("record --pid: stub object", 3, &format!("record -q -o {o} --pid 1"), &["without its eBPF object"]).bin(&stub).output(&out),
        Case::new("doctor: stub object", 3, "doctor", &["FAIL eBPF object", "AYA_BUILD_SKIP"]).bin(&stub).report_on_stdout(),
    ];
    assert_table("stub_ebpf_object", &cases, dir.path());
}

/// A container removed on drop.
struct Named<'a>(&'a Docker, String);

impl Drop for Named<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(&["rm", "-f", &self.1]);
    }
}

#[test]
fn container_inputs() {
    const NAME: &str = "container_inputs";
    guard!(bpf);
    let Some(docker) = Docker::require(NAME) else {
        return;
    };
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    let o = p(&out);
    let stopped = Named(
        &docker,
        format!("cinch-bad-input-stopped-{}", std::process::id()),
    );
    let created = docker.cmd(&[
        "create",
        "--pull",
        "never",
        "--network",
        "none",
        "--name",
        &stopped.1,
        &image,
        "true",
    ]);
    assert!(
        created.status.success(),
        "docker create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let profile = p(&cinch_tests::recording_profile());
    let s = &stopped.1;
    #[rustfmt::skip]
    let cases = vec![
        Case::new("record: no such container", 2, &format!("record -q -o {o} --container cinch-no-such-container"), &["cinch-no-such-container", "no container"]).output(&out),
        Case::new("record: no such container in the engine asked", 2, &format!("record -q -o {o} --runtime docker --container cinch-no-such-container"), &["cinch-no-such-container", "docker"]).output(&out),
        Case::new("record: container not running", 2, &format!("record -q -o {o} --container {s}"), &[s, "not running"]).output(&out),
        Case::new("verify: no such container", 2, &format!("verify --profile {profile} --container cinch-no-such-container"), &["cinch-no-such-container"]),
    ];
    assert_table(NAME, &cases, dir.path());
}

/// A container that stops while `record --container` is attached: the recording ends with it,
/// is written, and cinch exits 0.
#[test]
fn container_that_exits_while_recorded() {
    const NAME: &str = "container_that_exits_while_recorded";
    guard!(bpf);
    let Some(docker) = Docker::require(NAME) else {
        return;
    };
    let image = busybox_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rec.json");
    let name = Named(
        &docker,
        format!("cinch-bad-input-exits-{}", std::process::id()),
    );
    let seccomp = format!("seccomp={}", p(&cinch_tests::recording_profile()));
    let script = "sleep 2; ls / > /dev/null; exit 3";
    let run = docker.cmd(&[
        "run",
        "-d",
        "--pull",
        "never",
        "--network",
        "none",
        "--security-opt",
        &seccomp,
        "--name",
        &name.1,
        &image,
        "sh",
        "-c",
        script,
    ]);
    assert!(
        run.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let started = Instant::now();
    let o = Command::new(cinch_bin())
        .args(["record", "-q", "--container", &name.1, "-o"])
        .arg(&out)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running cinch record --container");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_summary_only(&o.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the recording ended with the container"
    );
    let rec = profile_gen::read_recording(&out).expect("a valid recording");
    match &rec.target {
        profile_gen::recording::Target::Container { name: n, .. } => assert_eq!(n, &name.1),
        other => panic!("target {other:?}"),
    }
    let names = syscall_names(&rec);
    for needed in ["getdents64", "exit_group", "wait4"] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
    assert_eq!(rec.lost.syscalls, 0);
}

/// Files and directories cinch creates are mode 0644 / owned by the invoking user under sudo
/// (`SUDO_UID`/`SUDO_GID`), whatever the umask, so that the user can edit and commit them.
#[test]
fn outputs_belong_to_the_sudo_user() {
    use std::os::unix::fs::MetadataExt as _;
    guard!(bpf);
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let profile = d.join("seccomp.json");
    let caps = d.join("settings.json");
    let rec = d.join("rec.json");
    let recs = d.join("recordings/new");
    let cinch = p(&cinch_bin());
    let script = format!(
        "umask 077 && {cinch} generate -o {} --caps-out {} {} && {cinch} record -o {} -- /bin/true && {cinch} record --new-containers -o recordings/new --duration 1s",
        p(&profile),
        p(&caps),
        p(&testdata("web.json")),
        p(&rec),
    );
    // A relative directory, as the default `cinch-recordings` is.
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(d)
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65533")
        .stdin(Stdio::null())
        .output()
        .expect("running cinch under sh");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in [&profile, &caps, &rec] {
        let m = std::fs::metadata(file).expect("written");
        assert_eq!(
            (m.uid(), m.gid()),
            (65534, 65533),
            "{} owner",
            file.display()
        );
        assert_eq!(m.mode() & 0o777, 0o644, "{} mode", file.display());
    }
    for created in [&recs, &d.join("recordings")] {
        let m = std::fs::metadata(created).expect("created");
        assert_eq!(
            (m.uid(), m.gid()),
            (65534, 65533),
            "{} owner",
            created.display()
        );
    }
    // Not under sudo: root keeps them.
    let plain = d.join("plain.json");
    let o = Command::new(cinch_bin())
        .args(["generate", "-o"])
        .arg(&plain)
        .arg(testdata("web.json"))
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .output()
        .expect("running cinch generate");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::metadata(&plain).expect("written").uid(), 0);
}
