//! What a container runtime loads from a profile on this host, and what the loaded filter then
//! does with a given syscall.
//!
//! Docker and runc take two steps, and [`resolve`] takes both:
//!
//! 1. moby's `setupSeccomp` (github.com/moby/profiles, `seccomp/seccomp_linux.go`): `archMap`
//!    contributes the entry of the native architecture and its sub-architectures; a rule is
//!    dropped when its `includes` / `excludes` do not match the native architecture (Go
//!    spelling: `amd64`), the kernel version (`"<kernel>.<major>"`) or the container's bounding
//!    set; `name` is the legacy spelling of `names`.
//! 2. runc (`libcontainer/specconv.SetupSeccomp`, `libcontainer/seccomp/seccomp_linux.go`):
//!    one rule per name, in profile order; `SCMP_ACT_ERRNO` / `SCMP_ACT_TRACE` without `errnoRet`
//!    mean EPERM; a rule whose action equals the default action is skipped; a name the installed
//!    libseccomp cannot resolve is skipped (newer syscalls); the native architecture is always in
//!    the filter, because libseccomp starts every filter with it; and a stub put in front of the
//!    filter (`libcontainer/seccomp/patchbpf`) answers ENOSYS, not the default action, for every
//!    syscall numbered above the highest one the profile names on that architecture, so programs
//!    fall back from syscalls newer than the profile.
//!
//! cinch departs from runc in one place, on purpose: a profile that lists architectures but not
//! the native one is refused ([`LoadError::NativeMissing`]). runc would apply its rules to the
//! native architecture anyway, but such a profile was made for another machine, and its rule
//! list is whatever that machine's workload needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::capability::Capability;
use crate::naming::{self, NameStatus};
use crate::seccomp::spec::{SeccompSpec, SpecFilter, SpecRule};

pub use super::verdict::Verdict;

pub const EPERM: u32 = 1;
pub const ENOSYS: u32 = 38;

/// A seccomp action, with the errno it returns where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `SCMP_ACT_KILL` / `SCMP_ACT_KILL_THREAD`.
    KillThread,
    KillProcess,
    Trap,
    Errno(u16),
    /// Without a tracer attached the kernel answers ENOSYS.
    Trace(u16),
    Allow,
    Log,
    Notify,
}

impl Action {
    /// runc's `getAction`: ERRNO and TRACE without `errnoRet` return EPERM.
    pub fn parse(name: &str, errno: Option<u32>) -> Option<Action> {
        let code = || errno.map_or(Some(EPERM as u16), |e| u16::try_from(e).ok());
        Some(match name {
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_ERRNO" => Action::Errno(code()?),
            "SCMP_ACT_TRACE" => Action::Trace(code()?),
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_NOTIFY" => Action::Notify,
            _ => return None,
        })
    }

    /// The syscall runs.
    pub fn allows(self) -> bool {
        matches!(self, Action::Allow | Action::Log)
    }

    /// runc's `isAllowAction`: with such a default action no ENOSYS stub is put in front.
    pub fn permissive_default(self) -> bool {
        matches!(self, Action::Allow | Action::Log | Action::Trace(_))
    }

    /// What the workload sees, in a few words.
    pub fn describe(self) -> String {
        match self {
            Action::KillThread => "kills the thread (SIGSYS)".to_owned(),
            Action::KillProcess => "kills the process (SIGSYS)".to_owned(),
            Action::Trap => "raises SIGSYS".to_owned(),
            Action::Errno(e) => format!("fails with {}", errno_name(u32::from(e))),
            Action::Trace(_) => "fails with ENOSYS (no tracer attached)".to_owned(),
            Action::Allow => "is allowed".to_owned(),
            Action::Log => "is allowed and logged".to_owned(),
            Action::Notify => "is decided by a seccomp agent".to_owned(),
        }
    }
}

/// `EPERM`, `ENOSYS`... for the errnos profiles use; `errno N` otherwise.
pub fn errno_name(e: u32) -> String {
    let name = match e {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        13 => "EACCES",
        22 => "EINVAL",
        38 => "ENOSYS",
        95 => "EOPNOTSUPP",
        _ => return format!("errno {e}"),
    };
    name.to_owned()
}

