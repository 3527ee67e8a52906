//! Syscall names per architecture.
//!
//! libseccomp is the authority: it compiles the profiles, and container runtimes (runc, crun,
//! Podman) resolve the names in a profile with it. The `syscalls` crate's tables (generated from
//! the kernel's syscall tables) are the cross-check, and name the syscalls that are newer than
//! the installed libseccomp (Debian's 2.5.4 stops before Linux 6.x additions such as `mseal`).
//! A number neither knows has no name: it is kept in the recording and reported, never turned
//! into a made-up name such as `unknown_syscall_462`.

use std::sync::OnceLock;

use libseccomp::{ScmpArch, ScmpSyscall, ScmpVersion};

use crate::arch::Arch;

pub fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::X86_64 => ScmpArch::X8664,
        Arch::X86 => ScmpArch::X86,
        Arch::Aarch64 => ScmpArch::Aarch64,
        Arch::Arm => ScmpArch::Arm,
        Arch::Riscv64 => ScmpArch::Riscv64,
        Arch::S390x => ScmpArch::S390X,
        Arch::Ppc64le => ScmpArch::Ppc64Le,
    }
}

/// Where a syscall name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NameSource {
    /// The installed libseccomp knows it: it can be compiled into a filter here.
    Libseccomp,
    /// Only the syscall table built into cinch knows it: the syscall is newer than the installed
    /// libseccomp, which cannot compile a rule for it.
    TableOnly,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallName {
    pub name: String,
    pub source: NameSource,
}

/// The name of syscall `nr` on `arch`, or `None` when it cannot be named.
pub fn syscall_name(arch: Arch, nr: u32) -> Option<String> {
    resolve(arch, nr).map(|n| n.name)
}

/// The name of syscall `nr` on `arch` and which table knew it.
pub fn resolve(arch: Arch, nr: u32) -> Option<SyscallName> {
    if let Some(name) = libseccomp_name(arch, nr) {
        return Some(SyscallName {
            name,
            source: NameSource::Libseccomp,
        });
    }
    table_name(arch, nr).map(|name| SyscallName {
        name: name.to_owned(),
        source: NameSource::TableOnly,
    })
}

/// The number of syscall `name` on `arch` (libseccomp first, then the built-in table); `None`
/// when the syscall does not exist on that architecture or nobody knows the name.
pub fn syscall_number(arch: Arch, name: &str) -> Option<u32> {
    // A negative number is one of libseccomp's pseudo-syscalls: usually the name exists only on
    // other architectures (socketcall on x86_64, mmap2 on aarch64), but libseccomp 2.5 also
    // answers with one for socket calls that x86 reaches both directly and through socketcall
    // (recvmmsg is 337 there); the table decides those.
    ScmpSyscall::from_name_by_arch(name, scmp_arch(arch))
        .ok()
        .and_then(|sys| u32::try_from(sys.as_raw_syscall()).ok())
        .or_else(|| table_number(arch, name))
}

/// How well a syscall name is known on any architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameStatus {
    /// libseccomp resolves it (possibly to a pseudo-syscall on some architectures).
    Libseccomp,
    /// Only the built-in table knows it: newer than the installed libseccomp.
    TableOnly,
    /// Nobody knows it: a typo, or a name from a much newer kernel.
    Unknown,
}

pub fn name_status(name: &str) -> NameStatus {
    if ScmpSyscall::from_name(name).is_ok() {
        return NameStatus::Libseccomp;
    }
    if Arch::ALL
        .into_iter()
        .any(|a| table_number(a, name).is_some())
    {
        NameStatus::TableOnly
    } else {
        NameStatus::Unknown
    }
}

/// Every syscall name that exists on `arch` (the universe an allow-all profile allows).
pub fn all_names(arch: Arch) -> Vec<String> {
    let mut names: Vec<String> = (0..MAX_NR)
        .filter_map(|nr| syscall_name(arch, nr))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Upper bound for syscall numbers on the supported architectures (the highest is ~470 in
/// Linux 6.18; x32's 0x40000000 range is not an architecture cinch records).
const MAX_NR: u32 = 1024;

/// The installed libseccomp's version, e.g. `2.5.4`.
pub fn libseccomp_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| match ScmpVersion::current() {
        Ok(v) => format!("{}.{}.{}", v.major, v.minor, v.micro),
        Err(_) => "unknown".to_owned(),
    })
}

