//! The pure part of probing: a probe's timing settings with the API defaults applied, when
//! its first check is due, and the threshold state machine that turns a stream of check
//! results into the few reports the pod worker acts on. No IO and no clock reads here: the
//! caller passes the time in, so every rule is unit-tested.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Probe;

use super::ProbeKind;

/// The API server defaults these when a pod is created; an absent or zero value gets the
/// same default here, so a pod stored without defaulting still probes like upstream.
const DEFAULT_PERIOD_SECONDS: i32 = 10;
const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// A probe's timing and thresholds, defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl ProbeSettings {
    pub fn new(kind: ProbeKind, probe: &Probe) -> ProbeSettings {
        let positive_or = |value: Option<i32>, default: i32| match value {
            Some(v) if v > 0 => v as u32,
            _ => default as u32,
        };
        let success_threshold = match kind {
            // Validation only admits 1 for these two: a liveness or startup probe has no
            // "not yet succeeded often enough" state to report.
            ProbeKind::Liveness | ProbeKind::Startup => 1,
            ProbeKind::Readiness => positive_or(probe.success_threshold, DEFAULT_SUCCESS_THRESHOLD),
        };
        ProbeSettings {
            initial_delay: Duration::from_secs(
                probe.initial_delay_seconds.unwrap_or(0).max(0) as u64
            ),
            period: Duration::from_secs(
                positive_or(probe.period_seconds, DEFAULT_PERIOD_SECONDS).into(),
            ),
            timeout: Duration::from_secs(
                positive_or(probe.timeout_seconds, DEFAULT_TIMEOUT_SECONDS).into(),
            ),
            success_threshold,
            failure_threshold: positive_or(probe.failure_threshold, DEFAULT_FAILURE_THRESHOLD),
        }
    }
}

/// How long to wait before the first check: `initialDelaySeconds` counts from the
/// container's start, so a container adopted after an agent restart (or a probe gated by
/// a slow startup probe) may already be past it.
pub fn first_check_wait(
    initial_delay: Duration,
    started_at: SystemTime,
    now: SystemTime,
) -> Duration {
    // A start time in the future (clock step) counts as "just started".
    let running_for = now.duration_since(started_at).unwrap_or(Duration::ZERO);
    initial_delay.saturating_sub(running_for)
}

/// Counts consecutive results and says when the pod worker must hear about them, as
/// upstream's prober worker with its results cache does:
///
/// - a result is only taken once it repeated `successThreshold` / `failureThreshold`
///   times in a row;
/// - a taken result is reported when it differs from the last reported one (a flip);
/// - a liveness or startup failure is reported every time the failure threshold is
///   crossed, because each one asks the worker to kill the container: the run starts
///   again from zero, so a container that survives the kill is reported again only after
///   another full threshold of failures.
#[derive(Debug)]
pub struct ResultTracker {
    kind: ProbeKind,
    success_threshold: u32,
    failure_threshold: u32,
    /// What the worker was last told; `None` while unknown (a startup probe before its
    /// first decision).
    reported: Option<bool>,
    /// The latest check result and how many times in a row it came.
    last: Option<bool>,
    run: u32,
}

impl ResultTracker {
    pub fn new(kind: ProbeKind, settings: &ProbeSettings) -> ResultTracker {
        ResultTracker {
            kind,
            success_threshold: settings.success_threshold,
            failure_threshold: settings.failure_threshold,
            reported: initial_result(kind),
            last: None,
            run: 0,
        }
    }

    /// The result that holds before any check ran, which the worker is told at once:
    /// a container is not ready until its readiness probe succeeded, is alive until its
    /// liveness probe says otherwise, and has no startup verdict yet (`None`, nothing to
    /// report: a startup "failure" would get it killed).
    pub fn initial(&self) -> Option<bool> {
        initial_result(self.kind)
    }

