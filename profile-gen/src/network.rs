//! The network setting, from what the workload did with sockets.
//!
//! Every socket a process creates names its family (socket(2)'s first argument, which cinch
//! records for the seccomp conditions anyway). A workload whose sockets are all Unix or netlink
//! sockets never needed a network: it runs in a network namespace with only a loopback
//! interface (`docker run --network none`, compose `network_mode: none`, and on Kubernetes a
//! NetworkPolicy that allows no traffic in or out). An Internet or packet socket means it used
//! the network; values cinch could not record mean it cannot tell, and says so.
//!
//! For Internet sockets the recording also has the addresses bind, listen and connect named
//! (a sendto or sendmsg to an address counts as a connect), not the protocol. They refine the
//! mode: nothing beyond loopback is `none` too (a namespace without a network still has its
//! loopback interface); no published port and no public address is `internal`, a network with
//! no route out; anything else keeps the default network. A connect to port 53 is a name
//! lookup (`dns`), whatever the address: Docker's embedded resolver is 127.0.0.11 inside the
//! container, a Kubernetes cluster's a private service address, a host's resolvers anything.
//! Its address is left out of `egress` and out of the mode's decision: an internal network or a
//! policy answers it by its port.
//!
//! Not seen: sockets the workload inherited instead of creating (a process tree started with
//! one open), which no recorded container has.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::observed::{ArgEvidence, Observed};

/// The network a workload needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// Nothing beyond the loopback interface: no network at all.
    None,
    /// A network with no route out (`docker network create --internal`): the workload
    /// published no port and connected to no public address, only to loopback, private and
    /// link-local ones, and to resolvers.
    Internal,
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
    /// `public`; absent when a recording cannot say. Connects to port 53 are not counted here:
    /// they are `dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<BTreeSet<String>>,
    /// It looked names up: it connected to port 53 ([`DNS_PORT`]) at some address. Absent
    /// (false) when it did not, when a recording cannot say, and in files before it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dns: bool,
    /// Per class of `egress` beyond loopback, the ports it connected to: what the
    /// NetworkPolicy lets out. A class without an entry (files before it, or a connect to port
    /// 0) is let out on every port.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub egress_ports: BTreeMap<String, BTreeSet<u16>>,
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

/// The port resolvers answer on (RFC 1035, over UDP and TCP): a connect to it is a name lookup.
pub const DNS_PORT: u16 = 53;

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

/// What the endpoints say about where the sockets went.
#[derive(Debug, Default)]
struct Evidence {
    listens: Vec<Listen>,
    /// `None`: the recordings cannot say.
    egress: Option<BTreeSet<String>>,
    dns: bool,
    egress_ports: BTreeMap<String, BTreeSet<u16>>,
}

impl Evidence {
    /// The setting of `mode`, with this evidence.
    fn into_setting(
        self,
        mode: NetworkMode,
        families: BTreeSet<String>,
        why: String,
    ) -> NetworkSetting {
        NetworkSetting {
            mode,
            families,
            why,
            listens: self.listens,
            egress: self.egress,
            dns: self.dns,
            egress_ports: self.egress_ports,
        }
    }
}

/// The listens, the egress classes and whether it looked names up. `None` endpoints: the
/// recordings cannot say.
fn endpoints_evidence(endpoints: Option<&[Endpoint]>) -> Evidence {
    let Some(endpoints) = endpoints else {
        return Evidence::default();
    };
    let mut listens: BTreeSet<Listen> = BTreeSet::new();
    let mut egress = BTreeSet::new();
    let mut dns = false;
    let mut egress_ports: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut any_port: BTreeSet<&str> = BTreeSet::new();
    for e in endpoints {
        match e.call.as_str() {
            "listen" => {
                listens.insert(Listen {
                    address: e.address,
                    port: e.port,
                });
            }
            "connect" if e.port == DNS_PORT => dns = true,
            "connect" => {
                let class = address_class(&e.address);
                egress.insert(class.to_owned());
                if e.port == 0 {
                    any_port.insert(class);
                } else if class != "loopback" {
                    egress_ports
                        .entry(class.to_owned())
                        .or_default()
                        .insert(e.port);
                }
            }
            _ => {}
        }
    }
    egress_ports.retain(|class, _| !any_port.contains(class.as_str()));
    Evidence {
        listens: listens.into_iter().collect(),
        egress: Some(egress),
        dns,
        egress_ports,
    }
}

/// The mode where the endpoints of Internet sockets decide, with the reason to add to `why`:
/// `none` when nothing went beyond loopback, `internal` when no port is published and no
/// public address was connected to (a published port needs the engine's routing, which an
/// internal network has not), else the default network.
fn mode_from_endpoints(
    listens: &[Listen],
    egress: &BTreeSet<String>,
    dns: bool,
) -> (NetworkMode, &'static str) {
    let published = listens.iter().any(Listen::is_published);
    let beyond_loopback = egress.iter().any(|c| c != "loopback");
    if !published && !beyond_loopback && !dns {
        (
            NetworkMode::None,
            "it used nothing beyond loopback, which a container without a network still has",
        )
    } else if published {
        (
            NetworkMode::Default,
            "a published port needs the default network",
        )
    } else if egress.contains("public") {
        (NetworkMode::Default, "")
    } else {
        (
            NetworkMode::Internal,
            "it published no port and connected to no public address: an internal network is enough",
        )
    }
}

