//! `cargo xtask demo`: set-up, build, then the record-then-enforce flow of docs/DESIGN.md on a small
//! shipped workload (`examples/demo/workload.sh`): record it, generate its profile and
//! capability settings, run it under them, verify nothing it does would be denied, and report.
//! A step whose command does not exist is reported as not available, and the demo stops there:
//! it never stands in for a step.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};

use anyhow::{Context as _, bail};

use crate::util::{as_root, build_cinch, is_root, output, show, target_dir, workspace_root};

/// What cinch answers for a subcommand that is not built yet.
const NOT_BUILT: &str = "is not built yet";

enum Step {
    Done(String),
    NotYet(String),
}

struct Demo {
    cinch: PathBuf,
    workload: PathBuf,
    out: PathBuf,
    summary: Vec<(&'static str, Step)>,
}

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    crate::setup::run()?;
    let cinch = build_cinch(true)?;
    let out = target_dir()?.join("demo");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut demo = Demo {
        cinch,
        workload: workspace_root()
            .join("examples")
            .join("demo")
            .join("workload.sh"),
        out,
        summary: Vec::new(),
    };
    let result = demo.steps();
    demo.print_summary();
    result.map(|()| ExitCode::SUCCESS)
}

impl Demo {
    fn path(&self, name: &str) -> PathBuf {
        self.out.join(name)
    }

    /// cinch, through sudo when recording needs privileges we do not have.
    fn cinch(&self, privileged: bool) -> anyhow::Result<Command> {
        if privileged && !is_root() {
            let mut cmd = as_root(&self.cinch.to_string_lossy())?;
            cmd.current_dir(&self.out);
            return Ok(cmd);
        }
        let mut cmd = Command::new(&self.cinch);
        cmd.current_dir(&self.out);
        Ok(cmd)
    }

    fn workload_cmd(&self) -> [String; 2] {
        [
            "/bin/sh".to_owned(),
            self.workload.to_string_lossy().into_owned(),
        ]
    }

    fn steps(&mut self) -> anyhow::Result<()> {
        if !self.record()? {
            return Ok(());
        }
        if !self.generate()? {
            self.not_yet("enforce", "needs the generated profile");
            self.not_yet("report", "needs the generated profile");
            return Ok(());
        }
        self.enforce()?;
        self.verify()?;
        self.report()?;
        Ok(())
    }

    fn not_yet(&mut self, step: &'static str, why: &str) {
        println!("==> {step}: not available yet ({why})");
        self.summary.push((step, Step::NotYet(why.to_owned())));
    }

    /// Runs a cinch step; Ok(None) when the subcommand is not built yet.
    fn cinch_step(&self, step: &str, cmd: &mut Command) -> anyhow::Result<Option<Output>> {
        println!("==> {step}: {}", show(cmd));
        let out = output(cmd)?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        if !out.status.success() && stderr.contains(NOT_BUILT) {
            return Ok(None);
        }
        if !out.status.success() {
            bail!("{step} failed ({}): `{}`", out.status, show(cmd));
        }
        Ok(Some(out))
    }

