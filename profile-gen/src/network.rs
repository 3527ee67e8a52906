//! The network setting, from what the workload did with sockets.
//!
//! Every socket a process creates names its family (socket(2)'s first argument, which cinch
//! records for the seccomp conditions anyway). A workload whose sockets are all Unix or netlink
//! sockets never needed a network: it runs in a network namespace with only a loopback
//! interface (`docker run --network none`, compose `network_mode: none`, and on Kubernetes a
//! NetworkPolicy that allows no traffic in or out). An Internet or packet socket means it used
//! the network; values cinch could not record mean it cannot tell, and says so.
//!
//! Not seen: sockets the workload inherited instead of creating (a process tree started with
//! one open), which no recorded container has.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::observed::{ArgEvidence, Observed};

/// The network a workload needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// Nothing beyond the loopback interface: no network at all.
    None,
    /// The engine's default network: the workload used it, or cinch cannot tell.
    Default,
}

/// The network setting, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSetting {
    pub mode: NetworkMode,
    /// Socket families the workload created (`AF_UNIX`, `AF_INET`...).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub families: BTreeSet<String>,
    /// Why this mode.
    pub why: String,
}

impl NetworkSetting {
    /// `none`, or `the default network`.
    pub fn label(&self) -> &'static str {
        match self.mode {
            NetworkMode::None => "none",
            NetworkMode::Default => "the default network",
        }
    }
}

/// Families that need no network: the socket works in a namespace with only loopback.
const LOCAL: &[&str] = &["AF_UNIX", "AF_NETLINK"];

/// `AF_*` name of a socket family (include/linux/socket.h).
pub fn family_name(value: u64) -> String {
    match value {
        1 => "AF_UNIX".to_owned(),
        2 => "AF_INET".to_owned(),
        10 => "AF_INET6".to_owned(),
        16 => "AF_NETLINK".to_owned(),
        17 => "AF_PACKET".to_owned(),
        40 => "AF_VSOCK".to_owned(),
        v => format!("family {v}"),
    }
}

/// The setting the recordings support.
pub fn analyze(obs: &Observed) -> NetworkSetting {
    let mut families = BTreeSet::new();
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    for ((arch, name), evidence) in &obs.arguments {
        if name != "socket" && name != "socketcall" {
            continue;
        }
        match evidence {
            ArgEvidence::Known(values) if name == "socket" => {
                families.extend(values.iter().map(|&v| family_name(v)));
            }
            ArgEvidence::Known(_) => {
                unknown.insert(format!("{name} on {arch}"));
            }
            ArgEvidence::Unknown(why) => {
                unknown.extend(why.iter().cloned());
            }
        }
    }
    let list = |f: &BTreeSet<String>| f.iter().cloned().collect::<Vec<_>>().join(", ");
    if !unknown.is_empty() {
        return NetworkSetting {
            mode: NetworkMode::Default,
            families,
            why: format!(
                "the families of some sockets are not known ({}): the default network is kept",
                unknown.into_iter().collect::<Vec<_>>().join("; ")
            ),
        };
    }
    let networked: BTreeSet<String> = families
        .iter()
        .filter(|f| !LOCAL.contains(&f.as_str()))
        .cloned()
        .collect();
    let why = if !networked.is_empty() {
        format!("it created {} sockets", list(&networked))
    } else if families.is_empty() {
        "it created no socket".to_owned()
    } else {
        format!(
            "it created {} sockets only, which need no network",
            list(&families)
        )
    };
    NetworkSetting {
        mode: if networked.is_empty() {
            NetworkMode::None
        } else {
            NetworkMode::Default
        },
        families,
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    fn observed(socket: Option<ArgEvidence>) -> Observed {
        let mut obs = Observed::default();
        obs.hosts.insert(Arch::X86_64);
        if let Some(e) = socket {
            obs.arguments.insert((Arch::X86_64, "socket".to_owned()), e);
        }
        obs
    }

    #[test]
    fn no_socket_or_only_local_ones_need_no_network() {
        let s = analyze(&observed(None));
        assert_eq!(s.mode, NetworkMode::None);
        assert_eq!(s.why, "it created no socket");
        let s = analyze(&observed(Some(ArgEvidence::Known([1, 16].into()))));
        assert_eq!(s.mode, NetworkMode::None);
        assert_eq!(
            s.families,
            ["AF_NETLINK", "AF_UNIX"].map(str::to_owned).into()
        );
    }

    #[test]
    fn an_internet_socket_keeps_the_network() {
        let s = analyze(&observed(Some(ArgEvidence::Known([1, 10].into()))));
        assert_eq!(s.mode, NetworkMode::Default);
        assert_eq!(s.why, "it created AF_INET6 sockets");
    }

    #[test]
    fn unknown_families_keep_the_network() {
        let s = analyze(&observed(Some(ArgEvidence::Unknown(
            ["recorded with schema 1, which has no argument values".to_owned()].into(),
        ))));
        assert_eq!(s.mode, NetworkMode::Default);
        assert!(s.why.contains("schema 1"), "{}", s.why);
    }
}