    /// Feed one check result; returns the result to report, if one is due now.
    pub fn observe(&mut self, success: bool) -> Option<bool> {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let threshold = if success {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < threshold {
            return None;
        }
        let flipped = self.reported != Some(success);
        self.reported = Some(success);
        let kills = !success && matches!(self.kind, ProbeKind::Liveness | ProbeKind::Startup);
        if kills {
            self.run = 0;
            return Some(false);
        }
        flipped.then_some(success)
    }
}

fn initial_result(kind: ProbeKind) -> Option<bool> {
    match kind {
        ProbeKind::Readiness => Some(false),
        ProbeKind::Liveness => Some(true),
        ProbeKind::Startup => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(success: u32, failure: u32) -> ProbeSettings {
        ProbeSettings {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    /// Feeds `results` and collects what would be reported after each.
    fn feed(tracker: &mut ResultTracker, results: &[bool]) -> Vec<Option<bool>> {
        results.iter().map(|&r| tracker.observe(r)).collect()
    }

    #[test]
    fn defaults_apply_to_absent_and_zero_fields() {
        let probe = Probe {
            period_seconds: Some(0),
            failure_threshold: Some(-1),
            ..Probe::default()
        };
        assert_eq!(
            ProbeSettings::new(ProbeKind::Readiness, &probe),
            ProbeSettings {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3,
            }
        );
    }

    #[test]
    fn declared_fields_are_kept_and_liveness_success_threshold_is_one() {
        let probe = Probe {
            initial_delay_seconds: Some(5),
            period_seconds: Some(2),
            timeout_seconds: Some(3),
            success_threshold: Some(4),
            failure_threshold: Some(6),
            ..Probe::default()
        };
        let readiness = ProbeSettings::new(ProbeKind::Readiness, &probe);
        assert_eq!(readiness.initial_delay, Duration::from_secs(5));
        assert_eq!(readiness.period, Duration::from_secs(2));
        assert_eq!(readiness.timeout, Duration::from_secs(3));
        assert_eq!(readiness.success_threshold, 4);
        assert_eq!(readiness.failure_threshold, 6);
        assert_eq!(
            ProbeSettings::new(ProbeKind::Liveness, &probe).success_threshold,
            1
        );
        assert_eq!(
            ProbeSettings::new(ProbeKind::Startup, &probe).success_threshold,
            1
        );
    }

    #[test]
    fn first_check_waits_out_what_is_left_of_the_initial_delay() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let delay = Duration::from_secs(15);
        assert_eq!(first_check_wait(delay, start, start), delay);
        assert_eq!(
            first_check_wait(delay, start, start + Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        // Adopted long after it started: check at once.
        assert_eq!(
            first_check_wait(delay, start, start + Duration::from_secs(600)),
            Duration::ZERO
        );
        // The clock went backwards: wait the whole delay rather than none of it.
        assert_eq!(
            first_check_wait(delay, start, start - Duration::from_secs(5)),
            delay
        );
    }

    #[test]
    fn readiness_starts_failed_and_reports_only_flips() {
        let mut tracker = ResultTracker::new(ProbeKind::Readiness, &settings(1, 3));
        assert_eq!(tracker.initial(), Some(false));
        assert_eq!(
            feed(
                &mut tracker,
                &[false, true, true, false, false, false, false, true]
            ),
            [
                None,
                Some(true),
                None,
                None,
                None,
                Some(false),
                None,
                Some(true)
            ]
        );
    }

    #[test]
    fn readiness_needs_success_threshold_in_a_row() {
        let mut tracker = ResultTracker::new(ProbeKind::Readiness, &settings(3, 1));
        assert_eq!(
            feed(&mut tracker, &[true, true, false, true, true, true, true]),
            [None, None, None, None, None, Some(true), None]
        );
        // One failure is enough to go unready with failureThreshold 1.
        assert_eq!(feed(&mut tracker, &[false, false]), [Some(false), None]);
    }

    #[test]
    fn an_interrupted_failure_run_starts_over() {
        let mut tracker = ResultTracker::new(ProbeKind::Liveness, &settings(1, 3));
        assert_eq!(
            feed(&mut tracker, &[false, false, true, false, false, false]),
            [None, None, None, None, None, Some(false)]
        );
    }

    #[test]
    fn liveness_starts_alive_and_reports_each_crossing_of_the_failure_threshold() {
        let mut tracker = ResultTracker::new(ProbeKind::Liveness, &settings(1, 2));
        assert_eq!(tracker.initial(), Some(true));
        assert_eq!(
            feed(&mut tracker, &[true, false, false, false, false, false]),
            [None, None, Some(false), None, Some(false), None]
        );
        // Recovering before the kill is a flip back.
        assert_eq!(feed(&mut tracker, &[true, true]), [Some(true), None]);
    }

    #[test]
    fn startup_has_no_initial_result_and_reports_its_first_success() {
        let mut tracker = ResultTracker::new(ProbeKind::Startup, &settings(1, 3));
        assert_eq!(tracker.initial(), None);
        assert_eq!(
            feed(&mut tracker, &[false, false, true]),
            [None, None, Some(true)]
        );

        let mut failing = ResultTracker::new(ProbeKind::Startup, &settings(1, 2));
        assert_eq!(
            feed(&mut failing, &[false, false, false, false]),
            [None, Some(false), None, Some(false)]
        );
    }
}
