//! Human readable durations as kubectl prints them (AGE, DURATION, LAST SEEN),
//! following the rules of `k8s.io/apimachinery/pkg/util/duration.HumanDuration`:
//! the precision shrinks as the duration grows ("45s", "5m12s", "3h4m", "2d3h",
//! "90d", "3y45d", "9y").

use chrono::{DateTime, Utc};

/// Human duration as kubectl shows it (e.g. "0s", "45s", "5m12s", "3h4m",
/// "2d3h", "90d", "3y45d").
///
/// Durations down to one second in the past print "0s" to tolerate clock skew;
/// anything more negative prints "<invalid>".
pub fn human_duration(d: chrono::Duration) -> String {
    // Both Go's int(d.Seconds()) and num_seconds() truncate toward zero.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{days}d");
        }
        return format!("{days}d{h}h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        let d = days % 365;
        if d == 0 {
            return format!("{years}y");
        }
        return format!("{years}y{d}d");
    }
    format!("{years}y")
}

/// Human duration from `since` to `now`, or "<unknown>" when there is no
/// timestamp (upstream's `translateTimestampSince`).
pub(crate) fn since(timestamp: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match timestamp {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn matches_upstream_table() {
        let cases: &[(Duration, &str)] = &[
            (Duration::seconds(-5), "<invalid>"),
            (Duration::seconds(-2), "<invalid>"),
            (Duration::milliseconds(-1999), "0s"),
            (Duration::seconds(-1), "0s"),
            (Duration::zero(), "0s"),
            (Duration::milliseconds(999), "0s"),
            (Duration::seconds(45), "45s"),
            (Duration::seconds(119), "119s"),
            (Duration::seconds(120), "2m"),
            (Duration::seconds(5 * 60 + 12), "5m12s"),
            (Duration::seconds(9 * 60 + 59), "9m59s"),
            (Duration::minutes(10), "10m"),
            (Duration::seconds(10 * 60 + 30), "10m"),
            (Duration::minutes(179), "179m"),
            (Duration::minutes(180), "3h"),
            (Duration::minutes(3 * 60 + 4), "3h4m"),
            (Duration::minutes(7 * 60 + 59), "7h59m"),
            (Duration::hours(8), "8h"),
            (Duration::minutes(8 * 60 + 30), "8h"),
            (Duration::hours(47), "47h"),
            (Duration::hours(48), "2d"),
            (Duration::hours(51), "2d3h"),
            (Duration::hours(7 * 24 + 23), "7d23h"),
            (Duration::days(8), "8d"),
            (Duration::days(90), "90d"),
            (Duration::days(729), "729d"),
            (Duration::days(730), "2y"),
            (Duration::days(3 * 365 + 45), "3y45d"),
            (Duration::days(8 * 365 - 1), "7y364d"),
            (Duration::days(8 * 365), "8y"),
            (Duration::days(20 * 365 + 100), "20y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "duration {d:?}");
        }
    }

    #[test]
    fn since_unknown_without_timestamp() {
        assert_eq!(since(None, Utc::now()), "<unknown>");
    }
}