impl NetworkSetting {
    /// `none`, `an internal network`, or `the default network`.
    pub fn label(&self) -> &'static str {
        match self.mode {
            NetworkMode::None => "none",
            NetworkMode::Internal => "an internal network",
            NetworkMode::Default => "the default network",
        }
    }
}

/// Families that need no network: the socket works in a namespace with only loopback.
const LOCAL: &[&str] = &["AF_UNIX", "AF_NETLINK"];

/// Families whose addresses the recording has (`endpoints`): where their sockets went can
/// decide the mode. A packet socket, or any other, keeps the default network.
const INTERNET: &[&str] = &["AF_INET", "AF_INET6"];

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

/// `0.0.0.0:8080`, `[::]:8080`.
fn listen_text(l: &Listen) -> String {
    match l.address {
        IpAddr::V6(a) => format!("[{a}]:{}", l.port),
        IpAddr::V4(a) => format!("{a}:{}", l.port),
    }
}

/// The evidence of an Internet socket's endpoints in words, each part after a `; `.
fn endpoints_why(evidence: &Evidence) -> String {
    let mut why = String::new();
    if !evidence.listens.is_empty() {
        let l: Vec<String> = evidence.listens.iter().map(listen_text).collect();
        why.push_str(&format!("; it listened on {}", l.join(", ")));
    }
    if evidence.dns {
        why.push_str("; it looked names up over DNS (port 53)");
    }
    let nowhere = if evidence.dns {
        "; it connected nowhere else"
    } else {
        "; it connected nowhere"
    };
    match &evidence.egress {
        Some(e) if e.is_empty() => why.push_str(nowhere),
        Some(e) => why.push_str(&format!(
            "; it connected to {} addresses",
            e.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        None => {}
    }
    why
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
    let evidence = endpoints_evidence(
        obs.endpoints_unknown
            .is_empty()
            .then_some(obs.endpoints.as_slice()),
    );
    if !unknown.is_empty() {
        // Sockets whose family is not known (socketcall's, or an older recording's) may have
        // named addresses the recording did not read: where traffic went is not known either.
        return NetworkSetting {
            mode: NetworkMode::Default,
            families,
            listens: evidence.listens,
            egress: None,
            dns: false,
            egress_ports: BTreeMap::new(),
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
    if networked.is_empty() {
        let why = if families.is_empty() {
            "it created no socket".to_owned()
        } else {
            format!(
                "it created {} sockets only, which need no network",
                list(&families)
            )
        };
        return evidence.into_setting(NetworkMode::None, families, why);
    }
    let mut why = format!("it created {} sockets", list(&networked));
    why.push_str(&endpoints_why(&evidence));
    let internet_only = networked.iter().all(|f| INTERNET.contains(&f.as_str()));
    let mode = match &evidence.egress {
        Some(egress) if internet_only => {
            let (mode, reason) = mode_from_endpoints(&evidence.listens, egress, evidence.dns);
            if !reason.is_empty() {
                why.push_str(&format!("; {reason}"));
            }
            mode
        }
        _ => NetworkMode::Default,
    };
    evidence.into_setting(mode, families, why)
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

    /// An Internet socket keeps the network when the recordings cannot say where it went;
    /// one that went nowhere needs none.
    #[test]
    fn an_internet_socket_keeps_the_network_unless_it_went_nowhere() {
        let mut obs = observed(Some(ArgEvidence::Known([1, 10].into())));
        obs.endpoints_unknown.insert("old.json".into());
        let s = analyze(&obs);
        assert_eq!(s.mode, NetworkMode::Default);
        assert_eq!(s.why, "it created AF_INET6 sockets");
        let s = analyze(&observed(Some(ArgEvidence::Known([1, 10].into()))));
        assert_eq!(s.mode, NetworkMode::None);
        assert_eq!(
            s.why,
            "it created AF_INET6 sockets; it connected nowhere; it used nothing beyond loopback, which a container without a network still has"
        );
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

    fn endpoint(call: &str, a: &str, port: u16) -> Endpoint {
        Endpoint {
            call: call.to_owned(),
            address: a.parse().expect("address"),
            port,
            count: 1,
        }
    }

    /// An AF_INET workload with these endpoints.
    /// The ports connected to are kept per class; loopback and DNS need none, and a connect
    /// to port 0 leaves its class open on every port.
    #[test]
    fn egress_ports_by_class() {
        let endpoint = |a: &str, port| Endpoint {
            call: "connect".to_owned(),
            address: a.parse().expect("address"),
            port,
            count: 1,
        };
        let s = inet(vec![
            endpoint("10.0.0.7", 5432),
            endpoint("10.1.0.1", 6379),
            endpoint("127.0.0.1", 9000),
            endpoint("10.0.0.2", 53),
            endpoint("93.184.216.34", 443),
            endpoint("93.184.216.35", 0),
        ]);
        assert_eq!(
            s.egress_ports,
            [("private".to_owned(), [5432, 6379].into())].into()
        );
        assert!(s.dns);
    }

    fn inet(endpoints: Vec<Endpoint>) -> NetworkSetting {
        let mut obs = observed(Some(ArgEvidence::Known([2].into())));
        obs.endpoints = endpoints;
        analyze(&obs)
    }

    /// Listens and connects become the setting's evidence; a connect to port 53 is DNS, not
    /// egress; a recording without endpoints leaves egress unknown.
    #[test]
    fn endpoints_give_listens_and_egress() {
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
        assert_eq!(s.egress, Some(["loopback".to_owned()].into()));
        assert!(s.dns);
        assert!(
            s.why.ends_with(
                "; it listened on 0.0.0.0:8080; it looked names up over DNS (port 53); it connected to loopback addresses; a published port needs the default network"
            ),
            "{}",
            s.why
        );
        obs.endpoints_unknown.insert("old.json".into());
        let s = analyze(&obs);
        assert!(
            s.listens.is_empty() && s.egress.is_none() && !s.dns,
            "{s:?}"
        );
    }

    /// Docker's embedded resolver and private addresses only: an internal network, with DNS.
    #[test]
    fn dns_and_private_addresses_are_internal() {
        let s = inet(vec![
            endpoint("connect", "127.0.0.11", 53),
            endpoint("connect", "172.18.0.3", 5432),
            endpoint("connect", "169.254.169.254", 80),
            endpoint("listen", "127.0.0.1", 9000),
        ]);
        assert_eq!(s.mode, NetworkMode::Internal, "{}", s.why);
        assert!(s.dns);
        assert_eq!(
            s.egress,
            Some(["link-local".to_owned(), "private".to_owned()].into()),
            "the resolver's loopback address is DNS, not egress"
        );
        assert_eq!(
            s.why,
            "it created AF_INET sockets; it listened on 127.0.0.1:9000; it looked names up over DNS (port 53); it connected to link-local, private addresses; it published no port and connected to no public address: an internal network is enough"
        );
        assert_eq!(s.label(), "an internal network");
        // DNS alone, to a public resolver: still internal (a resolver is answered by its port).
        let s = inet(vec![endpoint("connect", "8.8.8.8", 53)]);
        assert_eq!(s.mode, NetworkMode::Internal, "{}", s.why);
        assert!(s.why.contains("; it connected nowhere else;"), "{}", s.why);
    }

    /// A public address, or a published port, keeps the default network.
    #[test]
    fn a_public_address_or_a_published_port_keeps_the_default_network() {
        let s = inet(vec![
            endpoint("connect", "127.0.0.11", 53),
            endpoint("connect", "10.0.0.7", 443),
            endpoint("connect", "93.184.215.14", 443),
        ]);
        assert_eq!(s.mode, NetworkMode::Default, "{}", s.why);
        assert_eq!(
            s.egress,
            Some(["private".to_owned(), "public".to_owned()].into())
        );
        let s = inet(vec![
            endpoint("listen", "::", 8080),
            endpoint("connect", "10.0.0.7", 5432),
        ]);
        assert_eq!(s.mode, NetworkMode::Default, "{}", s.why);
        assert!(
            s.why
                .ends_with("; a published port needs the default network"),
            "{}",
            s.why
        );
    }

    /// Loopback only, listening and connecting: no network, as a `--network none` container
    /// keeps its loopback interface. A packet socket is not judged by its endpoints.
    #[test]
    fn loopback_only_needs_no_network() {
        let loopback = || {
            vec![
                endpoint("listen", "127.0.0.1", 18080),
                endpoint("connect", "127.0.0.1", 18080),
                endpoint("connect", "::1", 6379),
            ]
        };
        let s = inet(loopback());
        assert_eq!(s.mode, NetworkMode::None, "{}", s.why);
        assert!(!s.dns);
        assert_eq!(
            s.why,
            "it created AF_INET sockets; it listened on 127.0.0.1:18080; it connected to loopback addresses; it used nothing beyond loopback, which a container without a network still has"
        );
        let mut obs = observed(Some(ArgEvidence::Known([2, 17].into())));
        obs.endpoints = loopback();
        assert_eq!(analyze(&obs).mode, NetworkMode::Default);
    }

    /// Settings files written before `dns` still parse, and `dns` is written only when true.
    #[test]
    fn dns_is_optional_in_the_file() {
        let old: NetworkSetting = serde_json::from_str(
            r#"{"mode": "default", "families": ["AF_INET"], "why": "w", "egress": ["private"]}"#,
        )
        .expect("an older setting");
        assert!(!old.dns);
        assert!(!serde_json::to_string(&old).expect("json").contains("dns"));
        let s = inet(vec![endpoint("connect", "127.0.0.11", 53)]);
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json["mode"], "internal");
        assert_eq!(json["dns"], true);
        assert_eq!(json["egress"], serde_json::json!([]));
    }
}
