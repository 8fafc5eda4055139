//! Which resources the cluster serves, for the loops that must cover every kind
//! (built-ins and custom resources alike): the garbage collector and the namespace
//! controller.
//!
//! Each group is asked for its preferred version only, so two versions of one kind are
//! never both watched or both emptied. A group that fails to answer is reported rather
//! than failing the whole discovery, because the namespace controller must still delete
//! what it can (and say which groups it could not see).

use std::sync::Arc;

use kube::core::GroupVersion;
use kube::discovery::{self, verbs, ApiCapabilities, ApiResource, Scope};
use kube::Client;

/// One served resource at its group's preferred version.
#[derive(Debug)]
pub struct Resource {
    pub ar: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Resource {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `plural.group` (`configmaps.` for the core group), as upstream names resources in
    /// messages.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.ar.plural, self.ar.group)
    }

    /// Resources the garbage collector tracks: it must list, watch and delete them.
    pub fn is_collectable(&self) -> bool {
        self.supports(verbs::LIST) && self.supports(verbs::WATCH) && self.supports(verbs::DELETE)
    }
}

/// The outcome of one discovery: what was found, and the groups that failed.
#[derive(Debug, Default)]
pub struct Discovered {
    pub resources: Vec<Arc<Resource>>,
    /// `group/version: error` for every group that did not answer.
    pub failures: Vec<String>,
}

/// Discover every served resource (subresources excluded).
pub async fn discover(client: &Client) -> Result<Discovered, kube::Error> {
    let mut versions = vec![GroupVersion::gv("", "v1")];
    for group in client.list_api_groups().await?.groups {
        let version = group
            .preferred_version
            .as_ref()
            .map(|v| v.version.clone())
            .or_else(|| group.versions.first().map(|v| v.version.clone()));
        if let Some(version) = version {
            versions.push(GroupVersion::gv(&group.name, &version));
        }
    }
    let answers = futures::future::join_all(
        versions
            .iter()
            .map(|gv| discovery::oneshot::pinned_group(client, gv)),
    )
    .await;
    let mut found = Discovered::default();
    for (gv, answer) in versions.iter().zip(answers) {
        match answer {
            Ok(group) => {
                for (ar, caps) in group.recommended_resources() {
                    found.resources.push(Arc::new(resource(ar, caps)));
                }
            }
            Err(err) => found.failures.push(format!("{}: {err}", gv.api_version())),
        }
    }
    Ok(found)
}

fn resource(ar: ApiResource, caps: ApiCapabilities) -> Resource {
    Resource {
        ar,
        namespaced: caps.scope == Scope::Namespaced,
        verbs: caps.operations,
    }
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_of_api_versions() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("stable.example.com/v1beta1"), "stable.example.com");
    }
}