fn libseccomp_name(arch: Arch, nr: u32) -> Option<String> {
    let nr = i32::try_from(nr).ok()?;
    ScmpSyscall::from(nr)
        .get_name_by_arch(scmp_arch(arch))
        .ok()
        .filter(|n| !n.is_empty())
}

/// The built-in table's name for `nr` on `arch`, corrected where the table is known to be wrong
/// (see the cross-check test below for each exception and why).
pub fn table_name(arch: Arch, nr: u32) -> Option<&'static str> {
    let id = usize::try_from(nr).ok()?;
    let raw = match arch {
        Arch::X86_64 => syscalls::x86_64::Sysno::new(id).map(|s| s.name()),
        Arch::X86 => syscalls::x86::Sysno::new(id).map(|s| s.name()),
        Arch::Aarch64 => {
            // The table is generated from asm-generic/unistd.h without its `__BITS_PER_LONG == 32`
            // condition, so it lists the 32-bit-only time64 syscalls (403..=423) for aarch64,
            // where they do not exist.
            if (403..=423).contains(&nr) {
                return None;
            }
            // asm-generic calls 79 `__NR3264_fstatat`; on 64-bit it is `newfstatat`, the name
            // libseccomp, the kernel's arm64 table and every seccomp profile use.
            if nr == 79 {
                return Some("newfstatat");
            }
            syscalls::aarch64::Sysno::new(id).map(|s| s.name())
        }
        Arch::Arm => syscalls::arm::Sysno::new(id).map(|s| s.name()),
        Arch::Riscv64 => syscalls::riscv64::Sysno::new(id).map(|s| s.name()),
        Arch::S390x => syscalls::s390x::Sysno::new(id).map(|s| s.name()),
        Arch::Ppc64le => syscalls::powerpc64::Sysno::new(id).map(|s| s.name()),
    }?;
    // `break` is a Rust keyword, so the table spells it `r#break`.
    Some(raw.strip_prefix("r#").unwrap_or(raw))
}

