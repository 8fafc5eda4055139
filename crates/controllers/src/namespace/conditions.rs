//! The conditions a Terminating namespace reports while its content is deleted, with
//! upstream's types, reasons and messages (`kubectl describe namespace` shows them).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What one pass over a namespace's content found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Groups discovery could not read (`group/version: error`).
    pub discovery_failures: Vec<String>,
    /// Resources whose deletion failed (`resource: error`).
    pub deletion_failures: Vec<String>,
    /// Objects still present, by `plural.group`.
    pub remaining: BTreeMap<String, usize>,
    /// Objects still carrying each finalizer.
    pub finalizers: BTreeMap<String, usize>,
}

impl Pass {
    /// Nothing is left and nothing was missed: the namespace can be finalized.
    pub fn is_complete(&self) -> bool {
        self.discovery_failures.is_empty()
            && self.deletion_failures.is_empty()
            && self.remaining.is_empty()
    }
}

/// One condition: (type, failing?, reason, message).
type Verdict = (&'static str, bool, &'static str, String);

fn verdicts(pass: &Pass) -> Vec<Verdict> {
    let discovery = if pass.discovery_failures.is_empty() {
        (
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".to_string(),
        )
    } else {
        (
            true,
            "DiscoveryFailed",
            format!(
                "Discovery failed for some groups, {} failing: {}",
                pass.discovery_failures.len(),
                pass.discovery_failures.join(", ")
            ),
        )
    };
    let content = if pass.deletion_failures.is_empty() {
        (
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".to_string(),
        )
    } else {
        (
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                pass.deletion_failures.len(),
                pass.deletion_failures.join(", ")
            ),
        )
    };
    let remaining = if pass.remaining.is_empty() {
        (
            false,
            "ContentRemoved",
            "All content successfully removed".to_string(),
        )
    } else {
        let items: Vec<String> = pass
            .remaining
            .iter()
            .map(|(resource, n)| format!("{resource} has {n} resource instances"))
            .collect();
        (
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", items.join(", ")),
        )
    };
    let finalizers = if pass.finalizers.is_empty() {
        (
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_string(),
        )
    } else {
        let items: Vec<String> = pass
            .finalizers
            .iter()
            .map(|(finalizer, n)| format!("{finalizer} in {n} resource instances"))
            .collect();
        (
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                items.join(", ")
            ),
        )
    };
    let with = |kind, (failing, reason, message): (bool, &'static str, String)| {
        (kind, failing, reason, message)
    };
    vec![
        with("NamespaceDeletionDiscoveryFailure", discovery),
        with(
            "NamespaceDeletionGroupVersionParsingFailure",
            (
                false,
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed".to_string(),
            ),
        ),
        with("NamespaceDeletionContentFailure", content),
        with("NamespaceContentRemaining", remaining),
        with("NamespaceFinalizersRemaining", finalizers),
    ]
}

/// The namespace's conditions after `pass`: ours replaced (keeping the transition time
/// of an unchanged status), any others kept.
pub fn updated(
    existing: &[NamespaceCondition],
    pass: &Pass,
    now: jiff::Timestamp,
) -> Vec<NamespaceCondition> {
    let verdicts = verdicts(pass);
    let mut out: Vec<NamespaceCondition> = existing
        .iter()
        .filter(|c| !verdicts.iter().any(|(t, ..)| *t == c.type_))
        .cloned()
        .collect();
    for (type_, failing, reason, message) in verdicts {
        let status = if failing { "True" } else { "False" };
        let since = existing
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(NamespaceCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: Some(reason.to_string()),
            message: Some(message),
            last_transition_time: Some(since),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(conds: &'a [NamespaceCondition], t: &str) -> &'a NamespaceCondition {
        conds.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn blocked_namespace_reports_remaining_content_and_finalizers() {
        let pass = Pass {
            remaining: BTreeMap::from([
                ("configmaps.".to_string(), 1),
                ("widgets.example.com".to_string(), 2),
            ]),
            finalizers: BTreeMap::from([("example.com/hold".to_string(), 3)]),
            ..Pass::default()
        };
        assert!(!pass.is_complete());
        let conds = updated(&[], &pass, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(conds.len(), 5);
        let remaining = find(&conds, "NamespaceContentRemaining");
        assert_eq!(remaining.status, "True");
        assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
        assert_eq!(
            remaining.message.as_deref(),
            Some("Some resources are remaining: configmaps. has 1 resource instances, widgets.example.com has 2 resource instances")
        );
        let finalizers = find(&conds, "NamespaceFinalizersRemaining");
        assert_eq!(
            finalizers.message.as_deref(),
            Some("Some content in the namespace has finalizers remaining: example.com/hold in 3 resource instances")
        );
        assert_eq!(
            find(&conds, "NamespaceDeletionDiscoveryFailure").status,
            "False"
        );
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0 = jiff::Timestamp::UNIX_EPOCH;
        let t1 = jiff::Timestamp::from_second(100).unwrap();
        let blocked = Pass {
            remaining: BTreeMap::from([("pods.".to_string(), 1)]),
            ..Pass::default()
        };
        let first = updated(&[], &blocked, t0);
        let again = updated(&first, &blocked, t1);
        assert_eq!(first, again);
        let done = updated(&again, &Pass::default(), t1);
        let remaining = find(&done, "NamespaceContentRemaining");
        assert_eq!(remaining.status, "False");
        assert_eq!(remaining.last_transition_time, Some(Time(t1)));
        assert_eq!(
            find(&done, "NamespaceDeletionContentFailure").last_transition_time,
            Some(Time(t0))
        );
    }

    #[test]
    fn failures_are_counted() {
        let pass = Pass {
            discovery_failures: vec!["example.com/v1: boom".into()],
            deletion_failures: vec!["widgets.example.com: denied".into()],
            ..Pass::default()
        };
        let conds = updated(&[], &pass, jiff::Timestamp::UNIX_EPOCH);
        assert_eq!(
            find(&conds, "NamespaceDeletionDiscoveryFailure")
                .message
                .as_deref(),
            Some("Discovery failed for some groups, 1 failing: example.com/v1: boom")
        );
        assert_eq!(
            find(&conds, "NamespaceDeletionContentFailure")
                .reason
                .as_deref(),
            Some("ContentDeletionFailed")
        );
    }
}