/// An argument condition (`SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl CompareOp {
    fn parse(s: &str) -> Option<CompareOp> {
        Some(match s {
            "SCMP_CMP_NE" => CompareOp::Ne,
            "SCMP_CMP_LT" => CompareOp::Lt,
            "SCMP_CMP_LE" => CompareOp::Le,
            "SCMP_CMP_EQ" => CompareOp::Eq,
            "SCMP_CMP_GE" => CompareOp::Ge,
            "SCMP_CMP_GT" => CompareOp::Gt,
            "SCMP_CMP_MASKED_EQ" => CompareOp::MaskedEq,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCondition {
    /// 0..=5.
    pub index: u32,
    pub op: CompareOp,
    pub value: u64,
    /// The mask for `SCMP_CMP_MASKED_EQ` is `value`, the expected value `value_two`.
    pub value_two: u64,
}

impl ArgCondition {
    /// The condition for libseccomp, as runc's `MakeCondition(index, op, value, valueTwo)`
    /// builds it: for SCMP_CMP_MASKED_EQ the mask first, then the value.
    pub fn to_scmp(&self) -> libseccomp::ScmpArgCompare {
        use libseccomp::ScmpCompareOp as Op;
        let (op, datum) = match self.op {
            CompareOp::Ne => (Op::NotEqual, self.value),
            CompareOp::Lt => (Op::Less, self.value),
            CompareOp::Le => (Op::LessOrEqual, self.value),
            CompareOp::Eq => (Op::Equal, self.value),
            CompareOp::Ge => (Op::GreaterEqual, self.value),
            CompareOp::Gt => (Op::Greater, self.value),
            CompareOp::MaskedEq => (Op::MaskedEqual(self.value), self.value_two),
        };
        libseccomp::ScmpArgCompare::new(self.index, op, datum)
    }

    /// The operator as profiles spell it.
    pub fn op_name(&self) -> &'static str {
        match self.op {
            CompareOp::Ne => "SCMP_CMP_NE",
            CompareOp::Lt => "SCMP_CMP_LT",
            CompareOp::Le => "SCMP_CMP_LE",
            CompareOp::Eq => "SCMP_CMP_EQ",
            CompareOp::Ge => "SCMP_CMP_GE",
            CompareOp::Gt => "SCMP_CMP_GT",
            CompareOp::MaskedEq => "SCMP_CMP_MASKED_EQ",
        }
    }
}

/// One syscall's rule, as runc adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRule {
    pub name: String,
    pub action: Action,
    pub args: Vec<ArgCondition>,
}

/// `SECCOMP_FILTER_FLAG_*` the profile asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FilterFlag {
    Log,
    SpecAllow,
    WaitKillableRecv,
}

impl FilterFlag {
    /// The bit for seccomp(2) (`include/uapi/linux/seccomp.h`).
    pub fn bit(self) -> u32 {
        match self {
            FilterFlag::Log => 1 << 1,
            FilterFlag::SpecAllow => 1 << 2,
            FilterFlag::WaitKillableRecv => 1 << 5,
        }
    }
}

/// The facts about the host and the process that Docker's conditions look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub native: Arch,
    /// As `uname -r` prints it.
    pub kernel_release: String,
    /// The bounding set the command will have (`includes.caps` / `excludes.caps`).
    pub bounding: BTreeSet<Capability>,
}

/// What a runtime loads: the default action, the architectures, and one rule per name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    pub native: Arch,
    pub default: Action,
    /// `SCMP_ARCH_*` names the profile lists (after `archMap`), without duplicates; the native
    /// one is among them or the list is empty.
    pub architectures: Vec<String>,
    pub flags: BTreeSet<FilterFlag>,
    /// After Docker's conditions, in profile order (also the names libseccomp cannot resolve,
    /// which runc's ENOSYS stub still looks at).
    pub rules: Vec<NamedRule>,
    /// Names libseccomp does not know but the kernel tables do (newer syscalls): skipped, as
    /// runc skips them.
    pub skipped: BTreeSet<String>,
    /// Rules dropped by `includes` / `excludes`.
    pub dropped_by_conditions: usize,
}

