//! The garbage collector's picture of ownership: every observed object by uid with its
//! owner references and deletion state, and the reverse index owner uid → dependents.
//!
//! Applying a change is pure and returns the work it makes necessary, so the rules of
//! when to look at an object again are unit-tested without an API server. Owners that
//! were never observed have no node; only their uid appears in the reverse index.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::discovery::Resource;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// Verified-absent owner uids kept at most; the set is cleared when it grows beyond this
/// (it only saves GETs, forgetting is safe).
const ABSENT_CAPACITY: usize = 10_000;

/// One owner reference, as much of it as the collector needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub block_owner_deletion: bool,
}

/// An observed object.
#[derive(Clone, Debug)]
pub struct Node {
    pub resource: Arc<Resource>,
    pub uid: String,
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<Owner>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl Node {
    /// Build a node from an object's metadata; `None` without a uid or name.
    pub fn from_meta(resource: Arc<Resource>, meta: &ObjectMeta) -> Option<Node> {
        let owners = meta
            .owner_references
            .iter()
            .flatten()
            .map(|r| Owner {
                uid: r.uid.clone(),
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                name: r.name.clone(),
                block_owner_deletion: r.block_owner_deletion == Some(true),
            })
            .collect();
        Some(Node {
            resource,
            uid: meta.uid.clone()?,
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
            owners,
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
        })
    }

    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Being deleted in the foreground: waiting for its blocking dependents to go.
    pub fn deleting_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(FOREGROUND)
    }

    /// Being deleted with its dependents orphaned.
    pub fn orphaning_dependents(&self) -> bool {
        self.deleting && self.has_finalizer(ORPHAN)
    }
}

/// Something a worker must look at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// Decide whether this object (a dependent) must be deleted or lose owner references.
    Dependent(String),
    /// This object is being deleted in the foreground or with orphaning: act on its
    /// dependents and drop its finalizer when done.
    Owner(String),
}

/// The ownership graph.
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
    absent: HashSet<String>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// Observed objects that name `owner` in their owner references.
    pub fn dependents_of(&self, owner: &str) -> Vec<&Node> {
        self.dependents
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|uid| self.nodes.get(uid))
            .collect()
    }

    pub fn has_dependents(&self, owner: &str) -> bool {
        !self.dependents_of(owner).is_empty()
    }

    /// Whether an owner uid is known not to exist (it was seen deleted, or a GET said so).
    pub fn is_absent(&self, uid: &str) -> bool {
        self.absent.contains(uid)
    }

    pub fn mark_absent(&mut self, uid: &str) {
        if self.absent.len() >= ABSENT_CAPACITY {
            self.absent.clear();
        }
        self.absent.insert(uid.to_string());
    }

    /// Uids of the observed objects of one resource.
    pub fn uids_of(&self, resource: &Resource) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| same_resource(&n.resource, resource))
            .map(|n| n.uid.clone())
            .collect()
    }

    /// Record an added or changed object.
    pub fn upsert(&mut self, node: Node) -> Vec<Work> {
        let mut work = Vec::new();
        let old = self.nodes.get(&node.uid);
        let was_deleting_dependents = old.is_some_and(Node::deleting_dependents);
        if node.deleting_dependents() || node.orphaning_dependents() {
            work.push(Work::Owner(node.uid.clone()));
        }
        // Entering foreground deletion: every dependent must now be collected.
        if node.deleting_dependents() && !was_deleting_dependents {
            work.extend(
                self.dependents_of(&node.uid)
                    .into_iter()
                    .map(|d| Work::Dependent(d.uid.clone())),
            );
        }
        // An owner never seen (or gone), or one deleting its dependents: look at this one.
        let needs_look = node.owners.iter().any(|o| {
            self.nodes
                .get(&o.uid)
                .is_none_or(|owner| owner.deleting_dependents())
        });
        if needs_look {
            work.push(Work::Dependent(node.uid.clone()));
        }
        // A reference that stopped blocking may unblock a foreground deletion.
        if let Some(old) = old {
            for gone in old
                .owners
                .iter()
                .filter(|o| o.block_owner_deletion && !node.owners.contains(o))
            {
                if self
                    .nodes
                    .get(&gone.uid)
                    .is_some_and(Node::deleting_dependents)
                {
                    work.push(Work::Owner(gone.uid.clone()));
                }
            }
        }
        self.unindex(&node.uid);
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        self.nodes.insert(node.uid.clone(), node);
        work
    }

    /// Record a deleted object.
    pub fn remove(&mut self, uid: &str) -> Vec<Work> {
        self.unindex(uid);
        let Some(node) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        self.mark_absent(uid);
        let mut work: Vec<Work> = self
            .dependents_of(uid)
            .into_iter()
            .map(|d| Work::Dependent(d.uid.clone()))
            .collect();
        for owner in &node.owners {
            if self
                .nodes
                .get(&owner.uid)
                .is_some_and(Node::deleting_dependents)
            {
                work.push(Work::Owner(owner.uid.clone()));
            }
        }
        work
    }

    /// Drop `uid` from the reverse index entries of its current owners.
    fn unindex(&mut self, uid: &str) {
        let Some(old) = self.nodes.get(uid) else {
            return;
        };
        for owner in &old.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
    }
}

