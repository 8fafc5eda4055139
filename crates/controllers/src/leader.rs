//! Leader election on a `coordination.k8s.io/v1` Lease, as kube-controller-manager and
//! kube-scheduler do, so that several servers sharing one datastore run each control
//! loop exactly once.
//!
//! The holder renews the lease every [`RETRY`]; a candidate takes it over once
//! `renewTime + leaseDurationSeconds` has passed. Every write is a compare-and-swap on
//! the lease's resourceVersion, so two candidates can never both win. A holder that
//! cannot renew within [`RENEW_DEADLINE`] stops its work before anyone else may start.

use std::future::Future;
use std::time::Duration;

use k3rs_core::Shutdown;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tracing::{info, warn};

/// How long a lease is valid without renewal (upstream's default).
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// A holder that has not renewed for this long gives up leadership.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Interval between renewals and between acquisition attempts.
pub const RETRY: Duration = Duration::from_secs(2);

/// A candidate for one lease in `kube-system`.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
}

enum Attempt {
    Won,
    HeldByOther,
}

impl Elector {
    pub fn new(client: Client, name: &str, identity: &str) -> Self {
        Elector {
            api: Api::namespaced(client, "kube-system"),
            name: name.to_string(),
            identity: identity.to_string(),
        }
    }

    /// Until shutdown: wait for the lease, run `work` while holding it, stop `work` when
    /// the lease is lost. `work` ending (normally or with an error) gives up the term and
    /// starts another after [`RETRY`].
    pub async fn run<F, Fut>(&self, shutdown: &Shutdown, work: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), crate::Error>>,
    {
        loop {
            if !self.acquire(shutdown).await {
                return;
            }
            info!(lease = %self.name, identity = %self.identity, "became leader");
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => None,
                lost = self.keep() => Some(Err(lost)),
                result = work() => Some(result.map_err(|e| e.to_string())),
            };
            match outcome {
                None => {
                    self.release().await;
                    return;
                }
                Some(Err(reason)) => warn!(lease = %self.name, reason, "leadership term ended"),
                Some(Ok(())) => warn!(lease = %self.name, "leader work returned; restarting"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Poll until this candidate holds the lease; false on shutdown.
    async fn acquire(&self, shutdown: &Shutdown) -> bool {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Won) => return true,
                Ok(Attempt::HeldByOther) => {}
                Err(err) => {
                    warn!(lease = %self.name, error = %err, "leader election attempt failed")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    /// Renew until a renewal fails for longer than [`RENEW_DEADLINE`] or another holder
    /// is found; returns why leadership was lost.
    async fn keep(&self) -> String {
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RETRY).await;
            match self.try_acquire_or_renew().await {
                Ok(Attempt::Won) => last_renewed = tokio::time::Instant::now(),
                Ok(Attempt::HeldByOther) => return "another candidate holds the lease".into(),
                Err(err) => {
                    warn!(lease = %self.name, error = %err, "lease renewal failed");
                    if last_renewed.elapsed() > RENEW_DEADLINE {
                        return format!("could not renew within {RENEW_DEADLINE:?}");
                    }
                }
            }
        }
    }

    async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Won),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldByOther),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let mine = holder == self.identity;
        if !mine
            && !holder.is_empty()
            && !expired(spec, &now)
            && !predecessor(&holder, &self.identity)
        {
            return Ok(Attempt::HeldByOther);
        }
        if !mine {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
        spec.renew_time = Some(now);
        // `replace` carries the resourceVersion we read: a concurrent writer makes it 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Won),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldByOther),
            Err(e) => Err(e),
        }
    }

    /// On clean shutdown, hand the lease back so another server takes over at once.
    async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(&self.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        let _ = self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await;
    }
}

/// Identities are `<node>_<uuid>`, one uuid per process start. A holder with our node
/// name is an earlier run of this same server (it has exited or been killed: two servers
/// never share a node name), so its lease can be taken at once instead of waiting for it
/// to expire, which would stall every controller for 15 s after each restart.
fn predecessor(holder: &str, identity: &str) -> bool {
    let node = |id: &str| id.rsplit_once('_').map(|(node, _)| node.to_string());
    node(holder).is_some() && node(holder) == node(identity)
}

fn expired(spec: &LeaseSpec, now: &MicroTime) -> bool {
    let Some(renewed) = &spec.renew_time else {
        return true;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    now.0.as_second() > renewed.0.as_second() + duration
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        let now = jiff::Timestamp::now();
        LeaseSpec {
            renew_time: Some(MicroTime(
                now - jiff::SignedDuration::from_secs(renewed_secs_ago),
            )),
            lease_duration_seconds: Some(duration),
            ..Default::default()
        }
    }

    #[test]
    fn an_earlier_run_of_the_same_server_is_a_predecessor() {
        assert!(predecessor("n1_aaaa", "n1_bbbb"));
        assert!(predecessor("node_a_1", "node_a_2"));
        assert!(!predecessor("n2_aaaa", "n1_bbbb"));
        assert!(!predecessor("something", "n1_bbbb"));
    }

    #[test]
    fn a_lease_expires_after_its_duration() {
        let now = MicroTime(jiff::Timestamp::now());
        assert!(!expired(&spec(5, 15), &now));
        assert!(expired(&spec(20, 15), &now));
        assert!(expired(&LeaseSpec::default(), &now));
    }
}
