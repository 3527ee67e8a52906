//! The agent's directory: one recording per container run, and per owner and container the
//! profile merged from all of them.
//!
//! ```text
//! DIR/recordings/NAMESPACE/OWNER/CONTAINER/NODE-ID.json   one per container run
//! DIR/profiles/NAMESPACE/OWNER-CONTAINER.yaml             SPO SeccompProfile NAMESPACE-OWNER-CONTAINER
//! DIR/profiles/NAMESPACE/OWNER-CONTAINER-caps.yaml        ConfigMap: the capability settings
//! ```
//!
//! The recordings are the state: a profile is generated from every recording of its owner and
//! container, merged as `cinch generate` merges files, so an agent that restarts goes on from
//! what is on disk. What the merge needs is kept per owner and container ([`Observed`], the
//! join of its recordings), read from disk the first time and joined with each new recording
//! after that: writing a profile again costs the same after a thousand runs as after one.
//! Every file is written atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use profile_gen::Recording;
use profile_gen::files;
use profile_gen::formats::Format;
use profile_gen::generate::{self, GenerateOptions};
use profile_gen::observed::Observed;
use serde::Serialize;

use crate::kubernetes::PodContainer;

/// An owner's container: what one profile is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Group {
    pub namespace: String,
    pub owner: String,
    pub container: String,
}

impl Group {
    pub(crate) fn of(pod: &PodContainer) -> Group {
        Group {
            namespace: pod.namespace.clone(),
            owner: pod.owner.clone(),
            container: pod.container.clone(),
        }
    }

    /// The file names' stem: `OWNER-CONTAINER` (in the namespace's directory).
    pub(crate) fn profile_name(&self) -> String {
        format!("{}-{}", self.owner, self.container)
    }

    /// The SeccompProfile's name, `NAMESPACE-OWNER-CONTAINER`: SPO's profiles are
    /// cluster-scoped since its 0.9, so the name must tell namespaces apart.
    pub(crate) fn resource_name(&self) -> String {
        format!("{}-{}-{}", self.namespace, self.owner, self.container)
    }
}

pub(crate) struct Store {
    dir: PathBuf,
    node: String,
    /// Per owner and container, the join of its recordings so far and their paths.
    merged: BTreeMap<Group, (Observed, Vec<PathBuf>)>,
}

/// Names from the API server are DNS labels already; anything else is refused as a path part.
fn path_part(s: &str) -> anyhow::Result<&str> {
    anyhow::ensure!(
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')),
        "{s:?} cannot name a file"
    );
    Ok(s)
}

impl Store {
    pub(crate) fn new(dir: PathBuf, node: String) -> Store {
        Store {
            dir,
            node,
            merged: BTreeMap::new(),
        }
    }

    fn group_dir(&self, g: &Group) -> anyhow::Result<PathBuf> {
        Ok(self
            .dir
            .join("recordings")
            .join(path_part(&g.namespace)?)
            .join(path_part(&g.owner)?)
            .join(path_part(&g.container)?))
    }

