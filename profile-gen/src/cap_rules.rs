//! Which recorded capability checks are not needs: the rules `cap_add` is built with.
//!
//! A granted check is not always a need. The kernel also asks to choose a behaviour (a
//! **query**: on a "no" it takes another path and the call still succeeds), asks about
//! credentials it borrowed, or grants a capability inside a syscall that fails anyway. Each rule
//! below names the kernel code it is about; docs/capability-checks.md gives the source lines and
//! says which sites are requirements.
//!
//! The rules read only what the Recording stores of a check (its helpers, caller and stack, the
//! syscall and its result, whether the credentials were the task's own, the audit flag), so a
//! recording is classified again, by the rules of the cinch that reads it, without recording
//! again. A schema 2 recording has no result, helpers or flags: the rules that need them cannot
//! match, and the verdict it was written with (`noise`) is kept.

use crate::capability::Capability;
use crate::recording::CapabilityCheck;

/// What a rule sees of one check.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub cap: u32,
    pub granted: bool,
    /// The capability helpers between the check and the caller.
    pub helpers: &'a [String],
    pub caller: &'a str,
    /// The caller and the frames below it.
    pub stack: &'a [String],
    pub syscall: Option<&'a str>,
    pub own_cred: bool,
    pub noaudit: bool,
    /// 0 or `-errno`; `None` when not known.
    pub result: Option<i32>,
}

impl<'a> Inputs<'a> {
    pub fn of(check: &'a CapabilityCheck) -> Inputs<'a> {
        Inputs {
            cap: check.cap,
            granted: check.granted,
            helpers: &check.helpers,
            caller: &check.caller,
            stack: &check.stack,
            syscall: check.syscall.as_ref().and_then(|s| s.name.as_deref()),
            own_cred: check.own_cred,
            noaudit: check.noaudit,
            result: check.result,
        }
    }

    fn in_stack(&self, frame: &str) -> bool {
        self.caller == frame || self.stack.iter().any(|f| f == frame)
    }
}

/// Why a rule says a check is not a need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The kernel asks to choose a behaviour; a "no" does not make the call fail.
    Query,
    /// The credentials checked were not the task's.
    Borrowed,
    /// The syscall failed with the capability granted: it did not help.
    Failed,
}

/// A rule: when it matches, the check is recorded but never enters `cap_add`.
pub struct Rule {
    /// Short name, stable: tests and docs refer to it.
    pub name: &'static str,
    pub kind: Kind,
    /// The section of docs/capability-checks.md with the kernel source behind it.
    pub section: &'static str,
    /// What the rule says about the check.
    pub reason: &'static str,
    matches: fn(&Inputs<'_>) -> bool,
}

const CAP_SYS_PTRACE: u32 = Capability::SYS_PTRACE.number();
const CAP_SYS_ADMIN: u32 = Capability::SYS_ADMIN.number();
const CAP_FSETID: u32 = Capability::FSETID.number();
const CAP_SETPCAP: u32 = Capability::SETPCAP.number();

/// Syscalls whose ptrace-mode access check is the operation itself.
const PTRACE_SYSCALLS: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
];

/// `EINPROGRESS`: a non-blocking connect that goes on after the syscall returns.
const EINPROGRESS: i32 = 115;

