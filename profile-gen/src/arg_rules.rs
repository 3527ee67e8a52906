//! Argument conditions: what the generator allows of each argument-sensitive syscall
//! ([`crate::arguments`]), Docker's default conditions for a syscall whose values are not known,
//! and the words `generate` and `report` use for them.
//!
//! Rules are the runtime's own [`ArgCondition`]s (one list per allowing rule: all of a list must
//! hold, any list may), so what is generated, validated, enforced and verified is one model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::OnceLock;

use crate::arch::Arch;
use crate::arguments::{self, ArgSyscall, Kind, PROT_EXEC, PROT_WRITE};
use crate::capability::Capability;
use crate::docker_default::MOBY;
use crate::observed::{ArgEvidence, Observed};
use crate::seccomp::load::{self, ArgCondition, CompareOp, Host};
use crate::seccomp::spec::{self, SeccompSpec};

/// Alternatives: the syscall is allowed when every condition of one of them holds.
pub type Alternatives = Vec<Vec<ArgCondition>>;

/// How the generator decided a syscall's conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Only the observed values (or, for memory protections, never write and execute at once).
    Observed { values: BTreeSet<u64> },
    /// The values are not all known: Docker's default conditions instead.
    DockerConditions { why: BTreeSet<String> },
    /// Allowed bare: memory made writable and executable at once was observed; or Docker's
    /// default allows it bare; or there are more values than a readable rule list holds.
    Bare { why: String },
}

/// What the generator allows of one argument-sensitive syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecision {
    pub name: String,
    pub decision: Decision,
    /// Empty means allowed bare.
    pub alternatives: Alternatives,
    /// Values observed that Docker's default (for the kept capabilities) would refuse.
    pub beyond_docker: BTreeSet<u64>,
}

fn moby() -> &'static SeccompSpec {
    static SPEC: OnceLock<SeccompSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        spec::parse_spec(MOBY.as_bytes(), Path::new("moby-default.json"))
            .expect("the embedded moby profile parses (unit tests check it)")
    })
}

/// Docker's default conditions for `name` in an x86_64 container whose bounding set is `kept`:
/// `None` when Docker's default does not allow it at all, an empty list when it allows it bare.
pub fn docker_conditions(name: &str, kept: &BTreeSet<Capability>) -> Option<Alternatives> {
    let host = Host {
        native: Arch::X86_64,
        // Newer than every minKernel in moby's profile.
        kernel_release: "6.18".to_owned(),
        bounding: kept.clone(),
    };
    let plan = load::resolve(moby(), &host, Path::new("moby-default.json"))
        .expect("the embedded moby profile loads (unit tests check it)");
    let mut out: Alternatives = Vec::new();
    let mut allowed = false;
    for rule in plan
        .rules
        .iter()
        .filter(|r| r.name == name && r.action.allows())
    {
        allowed = true;
        if rule.args.is_empty() {
            return Some(Vec::new());
        }
        out.push(rule.args.clone());
    }
    allowed.then_some(out)
}

/// Whether `cond` holds for argument `index` being `value` (a value the kernel side masked with
/// `mask`): `None` when the condition is on another argument or needs bits that were masked off.
pub fn holds(cond: &ArgCondition, index: u32, mask: u64, value: u64) -> Option<bool> {
    if cond.index != index {
        return None;
    }
    Some(match cond.op {
        CompareOp::MaskedEq => {
            if cond.value & !mask != 0 {
                return None;
            }
            value & cond.value == cond.value_two
        }
        // The other comparisons look at the whole register: only exact for 32-bit values.
        _ if mask != 0xffff_ffff => return None,
        CompareOp::Eq => value == cond.value,
        CompareOp::Ne => value != cond.value,
        CompareOp::Lt => value < cond.value,
        CompareOp::Le => value <= cond.value,
        CompareOp::Gt => value > cond.value,
        CompareOp::Ge => value >= cond.value,
    })
}

/// Whether `alternatives` allow argument `index` = `value` (`None`: cannot tell).
pub fn allows(
    alternatives: &[Vec<ArgCondition>],
    index: u32,
    mask: u64,
    value: u64,
) -> Option<bool> {
    if alternatives.is_empty() {
        return Some(true);
    }
    let mut unknown = false;
    for alt in alternatives {
        match all_hold(alt, index, mask, value) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unknown = true,
        }
    }
    if unknown { None } else { Some(false) }
}

