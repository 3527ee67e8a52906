//! Kubernetes names for a container, from the labels the kubelet gives it through the CRI
//! (containerd and CRI-O keep them as container labels), and the agent's selection of pods.
//!
//! The kubelet labels every container with its pod's namespace, name and uid and its own name
//! (`io.kubernetes.pod.namespace`, `io.kubernetes.pod.name`, `io.kubernetes.pod.uid`,
//! `io.kubernetes.container.name`); the pod's own labels go on its sandbox, which the engine
//! is asked for with its annotations ([`crate::containers::inspect_new`]). Nothing names the pod's owner, so it is
//! told from the labels its controller puts on every pod (`pod-template-hash` for a
//! Deployment's ReplicaSet, `statefulset.kubernetes.io/pod-name`, `job-name`,
//! `pod-template-generation` for a DaemonSet) and the pod name the controller generated.

use std::collections::{BTreeMap, BTreeSet};

pub(crate) const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub(crate) const POD_NAME: &str = "io.kubernetes.pod.name";
pub(crate) const POD_UID: &str = "io.kubernetes.pod.uid";
pub(crate) const CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// containerd's CRI plugin: `sandbox` for a pod's pause container, `container` for the rest.
const CRI_CONTAINERD_KIND: &str = "io.cri-containerd.kind";

/// A container of a pod, and the workload that owns the pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PodContainer {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// `Deployment`, `StatefulSet`, `DaemonSet`, `Job`, `Pod` (a bare pod), or `controller`
    /// (a generated pod name without the labels that would say which).
    pub owner_kind: &'static str,
    pub owner: String,
}

impl PodContainer {
    /// The container of a pod its labels name; `None` for a container outside Kubernetes and
    /// for a pod's sandbox (its pause process is not the workload).
    pub(crate) fn from_labels(labels: &BTreeMap<String, String>) -> Option<PodContainer> {
        let get = |k: &str| labels.get(k).filter(|v| !v.is_empty());
        let namespace = get(POD_NAMESPACE)?;
        let pod = get(POD_NAME)?;
        let container = get(CONTAINER_NAME)?;
        // dockershim named the sandbox container "POD".
        if labels
            .get(CRI_CONTAINERD_KIND)
            .is_some_and(|k| k == "sandbox")
            || container == "POD"
        {
            return None;
        }
        let (owner_kind, owner) = owner(pod, labels);
        Some(PodContainer {
            namespace: namespace.clone(),
            pod: pod.clone(),
            container: container.clone(),
            owner_kind,
            owner,
        })
    }
}

/// The characters Kubernetes generates name suffixes and template hashes from
/// (`k8s.io/apimachinery/pkg/util/rand`: no vowels, no 0, 1 or 3).
fn generated(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
}

/// Strips `-<suffix>` from `name` when the suffix passes `ok`.
fn strip_suffix(name: &str, ok: impl Fn(&str) -> bool) -> Option<&str> {
    let (base, suffix) = name.rsplit_once('-')?;
    (!base.is_empty() && ok(suffix)).then_some(base)
}

/// The pod's owner: kind and name.
fn owner(pod: &str, labels: &BTreeMap<String, String>) -> (&'static str, String) {
    let label = |k: &str| labels.get(k).map(String::as_str);
    if let Some(job) = label("batch.kubernetes.io/job-name").or_else(|| label("job-name")) {
        return ("Job", job.to_owned());
    }
    if let Some(hash) = label("pod-template-hash") {
        // <deployment>-<pod-template-hash>-<random>
        let deployment = strip_suffix(pod, generated)
            .and_then(|rs| rs.strip_suffix(hash))
            .and_then(|d| d.strip_suffix('-'));
        if let Some(d) = deployment {
            return ("Deployment", d.to_owned());
        }
    }
    if label("statefulset.kubernetes.io/pod-name").is_some()
        && let Some(set) = strip_suffix(pod, |s| s.bytes().all(|b| b.is_ascii_digit()))
    {
        return ("StatefulSet", set.to_owned());
    }
    if label("pod-template-generation").is_some()
        && let Some(set) = strip_suffix(pod, generated)
    {
        return ("DaemonSet", set.to_owned());
    }
    // No labels to go by: a Deployment's pod name has two generated parts, the hash (6 to 10
    // characters) and 5 random ones; a DaemonSet's or a Job's has the 5 only.
    if let Some(rs) = strip_suffix(pod, |s| s.len() == 5 && generated(s)) {
        if let Some(d) = strip_suffix(rs, |s| (6..=10).contains(&s.len()) && generated(s)) {
            return ("Deployment", d.to_owned());
        }
        return ("controller", rs.to_owned());
    }
    ("Pod", pod.to_owned())
}

