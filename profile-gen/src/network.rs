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
use std::net::IpAddr;

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
    /// The addresses and ports it listened on (TCP), for publishing and ingress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listens: Vec<Listen>,
    /// The classes of the addresses it connected to: `loopback`, `private`, `link-local`,
    /// `public`; absent when a recording cannot say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<BTreeSet<String>>,
}

/// An address and port the workload listened on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Listen {
    pub address: IpAddr,
    pub port: u16,
}

impl Listen {
    /// Reachable from outside the container's network namespace (a wildcard or a specific
    /// non-loopback address), so worth publishing.
    pub fn is_published(&self) -> bool {
        !self.address.is_loopback()
    }
}

/// One Internet address a socket call of the workload named, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    /// `bind`, `listen` or `connect`.
    pub call: String,
    pub address: IpAddr,
    pub port: u16,
    pub count: u64,
}

/// The class of an address a workload connected to.
pub fn address_class(a: &IpAddr) -> &'static str {
    match a {
        IpAddr::V4(v4) if v4.is_loopback() => "loopback",
        IpAddr::V4(v4) if v4.is_private() => "private",
        IpAddr::V4(v4) if v4.is_link_local() => "link-local",
        IpAddr::V4(v4) if v4.is_unspecified() => "loopback",
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() => "loopback",
        IpAddr::V6(v6) if let Some(v4) = v6.to_ipv4_mapped() => address_class(&IpAddr::V4(v4)),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => "private",
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => "link-local",
        _ => "public",
    }
}

/// What the endpoints say: the listens and the egress classes. `None` endpoints: the
/// recordings cannot say.
fn endpoints_evidence(endpoints: Option<&[Endpoint]>) -> (Vec<Listen>, Option<BTreeSet<String>>) {
    let Some(endpoints) = endpoints else {
        return (Vec::new(), None);
    };
    let mut listens: BTreeSet<Listen> = BTreeSet::new();
    let mut egress = BTreeSet::new();
    for e in endpoints {
        match e.call.as_str() {
            "listen" => {
                listens.insert(Listen {
                    address: e.address,
                    port: e.port,
                });
            }
            "connect" => {
                egress.insert(address_class(&e.address).to_owned());
            }
            _ => {}
        }
    }
    (listens.into_iter().collect(), Some(egress))
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
    let (listens, egress) = endpoints_evidence(
        obs.endpoints_unknown
            .is_empty()
            .then_some(obs.endpoints.as_slice()),
    );
    if !unknown.is_empty() {
        return NetworkSetting {
            mode: NetworkMode::Default,
            families,
            listens,
            egress,
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
    let mut why = why;
    if !networked.is_empty() {
        if !listens.is_empty() {
            let l: Vec<String> = listens
                .iter()
                .map(|l| match l.address {
                    IpAddr::V6(a) => format!("[{a}]:{}", l.port),
                    IpAddr::V4(a) => format!("{a}:{}", l.port),
                })
                .collect();
            why.push_str(&format!("; it listened on {}", l.join(", ")));
        }
        match &egress {
            Some(e) if e.is_empty() => why.push_str("; it connected nowhere"),
            Some(e) => why.push_str(&format!(
                "; it connected to {} addresses",
                e.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            None => {}
        }
    }
    NetworkSetting {
        mode: if networked.is_empty() {
            NetworkMode::None
        } else {
            NetworkMode::Default
        },
        families,
        why,
        listens,
        egress,
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
        assert_eq!(s.why, "it created AF_INET6 sockets; it connected nowhere");
    }

    #[test]
    fn unknown_families_keep_the_network() {
        let s = analyze(&observed(Some(ArgEvidence::Unknown(
            ["recorded with schema 1, which has no argument values".to_owned()].into(),
        ))));
        assert_eq!(s.mode, NetworkMode::Default);
        assert!(s.why.contains("schema 1"), "{}", s.why);
    }

    #[test]
    fn addresses_are_classed() {
        let class = |a: &str| address_class(&a.parse().expect("address"));
        assert_eq!(class("127.0.0.1"), "loopback");
        assert_eq!(class("::1"), "loopback");
        assert_eq!(class("10.1.2.3"), "private");
        assert_eq!(class("192.168.0.1"), "private");
        assert_eq!(class("fd00::1"), "private");
        assert_eq!(class("169.254.169.254"), "link-local");
        assert_eq!(class("fe80::1"), "link-local");
        assert_eq!(class("::ffff:10.0.0.1"), "private");
        assert_eq!(class("8.8.8.8"), "public");
        assert_eq!(class("2001:db8::1"), "public");
    }

    /// Listens and connects become the setting's evidence; a recording without endpoints
    /// leaves egress unknown.
    #[test]
    fn endpoints_give_listens_and_egress() {
        let endpoint = |call: &str, a: &str, port| Endpoint {
            call: call.to_owned(),
            address: a.parse().expect("address"),
            port,
            count: 1,
        };
        let mut obs = observed(Some(ArgEvidence::Known([2].into())));
        obs.endpoints = vec![
            endpoint("bind", "0.0.0.0", 8080),
            endpoint("listen", "0.0.0.0", 8080),
            endpoint("connect", "127.0.0.1", 5432),
            endpoint("connect", "10.0.0.7", 53),
        ];
        let s = analyze(&obs);
        assert_eq!(s.mode, NetworkMode::Default);
        assert_eq!(
            s.listens,
            [Listen {
                address: "0.0.0.0".parse().expect("address"),
                port: 8080
            }]
        );
        assert_eq!(
            s.egress,
            Some(["loopback".to_owned(), "private".to_owned()].into())
        );
        assert!(
            s.why.ends_with(
                "; it listened on 0.0.0.0:8080; it connected to loopback, private addresses"
            ),
            "{}",
            s.why
        );
        obs.endpoints_unknown.insert("old.json".into());
        let s = analyze(&obs);
        assert!(s.listens.is_empty() && s.egress.is_none(), "{s:?}");
    }
}