/// The rules, first match wins.
pub const RULES: &[Rule] = &[
    // include/linux/security.h, CAP_OPT_NOAUDIT: passed by every *_noaudit helper and by
    // cap_vm_enough_memory().
    Rule {
        name: "noaudit",
        section: "Q1",
        kind: Kind::Query,
        reason: "non-audited capability probe (CAP_OPT_NOAUDIT): the kernel asks to choose a behaviour, not to allow the operation",
        matches: |c| c.noaudit,
    },
    // include/linux/cred.h, override_creds(): overlayfs (reading its trusted.overlay.* xattrs
    // as the mounter), cachefiles and others check capabilities against credentials they
    // borrowed: dropping the capability from the task changes nothing. Not access(2) (fs/open.c,
    // do_faccessat -> access_override_creds): those are the task's own, with its real ids.
    Rule {
        name: "borrowed-credentials",
        section: "Q4",
        kind: Kind::Borrowed,
        reason: "checked against credentials the kernel borrowed (override_creds, e.g. overlayfs as its mounter), not the task's",
        matches: |c| !c.own_cred && !c.in_stack("do_faccessat"),
    },
    // security/commoncap.c, cap_vm_enough_memory(): CAP_SYS_ADMIN with CAP_OPT_NOAUDIT on every
    // mmap/brk/exec, to decide how much memory to reserve for root; the allocation succeeds
    // either way.
    Rule {
        name: "overcommit",
        section: "Q1",
        kind: Kind::Query,
        reason: "overcommit heuristic (cap_vm_enough_memory): asked on every allocation, never required",
        matches: |c| {
            c.cap == CAP_SYS_ADMIN
                && matches!(
                    c.caller,
                    "cap_vm_enough_memory" | "security_vm_enough_memory_mm" | "__vm_enough_memory"
                )
        },
    },
    // kernel/ptrace.c, ptrace_may_access(): fs/proc asks with PTRACE_MODE_NOAUDIT only to decide
    // how much of another process's entry to show. From ptrace(2) and process_vm_readv(2) it is
    // the operation itself.
    Rule {
        name: "proc-ptrace-access",
        section: "Q2",
        kind: Kind::Query,
        reason: "ptrace-mode access check while reading /proc (ptrace_may_access): /proc reads work without it",
        matches: |c| {
            c.cap == CAP_SYS_PTRACE
                && (c.in_stack("ptrace_may_access") || c.in_stack("__ptrace_may_access"))
                && !c.syscall.is_some_and(|s| PTRACE_SYSCALLS.contains(&s))
        },
    },
    // include/linux/capability.h: ns_capable_noaudit(), has_ns_capability_noaudit(),
    // has_capability_noaudit(), the kernel's marker for "asking, not requiring" (the
    // tracepoint has no audit flag; the helper's name tells).
    Rule {
        name: "noaudit-helper",
        section: "Q3",
        kind: Kind::Query,
        reason: "non-audited capability probe (*_noaudit): the kernel asks to choose a behaviour, not to allow the operation",
        matches: |c| c.helpers.iter().any(|f| f.ends_with("_noaudit")),
    },
    // fs/inode.c in_group_or_capable() and mode_strip_sgid(), fs/attr.c setattr_prepare() and
    // setattr_should_drop_suidgid(): CAP_FSETID only decides whether set-user-ID and
    // set-group-ID bits survive a chmod, a chown, a write or a create. Without it the kernel
    // clears the bit and the call succeeds.
    Rule {
        name: "fsetid",
        section: "Q5",
        kind: Kind::Query,
        reason: "CAP_FSETID only keeps set-user-ID/set-group-ID bits (chmod, chown, write, create): without it the kernel clears the bit and the call still succeeds",
        matches: |c| c.cap == CAP_FSETID,
    },
    // security/commoncap.c, cap_capset() -> cap_inh_is_capped(): every capset(2) asks for
    // CAP_SETPCAP, which it uses only to let the new inheritable set reach beyond the old
    // inheritable and permitted sets. A launcher that keeps or lowers its sets (setpriv, capsh,
    // runc, a daemon dropping privileges) succeeds without it; one that raises inheritable
    // capabilities it is not permitted gets EPERM, which `record --prove-caps` shows.
    Rule {
        name: "capset-inheritable",
        section: "Q6",
        kind: Kind::Query,
        reason: "capset asks for CAP_SETPCAP on every call (cap_inh_is_capped) but needs it only to add inheritable capabilities outside the permitted set; keeping or lowering the sets succeeds without it",
        matches: |c| c.cap == CAP_SETPCAP && matches!(c.caller, "cap_capset" | "cap_inh_is_capped"),
    },
    // A capability granted inside a syscall that returned an error did not make it succeed:
    // an exec's walk through a PATH directory the process could not search (generic_permission
    // grants CAP_DAC_READ_SEARCH to root) that then ends in ENOENT, and the next PATH entry.
    Rule {
        name: "failed-syscall",
        section: "F1",
        kind: Kind::Failed,
        reason: "granted inside a syscall that failed anyway: the capability did not make it succeed",
        matches: |c| c.granted && c.result.is_some_and(|r| r < 0 && r != -EINPROGRESS),
    },
];