/// Which pods the agent records: in these namespaces (any when empty), with all these labels
/// and all these annotations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selector {
    pub namespaces: BTreeSet<String>,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

impl Selector {
    pub(crate) fn matches(
        &self,
        pod: &PodContainer,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> bool {
        let all = |wanted: &[(String, String)], have: &BTreeMap<String, String>| {
            wanted
                .iter()
                .all(|(k, v)| have.get(k).is_some_and(|h| h == v))
        };
        (self.namespaces.is_empty() || self.namespaces.contains(&pod.namespace))
            && all(&self.labels, labels)
            && all(&self.annotations, annotations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn pod(name: &str, extra: &[(&str, &str)]) -> Option<PodContainer> {
        let mut l = labels(&[
            (POD_NAMESPACE, "shop"),
            (POD_NAME, name),
            (CONTAINER_NAME, "app"),
        ]);
        l.extend(labels(extra));
        PodContainer::from_labels(&l)
    }

    fn owner_of(name: &str, extra: &[(&str, &str)]) -> (&'static str, String) {
        let p = pod(name, extra).expect("a pod's container");
        (p.owner_kind, p.owner)
    }

    #[test]
    fn owners_from_controller_labels() {
        let hash = [("pod-template-hash", "7c9f8d6b5")];
        assert_eq!(
            owner_of("web-7c9f8d6b5-x2x9q", &hash),
            ("Deployment", "web".to_owned())
        );
        assert_eq!(
            owner_of("my-api-v2-7c9f8d6b5-x2x9q", &hash),
            ("Deployment", "my-api-v2".to_owned()),
            "dashes in the Deployment's name"
        );
        assert_eq!(
            owner_of("db-2", &[("statefulset.kubernetes.io/pod-name", "db-2")]),
            ("StatefulSet", "db".to_owned())
        );
        assert_eq!(
            owner_of("migrate-28h4k", &[("job-name", "migrate")]),
            ("Job", "migrate".to_owned())
        );
        assert_eq!(
            owner_of(
                "nightly-2891-abcde",
                &[("batch.kubernetes.io/job-name", "nightly-2891")]
            ),
            ("Job", "nightly-2891".to_owned())
        );
        assert_eq!(
            owner_of("agent-x7b2k", &[("pod-template-generation", "1")]),
            ("DaemonSet", "agent".to_owned())
        );
    }

    #[test]
    fn owners_from_the_generated_name_alone() {
        assert_eq!(
            owner_of("web-7c9f8d6b5-x2x9q", &[]),
            ("Deployment", "web".to_owned())
        );
        assert_eq!(
            owner_of("agent-x7b2k", &[]),
            ("controller", "agent".to_owned())
        );
        assert_eq!(owner_of("debug", &[]), ("Pod", "debug".to_owned()));
        assert_eq!(
            owner_of("web-aeiou", &[]),
            ("Pod", "web-aeiou".to_owned()),
            "vowels are never generated"
        );
    }

    #[test]
    fn sandboxes_and_other_containers_are_not_pods_containers() {
        assert!(pod("web-1", &[(CRI_CONTAINERD_KIND, "sandbox")]).is_none());
        assert!(pod("web-1", &[(CRI_CONTAINERD_KIND, "container")]).is_some());
        let mut l = labels(&[(POD_NAMESPACE, "shop"), (POD_NAME, "web-1")]);
        assert!(PodContainer::from_labels(&l).is_none(), "no container name");
        l.insert(CONTAINER_NAME.to_owned(), "POD".to_owned());
        assert!(
            PodContainer::from_labels(&l).is_none(),
            "dockershim's sandbox"
        );
        assert!(PodContainer::from_labels(&BTreeMap::new()).is_none());
    }

    #[test]
    fn selection_by_namespace_labels_and_annotations() {
        let p = pod("web-1", &[]).expect("pod");
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let a = labels(&[("example.com/record", "true")]);
        let mut s = Selector::default();
        assert!(s.matches(&p, &l, &a), "everything by default");
        s.namespaces.insert("other".to_owned());
        assert!(!s.matches(&p, &l, &a));
        s.namespaces.insert("shop".to_owned());
        assert!(s.matches(&p, &l, &a));
        s.labels.push(("app".to_owned(), "web".to_owned()));
        assert!(s.matches(&p, &l, &a));
        s.annotations
            .push(("example.com/record".to_owned(), "true".to_owned()));
        assert!(s.matches(&p, &l, &a));
        assert!(
            !s.matches(&p, &l, &BTreeMap::new()),
            "an annotation, not a label"
        );
        assert!(
            !s.matches(&p, &a, &l),
            "labels and annotations are not interchangeable"
        );
        s.labels.push(("tier".to_owned(), "back".to_owned()));
        assert!(!s.matches(&p, &l, &a), "every label must match");
    }
}
