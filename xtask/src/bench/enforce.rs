//! Enforcement: a seccomp filter runs on every syscall too. The getppid and write loops run
//! under the profile cinch generates for them and under Docker's default profile, both loaded
//! by `cinch run` as runc loads them, against no filter and an allow-everything filter.
//!
//! Since Linux 5.11 the kernel caches, per syscall number, "this filter always allows it"
//! (kernel/seccomp.c, seccomp_cache_prepare()); a syscall whose rule has no argument
//! condition then skips the filter, whatever its length. So both profiles are expected to cost
//! about the same on these loops; a difference would show on syscalls with argument rules
//! (Docker's `clone`, `personality`, `socket` conditions). Figures are the loop's CPU time per
//! call: the filter runs in the calling thread.

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;
use serde_json::{Map, Value, json};

use super::Bench;
use super::proc::Running;
use super::recording::RecordingCheck;
use super::stats::Samples;
use super::workloads::{self, Workload};
use crate::util::{output, workspace_root};

const LIMIT: Duration = Duration::from_secs(60);
/// Docker's default capabilities (moby oci/caps/defaults.go): what `docker run` keeps, and so
/// which conditional rules of its default profile apply.
const DOCKER_DEFAULT_CAPS: &str = "CHOWN,DAC_OVERRIDE,FSETID,FOWNER,MKNOD,NET_RAW,SETGID,SETUID,SETFCAP,SETPCAP,NET_BIND_SERVICE,SYS_CHROOT,KILL,AUDIT_WRITE";
const DOCKER_PROFILE: &str = "profile-gen/data/moby-default-29.7.2.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Filter {
    /// No seccomp filter.
    None,
    /// `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}`: a filter that allows everything.
    AllowAll,
    /// The profile `cinch generate` wrote for the workload.
    Generated,
    /// Docker's default profile.
    DockerDefault,
}

impl Filter {
    pub(super) const ALL: [Filter; 4] = [
        Filter::None,
        Filter::AllowAll,
        Filter::Generated,
        Filter::DockerDefault,
    ];

    pub(super) fn key(self) -> &'static str {
        match self {
            Filter::None => "no_filter",
            Filter::AllowAll => "allow_all",
            Filter::Generated => "generated",
            Filter::DockerDefault => "docker_default",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Filter::None => "no filter",
            Filter::AllowAll => "allow-all",
            Filter::Generated => "generated",
            Filter::DockerDefault => "docker default",
        }
    }
}

/// One workload under each filter.
#[derive(Debug, Clone)]
pub(super) struct WorkloadFilters {
    pub workload: Workload,
    /// ns per call under each filter.
    pub filters: Vec<(Filter, Samples)>,
    /// Syscall names the generated profile allows.
    pub allowed: usize,
}

#[derive(Debug, Clone)]
pub(super) struct EnforceResult {
    pub workloads: Vec<WorkloadFilters>,
}

impl EnforceResult {
    pub(super) fn median(&self, w: Workload, f: Filter) -> Option<f64> {
        let wf = self.workloads.iter().find(|x| x.workload == w)?;
        wf.filters.iter().find(|(x, _)| *x == f)?.1.median()
    }

    pub(super) fn to_json(&self) -> Value {
        let mut out = Map::new();
        for WorkloadFilters {
            workload: w,
            filters,
            allowed,
        } in &self.workloads
        {
            let mut m = Map::new();
            for (f, samples) in filters {
                let mut v = samples.to_json();
                v["added_over_no_filter_median"] = json!(
                    self.median(*w, *f)
                        .zip(self.median(*w, Filter::None))
                        .map(|(a, b)| super::stats::round2(a - b))
                );
                m.insert(f.key().to_owned(), v);
            }
            out.insert(
                w.key().to_owned(),
                json!({
                    "unit": "ns per call",
                    "generated_profile_allows": allowed,
                    "docker_default_profile": DOCKER_PROFILE,
                    "filters": m,
                }),
            );
        }
        Value::Object(out)
    }
}

/// Whether this cinch has `cinch run`.
pub(super) fn available(b: &Bench) -> bool {
    output(Command::new(&b.cinch).args(["run", "--help"])).is_ok_and(|o| o.status.success())
}

