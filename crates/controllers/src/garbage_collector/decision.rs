//! What to do with a dependent once the state of each of its owners is known: upstream's
//! rules, as a pure function.

use kube::api::PropagationPolicy;

use super::graph::{FOREGROUND, ORPHAN};

/// What an owner reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists (possibly being deleted, but not in the foreground).
    Solid,
    /// The owner exists and is being deleted in the foreground: it waits for this
    /// dependent to go.
    WaitingForDependents,
    /// No object with that uid exists where the reference points.
    Dangling,
    /// The reference cannot be resolved (unknown kind, or a namespaced owner of a
    /// cluster-scoped dependent): never a reason to delete, so it counts as an owner.
    Unresolvable,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    /// Patch away the references to these owner uids; other owners keep the object.
    RemoveReferences(Vec<String>),
    /// Delete the object with this propagation policy.
    Delete(Policy),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

impl Policy {
    pub fn to_kube(self) -> PropagationPolicy {
        match self {
            Policy::Background => PropagationPolicy::Background,
            Policy::Foreground => PropagationPolicy::Foreground,
            Policy::Orphan => PropagationPolicy::Orphan,
        }
    }
}

/// Decide for a dependent whose owners (by uid) are in `owners`.
/// `has_dependents`: whether it owns observed objects itself; `finalizers`: its own.
pub fn decide(
    owners: &[(String, OwnerState)],
    has_dependents: bool,
    finalizers: &[String],
) -> Decision {
    if owners.is_empty() {
        return Decision::Nothing;
    }
    let alive = owners
        .iter()
        .any(|(_, s)| matches!(s, OwnerState::Solid | OwnerState::Unresolvable));
    if alive {
        let drop: Vec<String> = owners
            .iter()
            .filter(|(_, s)| matches!(s, OwnerState::Dangling | OwnerState::WaitingForDependents))
            .map(|(uid, _)| uid.clone())
            .collect();
        return if drop.is_empty() {
            Decision::Nothing
        } else {
            Decision::RemoveReferences(drop)
        };
    }
    let waited_on = owners
        .iter()
        .any(|(_, s)| *s == OwnerState::WaitingForDependents);
    // An owner deleting in the foreground waits for the whole subtree, so a dependent
    // with dependents of its own is deleted in the foreground too.
    if waited_on && has_dependents {
        return Decision::Delete(Policy::Foreground);
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    Decision::Delete(if has(ORPHAN) {
        Policy::Orphan
    } else if has(FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OwnerState::*;

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    #[test]
    fn no_owners_no_action() {
        assert_eq!(decide(&[], false, &[]), Decision::Nothing);
    }

    #[test]
    fn live_owners_keep_the_object() {
        assert_eq!(
            decide(&owners(&[("a", Solid)]), false, &[]),
            Decision::Nothing
        );
        assert_eq!(
            decide(&owners(&[("a", Unresolvable)]), false, &[]),
            Decision::Nothing
        );
    }

    #[test]
    fn one_gone_owner_of_two_loses_its_reference() {
        assert_eq!(
            decide(
                &owners(&[("a", Solid), ("b", Dangling), ("c", WaitingForDependents)]),
                false,
                &[]
            ),
            Decision::RemoveReferences(vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn all_owners_gone_deletes_in_the_background() {
        assert_eq!(
            decide(&owners(&[("a", Dangling), ("b", Dangling)]), true, &[]),
            Decision::Delete(Policy::Background)
        );
    }

    #[test]
    fn foreground_owner_propagates_foreground_to_owners() {
        assert_eq!(
            decide(&owners(&[("a", WaitingForDependents)]), true, &[]),
            Decision::Delete(Policy::Foreground)
        );
        assert_eq!(
            decide(&owners(&[("a", WaitingForDependents)]), false, &[]),
            Decision::Delete(Policy::Background)
        );
    }

    #[test]
    fn own_finalizers_choose_the_policy() {
        assert_eq!(
            decide(&owners(&[("a", Dangling)]), false, &[ORPHAN.into()]),
            Decision::Delete(Policy::Orphan)
        );
        assert_eq!(
            decide(&owners(&[("a", Dangling)]), false, &[FOREGROUND.into()]),
            Decision::Delete(Policy::Foreground)
        );
    }
}
