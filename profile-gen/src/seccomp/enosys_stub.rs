//! runc's ENOSYS stub (`libcontainer/seccomp/patchbpf/enosys_linux.go`), ported instruction for
//! instruction: a classic-BPF prefix put in front of libseccomp's program that answers ENOSYS,
//! instead of the profile's default action, for every syscall numbered above the highest one the
//! profile names on that architecture. Programs then fall back from syscalls newer than the
//! profile (glibc from `clone3` to `clone`, from `faccessat2` to `faccessat`) exactly as they do
//! in a runc container; without it `cinch run` would answer EPERM and break them.
//!
//! Jumps in classic BPF are relative and forward only, so, like runc, the program is built from
//! its end: each section's jump targets are counted from the tail it is prepended to.

use std::collections::BTreeMap;

/// `SCMP_ACT_ERRNO(ENOSYS)` = `SECCOMP_RET_ERRNO | ENOSYS` (`include/uapi/linux/seccomp.h`).
pub const RET_ERRNO_ENOSYS: u32 = 0x0005_0000 | 38;

/// `AUDIT_ARCH_X86_64` (`include/uapi/linux/audit.h`): x86_64 and x32 share it.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_S390` / `AUDIT_ARCH_S390X`: their syscall 0 multiplexes unknown numbers.
const AUDIT_ARCH_S390: u32 = 0x0000_0016;
const AUDIT_ARCH_S390X: u32 = 0x8000_0016;

/// The x32 ABI marks its syscalls with bit 30 of the number.
const X32_SYSCALL_BIT: u32 = 1 << 30;

// Classic BPF opcodes (`include/uapi/linux/bpf_common.h`).
/// `BPF_LD | BPF_W | BPF_ABS` (0x00 | 0x00 | 0x20).
const BPF_LD_W_ABS: u16 = 0x20;
/// `BPF_JMP | BPF_JA`.
const BPF_JMP_JA: u16 = 0x05;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const BPF_JMP_JEQ_K: u16 = 0x15;
/// `BPF_JMP | BPF_JGT | BPF_K`.
const BPF_JMP_JGT_K: u16 = 0x25;
/// `BPF_JMP | BPF_JSET | BPF_K`.
const BPF_JMP_JSET_K: u16 = 0x45;
/// `BPF_RET | BPF_K`.
const BPF_RET_K: u16 = 0x06;

/// `struct seccomp_data` offsets: `nr` then `arch`.
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

/// Which mode of an audit architecture a maximum belongs to (only x86_64 has two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// Every architecture but x32.
    Plain,
    /// x86_64's x32 ABI.
    X32,
}

/// Per audit architecture, per mode, the highest syscall number the profile names.
pub type LastSyscalls = BTreeMap<u32, BTreeMap<Mode, u32>>;

#[derive(Debug, thiserror::Error)]
pub enum StubError {
    #[error("architecture {0:#x} has an x32 entry but is not x86_64")]
    Overlap(u32),
    #[error("x86_64 with x32 needs both maxima")]
    MissingMode,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn ld(off: u32) -> libc::sock_filter {
    insn(BPF_LD_W_ABS, 0, 0, off)
}

fn ja(skip: u32) -> libc::sock_filter {
    insn(BPF_JMP_JA, 0, 0, skip)
}

fn ret(k: u32) -> libc::sock_filter {
    insn(BPF_RET_K, 0, 0, k)
}

fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    insn(BPF_JMP_JEQ_K, jt, jf, k)
}

fn jgt(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    insn(BPF_JMP_JGT_K, jt, jf, k)
}

fn jset(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    insn(BPF_JMP_JSET_K, jt, jf, k)
}

fn prepend(front: Vec<libc::sock_filter>, tail: Vec<libc::sock_filter>) -> Vec<libc::sock_filter> {
    let mut out = front;
    out.extend(tail);
    out
}