/// The built-in table's number for `name` on `arch`.
pub fn table_number(arch: Arch, name: &str) -> Option<u32> {
    if arch == Arch::Aarch64 && name == "newfstatat" {
        return Some(79);
    }
    let raw_name = if name == "break" { "r#break" } else { name };
    let id = match arch {
        Arch::X86_64 => raw_name
            .parse::<syscalls::x86_64::Sysno>()
            .ok()
            .map(|s| s.id()),
        Arch::X86 => raw_name
            .parse::<syscalls::x86::Sysno>()
            .ok()
            .map(|s| s.id()),
        Arch::Aarch64 => raw_name
            .parse::<syscalls::aarch64::Sysno>()
            .ok()
            .map(|s| s.id()),
        Arch::Arm => raw_name
            .parse::<syscalls::arm::Sysno>()
            .ok()
            .map(|s| s.id()),
        Arch::Riscv64 => raw_name
            .parse::<syscalls::riscv64::Sysno>()
            .ok()
            .map(|s| s.id()),
        Arch::S390x => raw_name
            .parse::<syscalls::s390x::Sysno>()
            .ok()
            .map(|s| s.id()),
        Arch::Ppc64le => raw_name
            .parse::<syscalls::powerpc64::Sysno>()
            .ok()
            .map(|s| s.id()),
    }?;
    let nr = u32::try_from(id).ok()?;
    // Keep the corrections of `table_name` symmetric.
    (table_name(arch, nr) == Some(name)).then_some(nr)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number both libseccomp and the `syscalls` table name must get the same name, on
    /// every architecture cinch supports. The deliberate exceptions live in `table_name` (each
    /// with its reason) and are therefore already applied here:
    /// - aarch64 79: the table says `fstatat` (asm-generic's `__NR3264_fstatat`), libseccomp and
    ///   the kernel's arm64 syscall table say `newfstatat`;
    /// - aarch64 403..=423: the table lists 32-bit-only time64 syscalls that arm64 does not have;
    /// - x86 / ppc64le 17: the table spells `break` as `r#break` (a Rust keyword).
    #[test]
    fn libseccomp_and_syscall_table_agree() {
        let mut disagreements = Vec::new();
        for arch in Arch::ALL {
            for nr in 0..MAX_NR {
                let (Some(seccomp), Some(table)) =
                    (libseccomp_name(arch, nr), table_name(arch, nr))
                else {
                    continue;
                };
                if seccomp != table {
                    disagreements.push(format!("{arch} {nr}: libseccomp {seccomp}, table {table}"));
                }
            }
        }
        assert!(
            disagreements.is_empty(),
            "naming disagreements: {disagreements:#?}"
        );
    }

    /// libseccomp must not know a number the table does not: that would be a gap in the table
    /// (or a libseccomp pseudo-number leaking out).
    #[test]
    fn table_covers_libseccomp() {
        for arch in [Arch::X86_64, Arch::X86] {
            for nr in 0..MAX_NR {
                if let Some(name) = libseccomp_name(arch, nr) {
                    assert_eq!(table_name(arch, nr), Some(name.as_str()), "{arch} {nr}");
                }
            }
        }
    }

    #[test]
    fn names_resolve_back_to_their_numbers() {
        for arch in Arch::ALL {
            for nr in 0..MAX_NR {
                if let Some(name) = syscall_name(arch, nr) {
                    assert_eq!(syscall_number(arch, &name), Some(nr), "{arch} {name}");
                }
            }
        }
    }

    #[test]
    fn well_known_numbers() {
        assert_eq!(syscall_name(Arch::X86_64, 0).as_deref(), Some("read"));
        assert_eq!(syscall_name(Arch::X86_64, 59).as_deref(), Some("execve"));
        assert_eq!(syscall_name(Arch::X86, 3).as_deref(), Some("read"));
        assert_eq!(syscall_name(Arch::X86, 102).as_deref(), Some("socketcall"));
        assert_eq!(syscall_name(Arch::X86, 11).as_deref(), Some("execve"));
        assert_eq!(
            syscall_name(Arch::Aarch64, 79).as_deref(),
            Some("newfstatat")
        );
        assert_eq!(syscall_name(Arch::Aarch64, 403), None);
        assert_eq!(syscall_name(Arch::X86_64, 1023), None);
        assert_eq!(syscall_number(Arch::X86_64, "socketcall"), None);
        assert_eq!(syscall_number(Arch::X86, "socketcall"), Some(102));
        assert_eq!(syscall_number(Arch::X86_64, "no_such_call"), None);
    }

    /// The names newer than the installed libseccomp come from the table, say so, and are
    /// never invented.
    #[test]
    fn newer_than_libseccomp_is_named_by_the_table() {
        // mseal is Linux 6.10: known to the table; libseccomp 2.5.4 does not know it (a newer
        // libseccomp does, and then the source is libseccomp, which is fine too).
        let mseal = resolve(Arch::X86_64, 462).expect("the table names x86_64 462");
        assert_eq!(mseal.name, "mseal");
        if libseccomp_version().starts_with("2.5.") {
            assert_eq!(mseal.source, NameSource::TableOnly);
            assert_eq!(name_status("mseal"), NameStatus::TableOnly);
        }
        assert_eq!(name_status("read"), NameStatus::Libseccomp);
        assert_eq!(name_status("unknown_syscall_462"), NameStatus::Unknown);
        for arch in Arch::ALL {
            for nr in 0..MAX_NR {
                if let Some(name) = syscall_name(arch, nr) {
                    assert!(!name.starts_with("unknown"), "{arch} {nr}: {name}");
                    assert!(
                        name.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    );
                }
            }
        }
    }
}
