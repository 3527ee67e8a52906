//! `cinch generate`, `diff` and `report` as users run them: exit codes, one-sentence errors, and
//! no output file left behind on failure. No root needed (built with `AYA_BUILD_SKIP=1` is fine).

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

const CINCH: &str = env!("CARGO_BIN_EXE_cinch");

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../profiles/testdata")
        .join(name)
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cinch-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, contents).expect("write scratch file");
        p
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read scratch dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cinch<I: AsRef<OsStr>>(args: &[I]) -> Output {
    Command::new(CINCH)
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env_remove("CINCH_LOG")
        .output()
        .expect("runs cinch")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn web_recording() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(testdata("web.json")).expect("reads web.json"))
        .expect("parses")
}

fn no_panic(err: &str) {
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(
        !err.to_lowercase().contains("backtrace"),
        "backtrace: {err}"
    );
    assert!(!err.contains("RUST_BACKTRACE"), "backtrace hint: {err}");
}

#[test]
fn bad_input_table() {
    let scratch = Scratch::new();
    let mut empty = web_recording();
    empty["syscalls"] = serde_json::json!({});
    let mut unknown = web_recording();
    unknown["syscalls"] = serde_json::json!({"x86_64": [{"nr": 999, "name": null, "count": 3}, {"nr": 1000, "name": null, "count": 1}]});
    let malformed = scratch.write("malformed.json", "{\n  \"schema_version\": 1,\n  oops\n}\n");
    let v4 = scratch.write("v4.json", "{\"schema_version\": 4, \"whatever\": []}\n");
    let empty = scratch.write("empty.json", &empty.to_string());
    let unknown = scratch.write("unknown.json", &unknown.to_string());
    let good = scratch.write("good.json", &web_recording().to_string());
    let out = scratch.path("out.json");
    let out_str = out.to_string_lossy().into_owned();

    // A directory the current user cannot create files in: root ignores permission bits, but
    // not sysfs.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let readonly = scratch.path("readonly");
    std::fs::create_dir(&readonly).expect("mkdir");
    let unwritable_dir = if root {
        PathBuf::from("/sys")
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&readonly, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        readonly
    };
    let unwritable = unwritable_dir.join("cinch-test-profile.json");
    let is_dir = scratch.path("adir");
    std::fs::create_dir(&is_dir).expect("mkdir");

    let path = |p: &Path| p.to_string_lossy().into_owned();
    let table: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "malformed JSON",
            vec!["-o".into(), out_str.clone(), path(&malformed)],
            "line 3, column 3",
        ),
        (
            "wrong schema version",
            vec!["-o".into(), out_str.clone(), path(&v4)],
            "schema version 4, this cinch reads 1 to 3",
        ),
        (
            "empty recording",
            vec!["-o".into(), out_str.clone(), path(&empty)],
            "has no syscalls",
        ),
        (
            "only unknown numbers",
            vec!["-o".into(), out_str.clone(), path(&unknown)],
            "none of the 2 syscall numbers",
        ),
        (
            "missing recording",
            vec![
                "-o".into(),
                out_str.clone(),
                path(&scratch.path("nope.json")),
            ],
            "no such file",
        ),
        (
            "unwritable output directory",
            vec!["-o".into(), path(&unwritable), path(&good)],
            "cannot create a file in",
        ),
        (
            "output path is a directory",
            vec!["-o".into(), path(&is_dir), path(&good)],
            "is a directory",
        ),
        (
            "missing output directory",
            vec![
                "-o".into(),
                path(&scratch.path("no/such/dir.json")),
                path(&good),
            ],
            "does not exist",
        ),
        (
            "caps-out in a missing directory",
            vec![
                "-o".into(),
                out_str.clone(),
                "--caps-out".into(),
                path(&scratch.path("no/caps.json")),
                path(&good),
            ],
            "does not exist",
        ),
        (
            "ENOSYS in an SPO resource",
            vec![
                "--format".into(),
                "spo".into(),
                "--default-errno".into(),
                "ENOSYS".into(),
                "-o".into(),
                out_str,
                path(&good),
            ],
            "no defaultErrnoRet field",
        ),
    ];
    let before = scratch.files();
    for (what, args, expect) in table {
        let mut full = vec!["generate".to_string()];
        full.extend(args);
        let o = cinch(&full);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{what}: exit code; stderr: {err}");
        no_panic(&err);
        assert_eq!(
            err.lines().count(),
            1,
            "{what}: one line on stderr, got: {err}"
        );
        let line = err.trim_end();
        assert!(line.starts_with("cinch: "), "{what}: {line}");
        let sentence = &line["cinch: ".len()..];
        assert!(
            sentence.starts_with(|c: char| !c.is_uppercase()),
            "{what}: lowercase sentence: {line}"
        );
        assert!(
            line.contains(expect),
            "{what}: expected {expect:?} in {line}"
        );
        assert!(stdout(&o).is_empty(), "{what}: nothing on stdout");
        assert_eq!(
            scratch.files(),
            before,
            "{what}: no output or temporary file left behind"
        );
        assert!(!unwritable.exists(), "{what}");
        assert_eq!(
            std::fs::read_dir(&is_dir).map(|d| d.count()).unwrap_or(0),
            0,
            "{what}"
        );
    }
}

