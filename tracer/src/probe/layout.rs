//! The kernel struct offsets the probes need, read from the running kernel's BTF before
//! loading (see [`super::btf`]) and passed to the kernel side as load-time globals.

use cinch_common::{CRED_IDS, MAX_ARGS, NO_OFFSET, usage, walk};

use super::btf::{Btf, BtfError};
use crate::error::kernel;

/// Kernel facts the probes need, read before loading.
#[derive(Debug)]
pub(super) struct KernelLayout {
    pub(super) off_task_pid: u32,
    pub(super) off_task_tgid: u32,
    pub(super) off_compat_status: u32,
    pub(super) compat_flag: u32,
    pub(super) off_regs_syscall_nr: u32,
    pub(super) off_task_signal: u32,
    pub(super) off_signal_live: u32,
    pub(super) off_task_cred: u32,
    pub(super) off_task_nsproxy: u32,
    pub(super) off_nsproxy_mnt_ns: u32,
    pub(super) off_mnt_ns_inum: u32,
    /// The mount namespace's unique id: `ns.ns_id` (Linux 6.18), else `seq`.
    pub(super) off_mnt_ns_id: u32,
    pub(super) off_task_seccomp_mode: u32,
    /// Bit offset of `linux_binprm.secureexec`; NO_OFFSET when unknown.
    pub(super) off_bprm_secureexec: u32,
    /// Offsets in `struct pt_regs` of the syscall arguments, native table then compat.
    pub(super) off_regs_args: [u32; 2 * MAX_ARGS as usize],
    /// What the directory walk of a relative path reads (`cinch_common::walk`); all NO_OFFSET
    /// when one is missing.
    pub(super) off_path_walk: [u32; walk::LEN],
    /// `cred.uid`, `gid`, `euid`, `egid`; NO_OFFSET where unknown (ids are then not recorded).
    pub(super) off_cred_ids: [u32; CRED_IDS],
    /// What the exit probe reads for the resources used (`cinch_common::usage`); all NO_OFFSET
    /// when one is missing (the recording then cannot say).
    pub(super) off_usage: [u32; usage::LEN],
}

/// The offsets of `cinch_common::usage`, or the first one this kernel's BTF lacks.
fn usage_offsets(btf: &Btf) -> Result<[u32; usage::LEN], BtfError> {
    let mut out = [NO_OFFSET; usage::LEN];
    for (i, strukt, member) in [
        (usage::TASK_SIGNAL, "task_struct", "signal"),
        (usage::SIGNAL_MAXRSS, "signal_struct", "maxrss"),
        (
            usage::TASK_SUM_EXEC_RUNTIME,
            "task_struct",
            "se.sum_exec_runtime",
        ),
    ] {
        out[i] = btf.member_offset(strukt, member)?;
    }
    Ok(out)
}

/// The offsets of `cinch_common::walk`, or the first one this kernel's BTF lacks.
fn path_walk(btf: &Btf) -> Result<[u32; walk::LEN], BtfError> {
    let mut out = [NO_OFFSET; walk::LEN];
    for (i, strukt, member) in [
        (walk::TASK_FS, "task_struct", "fs"),
        (walk::FS_PWD_DENTRY, "fs_struct", "pwd.dentry"),
        (walk::FS_PWD_MNT, "fs_struct", "pwd.mnt"),
        (walk::FS_ROOT_DENTRY, "fs_struct", "root.dentry"),
        (walk::FS_ROOT_MNT, "fs_struct", "root.mnt"),
        (walk::DENTRY_PARENT, "dentry", "d_parent"),
        (walk::DENTRY_NAME, "dentry", "d_name.name"),
        (walk::VFSMOUNT_ROOT, "vfsmount", "mnt_root"),
        (walk::MOUNT_MNT, "mount", "mnt"),
        (walk::MOUNT_PARENT, "mount", "mnt_parent"),
        (walk::MOUNT_MOUNTPOINT, "mount", "mnt_mountpoint"),
        (walk::TASK_FILES, "task_struct", "files"),
        (walk::FILES_FDT, "files_struct", "fdt"),
        (walk::FDT_FD, "fdtable", "fd"),
        (walk::FDT_MAX_FDS, "fdtable", "max_fds"),
        (walk::FILE_PATH_DENTRY, "file", "f_path.dentry"),
        (walk::FILE_PATH_MNT, "file", "f_path.mnt"),
    ] {
        out[i] = btf.member_offset(strukt, member)?;
    }
    Ok(out)
}

/// How the exit probe tells a process's exit from the exit of one of its threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitDetection {
    /// `sched_process_exit` says so itself (its `group_dead` field, Linux 6.16+).
    GroupDead,
    /// The probe reads `signal_struct.live` through `task_struct.signal`, at these offsets.
    SignalLive {
        off_task_signal: u32,
        off_signal_live: u32,
    },
}

