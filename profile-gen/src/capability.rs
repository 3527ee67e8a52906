//! Linux capabilities as a type. Numbers come from the kernel (`include/uapi/linux/capability.h`);
//! the spelling users see is Docker's (`NET_BIND_SERVICE`, no `CAP_` prefix), which is also what
//! compose files and Kubernetes `securityContext.capabilities` take.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One Linux capability (`CAP_CHOWN` = 0 ... `CAP_CHECKPOINT_RESTORE` = 40).
///
/// Ordered by Docker name, the order every output lists capabilities in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capability(u8);

impl Ord for Capability {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.docker_name().cmp(other.docker_name())
    }
}

impl PartialOrd for Capability {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Docker spellings indexed by kernel number (`include/uapi/linux/capability.h`, Linux 5.9+).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

impl Capability {
    pub const CHOWN: Capability = Capability(0);
    pub const DAC_OVERRIDE: Capability = Capability(1);
    pub const DAC_READ_SEARCH: Capability = Capability(2);
    pub const FOWNER: Capability = Capability(3);
    pub const FSETID: Capability = Capability(4);
    pub const KILL: Capability = Capability(5);
    pub const SETGID: Capability = Capability(6);
    pub const SETUID: Capability = Capability(7);
    pub const SETPCAP: Capability = Capability(8);
    pub const NET_BIND_SERVICE: Capability = Capability(10);
    pub const NET_ADMIN: Capability = Capability(12);
    pub const NET_RAW: Capability = Capability(13);
    pub const SYS_MODULE: Capability = Capability(16);
    pub const SYS_RAWIO: Capability = Capability(17);
    pub const SYS_CHROOT: Capability = Capability(18);
    pub const SYS_PTRACE: Capability = Capability(19);
    pub const SYS_ADMIN: Capability = Capability(21);
    pub const SYS_BOOT: Capability = Capability(22);
    pub const SYS_TIME: Capability = Capability(25);
    pub const MKNOD: Capability = Capability(27);
    pub const AUDIT_WRITE: Capability = Capability(29);
    pub const SETFCAP: Capability = Capability(31);
    pub const MAC_ADMIN: Capability = Capability(33);
    pub const PERFMON: Capability = Capability(38);
    pub const BPF: Capability = Capability(39);

    /// The highest capability number this build knows (`CAP_LAST_CAP` of Linux 5.9 and later).
    pub const LAST: u32 = 40;

    pub fn from_number(nr: u32) -> Option<Capability> {
        (nr <= Self::LAST).then_some(Capability(nr as u8))
    }

    pub const fn number(self) -> u32 {
        self.0 as u32
    }

    /// Docker spelling: `NET_BIND_SERVICE`.
    pub fn docker_name(self) -> &'static str {
        NAMES[usize::from(self.0)]
    }

    /// Kernel spelling: `CAP_NET_BIND_SERVICE`.
    pub fn kernel_name(self) -> String {
        format!("CAP_{}", self.docker_name())
    }

    pub fn all() -> impl Iterator<Item = Capability> {
        (0..=Self::LAST as u8).map(Capability)
    }

    /// What `docker run` grants a container by default: moby's
    /// `daemon/pkg/oci/caps/defaults.go` at docker-v29.7.2.
    pub const DOCKER_DEFAULT: [Capability; 14] = [
        Capability::CHOWN,
        Capability::DAC_OVERRIDE,
        Capability::FSETID,
        Capability::FOWNER,
        Capability::MKNOD,
        Capability::NET_RAW,
        Capability::SETGID,
        Capability::SETUID,
        Capability::SETFCAP,
        Capability::SETPCAP,
        Capability::NET_BIND_SERVICE,
        Capability::SYS_CHROOT,
        Capability::KILL,
        Capability::AUDIT_WRITE,
    ];

    /// Whether Docker grants this capability to a container by default.
    pub fn is_docker_default(self) -> bool {
        Self::DOCKER_DEFAULT.contains(&self)
    }