/// Why a profile cannot be loaded. Every message is one sentence naming the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{} lists the architectures {} but not this machine's {} ({}); it was made for another machine: regenerate it here, or add {} to `architectures`",
        path.display(), listed.join(", "), native, native.scmp_name(), native.scmp_name()
    )]
    NativeMissing {
        path: PathBuf,
        native: Arch,
        listed: Vec<String>,
    },
    #[error("{} has both `architectures` and `archMap`; Docker refuses that, keep one", path.display())]
    BothArchitectureFields { path: PathBuf },
    #[error("{} has a rule with both `name` ({name}) and `names`; Docker refuses that, keep one", path.display())]
    BothNameFields { path: PathBuf, name: String },
    #[error("{} has no `defaultAction`; a profile must say what happens to syscalls it does not list", path.display())]
    NoDefaultAction { path: PathBuf },
    #[error("{} uses the unknown action {action:?} (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE, SCMP_ACT_LOG)", path.display())]
    UnknownAction { path: PathBuf, action: String },
    #[error("{} lists the unknown architecture {arch:?} (expected SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)", path.display())]
    UnknownArch { path: PathBuf, arch: String },
    #[error("{} has a rule for {name} with the unknown operator {op:?} (expected SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_MASKED_EQ, ...)", path.display())]
    UnknownOperator {
        path: PathBuf,
        name: String,
        op: String,
    },
    #[error("{} has a rule for {name} on argument {index}; syscalls have arguments 0 to 5", path.display())]
    ArgIndex {
        path: PathBuf,
        name: String,
        index: u32,
    },
    #[error("{} asks for the unknown filter flag {flag:?}", path.display())]
    UnknownFlag { path: PathBuf, flag: String },
    #[error("{}: {detail}", path.display())]
    BadErrno { path: PathBuf, detail: String },
    #[error("{} has the minKernel {value:?}, expected \"<kernel>.<major>\" such as \"5.8\"", path.display())]
    BadMinKernel { path: PathBuf, value: String },
    #[error(
        "{} names the syscall `{name}`, which neither libseccomp {libseccomp} nor cinch's syscall table knows; remove it or correct its spelling",
        path.display()
    )]
    UnknownSyscall {
        path: PathBuf,
        name: String,
        libseccomp: &'static str,
    },
    #[error("{} uses SCMP_ACT_NOTIFY, which needs a seccomp agent (`listenerPath`); cinch does not provide one", path.display())]
    Notify { path: PathBuf },
}

/// runc's `ConvertStringToArch` list.
const RUNC_ARCHES: [&str; 18] = [
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_LOONGARCH64",
];

/// moby's `goToNative`: how `includes.arches` spells an architecture.
fn moby_arch(a: Arch) -> &'static str {
    match a {
        Arch::X86_64 => "amd64",
        Arch::X86 => "x86",
        Arch::Aarch64 => "arm64",
        Arch::Arm => "arm",
        Arch::Riscv64 => "riscv64",
        Arch::S390x => "s390x",
        Arch::Ppc64le => "ppc64le",
    }
}

/// `"6.18.4-foo"` → (6, 18), as moby's `parseRelease`.
pub fn kernel_version(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor_digits: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor_digits.parse().ok()?))
}

/// moby's `KernelVersion.UnmarshalJSON`: exactly two numbers, not 0.0.
fn min_kernel(value: &str) -> Option<(u64, u64)> {
    let (a, b) = value.split_once('.')?;
    let v: (u8, u8) = (a.parse().ok()?, b.parse().ok()?);
    (v != (0, 0)).then_some((u64::from(v.0), u64::from(v.1)))
}

struct Conditions<'a> {
    host: &'a Host,
    kernel: Option<(u64, u64)>,
    path: &'a Path,
}

impl Conditions<'_> {
    fn has_cap(&self, name: &str) -> bool {
        name.parse::<Capability>()
            .is_ok_and(|c| self.host.bounding.contains(&c))
    }

    fn kernel_at_least(&self, value: &str) -> Result<bool, LoadError> {
        let min = min_kernel(value).ok_or_else(|| LoadError::BadMinKernel {
            path: self.path.to_owned(),
            value: value.to_owned(),
        })?;
        Ok(self.kernel.is_some_and(|k| k >= min))
    }

    /// moby's `Loop:` body: whether the rule applies on this host.
    fn keep(
        &self,
        includes: Option<&SpecFilter>,
        excludes: Option<&SpecFilter>,
    ) -> Result<bool, LoadError> {
        let arch = moby_arch(self.host.native);
        if let Some(ex) = excludes {
            if ex
                .arches
                .as_ref()
                .is_some_and(|a| a.iter().any(|x| x == arch))
            {
                return Ok(false);
            }
            if ex
                .caps
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| self.has_cap(c)))
            {
                return Ok(false);
            }
            if let Some(v) = ex.min_kernel.as_deref().filter(|v| !v.is_empty())
                && self.kernel_at_least(v)?
            {
                return Ok(false);
            }
        }
        if let Some(inc) = includes {
            if inc
                .arches
                .as_ref()
                .is_some_and(|a| !a.is_empty() && !a.iter().any(|x| x == arch))
            {
                return Ok(false);
            }
            if inc
                .caps
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| !self.has_cap(c)))
            {
                return Ok(false);
            }
            if let Some(v) = inc.min_kernel.as_deref().filter(|v| !v.is_empty())
                && !self.kernel_at_least(v)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn rule_names(rule: &SpecRule, path: &Path) -> Result<Vec<String>, LoadError> {
    match (&rule.name, &rule.names) {
        (Some(name), Some(names)) if !name.is_empty() && !names.is_empty() => {
            Err(LoadError::BothNameFields {
                path: path.to_owned(),
                name: name.clone(),
            })
        }
        (Some(name), _) if !name.is_empty() => Ok(vec![name.clone()]),
        (_, names) => Ok(names.clone().unwrap_or_default()),
    }
}