    /// Writes one container run's recording; returns its path.
    pub(crate) fn save(
        &mut self,
        g: &Group,
        container_id: &str,
        recording: &Recording,
    ) -> anyhow::Result<PathBuf> {
        let dir = self.group_dir(g)?;
        files::create_dir_all_for_user(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let id: String = container_id.chars().take(12).collect();
        let base = format!("{}-{}", path_part(&self.node)?, path_part(&id)?);
        let mut path = dir.join(format!("{base}.json"));
        let mut n = 1;
        while path.exists() {
            n += 1;
            path = dir.join(format!("{base}-{n}.json"));
        }
        let bytes = serde_json::to_vec_pretty(recording).context("serializing the recording")?;
        files::write_atomic(&path, &bytes)?;
        if let Some((observed, paths)) = self.merged.get_mut(g) {
            observed.merge_in(&Observed::from_recording(path.clone(), recording));
            paths.push(path.clone());
        }
        Ok(path)
    }

    /// The join of every recording of `g` on disk, and their paths.
    fn read_merged(&self, g: &Group) -> anyhow::Result<(Observed, Vec<PathBuf>)> {
        let dir = self.group_dir(g)?;
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut observed = Observed::default();
        for p in &paths {
            let rec = profile_gen::read_recording(p)?;
            observed.merge_in(&Observed::from_recording(p.clone(), &rec));
        }
        Ok((observed, paths))
    }

    /// Generates `g`'s profile and capability settings from all its recordings and writes
    /// both; returns the profile's path.
    pub(crate) fn write_profile(&mut self, g: &Group) -> anyhow::Result<PathBuf> {
        if !self.merged.contains_key(g) {
            let read = self.read_merged(g)?;
            self.merged.insert(g.clone(), read);
        }
        let Some((observed, paths)) = self.merged.get(g) else {
            anyhow::bail!("no recordings of {}", g.profile_name());
        };
        let generated = generate::generate_observed(
            observed.clone(),
            paths.clone(),
            &GenerateOptions::default(),
        )?;
        let name = g.profile_name();
        let dir = self.dir.join("profiles").join(path_part(&g.namespace)?);
        files::create_dir_all_for_user(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let profile = dir.join(format!("{name}.yaml"));
        let rendered = generated.render(Format::Spo, &profile, Some(&g.resource_name()))?;
        let caps = caps_config_map(
            &format!("{name}-caps"),
            &g.namespace,
            paths.len(),
            &generated.observed.nodes,
            &generated.caps.settings,
        )?;
        let caps_path = dir.join(format!("{name}-caps.yaml"));
        files::write_atomic_all(&[
            (profile.as_path(), rendered.profile.as_slice()),
            (caps_path.as_path(), caps.as_bytes()),
        ])?;
        Ok(profile)
    }

    /// The groups that have recordings on disk (an agent that restarts writes their profiles
    /// again only when a new recording comes).
    pub(crate) fn groups(&self) -> BTreeSet<Group> {
        let mut out = BTreeSet::new();
        let list = |p: &Path| -> Vec<(String, PathBuf)> {
            std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
                .collect()
        };
        for (namespace, ns_dir) in list(&self.dir.join("recordings")) {
            for (owner, owner_dir) in list(&ns_dir) {
                for (container, _) in list(&owner_dir) {
                    out.insert(Group {
                        namespace: namespace.clone(),
                        owner: owner.clone(),
                        container,
                    });
                }
            }
        }
        out
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMap<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    data: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: &'a str,
    namespace: &'a str,
    annotations: BTreeMap<&'static str, String>,
}

/// The capability settings as a ConfigMap: `cap_drop` and `cap_add` as comma-separated names
/// (what a pod's `securityContext.capabilities` lists), and the whole settings file with the
/// reasons.
fn caps_config_map(
    name: &str,
    namespace: &str,
    recordings: usize,
    nodes: &BTreeSet<String>,
    settings: &profile_gen::allowlist::CapSettings,
) -> anyhow::Result<String> {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        profile_gen::formats::ANNOTATION_RECORDINGS,
        recordings.to_string(),
    );
    if !nodes.is_empty() {
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        annotations.insert(profile_gen::formats::ANNOTATION_NODES, nodes.join(","));
    }
    let add: Vec<String> = settings.cap_add.iter().map(ToString::to_string).collect();
    let mut data = BTreeMap::new();
    data.insert("cap_drop", settings.cap_drop.join(","));
    data.insert("cap_add", add.join(","));
    data.insert(
        "settings.json",
        String::from_utf8(settings.to_json()).context("the settings are UTF-8")?,
    );
    let map = ConfigMap {
        api_version: "v1",
        kind: "ConfigMap",
        metadata: Metadata {
            name,
            namespace,
            annotations,
        },
        data,
    };
    serde_norway::to_string(&map).context("serializing the ConfigMap")
}