    fn record(&mut self) -> anyhow::Result<bool> {
        let rec = self.path("recording.json");
        let mut cmd = self.cinch(true)?;
        cmd.args(["record", "-o"])
            .arg(&rec)
            .arg("--")
            .args(self.workload_cmd());
        if self.cinch_step("record", &mut cmd)?.is_none() {
            self.not_yet("record", "`cinch record` is not built yet");
            return Ok(false);
        }
        let text = std::fs::read_to_string(&rec)
            .with_context(|| format!("reading the recording {}", rec.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).context("parsing the recording")?;
        let per_arch: Vec<String> = json["syscalls"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(arch, calls)| {
                        format!("{arch}: {}", calls.as_array().map_or(0, Vec::len))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let caps = json["capabilities"]
            .as_array()
            .map(|c| format!(", {} capability checks", c.len()))
            .unwrap_or_default();
        self.summary.push((
            "record",
            Step::Done(format!(
                "{} — syscalls per arch {}, {} processes{caps}",
                rel(&rec),
                if per_arch.is_empty() {
                    "none".to_owned()
                } else {
                    per_arch.join(", ")
                },
                json["processes_seen"].as_u64().unwrap_or(0),
            )),
        ));
        Ok(true)
    }

    fn generate(&mut self) -> anyhow::Result<bool> {
        let (rec, profile, settings) = (
            self.path("recording.json"),
            self.path("seccomp.json"),
            self.path("settings.json"),
        );
        let mut cmd = self.cinch(false)?;
        cmd.args(["generate", "-o"])
            .arg(&profile)
            .arg("--caps-out")
            .arg(&settings)
            .arg(&rec);
        match self.cinch_step("generate", &mut cmd)? {
            None => {
                self.not_yet("generate", "`cinch generate` is not built yet");
                Ok(false)
            }
            Some(out) => {
                // cinch's own summary line about the allowed syscalls, when it prints one.
                let (stdout, stderr) = (
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                );
                let first = stdout
                    .lines()
                    .chain(stderr.lines())
                    .map(str::trim)
                    .find(|l| l.starts_with("syscalls:"))
                    .map(|l| format!(" — {l}"))
                    .unwrap_or_default();
                self.summary.push((
                    "generate",
                    Step::Done(format!("{} and {}{first}", rel(&profile), rel(&settings))),
                ));
                Ok(true)
            }
        }
    }

    /// Runs the workload under the generated profile and capabilities with `cinch run`.
    fn enforce(&mut self) -> anyhow::Result<()> {
        let help = output(Command::new(&self.cinch).args(["run", "--help"]))?;
        if !help.status.success() {
            self.not_yet("enforce", "`cinch run` is not built yet");
            return Ok(());
        }
        let mut cmd = self.cinch(true)?;
        cmd.args(["run", "--profile"])
            .arg(self.path("seccomp.json"))
            .arg("--caps")
            .arg(self.path("settings.json"))
            .arg("--")
            .args(self.workload_cmd());
        if self.cinch_step("enforce", &mut cmd)?.is_none() {
            self.not_yet("enforce", "`cinch run` is not built yet");
            return Ok(());
        }
        self.summary.push((
            "enforce",
            Step::Done("the workload ran to success under its own profile".to_owned()),
        ));
        Ok(())
    }

    /// Observes the workload again, unrestricted, and checks that the profile and settings
    /// would deny nothing it does (`cinch verify` exits 1 and names each denial otherwise).
    fn verify(&mut self) -> anyhow::Result<()> {
        let mut cmd = self.cinch(true)?;
        cmd.args(["verify", "--profile"])
            .arg(self.path("seccomp.json"))
            .arg("--caps")
            .arg(self.path("settings.json"))
            .arg("--")
            .args(self.workload_cmd());
        if self.cinch_step("verify", &mut cmd)?.is_none() {
            self.not_yet("verify", "`cinch verify` is not built yet");
            return Ok(());
        }
        self.summary.push((
            "verify",
            Step::Done("nothing the workload does would be denied".to_owned()),
        ));
        Ok(())
    }

    fn report(&mut self) -> anyhow::Result<()> {
        let mut cmd = self.cinch(false)?;
        cmd.arg("report")
            .arg(self.path("seccomp.json"))
            .arg("--caps")
            .arg(self.path("settings.json"));
        if self.cinch_step("report", &mut cmd)?.is_none() {
            self.not_yet("report", "`cinch report` is not built yet");
            return Ok(());
        }
        self.summary
            .push(("report", Step::Done("printed above".to_owned())));
        Ok(())
    }

    fn print_summary(&self) {
        println!();
        println!("==> demo summary (workload: {})", rel(&self.workload));
        for (step, s) in &self.summary {
            match s {
                Step::Done(what) => println!("  {step:<9} done: {what}"),
                Step::NotYet(why) => println!("  {step:<9} not available yet: {why}"),
            }
        }
    }
}

/// A path relative to the workspace root when it is inside it.
fn rel(p: &Path) -> String {
    p.strip_prefix(workspace_root())
        .unwrap_or(p)
        .display()
        .to_string()
}