/// Which [`ExitDetection`] this kernel allows, `group_dead` first unless `prefer_signal_live`.
/// An error when it has neither: then a process exit cannot be told from a thread exit.
pub(crate) fn exit_detection(
    btf: &Btf,
    prefer_signal_live: bool,
) -> Result<ExitDetection, BtfError> {
    if !prefer_signal_live && btf.has_member("trace_event_raw_sched_process_exit", "group_dead") {
        return Ok(ExitDetection::GroupDead);
    }
    Ok(ExitDetection::SignalLive {
        off_task_signal: btf.member_offset("task_struct", "signal")?,
        off_signal_live: btf.member_offset("signal_struct", "live")?,
    })
}

pub(super) fn kernel_layout() -> anyhow::Result<KernelLayout> {
    let btf = Btf::from_sys_fs().map_err(|e| {
        kernel(format!(
            "{e}; cinch needs a kernel built with BTF (CONFIG_DEBUG_INFO_BTF=y, Linux 5.8 or later)"
        ))
    })?;
    let btf_error = |e: BtfError| kernel(format!("reading the kernel's BTF: {e}"));
    let off = |s: &str, m: &str| btf.member_offset(s, m).map_err(btf_error);
    // Linux 6.16+ says which thread's exit ends the process (group_dead); before that the
    // probe reads signal_struct.live itself.
    // CINCH_EXIT_VIA_SIGNAL_LIVE=1 takes the older kernels' path here too, so it is tested.
    let force_fallback = std::env::var_os("CINCH_EXIT_VIA_SIGNAL_LIVE").is_some_and(|v| v == "1");
    let (off_task_signal, off_signal_live) =
        match exit_detection(&btf, force_fallback).map_err(btf_error)? {
            ExitDetection::GroupDead => (NO_OFFSET, NO_OFFSET),
            ExitDetection::SignalLive {
                off_task_signal,
                off_signal_live,
            } => (off_task_signal, off_signal_live),
        };
    #[cfg(target_arch = "x86_64")]
    let (off_compat_status, compat_flag) = (off("task_struct", "thread_info.status")?, 0x0002);
    #[cfg(not(target_arch = "x86_64"))]
    let (off_compat_status, compat_flag) = (NO_OFFSET, 0);
    // The syscall number as saved on kernel entry: -1 (or the number) survives in orig_ax.
    #[cfg(target_arch = "x86_64")]
    let off_regs_syscall_nr = btf.member_offset("pt_regs", "orig_ax").unwrap_or(NO_OFFSET);
    #[cfg(target_arch = "aarch64")]
    let off_regs_syscall_nr = btf
        .member_offset("pt_regs", "syscallno")
        .unwrap_or(NO_OFFSET);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let off_regs_syscall_nr = NO_OFFSET;
    // The syscall ABI's argument registers (arch/x86/entry/entry_64.S and
    // entry_64_compat.S; arch/arm64/kernel/syscall.c).
    let mut off_regs_args = [NO_OFFSET; 2 * MAX_ARGS as usize];
    #[cfg(target_arch = "x86_64")]
    for (i, reg) in [
        "di", "si", "dx", "r10", "r8", "r9", "bx", "cx", "dx", "si", "di", "bp",
    ]
    .into_iter()
    .enumerate()
    {
        off_regs_args[i] = btf.member_offset("pt_regs", reg).unwrap_or(NO_OFFSET);
    }
    #[cfg(target_arch = "aarch64")]
    if let Ok(regs) = btf.member_offset("pt_regs", "regs") {
        for i in 0..MAX_ARGS as usize {
            off_regs_args[i] = regs + 8 * i as u32;
            off_regs_args[MAX_ARGS as usize + i] = regs + 8 * i as u32;
        }
    }
    Ok(KernelLayout {
        off_task_cred: off("task_struct", "real_cred")?,
        off_task_signal,
        off_signal_live,
        off_regs_syscall_nr,
        off_task_nsproxy: off("task_struct", "nsproxy")?,
        off_nsproxy_mnt_ns: off("nsproxy", "mnt_ns")?,
        off_mnt_ns_inum: off("mnt_namespace", "ns.inum")?,
        off_mnt_ns_id: btf
            .member_offset("mnt_namespace", "ns.ns_id")
            .or_else(|_| btf.member_offset("mnt_namespace", "seq"))
            .unwrap_or(NO_OFFSET),
        off_task_seccomp_mode: off("task_struct", "seccomp.mode")?,
        off_bprm_secureexec: btf
            .member_bit_offset("linux_binprm", "secureexec")
            .unwrap_or(NO_OFFSET),
        off_task_pid: off("task_struct", "pid")?,
        off_task_tgid: off("task_struct", "tgid")?,
        off_compat_status,
        compat_flag,
        off_regs_args,
        off_cred_ids: ["uid.val", "gid.val", "euid.val", "egid.val"]
            .map(|m| btf.member_offset("cred", m).unwrap_or(NO_OFFSET)),
        off_path_walk: path_walk(&btf).unwrap_or_else(|e| {
            tracing::info!(%e, "relative paths are placed from /proc only");
            [NO_OFFSET; walk::LEN]
        }),
        off_usage: usage_offsets(&btf).unwrap_or_else(|e| {
            tracing::info!(%e, "the resources used are not recorded");
            [NO_OFFSET; usage::LEN]
        }),
    })
}
