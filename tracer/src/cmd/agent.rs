//! `cinch agent`: the flags checked, then the node agent ([`crate::agent`]) until SIGTERM.

use crate::agent::{self, Options};
use crate::cli::AgentArgs;
use crate::error::input;
use crate::kubernetes::Selector;

/// A namespace as Kubernetes allows it: a DNS-1123 label.
fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-')
}

/// This node's name: `--node`, else `$NODE_NAME` (the DaemonSet sets it from the pod's
/// `spec.nodeName`), else the hostname.
fn node_name(flag: Option<String>) -> anyhow::Result<String> {
    let name = match flag.or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty())) {
        Some(n) => n,
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !ok {
        return Err(input(format!(
            "{name:?} is not a node name (letters, digits, '-', '.', '_'); pass --node"
        )));
    }
    Ok(name)
}

pub(super) fn run(args: AgentArgs) -> anyhow::Result<u8> {
    if let Some(bad) = args.namespaces.iter().find(|ns| !valid_namespace(ns)) {
        return Err(input(format!(
            "--namespace {bad:?} is not a Kubernetes namespace name (lowercase letters, digits and '-')"
        )));
    }
    let opts = Options {
        selector: Selector {
            namespaces: args.namespaces.into_iter().collect(),
            labels: args.selectors,
            annotations: args.annotations,
        },
        node: node_name(args.node)?,
        output: args.output,
        listen: args.listen,
        slots: args.slots,
    };
    agent::run(opts)?;
    Ok(0)
}
