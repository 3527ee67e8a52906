//! End-to-end tier: the workloads shipped in examples/workloads, each recorded, generated,
//! enforced and verified, then shown to be tight:
//!
//! - busybox `httpd` in Docker (`--network host`, loopback): recorded with `--new-containers`,
//!   enforced with `docker run --security-opt seccomp=... --cap-drop ALL --cap-add ...`;
//! - nginx from Debian's package as a process under `cinch run` (master as root, workers as
//!   www-data): a page, a 404 and `nginx -s reload`;
//! - Python's `http.server` as a process under `cinch run`, on port 80 of its own network
//!   namespace (so it needs NET_BIND_SERVICE).
//!
//! For each, `cinch verify` reports nothing with the generated profile and settings; with one
//! syscall the workload needs taken out of the profile, the workload fails and `cinch verify`
//! names exactly that syscall; the same for one capability.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use cinch_tests::docker::{Docker, busybox_image, wait_until_name_is_free};
use cinch_tests::guard;
use cinch_tests::output_text as text;
use cinch_tests::{
    Ready, cinch_bin, free_port, generate_with_settings, kubernetes, on_path, profile_without,
    report_snippet, require, require_bpf, require_root, workspace_root,
};

fn examples() -> PathBuf {
    workspace_root().join("examples/workloads")
}

/// Whether something listens on 127.0.0.1:`port` in the network namespace of `pid`.
fn listening(pid: u32, port: u16) -> bool {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1] == local && f[3] == "0A"
    })
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("gave up waiting: {what}");
    false
}

/// A background process, stopped (SIGTERM, then SIGKILL) if the test ends without waiting for it.
struct Background {
    child: Option<Child>,
    log: PathBuf,
}

impl Background {
    fn spawn(mut cmd: Command, log: PathBuf) -> Background {
        use std::os::unix::process::CommandExt as _;
        let out = File::create(&log).expect("creating a log file");
        let err = out.try_clone().expect("log file");
        // The servers are stopped with SIGINT, which a shell's background job inherits as
        // ignored (and Python then never raises KeyboardInterrupt): start them with the default.
        // SAFETY: sigaction is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGINT,
                    nix::sys::signal::SigHandler::SigDfl,
                )
                .map(drop)
                .map_err(std::io::Error::from)
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Background {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig);
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Waits for the exit (at most `timeout`), returning the status and everything it printed.
    fn wait(mut self, timeout: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("not waited for yet");
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(st) = child.try_wait().expect("waiting") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {timeout:?}; it printed:\n{}",
                    child.id(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (
            status,
            std::fs::read_to_string(&self.log).unwrap_or_default(),
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal_child(&child, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Background {
    fn signal_child(&self, child: &Child, sig: nix::sys::signal::Signal) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig);
    }
}

/// An HTTP answer as curl saw it (`status` 0 when there was none).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
    curl_exit: Option<i32>,
}

impl Answer {
    fn ok(&self) -> bool {
        self.status == 200 && self.curl_exit == Some(0)
    }
}

/// GET with curl, inside the network namespace of `netns_pid` when given.
fn get(netns_pid: Option<u32>, url: &str) -> Answer {
    let mut cmd = match netns_pid {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.args(["-t", &pid.to_string(), "-n", "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    let out = cmd
        .args(["-s", "--max-time", "3", "-w", "\n%{http_code}", url])
        .output()
        .expect("running curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
    Answer {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        curl_exit: out.status.code(),
    }
}

/// What `cinch generate` made of the recordings.
struct Generated {
    profile: PathBuf,
    caps: PathBuf,
    cap_add: BTreeSet<String>,
    dir: PathBuf,
}

impl Generated {
    fn new(dir: &Path, name: &str, recordings: &[PathBuf]) -> Generated {
        Generated::with(dir, name, recordings, &[])
    }

    fn with(dir: &Path, name: &str, recordings: &[PathBuf], options: &[&str]) -> Generated {
        let (profile, caps, summary) = generate_with_settings(dir, name, recordings, options);
        let c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&caps).expect("settings")).expect("json");
        let cap_add = c["cap_add"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str().map(str::to_owned))
            .collect();
        // The numbers for the record: syscalls allowed, against Docker's default.
        println!("{name}: {}", summary.trim_end().replace('\n', "\n    "));
        Generated {
            profile,
            caps,
            cap_add,
            dir: dir.to_owned(),
        }
    }

    /// `cinch report --format FORMAT` of the profile with its settings: the snippets as a user
    /// would paste them.
    fn report(&self, format: &str) -> String {
        report_snippet(&self.profile, &self.caps, format)
    }

    /// The profile without `name` in its allow rules.
    fn without_syscall(&self, name: &str) -> PathBuf {
        profile_without(&self.profile, name, &self.dir)
    }

    /// The settings without capability `cap`.
    fn without_cap(&self, cap: &str) -> PathBuf {
        assert!(
            self.cap_add.contains(cap),
            "{cap} is not in cap_add {:?}",
            self.cap_add
        );
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.caps).expect("settings")).expect("json");
        if let Some(add) = c["cap_add"].as_array_mut() {
            add.retain(|n| n != cap);
        }
        if let Some(reasons) = c["reasons"].as_object_mut() {
            reasons.remove(cap);
        }
        let path = self.dir.join(format!("without-{cap}.json"));
        std::fs::write(&path, c.to_string()).expect("writing the settings");
        path
    }
}

/// A parsed `cinch verify --format json` verdict.
struct Verdict {
    exit: Option<i32>,
    json: serde_json::Value,
    raw: String,
    /// Only targets whose label contains this (other tests' containers may start meanwhile).
    only: Option<String>,
}

impl Verdict {
    fn read(exit: Option<i32>, file: &Path, output: &str) -> Verdict {
        let raw = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("verify wrote no verdict ({e}); it printed:\n{output}"));
        let json = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{e}: {raw}"));
        Verdict {
            exit,
            json,
            raw,
            only: None,
        }
    }

    /// Looks only at the container named `name`. When other containers were observed too, the
    /// exit status is recomputed for ours alone.
    fn only(mut self, name: &str) -> Verdict {
        self.only = Some(name.to_owned());
        let all = self.json["targets"].as_array().map_or(0, Vec::len);
        let others = all - self.picked().len();
        if others > 0 {
            println!("note: {others} other containers were observed too; looking at {name} only");
            let denied = !self.syscalls().is_empty() || !self.capabilities().is_empty();
            self.exit = Some(i32::from(denied));
        }
        self
    }

    fn picked(&self) -> Vec<serde_json::Value> {
        self.json["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| {
                self.only
                    .as_deref()
                    .is_none_or(|n| t["target"].as_str().is_some_and(|l| l.contains(n)))
            })
            .cloned()
            .collect()
    }