/// clap rejects an unknown `--format` before cinch runs: exit 2, the bad value named, no panic.
/// clap's own report is three lines (the error, the possible values, a pointer to --help); making
/// it one line needs `Cli::try_parse` in main.rs.
#[test]
fn unknown_format_is_a_usage_error() {
    let scratch = Scratch::new();
    let out = scratch.path("out.json");
    let o = cinch(&[
        "generate".as_ref(),
        "--format".as_ref(),
        "bogus".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    no_panic(&err);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("invalid value 'bogus'") && first.contains("--format"),
        "{err}"
    );
    assert!(err.contains("docker, oci, kubernetes, spo"), "{err}");
    assert!(scratch.files().is_empty());
}

#[test]
fn generate_writes_profile_settings_and_summary() {
    let scratch = Scratch::new();
    let out = scratch.path("web.json");
    let caps = scratch.path("web-caps.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "--caps-out".as_ref(),
        caps.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(stdout(&o).is_empty());
    assert!(err.contains("Docker's default"), "{err}");
    assert!(
        err.contains("cap_add CHOWN, NET_BIND_SERVICE, SETGID, SETUID"),
        "{err}"
    );
    let golden = std::fs::read(testdata("golden/web.docker.json")).expect("golden");
    assert_eq!(std::fs::read(&out).expect("profile"), golden);
    let golden_caps = std::fs::read(testdata("golden/web.caps.json")).expect("golden caps");
    assert_eq!(std::fs::read(&caps).expect("caps"), golden_caps);
    assert_eq!(scratch.files(), ["web-caps.json", "web.json"]);

    // Kubernetes: the profile file plus a Pod naming it on stdout.
    let k8s = scratch.path("web-k8s.json");
    let o = cinch(&[
        "generate".as_ref(),
        "--format".as_ref(),
        "kubernetes".as_ref(),
        "-o".as_ref(),
        k8s.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("kind: Pod")
            && stdout(&o).contains("localhostProfile: \"cinch/web-k8s.json\""),
        "{}",
        stdout(&o)
    );

    // Refuses to overwrite an input.
    let rec = scratch.write("rec.json", &web_recording().to_string());
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        rec.as_os_str(),
        rec.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("refusing to overwrite recording"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn diff_exit_codes_with_profiles_and_recordings_mixed() {
    let scratch = Scratch::new();
    let web_profile = scratch.path("web-profile.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        web_profile.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let merged_profile = scratch.path("merged-profile.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        merged_profile.as_os_str(),
        testdata("web.json").as_os_str(),
        testdata("attach.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The same profile, reordered and reformatted: not drift.
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&web_profile).expect("read")).expect("json");
    if let Some(names) = v["syscalls"][0]["names"].as_array_mut() {
        names.reverse();
    }
    let reordered = scratch.write("reordered.json", &v.to_string());
    let spo = testdata("golden/web.spo.yaml");
    let web = testdata("web.json");
    let attach = testdata("attach.json");
    let malformed = scratch.write("malformed.json", "{\"defaultAction\": ");

    let cases: Vec<(&str, &Path, &Path, i32)> = vec![
        ("profile vs its own recording", &web_profile, &web, 0),
        ("recording vs recording, more needed", &web, &attach, 1),
        ("recording vs itself", &web, &web, 0),
        ("profile vs reordered copy", &web_profile, &reordered, 0),
        (
            "smaller profile vs larger profile",
            &web_profile,
            &merged_profile,
            1,
        ),
        (
            "larger profile vs smaller profile",
            &merged_profile,
            &web_profile,
            0,
        ),
        ("profile vs SPO resource of the same", &web_profile, &spo, 0),
        (
            "merged profile vs the attach recording",
            &merged_profile,
            &attach,
            0,
        ),
        (
            "web profile vs the attach recording",
            &web_profile,
            &attach,
            1,
        ),
        ("malformed OLD", &malformed, &web, 2),
        (
            "missing NEW",
            &web_profile,
            Path::new("/nonexistent/cinch.json"),
            2,
        ),
    ];
    for (what, old, new, code) in cases {
        let o = cinch(&["diff".as_ref(), old.as_os_str(), new.as_os_str()]);
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{what}: stdout {} stderr {err}",
            stdout(&o)
        );
        no_panic(&err);
        if code == 2 {
            assert_eq!(err.lines().count(), 1, "{what}: {err}");
        } else {
            assert!(err.is_empty(), "{what}: {err}");
        }
    }

    // Formats.
    let o = cinch(&[
        "diff".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        web_profile.as_os_str(),
        attach.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json output");
    assert_eq!(json["drift"], true);
    assert!(
        json["added"]["syscalls"]["x86"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    let o = cinch(&[
        "diff".as_ref(),
        "--format".as_ref(),
        "markdown".as_ref(),
        web_profile.as_os_str(),
        attach.as_os_str(),
    ]);
    assert!(
        stdout(&o).starts_with("### cinch: seccomp drift"),
        "{}",
        stdout(&o)
    );

    // Capabilities: a new one is drift once OLD's settings are known.
    let caps = scratch.path("web-caps.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        scratch.path("p.json").as_os_str(),
        "--caps-out".as_ref(),
        caps.as_os_str(),
        web.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = cinch(&[
        "diff".as_ref(),
        "--old-caps".as_ref(),
        caps.as_os_str(),
        merged_profile.as_os_str(),
        attach.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("+ capabilities: SYS_RESOURCE"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn report_formats() {
    let scratch = Scratch::new();
    let profile = scratch.path("p.json");
    let caps = scratch.path("c.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        profile.as_os_str(),
        "--caps-out".as_ref(),
        caps.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    for format in [
        "text",
        "markdown",
        "json",
        "docker-run",
        "compose",
        "kubernetes",
    ] {
        let o = cinch(&[
            "report".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            profile.as_os_str(),
            "--caps".as_ref(),
            caps.as_os_str(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{format}: {}", stderr(&o));
        assert!(!stdout(&o).is_empty(), "{format}");
        // What was granted and left out is explained with the rest.
        let left_out = match format {
            "text" => Some("granted, not added: SYS_ADMIN is not needed: overcommit heuristic"),
            "markdown" => Some("`SYS_ADMIN` was granted and left out: not needed: overcommit"),
            "json" => Some("\"not_needed\""),
            _ => None,
        };
        if let Some(text) = left_out {
            assert!(stdout(&o).contains(text), "{format}: {}", stdout(&o));
        }
    }
    let o = cinch(&[
        "report".as_ref(),
        "--format".as_ref(),
        "docker-run".as_ref(),
        profile.as_os_str(),
        "--caps".as_ref(),
        caps.as_os_str(),
    ]);
    assert_eq!(stdout(&o).lines().count(), 1);
    assert!(
        stdout(&o).contains("--cap-drop ALL --cap-add CHOWN"),
        "{}",
        stdout(&o)
    );
    let o = cinch(&["report".as_ref(), testdata("web.json").as_os_str()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("is a cinch recording, not a profile"),
        "{}",
        stderr(&o)
    );
}

/// `cinch report` on every committed profile lists nothing beyond Docker's default that the
/// workload did not do: each argument value it names as beyond Docker's default is one the
/// profile's own recordings observed, and no argument-sensitive syscall is allowed bare where
/// Docker's default conditions it.
#[test]
fn committed_profiles_go_beyond_dockers_default_only_where_the_workload_did() {
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(&profiles).expect("profiles/") {
        let dir = entry.expect("entry").path();
        let seccomp = dir.join("seccomp.json");
        if !seccomp.is_file() {
            continue;
        }
        let out = cinch(&[
            "report",
            "--format",
            "json",
            "--caps",
            dir.join("settings.json").to_str().expect("utf-8"),
            seccomp.to_str().expect("utf-8"),
        ]);
        assert!(
            out.status.success(),
            "report {}: {}",
            dir.display(),
            stderr(&out)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report json");
        let mut recorded: Vec<(String, String)> = Vec::new();
        for rec in std::fs::read_dir(dir.join("recordings")).expect("recordings") {
            let v: serde_json::Value = serde_json::from_slice(
                &std::fs::read(rec.expect("entry").path()).expect("recording"),
            )
            .expect("recording json");
            for args in v["arguments"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                for a in args.as_array().into_iter().flatten() {
                    let name = a["name"].as_str().unwrap_or_default().to_owned();
                    for value in a["values"].as_array().into_iter().flatten() {
                        let value = value["value"].as_u64().expect("a number");
                        recorded.push((
                            name.clone(),
                            profile_gen::arg_rules::value_name(&name, value),
                        ));
                    }
                }
            }
        }
        let lines = report["arguments"]
            .as_array()
            .expect("arguments in the report");
        assert!(
            !lines.is_empty(),
            "{}: no argument conditions",
            dir.display()
        );
        for line in lines {
            let name = line["name"].as_str().expect("name");
            for beyond in line["beyond_docker"].as_array().into_iter().flatten() {
                let beyond = beyond.as_str().expect("a string").to_owned();
                assert!(
                    recorded.contains(&(name.to_owned(), beyond.clone())),
                    "{}: {name}({beyond}) is beyond Docker's default and was never recorded",
                    dir.display()
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} committed profiles found");
}

/// Options that only mean something with another are refused, not silently ignored.
#[test]
fn options_that_would_be_ignored_are_refused() {
    let scratch = Scratch::new();
    let out = scratch.path("p.json");
    let rec = testdata("web.json");
    // --name names an SPO resource; with another format it used to be dropped.
    let o = cinch(&[
        "generate".as_ref(),
        "--name".as_ref(),
        "web".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        rec.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--name \"web\"") && stderr(&o).contains("--format spo"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing written");
    // --old-caps goes with a profile: a recording's capabilities are the ones it observed.
    let profile = scratch.path("web.json");
    let caps = scratch.path("caps.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        profile.as_os_str(),
        "--caps-out".as_ref(),
        caps.as_os_str(),
        rec.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for (flag, args) in [
        ("--old-caps", [rec.as_os_str(), profile.as_os_str()]),
        ("--new-caps", [profile.as_os_str(), rec.as_os_str()]),
    ] {
        let o = cinch(&[
            "diff".as_ref(),
            args[0],
            args[1],
            flag.as_ref(),
            caps.as_os_str(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(flag) && stderr(&o).contains("web.json is a recording"),
            "{flag}: {}",
            stderr(&o)
        );
    }
    // Without a target, record says what it can record.
    let o = cinch(&["record", "-o", "/nonexistent/r.json"]);
    assert_eq!(o.status.code(), Some(2));
    for what in ["COMMAND", "--pid", "--container", "--new-containers"] {
        assert!(stderr(&o).contains(what), "{what}: {}", stderr(&o));
    }
    // --duration with a COMMAND is a usage error, found while parsing: no recording starts.
    let o = cinch(&["record", "--duration", "5s", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--duration applies to --pid, --container and --new-containers"),
        "{}",
        stderr(&o)
    );
}

/// A user with only the binary can record containers: it writes the permissive profile the
/// repository ships, to a file or to stdout.
#[test]
fn the_binary_writes_the_recording_profile() {
    let scratch = Scratch::new();
    let shipped: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/recording-profile.json"),
        )
        .expect("the shipped profile"),
    )
    .expect("parses");
    let file = scratch.path("rp.json");
    let o = cinch(&[
        "recording-profile".as_ref(),
        "-o".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("written")).expect("JSON");
    assert_eq!(written, shipped);
    let o = cinch(&["recording-profile"]);
    assert_eq!(o.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(printed, shipped);
    // And it is a profile cinch reads: it allows everything.
    let o = cinch(&["report".as_ref(), file.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("allows every syscall"),
        "{}",
        stdout(&o)
    );
}

/// `report` on Docker's own default profile finds it exactly as wide as Docker's default (rules
/// that need capabilities outside the kept set used to count as allowed), and `--caps` decides
/// which capability-conditional rules apply.
#[test]
fn report_reads_dockers_default_as_docker_loads_it() {
    let scratch = Scratch::new();
    let moby =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../profile-gen/data/moby-default-29.7.2.json");
    let o = cinch(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        moby.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(r["docker"]["allowed"], r["docker"]["docker_allowed"], "{r}");
    assert_eq!(r["docker"]["beyond_docker"], serde_json::json!([]), "{r}");
    let caps = scratch.write(
        "admin.json",
        r#"{"cap_drop":["ALL"],"cap_add":["SYS_ADMIN"]}"#,
    );
    let o = cinch(&[
        "report".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        moby.as_os_str(),
        "--caps".as_ref(),
        caps.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let beyond: Vec<&str> = r["docker"]["beyond_docker"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        beyond.contains(&"mount") && !beyond.contains(&"reboot"),
        "{beyond:?}"
    );
}

/// `-v` says what was read and decided, `-vv` each argument decision; without either, only the
/// summary. Plain text when stderr is not a terminal.
#[test]
fn verbosity_adds_what_was_read_and_decided() {
    let scratch = Scratch::new();
    let out = scratch.path("p.json");
    let rec = testdata("web.json");
    let run = |flag: Option<&str>| {
        let mut args: Vec<&OsStr> = flag.into_iter().map(|f| f.as_ref()).collect();
        args.extend([
            "generate".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            rec.as_os_str(),
        ]);
        let o = cinch(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stderr(&o)
    };
    let quiet = run(None);
    assert!(
        !quiet.contains("INFO") && !quiet.contains("DEBUG"),
        "{quiet}"
    );
    let v = run(Some("-v"));
    assert!(v.contains("INFO read recording="), "{v}");
    assert!(
        v.contains("generated and compiled") && v.contains("bpf_instructions="),
        "{v}"
    );
    assert!(!v.contains('\u{1b}'), "no terminal colours in a pipe: {v}");
    let vv = run(Some("-vv"));
    assert!(vv.contains("DEBUG argument conditions syscall="), "{vv}");
}

/// A container recorded only after it started: `generate` says plainly that the profile covers
/// its steady state, with the commands that record its start-up (the engine's own image and
/// command) and merge it; `report` on the profile says so above the settings; merged with a
/// recording of the same image's start, the warning goes.
#[test]
fn an_attach_recording_says_the_profile_covers_the_steady_state_only() {
    let scratch = Scratch::new();
    let mut attach = web_recording();
    attach["startup_observed"] = false.into();
    attach["target"]["command"] = serde_json::json!(["nginx", "-g", "daemon off;"]);
    let attach = scratch.write("attach.json", &attach.to_string());
    let profile = scratch.path("p.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        profile.as_os_str(),
        attach.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("container web (cinch-test/nginx) while it ran: this profile covers its steady state only"),
        "{err}"
    );
    assert!(
        err.contains("cinch recording-profile -o recording-profile.json")
            && err.contains("sudo cinch record --new-containers -o startup -- docker run --rm --security-opt seccomp=recording-profile.json --entrypoint nginx cinch-test/nginx -g 'daemon off;'")
            && err.contains("startup/*.json"),
        "{err}"
    );
    let o = cinch(&["report".as_ref(), profile.as_os_str()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let warning = out
        .find("warning: the profile covers a container's steady state only")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(warning < out.find("docker run").expect("settings"), "{out}");
    let o = cinch(&[
        "report".as_ref(),
        "--format".as_ref(),
        "docker-run".as_ref(),
        profile.as_os_str(),
    ]);
    assert!(stderr(&o).contains("steady state only"), "{}", stderr(&o));
    // A container without a seccomp filter, recorded with --new-containers from its first
    // execve: its own start-up is in the recording, only the runtime's calls (the baseline) are
    // not, and nothing is said of a steady state.
    let mut unconfined = web_recording();
    unconfined["startup_observed"] = false.into();
    unconfined["entrypoint_observed"] = true.into();
    let unconfined = scratch.write("unconfined.json", &unconfined.to_string());
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        profile.as_os_str(),
        unconfined.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("steady state only"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("runtime baseline: runc"),
        "{}",
        stderr(&o)
    );
    // With the same image's start recorded too, the profile starts the container.
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        profile.as_os_str(),
        attach.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("steady state only"), "{}", stderr(&o));
    let o = cinch(&["report".as_ref(), profile.as_os_str()]);
    assert!(!stdout(&o).contains("steady state only"), "{}", stdout(&o));
}

/// A container recording that observed its start holds runc's calls of that one start only:
/// the calls runc's Go runtime makes in some starts and not others are added (and said), a
/// process recording gets none, and `--runtime-baseline none` leaves them out.
#[test]
fn the_runtime_calls_that_vary_between_starts_are_added_to_every_container() {
    let scratch = Scratch::new();
    let profile = scratch.path("p.json");
    let allowed = |recording: &Path, extra: &[&str]| -> (BTreeSet<String>, String) {
        let mut args: Vec<&OsStr> = vec!["generate".as_ref(), "-o".as_ref(), profile.as_os_str()];
        args.extend(extra.iter().map(OsStr::new));
        args.push(recording.as_os_str());
        let o = cinch(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&profile).expect("profile")).expect("JSON");
        let names = json["syscalls"]
            .as_array()
            .expect("rules")
            .iter()
            .flat_map(|r| r["names"].as_array().expect("names").iter())
            .map(|n| n.as_str().expect("name").to_owned())
            .collect();
        (names, stderr(&o))
    };
    let mut container = web_recording();
    let varying = [
        "epoll_pwait",
        "futex",
        "getpid",
        "nanosleep",
        "sched_yield",
        "tgkill",
    ];
    for arch in container["syscalls"]
        .as_object_mut()
        .expect("by arch")
        .values_mut()
    {
        arch.as_array_mut()
            .expect("list")
            .retain(|s| !varying.contains(&s["name"].as_str().expect("name")));
    }
    let recorded = scratch.write("container.json", &container.to_string());
    let (names, err) = allowed(&recorded, &[]);
    for name in varying {
        assert!(names.contains(name), "{name} missing: {err}");
    }
    assert!(
        err.contains("runtime baseline: runc 1.1.5 (measured) calls that vary between starts added 6 syscalls not recorded (epoll_pwait, futex, getpid, nanosleep, sched_yield, tgkill)"),
        "{err}"
    );
    // Only what varies: runc's set-up calls of every start (capset, chdir) are the recording's
    // to show.
    assert!(
        !names.contains("capset") && !names.contains("chdir"),
        "{names:?}"
    );
    let (names, err) = allowed(&recorded, &["--runtime-baseline", "none"]);
    assert!(varying.iter().all(|n| !names.contains(*n)), "{names:?}");
    assert!(!err.contains("runtime baseline"), "{err}");
    let mut process = container.clone();
    process["target"] = serde_json::json!({"kind": "command", "argv": ["nginx"], "pid": 4242});
    let process = scratch.write("process.json", &process.to_string());
    let (names, err) = allowed(&process, &[]);
    assert!(varying.iter().all(|n| !names.contains(*n)), "{names:?}");
    assert!(!err.contains("runtime baseline"), "{err}");
}

/// `--ready-fd` must name an open descriptor other than stdin, stdout and stderr; refused before
/// anything is loaded.
#[test]
fn ready_fd_is_checked_before_anything_runs() {
    for (fd, says) in [
        ("1", "stdin, stdout and stderr"),
        ("57", "no such open file descriptor"),
    ] {
        let o = cinch(&[
            "record",
            "--ready-fd",
            fd,
            "-o",
            "/nonexistent/r.json",
            "--",
            "/bin/true",
        ]);
        assert_eq!(o.status.code(), Some(2), "{fd}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("--ready-fd {fd}: {says}")),
            "{}",
            stderr(&o)
        );
    }
}

/// A schema 2 recording (verdicts made when it was recorded, no syscall results) is classified
/// by this cinch's rules: its capset check, a query the rules of its day counted as a need,
/// is left out now; its DAC_READ_SEARCH, granted in an exec that failed, stays a need because
/// the recording cannot say the exec failed, and generate says so.
#[test]
fn an_old_recording_is_classified_by_the_current_rules() {
    let scratch = Scratch::new();
    let caps = scratch.path("caps.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        scratch.path("p.json").as_os_str(),
        "--caps-out".as_ref(),
        caps.as_os_str(),
        testdata("launcher-schema2.json").as_os_str(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&caps).expect("settings")).expect("JSON");
    assert_eq!(
        settings["cap_add"],
        serde_json::json!(["DAC_READ_SEARCH", "SETGID", "SETUID"]),
        "{settings}"
    );
    assert!(
        settings["not_needed"]["SETPCAP"]
            .as_str()
            .is_some_and(|n| n.starts_with("not needed: capset asks for CAP_SETPCAP")),
        "{settings}"
    );
    assert!(
        settings["not_needed"]["SYS_ADMIN"]
            .as_str()
            .is_some_and(|n| n.contains("overcommit")),
        "{settings}"
    );
    assert!(
        err.contains("recorded with schema 2, which has no syscall results"),
        "{err}"
    );
}

/// A settings file from a newer cinch is refused with both versions named, not half-read.
#[test]
fn newer_settings_are_refused() {
    let scratch = Scratch::new();
    let profile = scratch.path("p.json");
    let o = cinch(&[
        "generate".as_ref(),
        "-o".as_ref(),
        profile.as_os_str(),
        testdata("web.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let caps = scratch.write(
        "caps.json",
        r#"{"schema_version": 3, "cap_drop": ["ALL"], "cap_add": []}"#,
    );
    let o = cinch(&[
        "report".as_ref(),
        profile.as_os_str(),
        "--caps".as_ref(),
        caps.as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("have schema version 3, this cinch reads 1 to 2"),
        "{}",
        stderr(&o)
    );
}