/// Turns a profile into what Docker + runc load on `host`, refusing what they would refuse and a
/// profile that does not cover the native architecture. `path` names the file in messages.
pub fn resolve(spec: &SeccompSpec, host: &Host, path: &Path) -> Result<LoadPlan, LoadError> {
    let p = || path.to_owned();
    let rules_in = spec.syscalls.as_deref().unwrap_or_default();
    if spec.default_action.is_empty() {
        return Err(LoadError::NoDefaultAction { path: p() });
    }
    let listed = spec.architectures.clone().unwrap_or_default();
    let map = spec.arch_map.clone().unwrap_or_default();
    if !listed.is_empty() && !map.is_empty() {
        return Err(LoadError::BothArchitectureFields { path: p() });
    }
    let native_name = host.native.scmp_name();
    let mut architectures: Vec<String> = Vec::new();
    if map.is_empty() {
        for a in listed {
            if !architectures.contains(&a) {
                architectures.push(a);
            }
        }
    } else {
        match map.iter().find(|m| m.architecture == native_name) {
            Some(entry) => {
                architectures.push(entry.architecture.clone());
                for sub in entry.sub_architectures.clone().unwrap_or_default() {
                    if !architectures.contains(&sub) {
                        architectures.push(sub);
                    }
                }
            }
            None => {
                return Err(LoadError::NativeMissing {
                    path: p(),
                    native: host.native,
                    listed: map.iter().map(|m| m.architecture.clone()).collect(),
                });
            }
        }
    }
    if let Some(bad) = architectures
        .iter()
        .find(|a| !RUNC_ARCHES.contains(&a.as_str()))
    {
        return Err(LoadError::UnknownArch {
            path: p(),
            arch: bad.clone(),
        });
    }
    if !architectures.is_empty() && !architectures.iter().any(|a| a == native_name) {
        return Err(LoadError::NativeMissing {
            path: p(),
            native: host.native,
            listed: architectures,
        });
    }
    let mut flags = BTreeSet::new();
    for flag in spec.flags.as_deref().unwrap_or_default() {
        match flag.as_str() {
            // runc: recognised and ignored (it makes no sense to filter only one thread).
            "SECCOMP_FILTER_FLAG_TSYNC" => {}
            "SECCOMP_FILTER_FLAG_LOG" => {
                flags.insert(FilterFlag::Log);
            }
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => {
                flags.insert(FilterFlag::SpecAllow);
            }
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => {
                flags.insert(FilterFlag::WaitKillableRecv);
            }
            other => {
                return Err(LoadError::UnknownFlag {
                    path: p(),
                    flag: other.to_owned(),
                });
            }
        }
    }
    let default = Action::parse(&spec.default_action, spec.default_errno_ret).ok_or_else(|| {
        LoadError::UnknownAction {
            path: p(),
            action: spec.default_action.clone(),
        }
    })?;
    if default == Action::Notify {
        return Err(LoadError::Notify { path: p() });
    }
    let conditions = Conditions {
        host,
        kernel: kernel_version(&host.kernel_release),
        path,
    };
    let mut rules = Vec::new();
    let mut skipped = BTreeSet::new();
    let mut dropped_by_conditions = 0;
    for rule in rules_in {
        let names = rule_names(rule, path)?;
        if !conditions.keep(rule.includes.as_ref(), rule.excludes.as_ref())? {
            dropped_by_conditions += 1;
            continue;
        }
        let errno = rule.errno().map_err(|detail| LoadError::BadErrno {
            path: p(),
            detail: format!("the rule for {}: {detail}", names.join(", ")),
        })?;
        let action =
            Action::parse(&rule.action, errno).ok_or_else(|| LoadError::UnknownAction {
                path: p(),
                action: rule.action.clone(),
            })?;
        if action == Action::Notify {
            return Err(LoadError::Notify { path: p() });
        }
        let mut args = Vec::new();
        for a in rule.args.as_deref().unwrap_or_default() {
            let name = names.join(", ");
            let op = CompareOp::parse(&a.op).ok_or_else(|| LoadError::UnknownOperator {
                path: p(),
                name: name.clone(),
                op: a.op.clone(),
            })?;
            if a.index > 5 {
                return Err(LoadError::ArgIndex {
                    path: p(),
                    name,
                    index: a.index,
                });
            }
            args.push(ArgCondition {
                index: a.index,
                op,
                value: a.value,
                value_two: a.value_two,
            });
        }
        for name in names {
            match naming::name_status(&name) {
                NameStatus::Libseccomp => {}
                NameStatus::TableOnly => {
                    skipped.insert(name.clone());
                }
                NameStatus::Unknown => {
                    return Err(LoadError::UnknownSyscall {
                        path: p(),
                        name,
                        libseccomp: naming::libseccomp_version(),
                    });
                }
            }
            rules.push(NamedRule {
                name,
                action,
                args: args.clone(),
            });
        }
    }
    Ok(LoadPlan {
        native: host.native,
        default,
        architectures,
        flags,
        rules,
        skipped,
        dropped_by_conditions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::spec::parse_spec;

    #[test]
    fn verdicts_for_recorded_argument_values() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[
                {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967295,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]},
                {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967295,"valueTwo":2,"op":"SCMP_CMP_MASKED_EQ"}]},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                {"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
            &[],
        )
        .expect("loads");
        let socket = |v| p.verdict_for_value(Arch::X86_64, 41, Some("socket"), (0, 0xffff_ffff, v));
        assert_eq!(socket(2), Verdict::Allowed);
        assert_eq!(socket(16), Verdict::Denied(Action::Errno(1)));
        let personality =
            |v| p.verdict_for_value(Arch::X86_64, 135, Some("personality"), (0, 0xffff_ffff, v));
        assert_eq!(personality(8), Verdict::Allowed);
        assert_eq!(personality(0x0040_0000), Verdict::Denied(Action::Errno(1)));
        // A condition on bits that were not recorded cannot be decided.
        assert_eq!(
            p.verdict_for_value(Arch::X86_64, 41, Some("socket"), (0, 0xff, 2)),
            Verdict::DependsOnArguments
        );
        // Bare rules decide without the value.
        assert_eq!(
            p.verdict_for_value(Arch::X86_64, 0, Some("read"), (0, 0xffff_ffff, 7)),
            Verdict::Allowed
        );
    }

    fn host(caps: &[Capability]) -> Host {
        Host {
            native: Arch::X86_64,
            kernel_release: "6.18.4-test".to_owned(),
            bounding: caps.iter().copied().collect(),
        }
    }

    fn plan(json: &str, caps: &[Capability]) -> Result<LoadPlan, LoadError> {
        let spec = parse_spec(json.as_bytes(), Path::new("p.json")).expect("parses");
        resolve(&spec, &host(caps), Path::new("p.json"))
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(kernel_version("3.12-1-amd64"), Some((3, 12)));
        assert_eq!(kernel_version("x"), None);
        assert_eq!(min_kernel("5.8"), Some((5, 8)));
        assert_eq!(min_kernel("0.0"), None);
        assert_eq!(min_kernel("5.8.1"), None);
    }

    #[test]
    fn errno_defaults_and_redundant_rules() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["read","write","execve"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":22},
                            {"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
            &[],
        )
        .expect("loads");
        assert_eq!(p.default, Action::Errno(1));
        let x = Arch::X86_64;
        assert_eq!(p.verdict(x, 0, Some("read")), Verdict::Allowed);
        assert_eq!(
            p.verdict(x, 39, Some("getpid")),
            Verdict::Denied(Action::Errno(22))
        );
        assert_eq!(
            p.verdict(x, 110, Some("getppid")),
            Verdict::Denied(Action::Errno(1))
        );
        assert_eq!(
            p.verdict(x, 83, Some("mkdir")),
            Verdict::Denied(Action::Errno(1))
        );
        // getppid (110) is the highest name: everything above gets runc's ENOSYS.
        assert_eq!(p.stub_threshold(x), Some(110));
        assert_eq!(p.verdict(x, 318, Some("getrandom")), Verdict::EnosysStub);
        assert_eq!(p.verdict(Arch::X86, 3, Some("read")), Verdict::Allowed);
        assert_eq!(p.verdict(Arch::Aarch64, 63, Some("read")), Verdict::BadArch);
    }

    #[test]
    fn allow_by_default_has_no_stub() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#,
            &[],
        )
        .expect("loads");
        assert_eq!(p.stub_threshold(Arch::X86_64), None);
        assert_eq!(
            p.verdict(Arch::X86_64, 318, Some("getrandom")),
            Verdict::Allowed
        );
        assert_eq!(
            p.verdict(Arch::X86_64, 83, Some("mkdir")),
            Verdict::Denied(Action::Errno(1))
        );
        assert_eq!(p.architectures, Vec::<String>::new());
        assert_eq!(p.filter_arches(), [Arch::X86_64].into_iter().collect());
    }

    #[test]
    fn docker_default_conditions_follow_capabilities_and_arch() {
        let moby = crate::docker_default::derive::MOBY;
        let without = plan(moby, &[]).expect("moby's default loads");
        assert_eq!(
            without.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        );
        assert!(without.dropped_by_conditions > 0);
        let x = Arch::X86_64;
        // mount is allowed only with CAP_SYS_ADMIN in the bounding set.
        assert!(without.verdict(x, 165, Some("mount")).denies());
        let with = plan(moby, &[Capability::SYS_ADMIN]).expect("loads");
        assert_eq!(with.verdict(x, 165, Some("mount")), Verdict::Allowed);
        // personality is allowed for some arguments only.
        assert_eq!(
            without.verdict(x, 135, Some("personality")),
            Verdict::DependsOnArguments
        );
        assert_eq!(without.verdict(x, 0, Some("read")), Verdict::Allowed);
    }

    #[test]
    fn native_architecture_must_be_listed() {
        let err = plan(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_AARCH64"],"syscalls":[]}"#,
            &[],
        )
        .expect_err("no x86_64");
        let msg = err.to_string();
        assert!(matches!(err, LoadError::NativeMissing { .. }));
        assert!(
            msg.contains("SCMP_ARCH_AARCH64") && msg.contains("x86_64"),
            "{msg}"
        );
        let err = plan(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],"syscalls":[]}"#,
            &[],
        )
        .expect_err("no x86_64 entry");
        assert!(matches!(err, LoadError::NativeMissing { .. }));
    }

    #[test]
    fn refuses_what_docker_and_runc_refuse() {
        let cases = [
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["reed"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "`reed`",
            ),
            (r#"{"defaultAction":"SCMP_ACT_DENY"}"#, "SCMP_ACT_DENY"),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
                "archMap",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "`name`",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}"#,
                "SCMP_CMP_ABOUT",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","flags":["SECCOMP_FILTER_FLAG_FAST"]}"#,
                "SECCOMP_FILTER_FLAG_FAST",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
                "SCMP_ACT_NOTIFY",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_VAX"]}"#,
                "SCMP_ARCH_VAX",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"five"}}]}"#,
                "five",
            ),
        ];
        for (json, named) in cases {
            let err = plan(json, &[]).expect_err(json);
            let msg = err.to_string();
            assert!(msg.contains(named), "{msg} should name {named}");
            assert!(msg.starts_with("p.json"), "{msg} should name the file");
            assert!(!msg.contains('\n'), "one line: {msg}");
        }
    }

    #[test]
    fn names_newer_than_libseccomp_are_skipped_like_runc() {
        // A name only the kernel tables know (if this libseccomp knows it, nothing is skipped).
        let newest = ["mseal", "listxattrat", "removexattrat", "file_getattr"]
            .into_iter()
            .find(|n| naming::name_status(n) == NameStatus::TableOnly);
        let Some(name) = newest else {
            return;
        };
        let json = format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":["read","{name}"],"action":"SCMP_ACT_ALLOW"}}]}}"#
        );
        let p = plan(&json, &[]).expect("loads");
        assert!(p.skipped.contains(name));
        let nr = naming::table_number(Arch::X86_64, name).expect("the table knows it");
        assert!(p.verdict(Arch::X86_64, nr, Some(name)).denies());
    }
}