/// `u8` jump offsets: every offset computed below is checked against 255 first, as runc does.
fn short(n: u32) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// runc's `generateEnosysStub`. An empty map gives a stub that only jumps into the filter.
pub fn generate(last: &LastSyscalls) -> Result<Vec<libc::sock_filter>, StubError> {
    let mut arch_jump_table: BTreeMap<u32, u32> = BTreeMap::new();
    // Fall-through jumps into the filter; rules that jump to the second instruction get ENOSYS.
    let mut tail = vec![ja(1), ret(RET_ERRNO_ENOSYS)];

    for (&audit_arch, maxima) in last {
        let base_jump_enosys = tail.len() as u32 - 1;
        let base_jump_filter = base_jump_enosys + 1;
        let mut section = vec![ld(OFF_NR)];
        match maxima.len() {
            0 => continue,
            1 => {
                let (&mode, &sysno) = maxima.iter().next().ok_or(StubError::MissingMode)?;
                if audit_arch == AUDIT_ARCH_S390 || audit_arch == AUDIT_ARCH_S390X {
                    // setup(2) = 0 multiplexes numbers the kernel does not know: ENOSYS.
                    section.push(jeq(0, 0, 1));
                    section.push(ret(RET_ERRNO_ENOSYS));
                }
                let mut section_tail = if base_jump_enosys < 255 {
                    vec![
                        jgt(sysno, short(base_jump_enosys + 1), 0),
                        ja(base_jump_filter),
                    ]
                } else {
                    vec![
                        jgt(sysno, 0, 1),
                        ret(RET_ERRNO_ENOSYS),
                        ja(base_jump_filter),
                    ]
                };
                if audit_arch == AUDIT_ARCH_X86_64 {
                    let skip = short(section_tail.len() as u32 - 1);
                    // In the wrong mode, jump over the comparison to the filter.
                    let check = match mode {
                        Mode::Plain => jset(X32_SYSCALL_BIT, skip, 0),
                        Mode::X32 => jset(X32_SYSCALL_BIT, 0, skip),
                    };
                    section_tail.insert(0, check);
                } else if mode == Mode::X32 {
                    return Err(StubError::Overlap(audit_arch));
                }
                section.extend(section_tail);
            }
            2 => {
                if audit_arch != AUDIT_ARCH_X86_64 {
                    return Err(StubError::Overlap(audit_arch));
                }
                let x32 = *maxima.get(&Mode::X32).ok_or(StubError::MissingMode)?;
                let x86 = *maxima.get(&Mode::Plain).ok_or(StubError::MissingMode)?;
                if base_jump_enosys + 2 <= 255 {
                    section.extend([
                        jset(X32_SYSCALL_BIT, 1, 0),
                        jgt(x86, short(base_jump_enosys + 2), 1),
                        jgt(x32, short(base_jump_enosys + 1), 0),
                        ja(base_jump_filter),
                    ]);
                } else {
                    section.extend([
                        jset(X32_SYSCALL_BIT, 1, 0),
                        jgt(x86, 1, 2),
                        jgt(x32, 0, 1),
                        ret(RET_ERRNO_ENOSYS),
                        ja(base_jump_filter),
                    ]);
                }
            }
            _ => return Err(StubError::Overlap(audit_arch)),
        }
        tail = prepend(section, tail);
        arch_jump_table.insert(audit_arch, tail.len() as u32);
    }

    // Any architecture not listed below jumps straight into the filter.
    let len = tail.len() as u32;
    tail = prepend(vec![ja(len)], tail);

    for (&audit_arch, &end_offset) in &arch_jump_table {
        let jump = tail.len() as u32 - end_offset;
        tail = if jump <= 255 {
            prepend(vec![jeq(audit_arch, short(jump), 0)], tail)
        } else {
            prepend(vec![jeq(audit_arch, 0, 1), ja(jump)], tail)
        };
    }
    Ok(prepend(vec![ld(OFF_ARCH)], tail))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;

    /// A classic-BPF interpreter for the instructions seccomp programs use, over
    /// `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }` with zero ip and args.
    pub(crate) fn run(prog: &[libc::sock_filter], nr: u32, arch: u32) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                0x20 => {
                    let o = i.k as usize;
                    a = u32::from_ne_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
                }
                0x05 => pc += i.k as usize,
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let taken = match i.code {
                        0x15 => a == i.k,
                        0x25 => a > i.k,
                        0x35 => a >= i.k,
                        _ => a & i.k != 0,
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                0x06 => return i.k,
                other => panic!("opcode {other:#x} is not interpreted"),
            }
        }
    }

    fn filter_allowing_all() -> Vec<libc::sock_filter> {
        vec![ret(RET_ALLOW)]
    }

    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

    fn patched(last: &LastSyscalls) -> Vec<libc::sock_filter> {
        let mut prog = generate(last).expect("stub");
        prog.extend(filter_allowing_all());
        prog
    }

    #[test]
    fn above_the_highest_named_syscall_is_enosys() {
        let last: LastSyscalls = [
            (
                AUDIT_ARCH_X86_64,
                [(Mode::Plain, 435)].into_iter().collect(),
            ),
            (AUDIT_ARCH_I386, [(Mode::Plain, 300)].into_iter().collect()),
        ]
        .into_iter()
        .collect();
        let prog = patched(&last);
        assert_eq!(run(&prog, 0, AUDIT_ARCH_X86_64), RET_ALLOW);
        assert_eq!(run(&prog, 435, AUDIT_ARCH_X86_64), RET_ALLOW);
        assert_eq!(run(&prog, 436, AUDIT_ARCH_X86_64), RET_ERRNO_ENOSYS);
        assert_eq!(run(&prog, 439, AUDIT_ARCH_X86_64), RET_ERRNO_ENOSYS);
        // An x32 call (bit 30) is not compared with the x86_64 maximum.
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 500, AUDIT_ARCH_X86_64),
            RET_ALLOW
        );
        assert_eq!(run(&prog, 300, AUDIT_ARCH_I386), RET_ALLOW);
        assert_eq!(run(&prog, 301, AUDIT_ARCH_I386), RET_ERRNO_ENOSYS);
        // Architectures without an entry go to the filter (which applies its bad-arch action).
        assert_eq!(run(&prog, 9999, AUDIT_ARCH_AARCH64), RET_ALLOW);
    }

    #[test]
    fn x86_64_with_x32() {
        let last: LastSyscalls = [(
            AUDIT_ARCH_X86_64,
            [(Mode::Plain, 400), (Mode::X32, X32_SYSCALL_BIT | 547)]
                .into_iter()
                .collect(),
        )]
        .into_iter()
        .collect();
        let prog = patched(&last);
        assert_eq!(run(&prog, 400, AUDIT_ARCH_X86_64), RET_ALLOW);
        assert_eq!(run(&prog, 401, AUDIT_ARCH_X86_64), RET_ERRNO_ENOSYS);
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 547, AUDIT_ARCH_X86_64),
            RET_ALLOW
        );
        assert_eq!(
            run(&prog, X32_SYSCALL_BIT | 548, AUDIT_ARCH_X86_64),
            RET_ERRNO_ENOSYS
        );
    }

    #[test]
    fn s390x_multiplexer_is_enosys() {
        let last: LastSyscalls = [(AUDIT_ARCH_S390X, [(Mode::Plain, 300)].into_iter().collect())]
            .into_iter()
            .collect();
        let prog = patched(&last);
        assert_eq!(run(&prog, 0, AUDIT_ARCH_S390X), RET_ERRNO_ENOSYS);
        assert_eq!(run(&prog, 1, AUDIT_ARCH_S390X), RET_ALLOW);
        assert_eq!(run(&prog, 301, AUDIT_ARCH_S390X), RET_ERRNO_ENOSYS);
    }

    #[test]
    fn long_jumps_past_255_instructions() {
        // Enough architectures that later sections need runc's long-jump forms.
        let last: LastSyscalls = (0..100u32)
            .map(|i| (0x1000 + i, [(Mode::Plain, 100 + i)].into_iter().collect()))
            .collect();
        let prog = patched(&last);
        assert!(prog.len() > 300);
        for i in 0..100u32 {
            assert_eq!(run(&prog, 100 + i, 0x1000 + i), RET_ALLOW, "arch {i}");
            assert_eq!(
                run(&prog, 101 + i, 0x1000 + i),
                RET_ERRNO_ENOSYS,
                "arch {i}"
            );
        }
    }

    #[test]
    fn no_maxima_only_jumps_into_the_filter() {
        let prog = patched(&LastSyscalls::new());
        assert_eq!(run(&prog, 1000, AUDIT_ARCH_X86_64), RET_ALLOW);
    }
}
