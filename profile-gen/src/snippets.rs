//! Ready-to-paste settings that apply a profile and the settings file (capabilities, network):
//! `docker run` flags, a compose service block, and a Kubernetes Pod with a NetworkPolicy when
//! the settings say where its traffic went.

use std::path::Path;

use crate::allowlist::CapSettings;
use crate::capability::Capability;
use crate::filesystem::{FilesystemSetting, MountKind};
use crate::network::{NetworkMode, NetworkSetting};

/// The Docker network the snippets attach a workload to when it needs only an internal one:
/// created with `docker network create --internal`, which gives it no route beyond the
/// containers attached to it (and publishes no port).
pub const INTERNAL_NETWORK: &str = "cinch-internal";

/// The address blocks of the egress classes (`network::address_class`): RFC 1918 and RFC 4193
/// private, RFC 3927 and RFC 4291 link-local.
const PRIVATE_V4: &[&str] = &["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
const PRIVATE_V6: &[&str] = &["fc00::/7"];
const LINK_LOCAL_V4: &[&str] = &["169.254.0.0/16"];
const LINK_LOCAL_V6: &[&str] = &["fe80::/10"];

/// The filesystem setting when it asks for a read-only root.
fn read_only(caps: &CapSettings) -> Option<&FilesystemSetting> {
    caps.filesystem.as_ref().filter(|f| f.read_only)
}

/// A Kubernetes volume name for a mount path: `cinch-var-lib-redis`.
fn volume_name(path: &str) -> String {
    let mut name = String::from("cinch");
    for c in path.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let mut name: String = name.trim_end_matches('-').chars().take(63).collect();
    while name.ends_with('-') {
        name.pop();
    }
    name
}

/// Whether the settings ask for an internal network.
fn internal_network(caps: &CapSettings) -> bool {
    caps.network
        .as_ref()
        .is_some_and(|n| n.mode == NetworkMode::Internal)
}

/// What to run before the `docker run` line, as shell lines: creating the internal network,
/// when the settings ask for one. Compose creates its own; Kubernetes has none.
pub fn docker_setup(network: Option<&NetworkSetting>) -> Option<String> {
    network.filter(|n| n.mode == NetworkMode::Internal).map(|_| {
        format!(
            "# {INTERNAL_NETWORK} is an internal network (no route beyond the containers on it): create it once,\n# and attach the containers the workload connects to as well\ndocker network create --internal {INTERNAL_NETWORK}\n"
        )
    })
}

/// The TCP ports to publish: those it listened on at an address reachable from outside its
/// network namespace, when it keeps the default network (an internal one publishes none).
fn published_ports(caps: &CapSettings) -> Vec<u16> {
    let mut ports: Vec<u16> = caps
        .network
        .as_ref()
        .filter(|n| n.mode == NetworkMode::Default)
        .map(|n| {
            n.listens
                .iter()
                .filter(|l| l.is_published())
                .map(|l| l.port)
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Quotes `s` for a POSIX shell when it needs it.
pub(crate) fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A YAML / JSON double-quoted string.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn cap_list(caps: &CapSettings) -> Vec<&'static str> {
    caps.cap_add.iter().map(|c| c.docker_name()).collect()
}

/// `--security-opt seccomp=PATH --security-opt no-new-privileges:true --cap-drop ALL --cap-add X`,
/// and `--network none` when the workload needs no network, `--network cinch-internal` when an
/// internal one is enough (it must exist: [`docker_setup`]). Without settings the capability
/// and network flags are left out (cinch does not know them).
pub fn docker_run_flags(profile: &Path, caps: Option<&CapSettings>) -> String {
    let mut flags = vec![
        "--security-opt".to_owned(),
        shell_quote(&format!("seccomp={}", profile.display())),
    ];
    if no_new_privileges(caps) {
        flags.push("--security-opt".to_owned());
        flags.push("no-new-privileges:true".to_owned());
    }
    if let Some(caps) = caps {
        flags.push("--cap-drop".to_owned());
        flags.push("ALL".to_owned());
        for cap in cap_list(caps) {
            flags.push("--cap-add".to_owned());
            flags.push(cap.to_owned());
        }
        if let Some(user) = caps.user.as_ref().and_then(|u| u.user.as_ref()) {
            flags.push("--user".to_owned());
            flags.push(shell_quote(user));
        }
        if let Some(fs) = read_only(caps) {
            flags.push("--read-only".to_owned());
            for m in fs.mounts_of(MountKind::Tmpfs) {
                flags.push("--tmpfs".to_owned());
                flags.push(shell_quote(&tmpfs_spec(m)));
            }
            for m in fs.mounts_of(MountKind::Volume) {
                flags.push("--mount".to_owned());
                flags.push(shell_quote(&format!("type=volume,dst={}", m.path)));
            }
        }
        if let Some(limits) = &caps.limits {
            if let Some(pids) = limits.pids {
                flags.push("--pids-limit".to_owned());
                flags.push(pids.to_string());
            }
            if let Some(memory) = limits.docker_memory() {
                flags.push("--memory".to_owned());
                flags.push(memory);
            }
            if let Some(cpus) = limits.docker_cpus() {
                flags.push("--cpus".to_owned());
                flags.push(cpus);
            }
        }
        if caps.no_network() {
            flags.push("--network".to_owned());
            flags.push("none".to_owned());
        } else if internal_network(caps) {
            flags.push("--network".to_owned());
            flags.push(INTERNAL_NETWORK.to_owned());
        }
        for port in published_ports(caps) {
            flags.push("-p".to_owned());
            flags.push(format!("{port}:{port}"));
        }
    }
    flags.join(" ")
}

/// Whether the snippets set no-new-privileges: unless the settings say an exec of the workload
/// needed to gain privileges.
fn no_new_privileges(caps: Option<&CapSettings>) -> bool {
    caps.is_none_or(CapSettings::sets_no_new_privileges)
}

/// Why no-new-privileges is left out, as a comment line, when it is.
fn no_new_privileges_comment(caps: Option<&CapSettings>, indent: &str) -> String {
    caps.and_then(|c| c.no_new_privileges.as_ref())
        .filter(|n| !n.set)
        .map(|n| format!("{indent}# no-new-privileges is not set: {}\n", n.why))
        .unwrap_or_default()
}

/// A compose service block, and the top-level `networks` entry of the internal network when
/// the service needs one (compose creates it).
pub fn compose_block(profile: &Path, caps: Option<&CapSettings>) -> String {
    let mut out = String::from(
        "# merge into your service in compose.yaml (rename \"app\")\nservices:\n  app:\n",
    );
    let seccomp = quoted(&format!("seccomp:{}", profile.display()));
    if no_new_privileges(caps) {
        out.push_str(&format!(
            "    security_opt: [{seccomp}, \"no-new-privileges:true\"]\n"
        ));
    } else {
        out.push_str(&no_new_privileges_comment(caps, "    "));
        out.push_str(&format!("    security_opt: [{seccomp}]\n"));
    }
    if let Some(caps) = caps {
        out.push_str("    cap_drop: [\"ALL\"]\n");
        let add: Vec<String> = cap_list(caps).into_iter().map(quoted).collect();
        if !add.is_empty() {
            out.push_str(&format!("    cap_add: [{}]\n", add.join(", ")));
        }
        if caps.cap_add.contains(&Capability::NET_BIND_SERVICE) {
            out.push_str("    # NET_BIND_SERVICE: Docker sets net.ipv4.ip_unprivileged_port_start=0 in containers with their own network namespace; it may not be needed here\n");
        }
        if let Some(user) = caps.user.as_ref().and_then(|u| u.user.as_ref()) {
            out.push_str(&format!("    user: {}\n", quoted(user)));
        }
        if let Some(fs) = read_only(caps) {
            out.push_str("    read_only: true\n");
            let list = |kind| {
                fs.mounts_of(kind)
                    .map(|m| match kind {
                        MountKind::Tmpfs => quoted(&tmpfs_spec(m)),
                        MountKind::Volume => quoted(&m.path),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if fs.mounts_of(MountKind::Tmpfs).next().is_some() {
                out.push_str(&format!("    tmpfs: [{}]\n", list(MountKind::Tmpfs)));
            }
            if fs.mounts_of(MountKind::Volume).next().is_some() {
                out.push_str(
                    "    # anonymous volumes: each starts as a copy of the image's directory\n",
                );
                out.push_str(&format!("    volumes: [{}]\n", list(MountKind::Volume)));
            }
        }
        if let Some(limits) = &caps.limits {
            if let Some(pids) = limits.pids {
                out.push_str(&format!("    pids_limit: {pids}\n"));
            }
            if let Some(memory) = limits.docker_memory() {
                out.push_str(&format!("    mem_limit: {}\n", quoted(&memory)));
            }
            if let Some(cpus) = limits.docker_cpus() {
                out.push_str(&format!("    cpus: {cpus}\n"));
            }
        }
        if caps.no_network() {
            out.push_str("    network_mode: \"none\"\n");
        } else if internal_network(caps) {
            out.push_str("    # an internal network: no route beyond the containers on it, so attach the\n    # services the workload connects to as well\n");
            out.push_str(&format!("    networks: [{}]\n", quoted(INTERNAL_NETWORK)));
        }
        let ports = published_ports(caps);
        if !ports.is_empty() {
            let list: Vec<String> = ports.iter().map(|p| quoted(&format!("{p}:{p}"))).collect();
            out.push_str(&format!("    ports: [{}]\n", list.join(", ")));
        }
        if internal_network(caps) {
            out.push_str(&format!(
                "# merge into compose.yaml's top-level networks\nnetworks:\n  {INTERNAL_NETWORK}:\n    internal: true\n"
            ));
        }
    }
    out
}

/// A container's `resources.limits` (requests default to them), and the pids limit as a
/// comment: Kubernetes sets it per pod on the node (the kubelet's `podPidsLimit`).
fn kubernetes_resources(limits: &crate::limits::LimitsSetting) -> String {
    let mut out = String::new();
    if let Some(pids) = limits.pids {
        out.push_str(&format!(
            "    # pids: {pids} (Kubernetes limits processes per pod on the node: the kubelet's podPidsLimit)\n"
        ));
    }
    let mut set = Vec::new();
    if let Some(m) = limits.memory {
        set.push(format!("memory: \"{}Mi\"", m >> 20));
    }
    if let Some(c) = limits.millicpus {
        set.push(format!("cpu: \"{c}m\""));
    }
    if !set.is_empty() {
        out.push_str(&format!(
            "    resources:\n      limits: {{{}}}\n",
            set.join(", ")
        ));
    }
    out
}

/// A Pod that carries the settings, with a NetworkPolicy after it when the settings say where
/// its traffic went ([`network_policy`]; none in or out when it needs no network): the
/// container's `securityContext` (the Localhost profile installed under the
/// kubelet's seccomp root as `cinch/<file name>`), its `volumeMounts` and the pod's `volumes`.
/// A whole manifest rather than a fragment, so that it can be validated against the API's
/// schemas as it is and merged into a Deployment's pod template field by field.
pub fn kubernetes_manifest(profile: &Path, caps: Option<&CapSettings>) -> String {
    let file = profile
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "seccomp.json".to_owned());
    let install = format!(
        "# copy {} to /var/lib/kubelet/seccomp/cinch/{file} on every node that may run the pod,\n",
        profile.display()
    );
    manifest(&install, &format!("cinch/{file}"), caps)
}

/// [`kubernetes_manifest`] for a profile that is an SPO `SeccompProfile` named `name`: SPO
/// installs it on every node as `operator/<name>.json` (its profiles are cluster-scoped since
/// 0.9; before, the path has the namespace too, and the resource's status says which).
pub fn kubernetes_manifest_spo(profile: &Path, name: &str, caps: Option<&CapSettings>) -> String {
    let install = format!(
        "# kubectl apply -f {}: the Security Profiles Operator installs it on every node as\n# operator/{name}.json (before SPO 0.9: operator/NAMESPACE/{name}.json; its\n# status.localhostProfile says which),\n",
        profile.display()
    );
    manifest(&install, &format!("operator/{name}.json"), caps)
}

/// The Pod of [`kubernetes_manifest`]: `install` says how the profile gets onto the nodes,
/// `localhost` is the path the kubelet finds it under.
fn manifest(install: &str, localhost: &str, caps: Option<&CapSettings>) -> String {
    let mut out = format!(
        "{install}# then set the image and merge the container's securityContext, resources and volumeMounts\n# and the pod's volumes into your pod template (rename \"app\")\napiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  labels:\n    app: app\nspec:\n  containers:\n  - name: app\n    image: IMAGE\n",
    );
    let ports = caps.map(published_ports).unwrap_or_default();
    if !ports.is_empty() {
        out.push_str("    ports:\n");
        for p in &ports {
            out.push_str(&format!("    - containerPort: {p}\n"));
        }
    }
    if let Some(limits) = caps.and_then(|c| c.limits.as_ref()).filter(|l| l.any()) {
        out.push_str(&kubernetes_resources(limits));
    }
    out.push_str(&format!(
        "    securityContext:\n      seccompProfile:\n        type: Localhost\n        localhostProfile: {}\n",
        quoted(localhost),
    ));
    if no_new_privileges(caps) {
        out.push_str("      allowPrivilegeEscalation: false\n");
    } else {
        out.push_str(&no_new_privileges_comment(caps, "      "));
        out.push_str("      allowPrivilegeEscalation: true\n");
    }
    let Some(caps) = caps else {
        return out;
    };
    out.push_str("      capabilities:\n        drop: [\"ALL\"]\n");
    let add: Vec<String> = cap_list(caps).into_iter().map(quoted).collect();
    if !add.is_empty() {
        out.push_str(&format!("        add: [{}]\n", add.join(", ")));
    }
    if caps.cap_add.contains(&Capability::NET_BIND_SERVICE) {
        out.push_str("      # NET_BIND_SERVICE is needed on Kubernetes to bind a port below 1024 (net.ipv4.ip_unprivileged_port_start keeps its default there)\n");
    }
    if let Some((uid, gid)) = caps.user.as_ref().and_then(|u| u.ids()) {
        out.push_str(&format!(
            "      runAsNonRoot: true\n      runAsUser: {uid}\n      runAsGroup: {gid}\n"
        ));
    }
    if let Some(fs) = read_only(caps) {
        out.push_str("      readOnlyRootFilesystem: true\n");
        if !fs.mounts.is_empty() {
            out.push_str("    volumeMounts:\n");
            for m in &fs.mounts {
                out.push_str(&format!(
                    "    - name: {}\n      mountPath: {}\n",
                    volume_name(&m.path),
                    quoted(&m.path)
                ));
            }
            out.push_str("  # an emptyDir starts empty: copy what the image keeps in a volume's directory with\n  # an init container, or use a persistent volume for data\n  volumes:\n");
            for m in &fs.mounts {
                out.push_str(&format!(
                    "  - name: {}\n    emptyDir: {}\n",
                    volume_name(&m.path),
                    match (m.kind, m.size) {
                        (MountKind::Tmpfs, Some(size)) =>
                            format!("{{medium: Memory, sizeLimit: {}Mi}}", size >> 20),
                        (MountKind::Tmpfs, None) => "{medium: Memory}".to_owned(),
                        (MountKind::Volume, _) => "{}".to_owned(),
                    }
                ));
            }
        }
    }
    if let Some(network) = caps.network.as_ref().filter(|_| caps.no_network()) {
        out.push_str(&format!(
            "---\n# the workload needs no network ({}): this NetworkPolicy lets no traffic in or out of\n# the pods it selects (set the labels your pods carry and the namespace)\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: app-no-network\nspec:\n  podSelector:\n    matchLabels:\n      app: app\n  policyTypes: [\"Ingress\", \"Egress\"]\n",
            network.why
        ));
    } else if let Some(network) = caps.network.as_ref() {
        out.push_str(&network_policy(network, &ports));
    }
    out
}

/// The ipBlocks of an egress class as `(cidr, except)`, each `except` within its `cidr` and of
/// its family, as the API requires: the public addresses are everything but the private and
/// link-local blocks. None for a class cinch does not know.
fn class_blocks(class: &str) -> Vec<(&'static str, Vec<&'static str>)> {
    let plain = |blocks: Vec<&'static str>| blocks.into_iter().map(|b| (b, Vec::new())).collect();
    match class {
        "private" => plain([PRIVATE_V4, PRIVATE_V6].concat()),
        "link-local" => plain([LINK_LOCAL_V4, LINK_LOCAL_V6].concat()),
        "public" => vec![
            ("0.0.0.0/0", [PRIVATE_V4, LINK_LOCAL_V4].concat()),
            ("::/0", [PRIVATE_V6, LINK_LOCAL_V6].concat()),
        ],
        _ => Vec::new(),
    }
}

/// A NetworkPolicy's `egress` rules: port 53 to any address for DNS (the cluster's resolver
/// address is not known here; UDP and TCP, as resolvers answer both), then one rule per class
/// of address connected to.
fn egress_rules(network: &NetworkSetting, classes: &[&str]) -> String {
    let mut out = String::from("  egress:\n");
    if network.dns {
        out.push_str("  # DNS, to any address\n  - ports:\n    - port: 53\n      protocol: UDP\n    - port: 53\n      protocol: TCP\n");
    }
    for class in classes {
        let ports = network.egress_ports.get(*class);
        match ports {
            Some(ports) => {
                let list: Vec<String> = ports.iter().map(u16::to_string).collect();
                out.push_str(&format!(
                    "  # {class} addresses, on the ports it connected to ({})\n  - to:\n",
                    list.join(", ")
                ));
            }
            None => out.push_str(&format!("  # {class} addresses\n  - to:\n")),
        }
        for (cidr, except) in class_blocks(class) {
            out.push_str(&format!("    - ipBlock:\n        cidr: {}\n", quoted(cidr)));
            if !except.is_empty() {
                let list: Vec<String> = except.into_iter().map(quoted).collect();
                out.push_str(&format!("        except: [{}]\n", list.join(", ")));
            }
        }
        if let Some(ports) = ports {
            // The recording does not say TCP or UDP: both.
            out.push_str("    ports:\n");
            for p in ports {
                for protocol in ["TCP", "UDP"] {
                    out.push_str(&format!("    - port: {p}\n      protocol: {protocol}\n"));
                }
            }
        }
    }
    out
}

/// What a NetworkPolicy lets out for `network`, in words: `none out`, `out only to port 53 (DNS)
/// and private addresses`, or `does not restrict traffic out` when a class is one cinch does not
/// know. `None` when the recordings cannot say where it connected.
pub(crate) fn allowed_out(network: &NetworkSetting) -> Option<String> {
    let outside = beyond_loopback(network.egress.as_ref()?);
    if !outside.iter().all(|c| !class_blocks(c).is_empty()) {
        return Some("does not restrict traffic out".to_owned());
    }
    let mut destinations = Vec::new();
    if network.dns {
        destinations.push("port 53 (DNS)".to_owned());
    }
    let (by_port, any_port): (Vec<&str>, Vec<&str>) = outside
        .iter()
        .partition(|c| network.egress_ports.contains_key(**c));
    if !any_port.is_empty() {
        destinations.push(format!("{} addresses", any_port.join(", ")));
    }
    for class in by_port {
        let ports: Vec<String> = network.egress_ports[class]
            .iter()
            .map(u16::to_string)
            .collect();
        destinations.push(format!("{class} addresses on port {}", ports.join(", ")));
    }
    Some(if destinations.is_empty() {
        "none out".to_owned()
    } else {
        format!("out only to {}", destinations.join(" and "))
    })
}

/// The classes of `egress` a NetworkPolicy governs: all but loopback.
fn beyond_loopback(egress: &std::collections::BTreeSet<String>) -> Vec<&str> {
    egress
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "loopback")
        .collect()
}

/// The NetworkPolicy of a workload that keeps a network: traffic in only to the ports it
/// listened on; traffic out only where it went: port 53 when it looked names up, and the
/// blocks of each class of address it connected to beyond loopback (which a policy does not
/// govern), none when nothing went further. Out is not restricted when a class is one cinch
/// does not know. Empty when the recordings cannot say where it connected.
fn network_policy(network: &NetworkSetting, ports: &[u16]) -> String {
    let (Some(egress), Some(allows_out)) = (&network.egress, allowed_out(network)) else {
        return String::new();
    };
    let outside = beyond_loopback(egress);
    let restricts_out = outside.iter().all(|c| !class_blocks(c).is_empty());
    let listened = if ports.is_empty() {
        "on no published port".to_owned()
    } else {
        format!(
            "on port {}",
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let looked_up = if network.dns {
        ", looked names up over DNS"
    } else {
        ""
    };
    let connected = if outside.is_empty() {
        "no address beyond loopback".to_owned()
    } else {
        format!("{} addresses", outside.join(", "))
    };
    let allows_in = if ports.is_empty() {
        "no traffic in"
    } else {
        "traffic in to those ports only"
    };
    let mut out = format!(
        "---\n# the workload listened {listened}{looked_up} and connected to {connected}:\n# this NetworkPolicy lets {allows_in} and {allows_out}\n# (set the labels your pods carry and the namespace)\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: app-network\nspec:\n  podSelector:\n    matchLabels:\n      app: app\n"
    );
    if restricts_out {
        out.push_str("  policyTypes: [\"Ingress\", \"Egress\"]\n");
    } else {
        out.push_str("  policyTypes: [\"Ingress\"]\n");
    }
    if !ports.is_empty() {
        out.push_str("  ingress:\n  - ports:\n");
        for p in ports {
            out.push_str(&format!("    - port: {p}\n      protocol: TCP\n"));
        }
    }
    if restricts_out && (network.dns || !outside.is_empty()) {
        out.push_str(&egress_rules(network, &outside));
    }
    out
}

/// A tmpfs as `--tmpfs` and compose take it: `/tmp`, or `/tmp:size=18m` with its size.
fn tmpfs_spec(m: &crate::filesystem::WritableMount) -> String {
    match m.size {
        Some(size) => format!("{}:size={}m", m.path, size >> 20),
        None => m.path.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize as _;

    fn caps() -> CapSettings {
        CapSettings::drop_all(
            [Capability::NET_BIND_SERVICE, Capability::CHOWN]
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn docker_run() {
        assert_eq!(
            docker_run_flags(Path::new("prof/web.json"), Some(&caps())),
            "--security-opt seccomp=prof/web.json --security-opt no-new-privileges:true --cap-drop ALL --cap-add CHOWN --cap-add NET_BIND_SERVICE"
        );
        assert_eq!(
            docker_run_flags(Path::new("my dir/p.json"), None),
            "--security-opt 'seccomp=my dir/p.json' --security-opt no-new-privileges:true"
        );
    }

    #[test]
    fn compose_and_kubernetes_are_valid_yaml() {
        let compose: serde_norway::Value =
            serde_norway::from_str(&compose_block(Path::new("p.json"), Some(&caps())))
                .expect("yaml");
        assert_eq!(
            compose["services"]["app"]["security_opt"][0].as_str(),
            Some("seccomp:p.json")
        );
        assert_eq!(
            compose["services"]["app"]["cap_add"][1].as_str(),
            Some("NET_BIND_SERVICE")
        );
        let k8s: serde_norway::Value = serde_norway::from_str(&kubernetes_manifest(
            Path::new("/x/web.json"),
            Some(&caps()),
        ))
        .expect("yaml");
        assert_eq!(k8s["kind"].as_str(), Some("Pod"));
        let sc = &k8s["spec"]["containers"][0]["securityContext"];
        assert_eq!(
            sc["seccompProfile"]["localhostProfile"].as_str(),
            Some("cinch/web.json")
        );
        assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
        assert_eq!(sc["capabilities"]["add"][0].as_str(), Some("CHOWN"));
    }

    /// A read-only root with its tmpfs and volumes, in every snippet.
    #[test]
    fn read_only_root() {
        use crate::filesystem::WritableMount;
        let mut c = caps();
        let mount = |path: &str, kind| WritableMount {
            path: path.to_owned(),
            kind,
            why: "wrote it".to_owned(),
            size: (kind == MountKind::Tmpfs).then_some(18 << 20),
        };
        c.filesystem = Some(FilesystemSetting {
            read_only: true,
            mounts: vec![
                mount("/tmp", MountKind::Tmpfs),
                mount("/var/lib/redis", MountKind::Volume),
            ],
            why: "it wrote only under tmpfs /tmp, volume /var/lib/redis".to_owned(),
        });
        assert!(docker_run_flags(Path::new("p.json"), Some(&c)).ends_with(
            " --read-only --tmpfs /tmp:size=18m --mount type=volume,dst=/var/lib/redis"
        ));
        let compose: serde_norway::Value =
            serde_norway::from_str(&compose_block(Path::new("p.json"), Some(&c))).expect("yaml");
        let app = &compose["services"]["app"];
        assert_eq!(app["read_only"].as_bool(), Some(true));
        assert_eq!(app["tmpfs"][0].as_str(), Some("/tmp:size=18m"));
        assert_eq!(app["volumes"][0].as_str(), Some("/var/lib/redis"));
        let k8s: serde_norway::Value =
            serde_norway::from_str(&kubernetes_manifest(Path::new("p.json"), Some(&c)))
                .expect("yaml");
        let container = &k8s["spec"]["containers"][0];
        assert_eq!(
            container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true)
        );
        assert_eq!(
            container["volumeMounts"][1]["name"].as_str(),
            Some("cinch-var-lib-redis")
        );
        assert_eq!(
            k8s["spec"]["volumes"][1]["name"].as_str(),
            Some("cinch-var-lib-redis")
        );
        assert_eq!(
            k8s["spec"]["volumes"][0]["emptyDir"]["medium"].as_str(),
            Some("Memory")
        );
        assert_eq!(
            k8s["spec"]["volumes"][0]["emptyDir"]["sizeLimit"].as_str(),
            Some("18Mi")
        );
        // A writable root: nothing added.
        c.filesystem.as_mut().expect("set").read_only = false;
        assert!(!docker_run_flags(Path::new("p.json"), Some(&c)).contains("--read-only"));
        assert_eq!(volume_name("/"), "cinch");
    }

    /// A workload that needs no network gets `--network none`, `network_mode: none` and a
    /// NetworkPolicy that allows nothing, as a second YAML document.
    #[test]
    fn no_network() {
        use crate::network::{NetworkMode, NetworkSetting};
        let mut c = caps();
        c.network = Some(NetworkSetting {
            mode: NetworkMode::None,
            families: ["AF_UNIX".to_owned()].into(),
            why: "it created AF_UNIX sockets only, which need no network".to_owned(),
            listens: Vec::new(),
            egress: Some(Default::default()),
            dns: false,
            egress_ports: Default::default(),
        });
        assert!(docker_run_flags(Path::new("p.json"), Some(&c)).ends_with(" --network none"));
        let compose: serde_norway::Value =
            serde_norway::from_str(&compose_block(Path::new("p.json"), Some(&c))).expect("yaml");
        assert_eq!(
            compose["services"]["app"]["network_mode"].as_str(),
            Some("none")
        );
        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&k8s)
            .map(|d| serde_norway::Value::deserialize(d).expect("yaml"))
            .collect();
        assert_eq!(docs.len(), 2, "{k8s}");
        assert_eq!(docs[1]["kind"].as_str(), Some("NetworkPolicy"));
        assert_eq!(
            docs[1]["spec"]["policyTypes"],
            serde_norway::from_str::<serde_norway::Value>("[Ingress, Egress]").expect("yaml")
        );
        assert!(
            docs[1]["spec"].get("ingress").is_none() && docs[1]["spec"].get("egress").is_none()
        );
        // The default network: no `--network`, and no policy without the evidence of where
        // it connected.
        c.network.as_mut().expect("set").mode = NetworkMode::Default;
        c.network.as_mut().expect("set").egress = None;
        assert!(!docker_run_flags(Path::new("p.json"), Some(&c)).contains("--network"));
        assert!(!kubernetes_manifest(Path::new("p.json"), Some(&c)).contains("NetworkPolicy"));
    }

    /// Limits in every snippet: `--pids-limit`, `--memory`, `--cpus`; their compose keys; a
    /// container's `resources.limits` with the pids limit as a comment.
    #[test]
    fn limits() {
        let mut c = caps();
        c.limits = Some(crate::limits::LimitsSetting {
            pids: Some(19),
            memory: Some(42 << 20),
            millicpus: Some(500),
            why: "at most 3 tasks".to_owned(),
        });
        assert!(
            docker_run_flags(Path::new("p.json"), Some(&c))
                .ends_with(" --pids-limit 19 --memory 42m --cpus 0.5")
        );
        let compose: serde_norway::Value =
            serde_norway::from_str(&compose_block(Path::new("p.json"), Some(&c))).expect("yaml");
        let app = &compose["services"]["app"];
        assert_eq!(app["pids_limit"].as_u64(), Some(19));
        assert_eq!(app["mem_limit"].as_str(), Some("42m"));
        assert_eq!(app["cpus"].as_f64(), Some(0.5));
        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        assert!(k8s.contains("# pids: 19"), "{k8s}");
        let v: serde_norway::Value = serde_norway::from_str(&k8s).expect("yaml");
        let limits = &v["spec"]["containers"][0]["resources"]["limits"];
        assert_eq!(limits["memory"].as_str(), Some("42Mi"));
        assert_eq!(limits["cpu"].as_str(), Some("500m"));
        // No limits: nothing added.
        c.limits.as_mut().expect("set").pids = None;
        c.limits.as_mut().expect("set").memory = None;
        c.limits.as_mut().expect("set").millicpus = None;
        assert!(!docker_run_flags(Path::new("p.json"), Some(&c)).contains("--memory"));
        assert!(!kubernetes_manifest(Path::new("p.json"), Some(&c)).contains("resources:"));
    }

    /// A server that listened on a wildcard address: the port is published (`-p`, `ports:`,
    /// `containerPort`) and its NetworkPolicy lets traffic in to it only, and none out when it
    /// connected only to loopback; a loopback-only listen is not published.
    #[test]
    fn published_ports_and_their_policy() {
        use crate::network::{Listen, NetworkMode, NetworkSetting};
        let mut c = caps();
        let listen = |a: &str, port| Listen {
            address: a.parse().expect("address"),
            port,
        };
        c.network = Some(NetworkSetting {
            mode: NetworkMode::Default,
            families: ["AF_INET".to_owned()].into(),
            why: "it created AF_INET sockets".to_owned(),
            listens: vec![listen("0.0.0.0", 8080), listen("127.0.0.1", 9000)],
            egress: Some(["loopback".to_owned()].into()),
            dns: false,
            egress_ports: Default::default(),
        });
        assert!(docker_run_flags(Path::new("p.json"), Some(&c)).ends_with(" -p 8080:8080"));
        let compose: serde_norway::Value =
            serde_norway::from_str(&compose_block(Path::new("p.json"), Some(&c))).expect("yaml");
        assert_eq!(
            compose["services"]["app"]["ports"][0].as_str(),
            Some("8080:8080")
        );
        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&k8s)
            .map(|d| serde_norway::Value::deserialize(d).expect("yaml"))
            .collect();
        assert_eq!(
            docs[0]["spec"]["containers"][0]["ports"][0]["containerPort"].as_u64(),
            Some(8080)
        );
        let policy = &docs[1]["spec"];
        assert_eq!(
            policy["ingress"][0]["ports"][0]["port"].as_u64(),
            Some(8080)
        );
        assert_eq!(policy["policyTypes"][1].as_str(), Some("Egress"), "{k8s}");
        assert!(policy.get("egress").is_none(), "no egress rule: none out");
        // A class cinch does not know (a newer file): traffic out is not restricted.
        c.network.as_mut().expect("set").egress = Some(["anycast".to_owned()].into());
        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        assert!(k8s.contains("policyTypes: [\"Ingress\"]\n"), "{k8s}");
        assert!(!k8s.contains("egress:"), "{k8s}");
        // Unknown egress (an older recording): no policy.
        c.network.as_mut().expect("set").egress = None;
        assert!(!kubernetes_manifest(Path::new("p.json"), Some(&c)).contains("NetworkPolicy"));
    }

    /// The YAML documents of a manifest.
    fn documents(yaml: &str) -> Vec<serde_norway::Value> {
        serde_norway::Deserializer::from_str(yaml)
            .map(|d| serde_norway::Value::deserialize(d).expect("yaml"))
            .collect()
    }

    /// The CIDRs of a NetworkPolicy egress rule's `to`, with their `except`s.
    fn blocks(rule: &serde_norway::Value) -> Vec<(String, Vec<String>)> {
        let strings = |v: &serde_norway::Value| -> Vec<String> {
            v.as_sequence()
                .map(|s| {
                    s.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        rule["to"]
            .as_sequence()
            .expect("to")
            .iter()
            .map(|peer| {
                let block = &peer["ipBlock"];
                (
                    block["cidr"].as_str().expect("cidr").to_owned(),
                    strings(&block["except"]),
                )
            })
            .collect()
    }

    /// Whether the block `inner` lies within `outer`, both of one family (as the API requires
    /// of an ipBlock's `except`).
    fn within(inner: &str, outer: &str) -> bool {
        let parse = |b: &str| {
            let (a, len) = b.split_once('/').expect("a CIDR");
            let a: std::net::IpAddr = a.parse().expect("address");
            let len: u32 = len.parse().expect("length");
            match a {
                std::net::IpAddr::V4(v4) => (4, u128::from(u32::from(v4)) << 96, len),
                std::net::IpAddr::V6(v6) => (6, u128::from(v6), len),
            }
        };
        let (fi, ai, li) = parse(inner);
        let (fo, ao, lo) = parse(outer);
        let mask = u128::MAX.checked_shl(128 - lo).unwrap_or(0);
        fi == fo && li >= lo && (ai & mask) == (ao & mask)
    }

    /// A workload that looked names up and connected to private addresses, publishing no
    /// port: `--network cinch-internal` (created first), the compose service on an internal
    /// network, and a NetworkPolicy that lets out DNS and the private blocks only.
    #[test]
    fn internal_network() {
        use crate::network::Listen;
        let mut c = caps();
        c.network = Some(NetworkSetting {
            mode: NetworkMode::Internal,
            families: ["AF_INET".to_owned()].into(),
            why: "it published no port and connected to no public address".to_owned(),
            listens: vec![Listen {
                address: "127.0.0.1".parse().expect("address"),
                port: 9000,
            }],
            egress: Some(["loopback".to_owned(), "private".to_owned()].into()),
            dns: true,
            egress_ports: Default::default(),
        });
        let line = docker_run_flags(Path::new("p.json"), Some(&c));
        assert!(line.ends_with(" --network cinch-internal"), "{line}");
        let setup = docker_setup(c.network.as_ref()).expect("a network to create");
        assert!(
            setup.ends_with("\ndocker network create --internal cinch-internal\n"),
            "{setup}"
        );
        assert!(
            setup
                .lines()
                .all(|l| l.starts_with('#') || l.starts_with("docker "))
        );

        let compose_text = compose_block(Path::new("p.json"), Some(&c));
        let compose: serde_norway::Value = serde_norway::from_str(&compose_text).expect("yaml");
        let app = &compose["services"]["app"];
        assert_eq!(app["networks"][0].as_str(), Some("cinch-internal"));
        assert!(app.get("network_mode").is_none() && app.get("ports").is_none());
        assert_eq!(
            compose["networks"]["cinch-internal"]["internal"].as_bool(),
            Some(true),
            "{compose_text}"
        );

        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        assert!(
            k8s.contains(
                "lets no traffic in and out only to port 53 (DNS) and private addresses\n"
            ),
            "{k8s}"
        );
        let docs = documents(&k8s);
        let policy = &docs[1]["spec"];
        assert_eq!(
            policy["policyTypes"],
            serde_norway::from_str::<serde_norway::Value>("[Ingress, Egress]").expect("yaml")
        );
        assert!(policy.get("ingress").is_none(), "{k8s}");
        let egress = policy["egress"].as_sequence().expect("egress rules");
        assert_eq!(egress.len(), 2, "{k8s}");
        assert_eq!(
            egress[0],
            serde_norway::from_str::<serde_norway::Value>(
                "{ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]}"
            )
            .expect("yaml"),
            "DNS to any address"
        );
        let private: Vec<String> = blocks(&egress[1]).into_iter().map(|(c, _)| c).collect();
        assert_eq!(
            private,
            ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
        );
        // The default network: nothing to create.
        c.network.as_mut().expect("set").mode = NetworkMode::Default;
        assert!(docker_setup(c.network.as_ref()).is_none());
        assert!(!docker_run_flags(Path::new("p.json"), Some(&c)).contains("--network"));
        assert!(!compose_block(Path::new("p.json"), Some(&c)).contains("networks"));
    }

    /// Every class of address gets its egress rule; the public one is everything but the
    /// private and link-local blocks, each `except` within its CIDR and of its family.
    #[test]
    fn network_policy_egress_by_class() {
        use crate::network::Listen;
        let mut c = caps();
        c.network = Some(NetworkSetting {
            mode: NetworkMode::Default,
            families: ["AF_INET".to_owned(), "AF_INET6".to_owned()].into(),
            why: "it connected to link-local, loopback, private, public addresses".to_owned(),
            listens: vec![Listen {
                address: "::".parse().expect("address"),
                port: 8080,
            }],
            egress: Some(
                ["link-local", "loopback", "private", "public"]
                    .map(str::to_owned)
                    .into(),
            ),
            dns: false,
            egress_ports: Default::default(),
        });
        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        assert!(
            k8s.contains("out only to link-local, private, public addresses\n"),
            "{k8s}"
        );
        let docs = documents(&k8s);
        let policy = &docs[1]["spec"];
        assert_eq!(policy["policyTypes"][1].as_str(), Some("Egress"), "{k8s}");
        assert_eq!(
            policy["ingress"][0]["ports"][0]["port"].as_u64(),
            Some(8080)
        );
        let egress = policy["egress"].as_sequence().expect("egress rules");
        assert_eq!(egress.len(), 3, "no DNS rule without DNS: {k8s}");
        assert!(egress.iter().all(|r| r.get("ports").is_none()), "{k8s}");
        let cidrs = |rule| blocks(rule).into_iter().map(|(c, _)| c).collect::<Vec<_>>();
        assert_eq!(cidrs(&egress[0]), ["169.254.0.0/16", "fe80::/10"]);
        assert_eq!(cidrs(&egress[1])[0], "10.0.0.0/8");
        let public = blocks(&egress[2]);
        assert_eq!(
            public,
            [
                (
                    "0.0.0.0/0".to_owned(),
                    [
                        "10.0.0.0/8",
                        "172.16.0.0/12",
                        "192.168.0.0/16",
                        "169.254.0.0/16"
                    ]
                    .map(str::to_owned)
                    .to_vec()
                ),
                (
                    "::/0".to_owned(),
                    ["fc00::/7", "fe80::/10"].map(str::to_owned).to_vec()
                ),
            ]
        );
        for (cidr, except) in &public {
            for e in except {
                assert!(within(e, cidr), "{e} is not within {cidr}");
            }
        }
        assert!(!within("fc00::/7", "0.0.0.0/0") && !within("0.0.0.0/0", "10.0.0.0/8"));
    }

    /// With the ports it connected to, a class's rule lets out those ports only, over TCP and
    /// UDP (the recording does not say which); a class without ports stays open on all.
    #[test]
    fn network_policy_egress_by_port() {
        let mut c = caps();
        c.network = Some(NetworkSetting {
            mode: NetworkMode::Default,
            families: ["AF_INET".to_owned()].into(),
            why: String::new(),
            listens: Vec::new(),
            egress: Some(["private", "public"].map(str::to_owned).into()),
            dns: true,
            egress_ports: [("private".to_owned(), [5432, 6379].into())].into(),
        });
        let k8s = kubernetes_manifest(Path::new("p.json"), Some(&c));
        assert!(
            k8s.contains("out only to port 53 (DNS) and public addresses and private addresses on port 5432, 6379\n"),
            "{k8s}"
        );
        let docs = documents(&k8s);
        let egress = docs[1]["spec"]["egress"]
            .as_sequence()
            .expect("egress rules");
        assert_eq!(egress.len(), 3, "{k8s}");
        let ports = |rule: &serde_norway::Value| -> Vec<(u64, String)> {
            rule["ports"]
                .as_sequence()
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            (
                                p["port"].as_u64().expect("port"),
                                p["protocol"].as_str().expect("protocol").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let both = |p: u64| [(p, "TCP".to_owned()), (p, "UDP".to_owned())];
        assert_eq!(
            ports(&egress[1]),
            [both(5432), both(6379)].concat(),
            "private: {k8s}"
        );
        assert!(ports(&egress[2]).is_empty(), "public, every port: {k8s}");
    }

    /// An exec that gained privileges: no-new-privileges is left out everywhere, with why.
    #[test]
    fn no_new_privileges_left_out_when_an_exec_needs_it() {
        let mut c = caps();
        assert!(docker_run_flags(Path::new("p.json"), Some(&c)).contains("no-new-privileges:true"));
        c.no_new_privileges = Some(crate::no_new_privs::NoNewPrivileges {
            set: false,
            why: "sudo (1x) gained privileges at exec".to_owned(),
        });
        assert!(!docker_run_flags(Path::new("p.json"), Some(&c)).contains("no-new-privileges"));
        let compose = compose_block(Path::new("p.json"), Some(&c));
        assert!(!compose.contains("no-new-privileges:true"), "{compose}");
        assert!(
            compose.contains("# no-new-privileges is not set: sudo"),
            "{compose}"
        );
        let v: serde_norway::Value = serde_norway::from_str(&compose).expect("yaml");
        assert_eq!(
            v["services"]["app"]["security_opt"]
                .as_sequence()
                .map(Vec::len),
            Some(1)
        );
        let k8s: serde_norway::Value =
            serde_norway::from_str(&kubernetes_manifest(Path::new("p.json"), Some(&c)))
                .expect("yaml");
        assert_eq!(
            k8s["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"].as_bool(),
            Some(true)
        );
    }
}