pub fn same_resource(a: &Resource, b: &Resource) -> bool {
    a.ar.group == b.ar.group && a.ar.plural == b.ar.plural
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kube::discovery::ApiResource;

    pub fn configmaps() -> Arc<Resource> {
        Arc::new(Resource {
            ar: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            namespaced: true,
            verbs: vec!["list".into(), "watch".into(), "delete".into()],
        })
    }

    pub fn node(uid: &str, owners: &[(&str, bool)]) -> Node {
        Node {
            resource: configmaps(),
            uid: uid.into(),
            namespace: Some("default".into()),
            name: format!("cm-{uid}"),
            owners: owners
                .iter()
                .map(|(o, block)| Owner {
                    uid: (*o).into(),
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: format!("cm-{o}"),
                    block_owner_deletion: *block,
                })
                .collect(),
            finalizers: Vec::new(),
            deleting: false,
        }
    }

    fn deleting(mut n: Node, finalizer: &str) -> Node {
        n.deleting = true;
        n.finalizers.push(finalizer.into());
        n
    }

    #[test]
    fn dependent_with_observed_owner_needs_nothing() {
        let mut g = Graph::default();
        assert!(g.upsert(node("o", &[])).is_empty());
        assert!(g.upsert(node("d", &[("o", true)])).is_empty());
        assert_eq!(g.dependents_of("o").len(), 1);
    }

    #[test]
    fn dependent_of_unseen_owner_is_looked_at() {
        let mut g = Graph::default();
        assert_eq!(
            g.upsert(node("d", &[("ghost", false)])),
            vec![Work::Dependent("d".into())]
        );
    }

    #[test]
    fn owner_deletion_queues_dependents_and_remembers_absence() {
        let mut g = Graph::default();
        g.upsert(node("o", &[]));
        g.upsert(node("d1", &[("o", true)]));
        g.upsert(node("d2", &[("o", false)]));
        let mut work = g.remove("o");
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(
            work,
            vec![Work::Dependent("d1".into()), Work::Dependent("d2".into())]
        );
        assert!(g.is_absent("o"));
        assert!(g.get("o").is_none());
    }

    #[test]
    fn foreground_deletion_queues_owner_and_dependents() {
        let mut g = Graph::default();
        g.upsert(node("o", &[]));
        g.upsert(node("d", &[("o", true)]));
        let work = g.upsert(deleting(node("o", &[]), FOREGROUND));
        assert_eq!(
            work,
            vec![Work::Owner("o".into()), Work::Dependent("d".into())]
        );
        // A dependent that goes away re-queues its foreground-deleting owner.
        assert_eq!(g.remove("d"), vec![Work::Owner("o".into())]);
        assert!(g.dependents_of("o").is_empty());
    }

    #[test]
    fn dropping_a_blocking_reference_requeues_the_owner() {
        let mut g = Graph::default();
        g.upsert(deleting(node("o", &[]), FOREGROUND));
        g.upsert(node("other", &[]));
        g.upsert(node("d", &[("o", true), ("other", false)]));
        let work = g.upsert(node("d", &[("other", false)]));
        assert_eq!(work, vec![Work::Owner("o".into())]);
        assert!(g.dependents_of("o").is_empty());
        assert_eq!(g.dependents_of("other").len(), 1);
    }

    #[test]
    fn orphaning_queues_the_owner() {
        let mut g = Graph::default();
        let work = g.upsert(deleting(node("o", &[]), ORPHAN));
        assert_eq!(work, vec![Work::Owner("o".into())]);
    }
}
