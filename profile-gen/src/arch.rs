//! Architectures as seccomp sees them. A syscall number means nothing without one: on x86_64,
//! `int 0x80` and 32-bit binaries make i386 syscalls with i386 numbers (`x86`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    #[serde(rename = "x86_64")]
    X86_64,
    X86,
    Aarch64,
    Arm,
    Riscv64,
    S390x,
    Ppc64le,
}

impl Arch {
    pub const ALL: [Arch; 7] = [
        Arch::X86_64,
        Arch::X86,
        Arch::Aarch64,
        Arch::Arm,
        Arch::Riscv64,
        Arch::S390x,
        Arch::Ppc64le,
    ];

    /// The architecture this program was built for.
    pub fn native() -> Arch {
        #[cfg(target_arch = "x86_64")]
        return Arch::X86_64;
        #[cfg(target_arch = "x86")]
        return Arch::X86;
        #[cfg(target_arch = "aarch64")]
        return Arch::Aarch64;
        #[cfg(target_arch = "arm")]
        return Arch::Arm;
        #[cfg(target_arch = "riscv64")]
        return Arch::Riscv64;
        #[cfg(target_arch = "s390x")]
        return Arch::S390x;
        #[cfg(target_arch = "powerpc64")]
        return Arch::Ppc64le;
    }

    /// The 32-bit compat architecture that can run on this one, if any.
    pub fn compat(self) -> Option<Arch> {
        match self {
            Arch::X86_64 => Some(Arch::X86),
            Arch::Aarch64 => Some(Arch::Arm),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "x86",
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::Riscv64 => "riscv64",
            Arch::S390x => "s390x",
            Arch::Ppc64le => "ppc64le",
        }
    }

    /// Docker / OCI spelling (`SCMP_ARCH_X86_64`).
    pub fn scmp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
            Arch::Riscv64 => "SCMP_ARCH_RISCV64",
            Arch::S390x => "SCMP_ARCH_S390X",
            Arch::Ppc64le => "SCMP_ARCH_PPC64LE",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown architecture {0:?} (expected one of x86_64, x86, aarch64, arm, riscv64, s390x, ppc64le or an SCMP_ARCH_* name)"
)]
pub struct UnknownArch(pub String);

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Arch::ALL
            .into_iter()
            .find(|a| a.as_str() == s || a.scmp_name() == s)
            .ok_or_else(|| UnknownArch(s.to_owned()))
    }
}