    /// Why holding this capability in a container is dangerous, for the capabilities where it is
    /// (the ones that reach the host kernel or other processes, per capabilities(7)).
    pub fn danger(self) -> Option<&'static str> {
        Some(match self.docker_name() {
            "SYS_ADMIN" => {
                "the catch-all: mount, namespaces, bpf, keyctl and much more; most container escapes start here"
            }
            "SYS_MODULE" => "loads kernel modules: arbitrary code in the host kernel",
            "SYS_RAWIO" => {
                "raw I/O ports and /dev/mem access: reads and writes host memory and devices"
            }
            "SYS_PTRACE" => "traces and injects code into other processes, reads their memory",
            "SYS_BOOT" => "reboots the host or loads a new kernel (kexec)",
            "SYS_TIME" => "sets the host clock for every container and the host",
            "DAC_READ_SEARCH" => {
                "bypasses read permission checks and enables open_by_handle_at, the classic container breakout"
            }
            "DAC_OVERRIDE" => "bypasses file read, write and execute permission checks",
            "NET_ADMIN" => {
                "reconfigures interfaces, routes and firewall rules of the network namespace"
            }
            "NET_RAW" => {
                "raw and packet sockets: spoofed packets, ARP and DNS poisoning of neighbours"
            }
            "BPF" => "loads BPF programs and creates maps, a large kernel attack surface",
            "PERFMON" => "perf events and BPF tracing: observes other processes and the kernel",
            "MAC_ADMIN" | "MAC_OVERRIDE" => {
                "changes or bypasses the LSM (AppArmor, SELinux, Smack) policy"
            }
            "SETUID" | "SETGID" => "switches to any user or group id, including root's",
            "SETFCAP" => "puts file capabilities on binaries, so a later exec gains privileges",
            "SETPCAP" => "changes the capability bounding set and other threads' capabilities",
            "SYS_CHROOT" => {
                "chroot, which combined with other capabilities helps escape the root filesystem"
            }
            "MKNOD" => "creates device nodes (usable where the device cgroup allows it)",
            "IPC_OWNER" => "bypasses permission checks on System V IPC objects",
            "LINUX_IMMUTABLE" => {
                "changes immutable and append-only file flags, defeating tamper-evident logs"
            }
            "SYSLOG" => "reads the kernel log, which leaks kernel addresses",
            "CHECKPOINT_RESTORE" => {
                "checkpoint/restore: chooses pids and reads other processes' state"
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.docker_name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown capability {name:?} (expected a name such as NET_BIND_SERVICE or CAP_NET_BIND_SERVICE)"
)]
pub struct UnknownCapability {
    pub name: String,
}

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// Accepts `NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE`, any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|n| *n == bare)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| UnknownCapability { name: s.to_owned() })
    }
}

impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.docker_name())
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for cap in Capability::all() {
            assert_eq!(cap.docker_name().parse::<Capability>(), Ok(cap));
            assert_eq!(cap.kernel_name().parse::<Capability>(), Ok(cap));
        }
        assert_eq!("cap_net_raw".parse::<Capability>(), Ok(Capability::NET_RAW));
        assert!("NET_FLY".parse::<Capability>().is_err());
        assert_eq!(Capability::from_number(41), None);
        assert_eq!(
            Capability::from_number(40).map(|c| c.docker_name()),
            Some("CHECKPOINT_RESTORE")
        );
    }

    #[test]
    fn constants_match_the_table() {
        let pairs = [
            (Capability::CHOWN, "CHOWN"),
            (Capability::DAC_OVERRIDE, "DAC_OVERRIDE"),
            (Capability::DAC_READ_SEARCH, "DAC_READ_SEARCH"),
            (Capability::FOWNER, "FOWNER"),
            (Capability::FSETID, "FSETID"),
            (Capability::KILL, "KILL"),
            (Capability::SETGID, "SETGID"),
            (Capability::SETUID, "SETUID"),
            (Capability::SETPCAP, "SETPCAP"),
            (Capability::NET_BIND_SERVICE, "NET_BIND_SERVICE"),
            (Capability::NET_ADMIN, "NET_ADMIN"),
            (Capability::NET_RAW, "NET_RAW"),
            (Capability::SYS_MODULE, "SYS_MODULE"),
            (Capability::SYS_RAWIO, "SYS_RAWIO"),
            (Capability::SYS_CHROOT, "SYS_CHROOT"),
            (Capability::SYS_PTRACE, "SYS_PTRACE"),
            (Capability::SYS_ADMIN, "SYS_ADMIN"),
            (Capability::SYS_BOOT, "SYS_BOOT"),
            (Capability::SYS_TIME, "SYS_TIME"),
            (Capability::MKNOD, "MKNOD"),
            (Capability::AUDIT_WRITE, "AUDIT_WRITE"),
            (Capability::SETFCAP, "SETFCAP"),
            (Capability::MAC_ADMIN, "MAC_ADMIN"),
            (Capability::PERFMON, "PERFMON"),
            (Capability::BPF, "BPF"),
        ];
        for (cap, name) in pairs {
            assert_eq!(cap.docker_name(), name);
        }
    }

    #[test]
    fn serde_uses_docker_spelling() {
        let json = serde_json::to_string(&vec![Capability::NET_BIND_SERVICE]).unwrap_or_default();
        assert_eq!(json, r#"["NET_BIND_SERVICE"]"#);
        let back: Vec<Capability> =
            serde_json::from_str(r#"["CAP_CHOWN","kill"]"#).unwrap_or_default();
        assert_eq!(back, vec![Capability::CHOWN, Capability::KILL]);
    }
}