/// Whether every condition of one rule holds for argument `index` = `value` (`None`: cannot
/// tell, and none is known to fail).
pub fn all_hold(conditions: &[ArgCondition], index: u32, mask: u64, value: u64) -> Option<bool> {
    let mut all = Some(true);
    for c in conditions {
        match holds(c, index, mask, value) {
            Some(true) => {}
            Some(false) => return Some(false),
            None => all = None,
        }
    }
    all
}

fn masked_eq(index: u32, mask: u64, value: u64) -> ArgCondition {
    ArgCondition {
        index,
        op: CompareOp::MaskedEq,
        value: mask,
        value_two: value,
    }
}

/// The conditions for every argument-sensitive syscall in `allow`. `extra` is evidence from
/// outside the recordings, joined with theirs: the runtime baseline's names (values unknown),
/// glibc's clone fallback when clone3 is refused (no namespace flags).
pub fn decide(
    observed: &Observed,
    allow: &BTreeSet<String>,
    kept: &BTreeSet<Capability>,
    extra: &BTreeMap<String, ArgEvidence>,
) -> BTreeMap<String, ArgDecision> {
    let mut evidence: BTreeMap<&str, ArgEvidence> = BTreeMap::new();
    let names_and_evidence = observed
        .arguments
        .iter()
        .map(|((_, name), ev)| (name, ev))
        .chain(extra.iter());
    for (name, ev) in names_and_evidence {
        match evidence.get_mut(name.as_str()) {
            Some(mine) => mine.join(ev),
            None => {
                evidence.insert(name.as_str(), ev.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    for name in allow {
        let Some(entry) = arguments::ARG_SYSCALLS.iter().find(|a| a.name == name) else {
            continue;
        };
        let ev = evidence.get(name.as_str()).cloned().unwrap_or_else(|| {
            ArgEvidence::Unknown(["no argument values were recorded for it".to_owned()].into())
        });
        out.insert(name.clone(), decide_one(name, entry, ev, kept));
    }
    out
}

fn decide_one(
    name: &str,
    entry: &ArgSyscall,
    ev: ArgEvidence,
    kept: &BTreeSet<Capability>,
) -> ArgDecision {
    let docker = docker_conditions(name, kept);
    let fallback = |why: BTreeSet<String>| match &docker {
        Some(alts) if !alts.is_empty() => ArgDecision {
            name: name.to_owned(),
            decision: Decision::DockerConditions { why },
            alternatives: alts.clone(),
            beyond_docker: BTreeSet::new(),
        },
        Some(_) => ArgDecision {
            name: name.to_owned(),
            decision: Decision::Bare {
                why: format!(
                    "Docker's default allows it bare; {}",
                    why.into_iter().collect::<Vec<_>>().join("; ")
                ),
            },
            alternatives: Vec::new(),
            beyond_docker: BTreeSet::new(),
        },
        None => ArgDecision {
            name: name.to_owned(),
            decision: Decision::Bare {
                why: format!(
                    "Docker's default does not allow it but the workload made it; {}",
                    why.into_iter().collect::<Vec<_>>().join("; ")
                ),
            },
            alternatives: Vec::new(),
            beyond_docker: BTreeSet::new(),
        },
    };
    let values = match ev {
        ArgEvidence::Unknown(why) => return fallback(why),
        ArgEvidence::Known(values) => values,
    };
    let beyond_docker: BTreeSet<u64> = match &docker {
        None => values.clone(),
        Some(alts) => values
            .iter()
            .copied()
            .filter(|v| allows(alts, entry.index, entry.mask, *v) == Some(false))
            .collect(),
    };
    match entry.kind {
        Kind::NoWriteExec => {
            if values
                .iter()
                .any(|v| v & (PROT_WRITE | PROT_EXEC) == PROT_WRITE | PROT_EXEC)
            {
                ArgDecision {
                    name: name.to_owned(),
                    decision: Decision::Bare {
                        why: "the workload made memory writable and executable at once".to_owned(),
                    },
                    alternatives: Vec::new(),
                    beyond_docker,
                }
            } else {
                ArgDecision {
                    name: name.to_owned(),
                    decision: Decision::Observed { values },
                    alternatives: vec![
                        vec![masked_eq(entry.index, PROT_EXEC, 0)],
                        vec![masked_eq(entry.index, PROT_WRITE, 0)],
                    ],
                    beyond_docker,
                }
            }
        }
        Kind::Values if values.len() > entry.max_values => {
            let why = [format!(
                "{} distinct values, more than the {} a readable rule list holds",
                values.len(),
                entry.max_values
            )]
            .into();
            let mut d = fallback(why);
            d.beyond_docker = BTreeSet::new();
            d
        }
        Kind::Values => ArgDecision {
            name: name.to_owned(),
            alternatives: values
                .iter()
                .map(|v| vec![masked_eq(entry.index, entry.mask, *v)])
                .collect(),
            decision: Decision::Observed { values },
            beyond_docker,
        },
    }
}

/// What a profile (or a recording, as a need) allows of one argument-sensitive syscall.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allowance {
    /// Any arguments (a bare rule).
    Any,
    /// Exactly these values of the table's argument (masked as the table says).
    Values(BTreeSet<u64>),
    /// Any memory protection but writable and executable at once.
    NoWriteExec,
    /// Other conditions.
    Conditions(#[serde(skip)] Alternatives),
}

impl Allowance {
    /// Whether value `v` of `entry`'s argument is allowed (`None`: cannot tell).
    pub fn allows(&self, entry: &ArgSyscall, v: u64) -> Option<bool> {
        match self {
            Allowance::Any => Some(true),
            Allowance::Values(set) => Some(set.contains(&v)),
            Allowance::NoWriteExec => Some(v & (PROT_WRITE | PROT_EXEC) != PROT_WRITE | PROT_EXEC),
            Allowance::Conditions(alts) => allows(alts, entry.index, entry.mask, v),
        }
    }

    /// In words, after the syscall's name: `AF_UNIX, AF_INET only`.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Allowance::Any => "any arguments".to_owned(),
            Allowance::Values(set) => {
                let words: Vec<String> = set.iter().map(|v| value_name(name, *v)).collect();
                format!("{} only", words.join(", "))
            }
            Allowance::NoWriteExec => "never writable and executable at once".to_owned(),
            Allowance::Conditions(alts) => format!("{} argument conditions", alts.len()),
        }
    }
}

/// The allowances of the argument-sensitive syscalls a loaded profile allows at all.
pub fn allowances(plan: &load::LoadPlan) -> BTreeMap<String, Allowance> {
    let mut out = BTreeMap::new();
    for entry in arguments::ARG_SYSCALLS {
        let rules: Vec<&load::NamedRule> = plan
            .rules
            .iter()
            .filter(|r| r.name == entry.name && r.action.allows() && r.action != plan.default)
            .collect();
        let allowance = if plan.default.allows() || rules.iter().any(|r| r.args.is_empty()) {
            Allowance::Any
        } else if rules.is_empty() {
            continue;
        } else {
            let alts: Alternatives = rules.iter().map(|r| r.args.clone()).collect();
            let per_value: Option<BTreeSet<u64>> = alts
                .iter()
                .map(|alt| match alt.as_slice() {
                    [c] if c.op == CompareOp::MaskedEq
                        && c.index == entry.index
                        && c.value == entry.mask =>
                    {
                        Some(c.value_two)
                    }
                    _ => None,
                })
                .collect();
            let no_write_exec = vec![
                vec![masked_eq(entry.index, PROT_EXEC, 0)],
                vec![masked_eq(entry.index, PROT_WRITE, 0)],
            ];
            match per_value {
                Some(values) if entry.kind == Kind::Values => Allowance::Values(values),
                _ if entry.kind == Kind::NoWriteExec && alts == no_write_exec => {
                    Allowance::NoWriteExec
                }
                _ => Allowance::Conditions(alts),
            }
        };
        out.insert(entry.name.to_owned(), allowance);
    }
    out
}

/// What a recording needs of each argument-sensitive syscall it made.
pub fn needs(observed: &Observed) -> BTreeMap<String, Allowance> {
    let mut evidence: BTreeMap<String, ArgEvidence> = BTreeMap::new();
    for ((_, name), ev) in &observed.arguments {
        evidence
            .entry(name.clone())
            .and_modify(|e| e.join(ev))
            .or_insert_with(|| ev.clone());
    }
    // Values that are not all known cannot be compared (the profile of such a recording gets
    // Docker's conditions, which is not drift).
    evidence
        .into_iter()
        .filter_map(|(name, ev)| match ev {
            ArgEvidence::Known(values) => Some((name, Allowance::Values(values))),
            ArgEvidence::Unknown(_) => None,
        })
        .collect()
}

/// A value of `name`'s recorded argument in words (`AF_INET`, `CLONE_NEWUSER`, `TIOCSTI`).
pub fn value_name(name: &str, value: u64) -> String {
    let named = |table: &[(u64, &str)]| {
        table
            .iter()
            .find(|(v, _)| *v == value)
            .map(|(_, n)| (*n).to_owned())
    };
    let flags = |table: &[(u64, &str)]| {
        if value == 0 {
            return "no namespace flags".to_owned();
        }
        let set: Vec<&str> = table
            .iter()
            .filter(|(bit, _)| value & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        set.join("|")
    };
    let text = match name {
        "socket" | "socketpair" => named(ADDRESS_FAMILIES),
        "clone" | "unshare" => Some(flags(NAMESPACE_FLAGS)),
        "setns" => Some(if value == 0 {
            "any namespace type".to_owned()
        } else {
            flags(NAMESPACE_FLAGS)
        }),
        "ioctl" => named(IOCTLS),
        "prctl" => named(PRCTL_OPTIONS),
        "mmap" | "mmap2" | "mprotect" | "pkey_mprotect" => Some(
            match (value & PROT_WRITE != 0, value & PROT_EXEC != 0) {
                (true, true) => "PROT_WRITE|PROT_EXEC",
                (true, false) => "PROT_WRITE",
                (false, true) => "PROT_EXEC",
                (false, false) => "neither PROT_WRITE nor PROT_EXEC",
            }
            .to_owned(),
        ),
        _ => None,
    };
    text.unwrap_or_else(|| format!("{value:#x}"))
}

/// One decision in words: `socket: AF_UNIX, AF_INET only`.
pub fn describe(d: &ArgDecision) -> String {
    match &d.decision {
        Decision::Observed { values } => match arguments::ARG_SYSCALLS
            .iter()
            .find(|a| a.name == d.name)
            .map(|a| a.kind)
        {
            Some(Kind::NoWriteExec) => {
                format!("{}: never writable and executable at once", d.name)
            }
            _ => {
                let words: Vec<String> = values.iter().map(|v| value_name(&d.name, *v)).collect();
                format!("{}: {} only", d.name, words.join(", "))
            }
        },
        Decision::DockerConditions { why } => format!(
            "{}: Docker's default conditions ({})",
            d.name,
            why.iter().cloned().collect::<Vec<_>>().join("; ")
        ),
        Decision::Bare { why } => format!("{}: any arguments ({why})", d.name),
    }
}

const ADDRESS_FAMILIES: &[(u64, &str)] = &[
    (0, "AF_UNSPEC"),
    (1, "AF_UNIX"),
    (2, "AF_INET"),
    (3, "AF_AX25"),
    (4, "AF_IPX"),
    (5, "AF_APPLETALK"),
    (9, "AF_X25"),
    (10, "AF_INET6"),
    (15, "AF_KEY"),
    (16, "AF_NETLINK"),
    (17, "AF_PACKET"),
    (21, "AF_RDS"),
    (24, "AF_PPPOX"),
    (29, "AF_CAN"),
    (30, "AF_TIPC"),
    (31, "AF_BLUETOOTH"),
    (38, "AF_ALG"),
    (39, "AF_NFC"),
    (40, "AF_VSOCK"),
    (44, "AF_XDP"),
    (45, "AF_MCTP"),
];

const NAMESPACE_FLAGS: &[(u64, &str)] = &[
    (0x80, "CLONE_NEWTIME"),
    (0x0002_0000, "CLONE_NEWNS"),
    (0x0200_0000, "CLONE_NEWCGROUP"),
    (0x0400_0000, "CLONE_NEWUTS"),
    (0x0800_0000, "CLONE_NEWIPC"),
    (0x1000_0000, "CLONE_NEWUSER"),
    (0x2000_0000, "CLONE_NEWPID"),
    (0x4000_0000, "CLONE_NEWNET"),
];

const IOCTLS: &[(u64, &str)] = &[
    (0x5401, "TCGETS"),
    (0x5402, "TCSETS"),
    (0x5403, "TCSETSW"),
    (0x5404, "TCSETSF"),
    (0x540b, "TCFLSH"),
    (0x540e, "TIOCSCTTY"),
    (0x540f, "TIOCGPGRP"),
    (0x5410, "TIOCSPGRP"),
    (0x5412, "TIOCSTI"),
    (0x5413, "TIOCGWINSZ"),
    (0x5414, "TIOCSWINSZ"),
    (0x541b, "FIONREAD"),
    (0x5421, "FIONBIO"),
    (0x5422, "TIOCNOTTY"),
    (0x5450, "FIONCLEX"),
    (0x5451, "FIOCLEX"),
    (0x5452, "FIOASYNC"),
    (0x8933, "SIOCGIFINDEX"),
    (0x4004_5431, "TIOCSPTLCK"),
    (0x8004_5430, "TIOCGPTN"),
    (0x4008_6602, "FS_IOC_SETFLAGS"),
    (0x8008_6601, "FS_IOC_GETFLAGS"),
    (0x8912, "SIOCGIFCONF"),
    (0x8913, "SIOCGIFFLAGS"),
    (0x8915, "SIOCGIFADDR"),
    (0x8927, "SIOCGIFHWADDR"),
];

const PRCTL_OPTIONS: &[(u64, &str)] = &[
    (1, "PR_SET_PDEATHSIG"),
    (2, "PR_GET_PDEATHSIG"),
    (3, "PR_GET_DUMPABLE"),
    (4, "PR_SET_DUMPABLE"),
    (8, "PR_SET_KEEPCAPS"),
    (15, "PR_SET_NAME"),
    (16, "PR_GET_NAME"),
    (21, "PR_GET_SECCOMP"),
    (22, "PR_SET_SECCOMP"),
    (23, "PR_CAPBSET_READ"),
    (24, "PR_CAPBSET_DROP"),
    (35, "PR_SET_MM"),
    (36, "PR_SET_CHILD_SUBREAPER"),
    (38, "PR_SET_NO_NEW_PRIVS"),
    (39, "PR_GET_NO_NEW_PRIVS"),
    (47, "PR_CAP_AMBIENT"),
    (0x5961_6d61, "PR_SET_PTRACER"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(c: &[Capability]) -> BTreeSet<Capability> {
        c.iter().copied().collect()
    }

    #[test]
    fn dockers_conditions_for_the_table() {
        let none = caps(&[]);
        let socket = docker_conditions("socket", &none).expect("allowed");
        assert_eq!(socket.len(), 3, "{socket:?}");
        for (family, ok) in [
            (1, true),
            (2, true),
            (16, true),
            (38, false),
            (39, true),
            (40, false),
        ] {
            assert_eq!(
                allows(&socket, 0, 0xffff_ffff, family),
                Some(ok),
                "{family}"
            );
        }
        let clone = docker_conditions("clone", &none).expect("allowed");
        assert_eq!(allows(&clone, 0, arguments::CLONE_NS_MASK, 0), Some(true));
        assert_eq!(
            allows(&clone, 0, arguments::CLONE_NS_MASK, 0x1000_0000),
            Some(false)
        );
        let with_admin = docker_conditions("clone", &caps(&[Capability::SYS_ADMIN]));
        assert_eq!(with_admin, Some(Vec::new()), "bare with SYS_ADMIN");
        assert_eq!(docker_conditions("ioctl", &none), Some(Vec::new()));
        assert_eq!(docker_conditions("unshare", &none), None);
        let personality = docker_conditions("personality", &none).expect("allowed");
        assert_eq!(personality.len(), 5);
        assert_eq!(
            allows(&personality, 0, 0xffff_ffff, 0xffff_ffff),
            Some(true)
        );
        assert_eq!(
            allows(&personality, 0, 0xffff_ffff, 0x0040_0000),
            Some(false)
        );
    }

    #[test]
    fn words() {
        assert_eq!(value_name("socket", 2), "AF_INET");
        assert_eq!(value_name("clone", 0), "no namespace flags");
        assert_eq!(value_name("clone", 0x1000_0000), "CLONE_NEWUSER");
        assert_eq!(value_name("ioctl", 0x5412), "TIOCSTI");
        assert_eq!(value_name("personality", 8), "0x8");
    }
}
