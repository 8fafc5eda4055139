//! The scheduling queue: pods to try now (FIFO), and pods waiting after a failed attempt.
//!
//! As upstream's unschedulable queue, a waiting pod is retried once something that could
//! make it fit happens (a node added or changed, a pod removed, the pod itself changed),
//! but never before its backoff (1 s doubling to 10 s) has passed, and at the latest
//! [`FLUSH_AFTER`] after its last attempt even if nothing happened.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long an unschedulable pod waits without any event before it is tried again
/// (upstream flushes its unschedulable pods on a timer too).
pub const FLUSH_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Waiting {
    attempts: u32,
    not_before: Instant,
    last_attempt: Instant,
    /// Something happened since the last attempt that may let the pod fit.
    woken: bool,
    /// A digest of the pod's labels and spec at the last attempt: a change wakes it.
    fingerprint: u64,
    /// The pod has required pod affinity, so a newly placed pod may satisfy it.
    wants_pods: bool,
}

#[derive(Debug, Default)]
pub struct Queue {
    active: VecDeque<String>,
    queued: HashSet<String>,
    waiting: HashMap<String, Waiting>,
}

impl Queue {
    /// Queue a pod seen for the first time (or seen again while not waiting).
    pub fn add(&mut self, key: &str) {
        if !self.waiting.contains_key(key) && self.queued.insert(key.to_string()) {
            self.active.push_back(key.to_string());
        }
    }

    /// The next pod to try.
    pub fn pop(&mut self) -> Option<String> {
        while let Some(key) = self.active.pop_front() {
            // Removed keys stay in the deque; `queued` says which entries are live.
            if self.queued.remove(&key) {
                return Some(key);
            }
        }
        None
    }

    pub fn has_active(&self) -> bool {
        !self.queued.is_empty()
    }

    /// Forget a pod entirely (bound, deleted, or not ours).
    pub fn remove(&mut self, key: &str) {
        self.queued.remove(key);
        self.waiting.remove(key);
    }

    /// The fingerprint recorded at the pod's last failed attempt, if it is waiting.
    pub fn waiting_fingerprint(&self, key: &str) -> Option<u64> {
        self.waiting.get(key).map(|w| w.fingerprint)
    }

    /// Park a pod that fit nowhere; it backs off and waits for an event.
    pub fn park(&mut self, key: &str, now: Instant, fingerprint: u64, wants_pods: bool) {
        let attempts = self.waiting.get(key).map_or(0, |w| w.attempts) + 1;
        self.queued.remove(key);
        self.waiting.insert(
            key.to_string(),
            Waiting {
                attempts,
                not_before: now + backoff(attempts),
                last_attempt: now,
                woken: false,
                fingerprint,
                wants_pods,
            },
        );
    }

    /// Park a pod whose attempt failed for a passing reason (an API error): retry it as
    /// soon as its backoff ends.
    pub fn retry_later(&mut self, key: &str, now: Instant) {
        self.park(key, now, 0, false);
        if let Some(w) = self.waiting.get_mut(key) {
            w.woken = true;
        }
    }

    /// Wake every waiting pod (a node appeared or changed, a pod went away).
    pub fn wake_all(&mut self) {
        for w in self.waiting.values_mut() {
            w.woken = true;
        }
    }

    /// Wake the pods that wait for other pods (one was just placed).
    pub fn wake_pod_affinity(&mut self) {
        for w in self.waiting.values_mut().filter(|w| w.wants_pods) {
            w.woken = true;
        }
    }

    /// Wake one pod (its spec or labels changed).
    pub fn wake(&mut self, key: &str) {
        if let Some(w) = self.waiting.get_mut(key) {
            w.woken = true;
        }
    }

    /// Move waiting pods whose time has come to the active queue.
    pub fn release_due(&mut self, now: Instant) {
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| {
                now >= w.not_before && (w.woken || now >= w.last_attempt + FLUSH_AFTER)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            // The attempt count survives until the pod is bound, so backoff keeps growing.
            if self.queued.insert(key.clone()) {
                self.active.push_back(key.clone());
            }
            if let Some(w) = self.waiting.get_mut(&key) {
                w.woken = false;
                w.last_attempt = now;
                w.not_before = now + FLUSH_AFTER;
            }
        }
    }

    /// Whether a pod is parked (not in the active queue).
    #[cfg(test)]
    pub fn is_parked(&self, key: &str) -> bool {
        self.waiting.contains_key(key) && !self.queued.contains(key)
    }
}

/// 1 s, 2 s, 4 s, 8 s, then 10 s.
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(10);
    (INITIAL_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_without_duplicates() {
        let mut q = Queue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        q.remove("b");
        q.add("c");
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("c"));
        assert_eq!(q.pop(), None);
        assert!(!q.has_active());
    }

    #[test]
    fn parked_pods_wait_for_backoff_and_an_event_or_the_flush() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("p");
        assert_eq!(q.pop().as_deref(), Some("p"));
        q.park("p", t0, 7, false);
        assert_eq!(q.waiting_fingerprint("p"), Some(7));
        // Seen again while parked: stays parked.
        q.add("p");
        assert!(q.is_parked("p"));
        // Nothing happened: not released, even after the backoff.
        q.release_due(t0 + Duration::from_secs(2));
        assert_eq!(q.pop(), None);
        // An event before the backoff ends: released once it ends.
        q.wake_all();
        q.release_due(t0 + Duration::from_millis(500));
        assert_eq!(q.pop(), None);
        q.release_due(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("p"));
        // Second failure: 2 s backoff; the flush retries it without any event.
        let t1 = t0 + Duration::from_secs(1);
        q.park("p", t1, 7, false);
        q.release_due(t1 + FLUSH_AFTER);
        assert_eq!(q.pop().as_deref(), Some("p"));
        q.remove("p");
        assert!(!q.is_parked("p"));
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(10));
        assert_eq!(backoff(50), Duration::from_secs(10));
    }
}