    fn syscalls(&self) -> BTreeSet<String> {
        self.picked()
            .iter()
            .flat_map(|t| t["denied_syscalls"].as_array().cloned().unwrap_or_default())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn capabilities(&self) -> BTreeSet<String> {
        self.picked()
            .iter()
            .flat_map(|t| {
                t["missing_capabilities"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|m| m["capability"].as_str().map(str::to_owned))
            .collect()
    }

    fn targets(&self) -> usize {
        self.picked().len()
    }

    /// Exit 0 and nothing denied.
    fn assert_clean(&self, what: &str) {
        assert_eq!(self.exit, Some(0), "{what}: {}", self.raw);
        assert!(self.targets() > 0, "{what}: nothing observed: {}", self.raw);
        assert!(
            self.syscalls().is_empty() && self.capabilities().is_empty(),
            "{what}: {}",
            self.raw
        );
    }

    /// Exit 1, naming exactly `syscalls` and `caps`.
    fn assert_names(&self, syscalls: &[&str], caps: &[&str], what: &str) {
        assert_eq!(self.exit, Some(1), "{what}: {}", self.raw);
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(self.syscalls(), set(syscalls), "{what}: {}", self.raw);
        assert_eq!(self.capabilities(), set(caps), "{what}: {}", self.raw);
    }
}

/// How a process workload is run: recorded, enforced or verified.
#[derive(Clone)]
enum Under {
    Record(PathBuf),
    Run {
        profile: PathBuf,
        caps: PathBuf,
    },
    Verify {
        profile: PathBuf,
        caps: PathBuf,
        verdict: PathBuf,
    },
}

impl Under {
    /// `cinch ... -- argv`.
    fn argv(&self, argv: &[String]) -> Vec<String> {
        let mut v: Vec<String> = vec![cinch_bin().display().to_string()];
        let s = |p: &Path| p.display().to_string();
        match self {
            Under::Record(out) => v.extend(["record".into(), "-q".into(), "-o".into(), s(out)]),
            Under::Run { profile, caps } => v.extend([
                "run".into(),
                "--profile".into(),
                s(profile),
                "--caps".into(),
                s(caps),
            ]),
            Under::Verify {
                profile,
                caps,
                verdict,
            } => v.extend([
                "verify".into(),
                "-q".into(),
                "--format".into(),
                "json".into(),
                "-o".into(),
                s(verdict),
                "--profile".into(),
                s(profile),
                "--caps".into(),
                s(caps),
            ]),
        }
        v.push("--".into());
        v.extend(argv.iter().cloned());
        v
    }

    fn command(&self, argv: &[String]) -> Command {
        let all = self.argv(argv);
        let mut c = Command::new(&all[0]);
        c.args(&all[1..]);
        c
    }

    /// Another run of the same kind for a second command (a second recording or verdict file).
    fn sibling(&self, suffix: &str) -> Under {
        let rename = |p: &Path| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
            p.with_file_name(format!("{stem}-{suffix}.json"))
        };
        match self {
            Under::Record(out) => Under::Record(rename(out)),
            Under::Run { .. } => self.clone(),
            Under::Verify {
                profile,
                caps,
                verdict,
            } => Under::Verify {
                profile: profile.clone(),
                caps: caps.clone(),
                verdict: rename(verdict),
            },
        }
    }

    fn verdict_file(&self) -> Option<&Path> {
        match self {
            Under::Verify { verdict, .. } => Some(verdict),
            _ => None,
        }
    }
}

// --- nginx ----------------------------------------------------------------------------------

struct Nginx {
    _dir: tempfile::TempDir,
    prefix: PathBuf,
    port: u16,
}

impl Nginx {
    /// A private prefix (readable by www-data) with the shipped config and pages.
    fn prepare() -> Nginx {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let prefix = dir.path().join("nginx");
        std::fs::create_dir_all(prefix.join("www")).expect("www");
        std::fs::create_dir_all(prefix.join("tmp")).expect("tmp");
        for p in [dir.path(), prefix.as_path(), &prefix.join("www")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let src = examples().join("nginx");
        std::fs::copy(src.join("www/index.html"), prefix.join("www/index.html")).expect("page");
        let port = free_port();
        let conf = std::fs::read_to_string(src.join("nginx.conf.in"))
            .expect("the shipped config")
            .replace("@PREFIX@", &prefix.display().to_string())
            .replace("@PORT@", &port.to_string());
        std::fs::write(prefix.join("nginx.conf"), conf).expect("config");
        Nginx {
            _dir: dir,
            prefix,
            port,
        }
    }

    fn argv(&self, extra: &[&str]) -> Vec<String> {
        let p = self.prefix.display().to_string();
        let mut v: Vec<String> = vec![
            "nginx".into(),
            "-p".into(),
            p.clone(),
            "-e".into(),
            format!("{p}/error.log"),
            "-c".into(),
            format!("{p}/nginx.conf"),
        ];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn page(&self) -> String {
        std::fs::read_to_string(self.prefix.join("www/index.html")).expect("page")
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

/// What happened in one nginx session.
struct NginxSession {
    page: Answer,
    missing: Answer,
    reload: Output,
    after_reload: Answer,
    quit: Output,
    server: (ExitStatus, String),
    verdicts: Vec<Verdict>,
}

/// Starts nginx under `under`, GETs a page and a missing page, reloads, GETs again, and quits
/// (the control commands run under `under` too).
fn nginx_session(n: &Nginx, under: &Under, expect_serving: bool) -> NginxSession {
    let log = n.prefix.join(format!("server-{}.log", std::process::id()));
    let server = Background::spawn(under.command(&n.argv(&[])), log);
    let up = wait_until("nginx listening", Duration::from_secs(10), || {
        listening(std::process::id(), n.port)
    });
    assert!(
        up,
        "nginx does not listen: {}\n{}",
        server.log(),
        n.error_log()
    );
    if expect_serving {
        // The workers are up once they answer.
        wait_until("nginx answering", Duration::from_secs(5), || {
            get(None, &n.url("/missing")).status == 404
        });
    } else {
        std::thread::sleep(Duration::from_millis(500));
    }
    let page = get(None, &n.url("/index.html"));
    let missing = get(None, &n.url("/missing"));
    let reload_under = under.sibling("reload");
    let reload = reload_under
        .command(&n.argv(&["-s", "reload"]))
        .output()
        .expect("nginx -s reload");
    if expect_serving {
        wait_until("reload done", Duration::from_secs(5), || {
            n.error_log().contains("reconfiguring")
        });
        std::thread::sleep(Duration::from_millis(300));
    }
    let after_reload = get(None, &n.url("/index.html"));
    let quit_under = under.sibling("quit");
    let quit = quit_under
        .command(&n.argv(&["-s", "quit"]))
        .output()
        .expect("nginx -s quit");
    let server = server.wait(Duration::from_secs(20));
    let mut verdicts = Vec::new();
    for (u, exit) in [
        (under, server.0.code()),
        (&reload_under, reload.status.code()),
        (&quit_under, quit.status.code()),
    ] {
        if let Some(f) = u.verdict_file() {
            verdicts.push(Verdict::read(exit, f, &server.1));
        }
    }
    NginxSession {
        page,
        missing,
        reload,
        after_reload,
        quit,
        server,
        verdicts,
    }
}

#[test]
fn nginx_as_a_process() {
    let name = "nginx_as_a_process";
    guard!(bpf);
    if !require(
        name,
        on_path("nginx"),
        "nginx is not installed (apt-get install nginx-light)",
    ) || !require(
        name,
        on_path("curl"),
        "curl is not installed (apt-get install curl)",
    ) || !require(
        name,
        nix::unistd::User::from_name("www-data")
            .ok()
            .flatten()
            .is_some(),
        "there is no www-data user",
    ) {
        return;
    }
    let n = Nginx::prepare();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();

    // Record: the server for its whole life, and each control command.
    let rec = w.join("nginx.json");
    let s = nginx_session(&n, &Under::Record(rec.clone()), true);
    assert!(
        s.page.ok() && s.page.body == n.page(),
        "recorded GET: {:?}",
        s.page
    );
    assert_eq!(s.missing.status, 404);
    assert!(s.reload.status.success(), "reload: {}", text(&s.reload));
    assert!(s.quit.status.success(), "quit: {}", text(&s.quit));
    assert!(s.server.0.success(), "server: {}", s.server.1);
    let recordings = [rec, w.join("nginx-reload.json"), w.join("nginx-quit.json")];
    let g = Generated::new(w, "nginx", &recordings);
    assert_eq!(
        g.cap_add,
        ["CHOWN", "SETGID", "SETUID"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        "nginx as root: chown of its temp paths, then workers drop to www-data"
    );

    // Enforce: everything works under the generated profile and capabilities.
    let enforce = Under::Run {
        profile: g.profile.clone(),
        caps: g.caps.clone(),
    };
    let s = nginx_session(&n, &enforce, true);
    assert!(
        s.page.ok() && s.page.body == n.page(),
        "GET under the profile: {:?}\n{}",
        s.page,
        n.error_log()
    );
    assert_eq!(s.missing.status, 404, "404 under the profile");
    assert!(
        s.reload.status.success(),
        "reload under the profile: {}",
        text(&s.reload)
    );
    assert!(
        s.after_reload.ok(),
        "GET after reload: {:?}",
        s.after_reload
    );
    assert!(
        s.quit.status.success(),
        "quit under the profile: {}",
        text(&s.quit)
    );
    assert!(
        s.server.0.success(),
        "server under the profile: {}",
        s.server.1
    );
    assert!(
        !n.error_log().contains("Operation not permitted"),
        "{}",
        n.error_log()
    );

    // Verify: nothing denied, for the server and both control commands.
    let verify = Under::Verify {
        profile: g.profile.clone(),
        caps: g.caps.clone(),
        verdict: w.join("verdict.json"),
    };
    let s = nginx_session(&n, &verify, true);
    assert!(s.page.ok() && s.missing.status == 404 && s.after_reload.ok());
    assert_eq!(s.verdicts.len(), 3);
    for v in &s.verdicts {
        v.assert_clean("verify with the generated profile");
    }

    // Tight: without sendfile a page cannot be sent (the 404, written from memory, still is),
    // and verify names sendfile.
    let minus = g.without_syscall("sendfile");
    let s = nginx_session(
        &n,
        &Under::Run {
            profile: minus.clone(),
            caps: g.caps.clone(),
        },
        true,
    );
    assert!(
        !s.page.ok() || s.page.body != n.page(),
        "GET without sendfile: {:?}",
        s.page
    );
    assert_eq!(s.missing.status, 404);
    assert!(
        n.error_log()
            .contains("sendfile() failed (1: Operation not permitted)")
    );
    let s = nginx_session(
        &n,
        &Under::Verify {
            profile: minus,
            caps: g.caps.clone(),
            verdict: w.join("verdict-sendfile.json"),
        },
        true,
    );
    s.verdicts[0].assert_names(&["sendfile"], &[], "verify without sendfile");

    // Tight: without SETUID the workers cannot become www-data, nothing is served, and verify
    // names SETUID.
    let minus = g.without_cap("SETUID");
    let s = nginx_session(
        &n,
        &Under::Run {
            profile: g.profile.clone(),
            caps: minus.clone(),
        },
        false,
    );
    assert!(!s.page.ok(), "GET without SETUID: {:?}", s.page);
    assert!(
        n.error_log()
            .contains("setuid(33) failed (1: Operation not permitted)"),
        "{}",
        n.error_log()
    );
    let s = nginx_session(
        &n,
        &Under::Verify {
            profile: g.profile,
            caps: minus,
            verdict: w.join("verdict-setuid.json"),
        },
        true,
    );
    s.verdicts[0].assert_names(&[], &["SETUID"], "verify without SETUID");
}

// --- python http.server ---------------------------------------------------------------------

fn python3() -> Option<String> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .map(str::to_owned)
}

/// What the http.server tests need besides `privileges` (root, or root and BPF): python3,
/// curl, iproute2 and util-linux. The python3 to run, or None when the test skips.
fn python_prerequisites(name: &str, privileges: fn(&str) -> bool) -> Option<String> {
    let python = python3();
    let ok = privileges(name)
        && require(name, python.is_some(), "python3 is not installed")
        && require(
            name,
            on_path("curl"),
            "curl is not installed (apt-get install curl)",
        )
        && require(
            name,
            on_path("ip") && on_path("nsenter") && on_path("unshare"),
            "iproute2 and util-linux are needed",
        );
    python.filter(|_| ok)
}

/// Python's http.server on 127.0.0.1:80 in a new network namespace, under `under`.
fn python_server(python: &str, under: &Under, log: PathBuf) -> Background {
    let www = examples().join("python-http/www").display().to_string();
    let argv: Vec<String> = [
        python,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        &www,
        "80",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut cmd = Command::new("unshare");
    // unshare and sh exec in place: the child's pid is cinch's (and then python's under `run`).
    cmd.args([
        "-n",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec \"$@\"",
        "sh",
    ])
    .args(under.argv(&argv));
    Background::spawn(cmd, log)
}

struct PythonSession {
    page: Answer,
    missing: Answer,
    server: (ExitStatus, String),
    verdict: Option<Verdict>,
}

/// [`python_server`], once it listens on port 80 (panics with its log when it does not).
fn python_listening(python: &str, under: &Under, log: PathBuf) -> Background {
    let mut server = python_server(python, under, log);
    let pid = server.pid();
    let up = wait_until("http.server listening", Duration::from_secs(10), || {
        listening(pid, 80) || server.exited()
    });
    assert!(up, "{}", server.log());
    server
}

fn python_session(python: &str, under: &Under, dir: &Path) -> PythonSession {
    let server = python_listening(python, under, dir.join("python.log"));
    let pid = server.pid();
    let page = get(Some(pid), "http://127.0.0.1/index.html");
    let missing = get(Some(pid), "http://127.0.0.1/missing");
    // SIGINT: http.server exits 0 ("Keyboard interrupt received"); cinch forwards it.
    server.signal(nix::sys::signal::Signal::SIGINT);
    let server = server.wait(Duration::from_secs(15));
    let verdict = under
        .verdict_file()
        .map(|f| Verdict::read(server.0.code(), f, &server.1));
    PythonSession {
        page,
        missing,
        server,
        verdict,
    }
}

#[test]
fn python_http_server_as_a_process() {
    let name = "python_http_server_as_a_process";
    let Some(python) = python_prerequisites(name, require_bpf) else {
        return;
    };
    let page =
        std::fs::read_to_string(examples().join("python-http/www/index.html")).expect("page");
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();

    let rec = w.join("python.json");
    let s = python_session(&python, &Under::Record(rec.clone()), w);
    assert!(
        s.page.ok() && s.page.body == page,
        "recorded GET: {:?}\n{}",
        s.page,
        s.server.1
    );
    assert_eq!(s.missing.status, 404);
    assert!(s.server.0.success(), "{}", s.server.1);
    let g = Generated::new(w, "python-http", &[rec]);
    assert_eq!(
        g.cap_add,
        ["NET_BIND_SERVICE".to_owned()].into_iter().collect(),
        "port 80 needs NET_BIND_SERVICE, nothing else does"
    );

    let enforce = Under::Run {
        profile: g.profile.clone(),
        caps: g.caps.clone(),
    };
    let s = python_session(&python, &enforce, w);
    assert!(
        s.page.ok() && s.page.body == page,
        "GET under the profile: {:?}\n{}",
        s.page,
        s.server.1
    );
    assert_eq!(s.missing.status, 404, "404 under the profile");
    assert!(s.server.0.success(), "under the profile: {}", s.server.1);

    let s = python_session(
        &python,
        &Under::Verify {
            profile: g.profile.clone(),
            caps: g.caps.clone(),
            verdict: w.join("verdict.json"),
        },
        w,
    );
    assert!(s.page.ok() && s.missing.status == 404);
    s.verdict
        .expect("a verdict")
        .assert_clean("verify with the generated profile");

    // Tight: without accept4 connections are never accepted.
    let minus = g.without_syscall("accept4");
    let s = python_session(
        &python,
        &Under::Run {
            profile: minus.clone(),
            caps: g.caps.clone(),
        },
        w,
    );
    assert!(!s.page.ok(), "GET without accept4: {:?}", s.page);
    let s = python_session(
        &python,
        &Under::Verify {
            profile: minus,
            caps: g.caps.clone(),
            verdict: w.join("verdict-accept4.json"),
        },
        w,
    );
    s.verdict
        .expect("a verdict")
        .assert_names(&["accept4"], &[], "verify without accept4");

    // Tight: without NET_BIND_SERVICE port 80 cannot be bound.
    let minus = g.without_cap("NET_BIND_SERVICE");
    let server = python_server(
        &python,
        &Under::Run {
            profile: g.profile.clone(),
            caps: minus.clone(),
        },
        w.join("python-nbs.log"),
    );
    let (status, log) = server.wait(Duration::from_secs(15));
    assert!(
        !status.success(),
        "bound port 80 without NET_BIND_SERVICE: {log}"
    );
    assert!(log.contains("PermissionError"), "{log}");
    let s = python_session(
        &python,
        &Under::Verify {
            profile: g.profile,
            caps: minus,
            verdict: w.join("verdict-nbs.json"),
        },
        w,
    );
    s.verdict.expect("a verdict").assert_names(
        &[],
        &["NET_BIND_SERVICE"],
        "verify without NET_BIND_SERVICE",
    );
}

/// http.server under `cinch run` with `profile` and `caps`, stopped and continued once it
/// listens, then asked for a page; the page and how the server ended.
fn python_stopped_and_continued(
    python: &str,
    profile: &Path,
    caps: &Path,
    log: PathBuf,
) -> (Answer, (ExitStatus, String)) {
    use nix::sys::signal::Signal;
    let under = Under::Run {
        profile: profile.to_owned(),
        caps: caps.to_owned(),
    };
    let server = python_listening(python, &under, log);
    let pid = server.pid();
    // Stopped in its select() with a timeout; continued, the kernel resumes the wait with
    // restart_syscall.
    server.signal(Signal::SIGSTOP);
    std::thread::sleep(Duration::from_millis(300));
    server.signal(Signal::SIGCONT);
    // Past the next poll timeout (0.5 s): a server that cannot resume has died by then.
    std::thread::sleep(Duration::from_millis(800));
    let page = get(Some(pid), "http://127.0.0.1/index.html");
    server.signal(Signal::SIGINT);
    (page, server.wait(Duration::from_secs(15)))
}

#[test]
fn the_shipped_python_profile_holds_after_a_stop_and_continue() {
    let name = "the_shipped_python_profile_holds_after_a_stop_and_continue";
    let Some(python) = python_prerequisites(name, require_root) else {
        return;
    };
    let profile = workspace_root().join("profiles/python-http-server/seccomp.json");
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    // The shipped profile was recorded on an unprivileged port; this server binds port 80.
    let caps = w.join("caps.json");
    std::fs::write(
        &caps,
        r#"{"cap_drop": ["ALL"], "cap_add": ["NET_BIND_SERVICE"], "reasons": {}}"#,
    )
    .expect("writing the settings");
    let (page, (status, log)) =
        python_stopped_and_continued(&python, &profile, &caps, w.join("python.log"));
    assert!(page.ok(), "GET after a stop and continue: {page:?}\n{log}");
    assert!(status.success(), "{log}");
    // The same profile without restart_syscall: the resumed wait fails and the server dies.
    let minus = profile_without(&profile, "restart_syscall", w);
    let (page, (status, log)) =
        python_stopped_and_continued(&python, &minus, &caps, w.join("python-minus.log"));
    assert!(
        !page.ok() && !status.success() && log.contains("PermissionError"),
        "without restart_syscall: {page:?} {status}\n{log}"
    );
}

// --- busybox httpd in Docker ----------------------------------------------------------------

struct Httpd {
    image: String,
    port: u16,
    name: String,
}

impl Httpd {
    fn mounts() -> Vec<String> {
        let dir = examples().join("busybox-httpd");
        vec![
            "-v".into(),
            format!("{}:/www:ro", dir.join("www").display()),
            "-v".into(),
            format!("{}:/workload:ro", dir.display()),
        ]
    }

    /// Runs serve.sh as service `app` of a compose project: `block`, the compose service block
    /// `cinch report --format compose` gives, completed with the image, the command, the
    /// mounts and the host's network, under `docker-compose up`; it must serve.
    fn expect_served_by_compose(&self, block: &str, dir: &Path) {
        use serde_norway::Value;
        let mut compose: Value = serde_norway::from_str(block)
            .unwrap_or_else(|e| panic!("the compose block is not YAML ({e}):\n{block}"));
        let app = compose["services"]["app"]
            .as_mapping_mut()
            .expect("services.app");
        let mut set = |key: &str, value: Value| {
            app.insert(Value::from(key), value);
        };
        set("image", Value::from(self.image.as_str()));
        set(
            "command",
            Value::from(vec!["sh".to_owned(), "/workload/serve.sh".to_owned()]),
        );
        set(
            "environment",
            Value::from(vec![format!("PORT={}", self.port)]),
        );
        set("network_mode", Value::from("host"));
        let mut volumes: Vec<Value> = app
            .get("volumes")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        volumes.extend(
            Self::mounts()
                .into_iter()
                .filter(|m| m != "-v")
                .map(Value::from),
        );
        app.insert(Value::from("volumes"), Value::from(volumes));
        let file = dir.join("compose.yaml");
        let yaml = serde_norway::to_string(&compose).expect("YAML");
        std::fs::write(&file, &yaml).expect("writing compose.yaml");
        let project = format!("{}-compose", self.name);
        let _down = ComposeGuard {
            project: project.clone(),
            file: file.clone(),
        };
        let out = Command::new("docker-compose")
            .args(["--no-ansi", "-p", &project, "-f"])
            .arg(&file)
            .args(["up", "--abort-on-container-exit", "--exit-code-from", "app"])
            .stdin(Stdio::null())
            .output()
            .expect("running docker-compose");
        assert!(
            out.status.success(),
            "docker-compose up of:\n{yaml}\n{}",
            text(&out)
        );
        Httpd::expect_answers(&out);
    }

    /// `docker run` of serve.sh with `security` options (seccomp, capabilities).
    fn run_argv(&self, security: &[String], name: &str) -> Vec<String> {
        let mut v: Vec<String> = [
            "docker",
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "host",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        v.extend(["--name".into(), name.to_owned()]);
        v.extend(security.iter().cloned());
        v.extend(["-e".into(), format!("PORT={}", self.port)]);
        v.extend(Self::mounts());
        v.extend([self.image.clone(), "sh".into(), "/workload/serve.sh".into()]);
        v
    }

    fn recording_profile() -> Vec<String> {
        vec![
            "--security-opt".into(),
            format!("seccomp={}", cinch_tests::recording_profile().display()),
        ]
    }

    fn enforced(profile: &Path, caps: &BTreeSet<String>) -> Vec<String> {
        let mut v = vec![
            "--security-opt".into(),
            format!("seccomp={}", profile.display()),
            "--cap-drop".into(),
            "ALL".into(),
        ];
        for c in caps {
            v.extend(["--cap-add".into(), c.clone()]);
        }
        v
    }

    fn expect_served(out: &Output) {
        assert!(out.status.success(), "{}", text(out));
        Httpd::expect_answers(out);
    }

    fn expect_answers(out: &Output) {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("GET /index.html: hello from busybox httpd"),
            "{}",
            text(out)
        );
        assert!(stdout.contains("GET /missing: 404"), "{}", text(out));
    }
}

/// Runs `argv`. A command that names a container (`--name NAME`, also inside `cinch record --
/// docker run …`) first waits until the name is free: a test reuses a name right after the
/// `--rm` run that held it.
fn run(argv: &[String]) -> Output {
    if let Some(name) = argv
        .iter()
        .position(|a| a == "--name")
        .and_then(|i| argv.get(i + 1))
    {
        assert!(
            wait_until_name_is_free(name, Duration::from_secs(30)),
            "container {name} still exists 30 s after its run"
        );
    }
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {argv:?}: {e}"))
}

/// Takes a compose project down (its containers and anonymous volumes).
struct ComposeGuard {
    project: String,
    file: PathBuf,
}

impl Drop for ComposeGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["--no-ansi", "-p", &self.project, "-f"])
            .arg(&self.file)
            .args(["down", "-v"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes a container left behind by a failed test.
struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn busybox_httpd_in_docker() {
    let name = "busybox_httpd_in_docker";
    guard!(bpf);
    let Some(docker) = Docker::require(name) else {
        return;
    };
    if !require(
        name,
        on_path("curl"),
        "curl is not installed (apt-get install curl)",
    ) || !require(
        name,
        on_path("docker-compose"),
        "docker-compose is not installed (cargo xtask setup installs it)",
    ) {
        return;
    }
    let h = Httpd {
        image: busybox_image(),
        port: free_port(),
        name: format!("cinch-e2e-httpd-{}", std::process::id()),
    };
    let _guard = ContainerGuard(h.name.clone());
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();

    // Record every container the docker command starts, from its seccomp install on.
    let recs = w.join("recs");
    let mut record = vec![
        cinch_bin().display().to_string(),
        "record".into(),
        "--new-containers".into(),
        "-q".into(),
        "-o".into(),
        recs.display().to_string(),
        "--".into(),
    ];
    record.extend(h.run_argv(&Httpd::recording_profile(), &h.name));
    let out = run(&record);
    Httpd::expect_served(&out);
    // Other tests may start containers meanwhile: take ours, by name.
    let recording = recs.join(format!("{}.json", h.name));
    assert!(
        recording.is_file(),
        "no recording for {}: {}",
        h.name,
        text(&out)
    );
    // With runc's baseline: runc's Go runtime sometimes makes sched_yield or tgkill after the
    // filter is installed (other threads of runc:[2:INIT]); one recording may miss them.
    let g = Generated::with(
        w,
        "busybox-httpd",
        &[recording],
        &["--runtime-baseline", "runc"],
    );
    assert_eq!(
        g.cap_add,
        ["KILL", "SETGID", "SETUID"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
        "httpd -u drops to nobody (SETGID, SETUID); root's shell then signals it (KILL)"
    );
    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&g.caps).expect("settings")).expect("JSON");
    assert_eq!(
        settings["network"]["mode"], "none",
        "httpd listened and was asked on loopback only, which a container without a network keeps: {settings}"
    );

    // Enforce with Docker itself.
    let enforced = h.run_argv(&Httpd::enforced(&g.profile, &g.cap_add), &h.name);
    Httpd::expect_served(&run(&enforced));

    // The whole `docker run` line cinch report gives: httpd wrote nothing, so a read-only
    // root; the limits; its network is none, which the test's --network host replaces (the
    // checks are the host's clients on its loopback).
    let line = g.report("docker-run").trim().to_owned();
    assert!(
        line.contains(" --read-only ")
            && line.contains(" --pids-limit ")
            && line.contains(" --network none")
            && !line.contains("--tmpfs"),
        "{line}"
    );
    let mut flags: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    if let Some(i) = flags.iter().position(|f| f == "--network") {
        flags.drain(i..i + 2);
    }
    Httpd::expect_served(&run(&h.run_argv(&flags, &h.name)));
    // And the compose block, completed with what the service is (image, command, mounts,
    // network), under docker-compose.
    h.expect_served_by_compose(&g.report("compose"), w);

    // Verify, observing the container from its start.
    let verify = |profile: &Path, caps: &Path, verdict: &Path| {
        let mut v = vec![
            cinch_bin().display().to_string(),
            "verify".into(),
            "-q".into(),
            "--format".into(),
            "json".into(),
            "-o".into(),
            verdict.display().to_string(),
            "--profile".into(),
            profile.display().to_string(),
            "--caps".into(),
            caps.display().to_string(),
            "--new-containers".into(),
            "--".into(),
        ];
        v.extend(h.run_argv(&Httpd::recording_profile(), &h.name));
        let out = run(&v);
        // The workload ran unrestricted and served; verify's own status is the verdict.
        Httpd::expect_answers(&out);
        Verdict::read(out.status.code(), verdict, &text(&out)).only(&h.name)
    };
    verify(&g.profile, &g.caps, &w.join("verdict.json"))
        .assert_clean("verify --new-containers with the generated profile");

    // Tight: without accept, httpd never answers; verify, attached to a running httpd while
    // the host requests pages, names accept.
    let minus = g.without_syscall("accept");
    let out = run(&h.run_argv(&Httpd::enforced(&minus, &g.cap_add), &h.name));
    assert!(
        !out.status.success(),
        "served without accept: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GET /index.html: expected 200"),
        "{}",
        text(&out)
    );
    let serving = format!("{}-attach", h.name);
    let _guard2 = ContainerGuard(serving.clone());
    let mut detached: Vec<String> = ["run", "-d", "--rm", "--pull", "never", "--network", "host"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    detached.extend(["--name".into(), serving.clone()]);
    detached.extend(Httpd::recording_profile());
    detached.extend(Httpd::mounts());
    detached.extend([
        h.image.clone(),
        "httpd".into(),
        "-f".into(),
        "-u".into(),
        "nobody:nogroup".into(),
        "-p".into(),
        format!("127.0.0.1:{}", h.port),
        "-h".into(),
        "/www".into(),
    ]);
    let args: Vec<&str> = detached.iter().map(String::as_str).collect();
    let out = docker.cmd(&args);
    assert!(out.status.success(), "docker run -d: {}", text(&out));
    assert!(
        wait_until("httpd listening", Duration::from_secs(10), || listening(
            std::process::id(),
            h.port
        )),
        "the detached httpd does not listen"
    );
    let verdict = w.join("verdict-accept.json");
    let mut attach = Command::new(cinch_bin());
    attach
        .args(["verify", "-q", "--format", "json", "-o"])
        .arg(&verdict);
    attach
        .arg("--profile")
        .arg(&minus)
        .arg("--caps")
        .arg(&g.caps);
    attach.args(["--container", &serving, "--duration", "30s"]);
    attach.args(["--ready-fd", Ready::FD]);
    let mut ready = Ready::new(&mut attach);
    let attached = Background::spawn(attach, w.join("attach.log"));
    // Request pages from the host once cinch observes the container.
    ready.wait(Duration::from_secs(30));
    let page =
        std::fs::read_to_string(examples().join("busybox-httpd/www/index.html")).expect("page");
    for _ in 0..3 {
        let a = get(None, &format!("http://127.0.0.1:{}/index.html", h.port));
        assert!(a.ok() && a.body == page, "GET from the host: {a:?}");
    }
    let out = docker.cmd(&["stop", "-t", "2", &serving]);
    assert!(out.status.success(), "docker stop: {}", text(&out));
    let (status, log) = attached.wait(Duration::from_secs(40));
    Verdict::read(status.code(), &verdict, &log)
        .only(&serving)
        .assert_names(&["accept"], &[], "verify --container without accept");

    // Tight: without SETUID httpd cannot drop to nobody and exits; verify names SETUID.
    let minus = g.without_cap("SETUID");
    let fewer: BTreeSet<String> = g
        .cap_add
        .iter()
        .filter(|c| *c != "SETUID")
        .cloned()
        .collect();
    let out = run(&h.run_argv(&Httpd::enforced(&g.profile, &fewer), &h.name));
    assert!(
        !out.status.success(),
        "served without SETUID: {}",
        text(&out)
    );
    verify(&g.profile, &minus, &w.join("verdict-setuid.json")).assert_names(
        &[],
        &["SETUID"],
        "verify --new-containers without SETUID",
    );
}

/// A container that never touches the network gets `network: none` in its settings, one that
/// writes only /tmp a read-only root with a tmpfs there, and one that ran as nobody the user
/// nobody; it runs with the full `docker run` line `cinch report` gives (seccomp,
/// no-new-privileges, cap_drop ALL, `--user`, `--read-only --tmpfs /tmp`, the limits,
/// `--network none`). Without the tmpfs it fails, and `cinch verify` against
/// settings without it names the path. busybox httpd, which listens on AF_INET, keeps the
/// default network (busybox_httpd_in_docker).
#[test]
fn a_container_runs_read_only_without_network_from_its_generated_line() {
    let name = "a_container_runs_read_only_without_network_from_its_generated_line";
    guard!(bpf);
    let Some(_docker) = Docker::require(name) else {
        return;
    };
    let image = busybox_image();
    let container = format!("cinch-e2e-nonet-{}", std::process::id());
    let _guard = ContainerGuard(container.clone());
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let script = "echo cinch > /tmp/note && cat /tmp/note && ls / >/dev/null";
    let docker_run = |flags: &[String]| -> Vec<String> {
        let mut argv: Vec<String> = ["docker", "run", "--rm", "--pull", "never", "--name"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        argv.push(container.clone());
        argv.extend(flags.iter().cloned());
        argv.extend([image.clone(), "sh".into(), "-c".into(), script.into()]);
        argv
    };
    let recs = w.join("recs");
    let mut record: Vec<String> = vec![
        cinch_bin().display().to_string(),
        "record".into(),
        "--new-containers".into(),
        "-q".into(),
        "-o".into(),
        recs.display().to_string(),
        "--".into(),
    ];
    // Recorded on the host's network: what it does decides, not what it was given. As nobody:
    // the settings then run it as nobody.
    let mut flags = Httpd::recording_profile();
    flags.extend([
        "--network".into(),
        "host".into(),
        "--user".into(),
        "65534:65534".into(),
    ]);
    record.extend(docker_run(&flags));
    let out = run(&record);
    assert!(out.status.success(), "recording: {}", text(&out));
    let recording = recs.join(format!("{container}.json"));
    assert!(recording.is_file(), "no recording: {}", text(&out));
    let g = Generated::new(w, "nonet", &[recording]);
    let mut settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&g.caps).expect("settings")).expect("JSON");
    assert_eq!(settings["network"]["mode"], "none", "{settings}");
    assert_eq!(settings["filesystem"]["read_only"], true, "{settings}");
    let line = g.report("docker-run").trim().to_owned();
    // The tmpfs is sized from the bytes its files held when the tracer saw them.
    let tmpfs = line
        .split(" --tmpfs ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains(" --user 65534:65534 --read-only --tmpfs /tmp")
            && (tmpfs == "/tmp" || tmpfs.starts_with("/tmp:size="))
            && line.contains(" --pids-limit ")
            && line.contains(" --memory ")
            && line.contains(" --cpus ")
            && line.ends_with(" --network none"),
        "{line}"
    );
    // The same settings as a Kubernetes Pod and NetworkPolicy, valid for the API as printed.
    if require(
        name,
        kubernetes::available(),
        "needs kubernetes-validate (cargo xtask setup installs it)",
    ) {
        let yaml = g.report("kubernetes");
        assert!(yaml.contains("runAsUser: 65534"), "{yaml}");
        kubernetes::validate(&yaml).unwrap_or_else(|e| panic!("{e}"));
    }
    let flags: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    let out = run(&docker_run(&flags));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("cinch"),
        "under {line}: {}",
        text(&out)
    );

    // Without the tmpfs the root is read-only where it writes.
    let without = line.replace(&format!(" --tmpfs {tmpfs}"), "");
    let flags: Vec<String> = without.split_whitespace().map(str::to_owned).collect();
    let out = run(&docker_run(&flags));
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "under {without}: {}",
        text(&out)
    );
    // verify, against settings without the tmpfs, names the path.
    settings["filesystem"]["mounts"] = serde_json::json!([]);
    let fewer = w.join("no-tmpfs.settings.json");
    std::fs::write(&fewer, settings.to_string()).expect("write settings");
    let mut verify: Vec<String> = vec![
        cinch_bin().display().to_string(),
        "verify".into(),
        "--profile".into(),
        g.profile.display().to_string(),
        "--caps".into(),
        fewer.display().to_string(),
        "--new-containers".into(),
        "--".into(),
    ];
    let mut flags = Httpd::recording_profile();
    flags.extend(["--network".into(), "none".into()]);
    verify.extend(docker_run(&flags));
    let out = run(&verify);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        said.contains("denied write /tmp/note (openat by sh)"),
        "{}",
        text(&out)
    );
}