pub(super) fn run(b: &mut Bench) -> anyhow::Result<EnforceResult> {
    let mut workloads = Vec::new();
    let mut profiles = Vec::new();
    for w in [Workload::Getppid, Workload::Write] {
        let (profile, caps, names) = generate(b, w)?;
        profiles.push((w, profile, caps));
        workloads.push(WorkloadFilters {
            workload: w,
            filters: Filter::ALL
                .iter()
                .map(|&f| (f, Samples::default()))
                .collect(),
            allowed: names,
        });
    }
    let n_filters = Filter::ALL.len();
    for round in 0..b.rounds {
        println!("==> bench: enforcement, round {}/{}", round + 1, b.rounds);
        for (wf, (_, profile, caps)) in workloads.iter_mut().zip(&profiles) {
            let w = wf.workload;
            for i in 0..n_filters {
                let (f, samples) = &mut wf.filters[(i + round) % n_filters];
                b.wait_quiet();
                let v = sample(b, w, *f, profile, caps)?;
                samples.push(v);
                println!("    {:<9} {:<15} {v:>9.1} ns per call", w.key(), f.label());
            }
        }
    }
    Ok(EnforceResult { workloads })
}

/// Records a short run of `w` and generates its profile: (profile, capability settings,
/// number of syscall names it allows).
fn generate(
    b: &mut Bench,
    w: Workload,
) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf, usize)> {
    let recording = b.tmp.join(format!("rec-enforce-{}.json", w.key()));
    let profile = b.tmp.join(format!("seccomp-{}.json", w.key()));
    let caps = b.tmp.join(format!("settings-{}.json", w.key()));
    let n: u64 = 1000;
    let mut record = Command::new(&b.cinch);
    record
        .args(["record", "-q", "-o"])
        .arg(&recording)
        .arg("--")
        .arg(&b.loops)
        .args([w.key(), &n.to_string()]);
    let out = b.tmp.join(format!("enforce-{}.out", w.key()));
    Running::spawn_logged(
        &mut record,
        &out,
        &b.tmp.join(format!("enforce-{}.err", w.key())),
    )?
    .wait_ok(LIMIT)?;
    let report = workloads::parse(&std::fs::read_to_string(&out).unwrap_or_default(), w)?;
    b.checks.push(RecordingCheck::read(
        format!("{} under cinch record, for its profile", w.describe()),
        &recording,
        w.counted_syscall(),
        report.calls,
        1,
    )?);
    let mut generate = Command::new(&b.cinch);
    generate
        .args(["generate", "-o"])
        .arg(&profile)
        .arg("--caps-out")
        .arg(&caps)
        .arg(&recording);
    let o = output(&mut generate)?;
    if !o.status.success() {
        bail!(
            "cinch generate failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let text = std::fs::read_to_string(&profile)?;
    let json: Value = serde_json::from_str(&text)?;
    let names = json["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"].as_str() == Some("SCMP_ACT_ALLOW"))
        .filter_map(|r| r["names"].as_array())
        .map(Vec::len)
        .sum();
    Ok((profile, caps, names))
}

fn sample(
    b: &Bench,
    w: Workload,
    f: Filter,
    profile: &std::path::Path,
    caps: &std::path::Path,
) -> anyhow::Result<f64> {
    let n = w.iterations(false, b.quick);
    let argv: Vec<OsString> = vec![
        b.loops.clone().into_os_string(),
        w.key().into(),
        n.to_string().into(),
    ];
    let mut cmd = match f {
        Filter::None => Command::new(&b.loops),
        _ => Command::new(&b.cinch),
    };
    match f {
        Filter::None => {
            cmd.args(&argv[1..]);
        }
        Filter::AllowAll => {
            cmd.args(["run", "--profile"])
                .arg(
                    workspace_root()
                        .join("profiles")
                        .join("recording-profile.json"),
                )
                .arg("--")
                .args(&argv);
        }
        Filter::Generated => {
            cmd.args(["run", "--profile"])
                .arg(profile)
                .arg("--caps")
                .arg(caps)
                .arg("--")
                .args(&argv);
        }
        Filter::DockerDefault => {
            cmd.args(["run", "--profile"])
                .arg(workspace_root().join(DOCKER_PROFILE))
                .args(["--cap-add", DOCKER_DEFAULT_CAPS])
                .arg("--")
                .args(&argv);
        }
    }
    let tag = format!("enforce-{}-{}", w.key(), f.key());
    let out = b.tmp.join(format!("{tag}.out"));
    Running::spawn_logged(&mut cmd, &out, &b.tmp.join(format!("{tag}.err")))?.wait_ok(LIMIT)?;
    Ok(workloads::parse(&std::fs::read_to_string(&out).unwrap_or_default(), w)?.cpu_ns_per_op())
}