/// The rule that makes `check` not a need, if any.
pub fn rule(check: &Inputs<'_>) -> Option<&'static Rule> {
    RULES.iter().find(|r| (r.matches)(check))
}

/// Why `check` is not a need, or `None` when it is one (if granted). The reason names the rule,
/// and for a failed syscall the error.
pub fn not_a_need(check: &CapabilityCheck) -> Option<String> {
    let inputs = Inputs::of(check);
    match rule(&inputs) {
        Some(r) if r.kind == Kind::Failed => {
            let errno = inputs.result.map(|r| errno_name(-r)).unwrap_or_default();
            let syscall = inputs.syscall.unwrap_or("the syscall");
            Some(format!("{} ({syscall} returned {errno})", r.reason))
        }
        Some(r) => Some(r.reason.to_owned()),
        // Schema 2: the verdict of the rules it was recorded with, whose inputs it lacks.
        None => check.noise.clone(),
    }
}

/// `ENOENT` for 2.
pub fn errno_name(errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    if e == nix::errno::Errno::UnknownErrno {
        format!("errno {errno}")
    } else {
        format!("{e:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| (*s).to_owned()).collect()
    }

    struct Check {
        cap: u32,
        helpers: Vec<String>,
        stack: Vec<String>,
        syscall: Option<&'static str>,
        own_cred: bool,
        result: Option<i32>,
    }

    fn check(cap: u32, helpers: &[&str], stack: &[&str], syscall: Option<&'static str>) -> Check {
        Check {
            cap,
            helpers: frames(helpers),
            stack: frames(stack),
            syscall,
            own_cred: true,
            result: Some(0),
        }
    }

    fn name(c: &Check) -> Option<&'static str> {
        rule(&Inputs {
            cap: c.cap,
            granted: true,
            helpers: &c.helpers,
            caller: &c.stack[0],
            stack: &c.stack,
            syscall: c.syscall,
            own_cred: c.own_cred,
            noaudit: false,
            result: c.result,
        })
        .map(|r| r.name)
    }

    const HELPERS: &[&str] = &["cap_capable", "security_capable", "ns_capable"];

    /// Every rule is in the documentation's table, with the section that backs it, and each
    /// section exists.
    #[test]
    fn every_rule_is_documented() {
        let doc = include_str!("../../docs/capability-checks.md");
        for rule in RULES {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", rule.name)))
                .unwrap_or_else(|| panic!("{} is not in the rules table", rule.name));
            assert!(row.contains(rule.section), "{}: {row}", rule.name);
            assert!(
                doc.contains(&format!("\n## {}. ", rule.section)),
                "no section {}",
                rule.section
            );
        }
    }

    #[test]
    fn overcommit_probe_is_a_query() {
        let c = check(
            CAP_SYS_ADMIN,
            &["cap_capable"],
            &[
                "cap_vm_enough_memory",
                "security_vm_enough_memory_mm",
                "do_brk_flags",
            ],
            Some("brk"),
        );
        assert_eq!(name(&c), Some("overcommit"));
    }

    #[test]
    fn proc_reads_are_queries_but_ptrace_is_not() {
        let stack = ["__ptrace_may_access", "ptrace_may_access", "do_task_stat"];
        let c = check(
            CAP_SYS_PTRACE,
            &["cap_capable", "has_ns_capability"],
            &stack,
            Some("read"),
        );
        assert_eq!(name(&c), Some("proc-ptrace-access"));
        let c = check(
            CAP_SYS_PTRACE,
            &["cap_capable", "has_ns_capability"],
            &stack,
            Some("ptrace"),
        );
        assert_eq!(name(&c), None);
    }

    #[test]
    fn requirements_match_no_rule() {
        let chown = check(
            Capability::CHOWN.number(),
            &[
                "cap_capable",
                "security_capable",
                "capable_wrt_inode_uidgid",
            ],
            &["chown_ok", "setattr_prepare", "notify_change"],
            Some("fchownat"),
        );
        assert_eq!(name(&chown), None);
        let bind = check(
            Capability::NET_BIND_SERVICE.number(),
            HELPERS,
            &["__inet_bind", "inet_bind_sk"],
            Some("bind"),
        );
        assert_eq!(name(&bind), None);
        let setuid = check(
            Capability::SETUID.number(),
            &["cap_capable", "security_capable", "ns_capable_setid"],
            &["__sys_setuid"],
            Some("setuid"),
        );
        assert_eq!(name(&setuid), None);
    }

    #[test]
    fn borrowed_credentials_do_not_count_except_for_access() {
        let mut ovl = check(
            CAP_SYS_ADMIN,
            HELPERS,
            &[
                "xattr_permission",
                "vfs_getxattr",
                "ovl_path_check_origin_xattr",
            ],
            Some("newfstatat"),
        );
        assert_eq!(name(&ovl), None);
        ovl.own_cred = false;
        assert_eq!(name(&ovl), Some("borrowed-credentials"));
        let mut access = check(
            Capability::DAC_OVERRIDE.number(),
            &["cap_capable", "capable_wrt_inode_uidgid"],
            &["generic_permission", "inode_permission", "do_faccessat"],
            Some("faccessat2"),
        );
        access.own_cred = false;
        assert_eq!(name(&access), None);
    }

    #[test]
    fn noaudit_helpers_are_queries() {
        let c = check(
            Capability::NET_ADMIN.number(),
            &["cap_capable", "security_capable", "ns_capable_noaudit"],
            &["net_ctl_permissions", "sysctl_perm", "proc_sys_permission"],
            Some("openat"),
        );
        assert_eq!(name(&c), Some("noaudit-helper"));
    }

    #[test]
    fn fsetid_only_keeps_set_id_bits() {
        let chmod = check(
            CAP_FSETID,
            &[
                "cap_capable",
                "security_capable",
                "capable_wrt_inode_uidgid",
            ],
            &["in_group_or_capable", "setattr_prepare", "notify_change"],
            Some("fchmodat"),
        );
        assert_eq!(name(&chmod), Some("fsetid"));
    }

    #[test]
    fn capset_asks_for_setpcap_on_every_call() {
        let capset = check(
            CAP_SETPCAP,
            &["cap_capable"],
            &["cap_capset", "security_capset", "__do_sys_capset"],
            Some("capset"),
        );
        assert_eq!(name(&capset), Some("capset-inheritable"));
        // Elsewhere (prctl PR_CAPBSET_DROP, cap_task_prctl) SETPCAP is required.
        let prctl = check(
            CAP_SETPCAP,
            &["cap_capable"],
            &["cap_task_prctl", "security_task_prctl", "__do_sys_prctl"],
            Some("prctl"),
        );
        assert_eq!(name(&prctl), None);
    }

    #[test]
    fn a_grant_in_a_failed_syscall_is_not_a_need() {
        let mut walk = check(
            Capability::DAC_READ_SEARCH.number(),
            &[
                "cap_capable",
                "security_capable",
                "capable_wrt_inode_uidgid",
            ],
            &["generic_permission", "inode_permission", "link_path_walk"],
            Some("execve"),
        );
        assert_eq!(name(&walk), None, "it succeeded: a need");
        walk.result = Some(-2);
        assert_eq!(name(&walk), Some("failed-syscall"));
        walk.result = None;
        assert_eq!(name(&walk), None, "unknown result: still a need");
        walk.result = Some(-EINPROGRESS);
        assert_eq!(name(&walk), None, "a connect in progress did not fail");
    }

    #[test]
    fn the_reason_names_the_syscall_and_the_error() {
        let check = CapabilityCheck {
            cap: Capability::DAC_READ_SEARCH.number(),
            name: Some("DAC_READ_SEARCH".to_owned()),
            granted: true,
            syscall: Some(crate::recording::SyscallRef {
                arch: crate::Arch::X86_64,
                nr: 59,
                name: Some("execve".to_owned()),
            }),
            caller: "generic_permission".to_owned(),
            stack: frames(&["generic_permission"]),
            helpers: Vec::new(),
            own_cred: true,
            noaudit: false,
            result: Some(-2),
            count: 1,
            comms: Vec::new(),
            noise: None,
        };
        assert_eq!(
            not_a_need(&check).as_deref(),
            Some(
                "granted inside a syscall that failed anyway: the capability did not make it succeed (execve returned ENOENT)"
            )
        );
    }

    /// A schema 2 check keeps the verdict it was recorded with when no rule of this build can
    /// match it (its inputs were not stored), and takes a new rule's when one does.
    #[test]
    fn an_old_check_is_classified_again() {
        let mut old = CapabilityCheck {
            cap: CAP_FSETID,
            name: Some("FSETID".to_owned()),
            granted: true,
            syscall: None,
            caller: "in_group_or_capable".to_owned(),
            stack: frames(&["in_group_or_capable", "setattr_prepare"]),
            helpers: Vec::new(),
            own_cred: true,
            noaudit: false,
            result: None,
            count: 1,
            comms: Vec::new(),
            noise: None,
        };
        assert!(not_a_need(&old).is_some_and(|r| r.starts_with("CAP_FSETID only keeps")));
        old.cap = CAP_SYS_ADMIN;
        assert_eq!(not_a_need(&old), None);
        old.noise = Some("borrowed credentials".to_owned());
        assert_eq!(not_a_need(&old).as_deref(), Some("borrowed credentials"));
    }
}
