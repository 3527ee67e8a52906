//! End-to-end tier: real Debian services (nginx and redis from Debian's packages, in an image
//! debootstrapped from the package mirror) recorded in Docker, then started with the whole
//! configuration cinch generates: the `docker run` line `cinch report` prints (seccomp,
//! no-new-privileges, `--cap-drop ALL` + `--cap-add`, a read-only root with its tmpfs and
//! volumes, the user where no process needed root, the limits), and the compose block under
//! `docker-compose up`. Each must pass the same client checks from the host as the recorded
//! run. The test adds only what the service is (image, command, its configuration file) and
//! `--network host`, which keeps the traffic on the host's loopback.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cinch_tests::docker::{Docker, wait_until_name_is_free};
use cinch_tests::output_text as text;
use cinch_tests::{
    cinch_bin, debian, free_port, generate_with_settings, guard, on_path, recording_profile,
    report_snippet, require,
};

/// The image both services come from.
const IMAGE: &str = "cinch-test/debian-services:bookworm";
const PACKAGES: &[&str] = &["nginx-light", "redis-server"];

/// A service: how it is started in the image, and how the host checks it.
struct Service {
    /// Container name (and compose project name).
    name: String,
    /// Arguments of `docker run` after the security options: mounts, image, command.
    run: Vec<String>,
    /// Extra `docker run` options of the recorded run (`--user`); the generated line brings
    /// its own.
    recorded_as: Vec<String>,
    /// A shell script run on the host: waits until the service answers, then checks it; exit
    /// status 0 when every answer was right.
    check: String,
}

