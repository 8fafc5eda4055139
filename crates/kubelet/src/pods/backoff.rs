//! Container restart back-off (CrashLoopBackOff), as upstream's kubelet keeps it: per
//! container of a pod, the first restart is immediate, then the wait doubles from 10 s up
//! to 5 min; a container that ran 10 min since its last restart before failing again
//! starts over from an immediate restart.
//!
//! A pure type: the caller passes the time in and does the waiting. It holds no
//! containers, only their keys; entries of deleted pods go with `forget_pod`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The first back-off, as upstream's `backOffPeriod`.
pub const INITIAL_DELAY: Duration = Duration::from_secs(10);
/// The longest back-off, as upstream's `MaxContainerBackOff`.
pub const MAX_DELAY: Duration = Duration::from_secs(300);
/// Running this long since the last restart counts as healthy: upstream forgets the
/// back-off after twice the maximum.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// Which container a back-off belongs to: the pod's UID (not its name, so a re-created
/// pod of the same name starts afresh) and the container's name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerKey {
    pub pod_uid: String,
    pub container_name: String,
}

impl ContainerKey {
    pub fn new(pod_uid: impl Into<String>, container_name: impl Into<String>) -> ContainerKey {
        ContainerKey {
            pod_uid: pod_uid.into(),
            container_name: container_name.into(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The wait `next_delay` handed out last.
    current: Duration,
    /// The wait before the restart after the next failure.
    next: Duration,
    /// When the container was (or will be) last restarted.
    restarted_at: Instant,
}

#[derive(Debug, Default)]
pub struct Backoff {
    entries: HashMap<ContainerKey, Entry>,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::default()
    }

    /// The container exited at `now` and is to be restarted: how long to wait first.
    /// 0 for the first failure (or the first after a healthy run), then 10 s, 20 s, 40 s,
    /// ... up to 5 min. Records the restart as happening after that wait, so call it once
    /// per exit.
    pub fn next_delay(&mut self, key: &ContainerKey, now: Instant) -> Duration {
        let delay = self.peek_delay(key, now);
        let next = if delay.is_zero() {
            INITIAL_DELAY
        } else {
            (delay * 2).min(MAX_DELAY)
        };
        self.entries.insert(
            key.clone(),
            Entry {
                current: delay,
                next,
                restarted_at: now + delay,
            },
        );
        delay
    }

    /// What `next_delay` would hand out for an exit at `now`, without recording anything:
    /// the pod planner decides with it, the worker records the exit when it acts.
    pub fn peek_delay(&self, key: &ContainerKey, now: Instant) -> Duration {
        match self.entries.get(key) {
            Some(entry) if now.saturating_duration_since(entry.restarted_at) <= RESET_AFTER => {
                entry.next
            }
            _ => Duration::ZERO,
        }
    }

    /// If the container is still waiting out its back-off at `now`, how much is left
    /// (what the worker shows as CrashLoopBackOff).
    pub fn in_backoff(&self, key: &ContainerKey, now: Instant) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        let left = entry.restarted_at.saturating_duration_since(now);
        (!left.is_zero()).then_some(left)
    }

    /// The whole wait `next_delay` last handed out for the container (0 if none), for
    /// messages like upstream's `back-off 20s restarting failed container=...`.
    pub fn current_delay(&self, key: &ContainerKey) -> Duration {
        self.entries
            .get(key)
            .map_or(Duration::ZERO, |entry| entry.current)
    }

    /// Forget the container's history: its next failure restarts it at once (the pod's
    /// spec changed, or the user asked for a fresh start).
    pub fn reset(&mut self, key: &ContainerKey) {
        self.entries.remove(key);
    }

    /// Forget every container of a pod that is gone.
    pub fn forget_pod(&mut self, pod_uid: &str) {
        self.entries.retain(|key, _| key.pod_uid != pod_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn restarts_at_once_then_doubles_from_ten_seconds_to_five_minutes() {
        let mut backoff = Backoff::new();
        let key = ContainerKey::new("uid-1", "app");
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..9 {
            let delay = backoff.next_delay(&key, now);
            delays.push(delay.as_secs());
            // The container crashes a second after each restart.
            now += delay + secs(1);
        }
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn in_backoff_counts_down_to_the_restart() {
        let mut backoff = Backoff::new();
        let key = ContainerKey::new("uid-1", "app");
        let start = Instant::now();
        assert_eq!(backoff.in_backoff(&key, start), None);
        assert_eq!(backoff.current_delay(&key), Duration::ZERO);
        assert_eq!(backoff.next_delay(&key, start), Duration::ZERO);
        assert_eq!(backoff.in_backoff(&key, start), None);

        let crash = start + secs(2);
        assert_eq!(backoff.next_delay(&key, crash), secs(10));
        assert_eq!(backoff.in_backoff(&key, crash), Some(secs(10)));
        assert_eq!(backoff.current_delay(&key), secs(10));
        assert_eq!(backoff.in_backoff(&key, crash + secs(4)), Some(secs(6)));
        assert_eq!(backoff.in_backoff(&key, crash + secs(10)), None);
    }

    #[test]
    fn a_ten_minute_run_starts_over() {
        let mut backoff = Backoff::new();
        let key = ContainerKey::new("uid-1", "app");
        let mut now = Instant::now();
        for _ in 0..4 {
            now += backoff.next_delay(&key, now) + secs(1);
        }
        // Restarted at `now - 1s` after a 40 s wait; now it runs for 10 min and a bit.
        now += RESET_AFTER + secs(1);
        assert_eq!(backoff.next_delay(&key, now), Duration::ZERO);
        assert_eq!(backoff.next_delay(&key, now + secs(1)), secs(10));

        // Just under ten minutes is not enough.
        let mut other = Backoff::new();
        let start = Instant::now();
        other.next_delay(&key, start);
        assert_eq!(
            other.next_delay(&key, start + RESET_AFTER - secs(1)),
            secs(10)
        );
    }

    #[test]
    fn keys_are_independent_and_reset_or_forget_clears_them() {
        let mut backoff = Backoff::new();
        let app = ContainerKey::new("uid-1", "app");
        let sidecar = ContainerKey::new("uid-1", "sidecar");
        let other_pod = ContainerKey::new("uid-2", "app");
        let now = Instant::now();
        for key in [&app, &sidecar, &other_pod] {
            backoff.next_delay(key, now);
        }
        assert_eq!(backoff.next_delay(&app, now), secs(10));
        assert_eq!(backoff.in_backoff(&sidecar, now), None);

        backoff.reset(&app);
        assert_eq!(backoff.in_backoff(&app, now), None);
        assert_eq!(backoff.next_delay(&app, now), Duration::ZERO);

        backoff.forget_pod("uid-1");
        assert_eq!(backoff.next_delay(&sidecar, now), Duration::ZERO);
        assert_eq!(backoff.next_delay(&other_pod, now), secs(10));
    }
}
