//! What a ReplicaSet is waiting to see in the Pod informer after creating or deleting
//! pods (upstream's `ControllerExpectations`, keyed by pod name instead of a count).
//!
//! A reconcile that runs before the informer has caught up with its own writes would
//! count too few (or too many) pods and create (or delete) them a second time. So every
//! create records the new pod's name and every delete the doomed pod's uid, and the next
//! reconcile only touches pods once each of them has been observed. A pod the informer
//! can never show (created and removed before it was seen) stops blocking after a
//! timeout, as upstream's expectations expire.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an unobserved write may hold a ReplicaSet back.
const EXPIRY: Duration = Duration::from_secs(60);

/// `(namespace, name)` of a ReplicaSet.
pub type Key = (String, String);

#[derive(Default)]
struct Pending {
    /// Names of created pods not yet seen.
    creates: HashSet<String>,
    /// Name → uid of deleted pods still seen alive.
    deletes: HashMap<String, String>,
    since: Option<Instant>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.deletes.is_empty()
    }
}

/// How the informer currently sees one pod name of the ReplicaSet's namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen<'a> {
    Absent,
    /// Present, with this uid, and whether it is being deleted.
    Present {
        uid: &'a str,
        terminating: bool,
    },
}

#[derive(Default)]
pub struct Expectations {
    pending: Mutex<HashMap<Key, Pending>>,
}

impl Expectations {
    pub fn created(&self, key: &Key, name: String) {
        let mut pending = self.pending.lock().expect("expectations lock");
        let entry = pending.entry(key.clone()).or_default();
        entry.since.get_or_insert_with(Instant::now);
        entry.creates.insert(name);
    }

    pub fn deleting(&self, key: &Key, name: String, uid: String) {
        let mut pending = self.pending.lock().expect("expectations lock");
        let entry = pending.entry(key.clone()).or_default();
        entry.since.get_or_insert_with(Instant::now);
        entry.deletes.insert(name, uid);
    }

    /// A delete that failed will never be observed.
    pub fn delete_failed(&self, key: &Key, name: &str) {
        let mut pending = self.pending.lock().expect("expectations lock");
        if let Some(entry) = pending.get_mut(key) {
            entry.deletes.remove(name);
        }
    }

    /// The informer delivered an event for this pod: a create is observed even if the
    /// pod is already gone again.
    pub fn observed(&self, key: &Key, name: &str) {
        let mut pending = self.pending.lock().expect("expectations lock");
        if let Some(entry) = pending.get_mut(key) {
            entry.creates.remove(name);
        }
    }

    /// Drop what the informer now shows and say whether nothing is outstanding.
    pub fn satisfied<'a>(&self, key: &Key, seen: impl Fn(&str) -> Seen<'a>) -> bool {
        let mut pending = self.pending.lock().expect("expectations lock");
        let Some(entry) = pending.get_mut(key) else {
            return true;
        };
        entry
            .creates
            .retain(|name| matches!(seen(name), Seen::Absent));
        entry.deletes.retain(|name, uid| {
            matches!(seen(name), Seen::Present { uid: u, terminating: false } if u == uid)
        });
        let expired = entry.since.is_some_and(|t| t.elapsed() > EXPIRY);
        if entry.is_empty() || expired {
            pending.remove(key);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        ("default".into(), "web".into())
    }

    #[test]
    fn creates_wait_until_seen() {
        let e = Expectations::default();
        e.created(&key(), "web-a".into());
        e.created(&key(), "web-b".into());
        assert!(!e.satisfied(&key(), |_| Seen::Absent));
        let present = |n: &str| {
            if n == "web-a" {
                Seen::Present {
                    uid: "1",
                    terminating: false,
                }
            } else {
                Seen::Absent
            }
        };
        assert!(!e.satisfied(&key(), present));
        e.observed(&key(), "web-b");
        assert!(e.satisfied(&key(), |_| Seen::Absent));
    }

    #[test]
    fn deletes_wait_until_gone_terminating_or_replaced() {
        let e = Expectations::default();
        e.deleting(&key(), "a".into(), "1".into());
        e.deleting(&key(), "b".into(), "2".into());
        e.deleting(&key(), "c".into(), "3".into());
        let alive = |_: &str| Seen::Present {
            uid: "1",
            terminating: false,
        };
        assert!(!e.satisfied(&key(), alive));
        let seen = |n: &str| match n {
            "a" => Seen::Absent,
            "b" => Seen::Present {
                uid: "2",
                terminating: true,
            },
            _ => Seen::Present {
                uid: "other",
                terminating: false,
            },
        };
        assert!(e.satisfied(&key(), seen));
    }

    #[test]
    fn failed_deletes_do_not_block() {
        let e = Expectations::default();
        e.deleting(&key(), "a".into(), "1".into());
        e.delete_failed(&key(), "a");
        assert!(e.satisfied(&key(), |_| Seen::Present {
            uid: "1",
            terminating: false
        }));
    }
}
