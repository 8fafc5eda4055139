//! What the Job controller has just done and not yet seen in its informers: pods created,
//! deleted or stripped of the tracking finalizer, and Job status writes. Until the stores
//! reflect them, a sync would act on stale data (create pods twice, count a pod twice,
//! overwrite a newer status), so it waits instead, as upstream's expectations do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this long an expectation is assumed lost (a missed watch event) and dropped.
const EXPIRY: Duration = Duration::from_secs(30);

/// Pod effects one Job waits to observe; pods are `(name, uid)`.
#[derive(Debug, Default)]
struct Pending {
    created: Vec<String>,
    deleted: Vec<(String, String)>,
    unfinalized: Vec<(String, String)>,
    /// The Job's resourceVersions before each of our status writes not yet seen: a
    /// store still showing one of them is behind us.
    stale_versions: Vec<String>,
    since: Option<Instant>,
}

/// How a pod looks in the informer, for checking expectations.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    Missing,
    Present {
        uid: String,
        terminating: bool,
        tracked: bool,
    },
}

#[derive(Default)]
pub struct Expectations {
    jobs: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn with<R>(&self, job_uid: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let pending = jobs.entry(job_uid.to_string()).or_default();
        pending.since = Some(Instant::now());
        f(pending)
    }

    pub fn created(&self, job_uid: &str, pod: String) {
        self.with(job_uid, |p| p.created.push(pod));
    }

    pub fn deleted(&self, job_uid: &str, pod: String, uid: String) {
        self.with(job_uid, |p| p.deleted.push((pod, uid)));
    }

    pub fn unfinalized(&self, job_uid: &str, pod: String, uid: String) {
        self.with(job_uid, |p| p.unfinalized.push((pod, uid)));
    }

    pub fn wrote_status(&self, job_uid: &str, previous_version: Option<String>) {
        self.with(job_uid, |p| p.stale_versions.extend(previous_version));
    }

    /// Forget a Job (it is gone).
    pub fn forget(&self, job_uid: &str) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.remove(job_uid);
    }

    /// True once the informers show every effect recorded for the Job (dropping the ones
    /// they show); `job_version` is the Job's resourceVersion in the store and `seen`
    /// looks a pod up by name.
    pub fn satisfied(
        &self,
        job_uid: &str,
        job_version: Option<&str>,
        seen: impl Fn(&str) -> Seen,
    ) -> bool {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = jobs.get_mut(job_uid) else {
            return true;
        };
        if p.since.is_some_and(|t| t.elapsed() > EXPIRY) {
            jobs.remove(job_uid);
            return true;
        }
        if p.stale_versions
            .iter()
            .any(|v| Some(v.as_str()) == job_version)
        {
            return false;
        }
        p.stale_versions.clear();
        p.created.retain(|name| seen(name) == Seen::Missing);
        p.deleted.retain(|(name, uid)| {
            matches!(seen(name), Seen::Present { uid: u, terminating: false, .. } if &u == uid)
        });
        p.unfinalized.retain(|(name, uid)| {
            matches!(seen(name), Seen::Present { uid: u, tracked: true, .. } if &u == uid)
        });
        let done = p.created.is_empty() && p.deleted.is_empty() && p.unfinalized.is_empty();
        if done {
            jobs.remove(job_uid);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn present(uid: &str, terminating: bool, tracked: bool) -> Seen {
        Seen::Present {
            uid: uid.into(),
            terminating,
            tracked,
        }
    }

    #[test]
    fn waits_for_each_kind_of_effect() {
        let e = Expectations::default();
        assert!(e.satisfied("j", Some("1"), |_| Seen::Missing));
        e.created("j", "a".into());
        assert!(!e.satisfied("j", Some("1"), |_| Seen::Missing));
        assert!(e.satisfied("j", Some("1"), |_| present("u", false, true)));

        e.deleted("j", "a".into(), "u".into());
        assert!(!e.satisfied("j", None, |_| present("u", false, true)));
        assert!(e.satisfied("j", None, |_| present("u", true, true)));

        e.unfinalized("j", "a".into(), "u".into());
        assert!(!e.satisfied("j", None, |_| present("u", false, true)));
        // A pod recreated under the same name is another pod.
        assert!(e.satisfied("j", None, |_| present("other", false, true)));
    }

    #[test]
    fn waits_for_the_status_write() {
        let e = Expectations::default();
        // Two writes in one sync: 5 -> 6 -> 7.
        e.wrote_status("j", Some("5".into()));
        e.wrote_status("j", Some("6".into()));
        assert!(!e.satisfied("j", Some("5"), |_| Seen::Missing));
        assert!(!e.satisfied("j", Some("6"), |_| Seen::Missing));
        assert!(e.satisfied("j", Some("7"), |_| Seen::Missing));
        assert!(e.satisfied("j", Some("5"), |_| Seen::Missing));
    }
}