impl Service {
    /// `docker run -d` of the service with `flags`, the checks, `docker stop`: one shell
    /// command, whose status is the checks'.
    fn session(&self, flags: &[String]) -> Vec<String> {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let mut run = vec![
            "docker",
            "run",
            "-d",
            "--rm",
            "--pull",
            "never",
            "--network",
            "host",
            "--name",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        run.push(self.name.clone());
        run.extend(flags.iter().cloned());
        run.extend(self.run.iter().cloned());
        let run: Vec<String> = run.iter().map(|a| quote(a)).collect();
        let script = format!(
            "{} >/dev/null || exit 1\n{}\nstatus=$?\ndocker logs {name} >&2\ndocker stop -t 10 {name} >/dev/null\nexit $status\n",
            run.join(" "),
            self.check,
            name = quote(&self.name),
        );
        vec!["sh".into(), "-c".into(), script]
    }

    /// Runs [`Service::session`] with `flags`; the output, after the name is free again.
    fn run_session(&self, flags: &[String]) -> Output {
        assert!(
            wait_until_name_is_free(&self.name, Duration::from_secs(30)),
            "container {} still exists",
            self.name
        );
        let argv = self.session(flags);
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .expect("running the session")
    }

    /// Records a session under the recording profile; the recording of the service's
    /// container.
    fn record(&self, dir: &Path) -> PathBuf {
        assert!(
            wait_until_name_is_free(&self.name, Duration::from_secs(30)),
            "container {} still exists",
            self.name
        );
        let recs = dir.join("recs");
        let mut flags = vec![
            "--security-opt".to_owned(),
            format!("seccomp={}", recording_profile().display()),
        ];
        flags.extend(self.recorded_as.iter().cloned());
        let out = Command::new(cinch_bin())
            .args(["record", "--new-containers", "-q", "-o"])
            .arg(&recs)
            .arg("--")
            .args(self.session(&flags))
            .stdin(Stdio::null())
            .output()
            .expect("running cinch record");
        assert!(out.status.success(), "recorded session: {}", text(&out));
        let rec = recs.join(format!("{}.json", self.name));
        assert!(
            rec.is_file(),
            "no recording of {}: {}",
            self.name,
            text(&out)
        );
        rec
    }

    /// `docker-compose up -d` of `block` (the compose service block `cinch report` prints)
    /// completed with the service's image, command and mounts and the host's network; the
    /// checks; `docker-compose down -v`.
    fn compose_session(&self, block: &str, dir: &Path) -> Output {
        use serde_norway::Value;
        let mut compose: Value = serde_norway::from_str(block)
            .unwrap_or_else(|e| panic!("the compose block is not YAML ({e}):\n{block}"));
        let app = compose["services"]["app"]
            .as_mapping_mut()
            .expect("services.app");
        // `run` is [-v MOUNT]... IMAGE COMMAND...
        let mut mounts: Vec<Value> = app
            .get("volumes")
            .and_then(Value::as_sequence)
            .cloned()
            .unwrap_or_default();
        let mut rest = self.run.iter();
        let image = loop {
            match rest.next().map(String::as_str) {
                Some("-v") => mounts.push(Value::from(rest.next().expect("a mount").as_str())),
                Some(image) => break image.to_owned(),
                None => panic!("no image in {:?}", self.run),
            }
        };
        let command: Vec<String> = rest.cloned().collect();
        app.insert("image".into(), Value::from(image));
        app.insert("command".into(), Value::from(command));
        app.insert("volumes".into(), Value::from(mounts));
        app.insert("network_mode".into(), Value::from("host"));
        let file = dir.join(format!("{}.compose.yaml", self.name));
        let yaml = serde_norway::to_string(&compose).expect("YAML");
        std::fs::write(&file, &yaml).expect("writing the compose file");
        let compose = |args: &[&str]| {
            Command::new("docker-compose")
                .args(["--no-ansi", "-p", &self.name, "-f"])
                .arg(&file)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("running docker-compose")
        };
        let up = compose(&["up", "-d"]);
        assert!(
            up.status.success(),
            "docker-compose up of:\n{yaml}\n{}",
            text(&up)
        );
        let checked = Command::new("sh")
            .args(["-c", &self.check])
            .stdin(Stdio::null())
            .output()
            .expect("running the checks");
        let logs = compose(&["logs"]);
        let down = compose(&["down", "-v"]);
        assert!(
            down.status.success(),
            "docker-compose down: {}",
            text(&down)
        );
        assert!(
            checked.status.success(),
            "checks under docker-compose of:\n{yaml}\n{}\nlogs: {}",
            text(&checked),
            text(&logs)
        );
        checked
    }
}

/// Record, generate, then run under the whole generated line and under compose.
fn record_and_enforce(service: &Service, dir: &Path) -> serde_json::Value {
    let recording = service.record(dir);
    let (profile, settings, summary) = generate_with_settings(dir, "service", &[recording], &[]);
    println!("{summary}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&settings).expect("settings")).expect("JSON");
    let line = report_snippet(&profile, &settings, "docker-run")
        .trim()
        .to_owned();
    for flag in [
        "--cap-drop ALL",
        "--read-only",
        "--pids-limit",
        "--memory",
        "--cpus",
    ] {
        assert!(line.contains(flag), "no {flag} in {line}");
    }
    // The checks are the host's clients on its loopback: the session's --network host takes
    // the place of the line's network (none, for a service that used nothing beyond loopback).
    let mut flags: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    if let Some(i) = flags.iter().position(|f| f == "--network") {
        flags.drain(i..i + 2);
    }
    let out = service.run_session(&flags);
    assert!(out.status.success(), "under `{line}`: {}", text(&out));
    service.compose_session(&report_snippet(&profile, &settings, "compose"), dir);
    json
}

/// What both tests need: the daemon and the client tools (`None`: skipped), then the image,
/// a scratch directory and a free loopback port.
fn setup(name: &str) -> Option<(String, tempfile::TempDir, u16)> {
    Docker::require(name)?;
    for tool in ["curl", "redis-cli", "docker-compose", "debootstrap"] {
        if !require(
            name,
            on_path(tool),
            &format!("{tool} is not installed (cargo xtask setup installs it)"),
        ) {
            return None;
        }
    }
    let image =
        debian::image(IMAGE, PACKAGES, &[]).unwrap_or_else(|e| panic!("building {IMAGE}: {e}"));
    Some((image, tempfile::tempdir().expect("tempdir"), free_port()))
}

/// nginx as Debian ships it, configured to listen on a loopback port: its master stays root
/// and its workers run as www-data, it writes its pid under /run, its access log under
/// /var/log/nginx and its temporary directories under /var/lib/nginx.
#[test]
fn nginx_runs_under_its_whole_generated_configuration() {
    guard!(bpf);
    let Some((image, work, port)) = setup(cinch_tests::test_name!()) else {
        return;
    };
    let conf = work.path().join("conf");
    std::fs::create_dir(&conf).expect("mkdir");
    std::fs::write(
        conf.join("nginx.conf"),
        format!(
            "user www-data;\nworker_processes 2;\npid /run/nginx.pid;\nerror_log stderr notice;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log /var/log/nginx/access.log;\n  server {{\n    listen 127.0.0.1:{port};\n    root /var/www/html;\n    index index.nginx-debian.html;\n  }}\n}}\n"
        ),
    )
    .expect("writing nginx.conf");
    let url = format!("http://127.0.0.1:{port}");
    let service = Service {
        name: format!("cinch-e2e-nginx-{}", std::process::id()),
        run: vec![
            "-v".into(),
            format!("{}:/etc/cinch:ro", conf.display()),
            image,
            "nginx".into(),
            "-c".into(),
            "/etc/cinch/nginx.conf".into(),
            "-g".into(),
            "daemon off;".into(),
        ],
        recorded_as: Vec::new(),
        check: format!(
            "i=0; until curl -fsS -o /dev/null {url}/; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done\n\
             curl -fsS {url}/ | grep -q 'Welcome to nginx' || {{ echo 'GET /: no welcome page' >&2; exit 1; }}\n\
             [ \"$(curl -s -o /dev/null -w '%{{http_code}}' {url}/missing)\" = 404 ] || {{ echo 'GET /missing: not 404' >&2; exit 1; }}\n"
        ),
    };
    let settings = record_and_enforce(&service, work.path());
    let mounts: Vec<&str> = settings["filesystem"]["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["path"].as_str().expect("path"))
        .collect();
    for path in ["/run", "/var/log/nginx"] {
        assert!(mounts.contains(&path), "no writable {path}: {settings}");
    }
}

/// redis as Debian ships it, run as its own user: every process ran as redis, so the settings
/// run it as that user; it saves its data under /var/lib/redis, which gets a volume.
#[test]
fn redis_runs_as_its_user_under_its_whole_generated_configuration() {
    guard!(bpf);
    let Some((image, work, port)) = setup(cinch_tests::test_name!()) else {
        return;
    };
    let cli = format!("redis-cli -h 127.0.0.1 -p {port}");
    let service = Service {
        name: format!("cinch-e2e-redis-{}", std::process::id()),
        run: vec![
            image,
            "redis-server".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            "/var/lib/redis".into(),
            "--save".into(),
            String::new(),
            "--logfile".into(),
            String::new(),
        ],
        recorded_as: vec!["--user".into(), "redis".into()],
        check: format!(
            "i=0; until [ \"$({cli} ping 2>/dev/null)\" = PONG ]; do i=$((i+1)); [ $i -ge 100 ] && exit 1; sleep 0.1; done\n\
             [ \"$({cli} set cinch works)\" = OK ] || {{ echo 'SET failed' >&2; exit 1; }}\n\
             [ \"$({cli} get cinch)\" = works ] || {{ echo 'GET failed' >&2; exit 1; }}\n\
             [ \"$({cli} save)\" = OK ] || {{ echo 'SAVE failed' >&2; exit 1; }}\n"
        ),
    };
    let settings = record_and_enforce(&service, work.path());
    let user = settings["user"]["user"].as_str().unwrap_or_default();
    assert!(
        !user.is_empty() && !user.starts_with("0:"),
        "redis ran as its user: {settings}"
    );
    let mounts = settings["filesystem"]["mounts"].to_string();
    assert!(mounts.contains("/var/lib/redis"), "{settings}");
}
