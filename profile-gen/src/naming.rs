//! Syscall names per architecture.

use libseccomp::{ScmpArch, ScmpSyscall};

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

/// The name of syscall `nr` on `arch`, or `None` when it cannot be named.
pub fn syscall_name(arch: Arch, nr: u32) -> Option<String> {
    let nr = i32::try_from(nr).ok()?;
    ScmpSyscall::from(nr)
        .get_name_by_arch(scmp_arch(arch))
        .ok()
        .filter(|n| !n.is_empty())
}
