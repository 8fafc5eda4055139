//! Standard cron schedules as CronJobs accept them (the five-field format of the
//! robfig/cron parser upstream uses): ranges `1-5`, steps `*/15` and `10/5`, lists, month
//! and weekday names, `?` for `*`, and the `@yearly`/`@annually`, `@monthly`, `@weekly`,
//! `@daily`/`@midnight`, `@hourly` macros. Times are matched on the wall clock of a time
//! zone. Pure: parsing and "next/previous fire time" only.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How far ahead or back to look before deciding a schedule never fires (upstream's
/// parser gives up after five years too).
const SEARCH_YEARS: i16 = 5;

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// The day-of-month / day-of-week field was `*` (or `?`): then a day must match
    /// both fields, otherwise either (cron's classic rule).
    any_day_of_month: bool,
    any_day_of_week: bool,
}

struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: Field = Field {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Schedule {
    /// Parse a schedule; the error says what is wrong, for the `UnparseableSchedule` event.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix('@') {
            let expanded = match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(format!("unrecognized descriptor: {text}")),
            };
            return Schedule::parse(expanded);
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: {text}",
                fields.len()
            ));
        }
        let (days_of_month, any_day_of_month) = parse_field(fields[2], &DAY_OF_MONTH)?;
        let (days_of_week, any_day_of_week) = parse_field(fields[4], &DAY_OF_WEEK)?;
        Ok(Schedule {
            minutes: parse_field(fields[0], &MINUTE)?.0,
            hours: parse_field(fields[1], &HOUR)?.0,
            days_of_month,
            months: parse_field(fields[3], &MONTH)?.0,
            days_of_week,
            any_day_of_month,
            any_day_of_week,
        })
    }

    /// The first fire time strictly after `after`, on the wall clock of `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = truncate_to_minute(tz.to_datetime(after));
        let limit = start.year().checked_add(SEARCH_YEARS)?;
        let mut t = start.checked_add(1.minute()).ok()?;
        while t.year() <= limit {
            if !self.month_matches(t) {
                t = t
                    .first_of_month()
                    .start_of_day()
                    .checked_add(1.month())
                    .ok()?;
            } else if !self.day_matches(t.date()) {
                t = t
                    .date()
                    .tomorrow()
                    .ok()?
                    .to_datetime(jiff::civil::Time::midnight());
            } else if !bit(self.hours, t.hour()) {
                t = hour_start(t).checked_add(1.hour()).ok()?;
            } else if !bit(self.minutes, t.minute()) {
                t = t.checked_add(1.minute()).ok()?;
            } else {
                match tz.to_ambiguous_timestamp(t).compatible() {
                    Ok(found) if found > after => return Some(found),
                    _ => t = t.checked_add(1.minute()).ok()?,
                }
            }
        }
        None
    }

    /// The latest fire time at or before `at`, on the wall clock of `tz`.
    pub fn latest_at_or_before(&self, at: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut t = truncate_to_minute(tz.to_datetime(at));
        let limit = t.year().checked_sub(SEARCH_YEARS)?;
        let before = |t: DateTime| t.checked_sub(1.minute()).ok();
        while t.year() >= limit {
            if !self.month_matches(t) {
                t = before(t.first_of_month().start_of_day())?;
            } else if !self.day_matches(t.date()) {
                t = before(t.start_of_day())?;
            } else if !bit(self.hours, t.hour()) {
                t = before(hour_start(t))?;
            } else if !bit(self.minutes, t.minute()) {
                t = before(t)?;
            } else {
                match tz.to_ambiguous_timestamp(t).compatible() {
                    Ok(found) if found <= at => return Some(found),
                    _ => t = before(t)?,
                }
            }
        }
        None
    }

    fn month_matches(&self, t: DateTime) -> bool {
        bit(self.months, t.month())
    }

    fn day_matches(&self, date: Date) -> bool {
        let by_month = bit(self.days_of_month, date.day());
        let by_week = bit(self.days_of_week, date.weekday().to_sunday_zero_offset());
        if self.any_day_of_month || self.any_day_of_week {
            by_month && by_week
        } else {
            by_month || by_week
        }
    }
}

fn bit(set: u64, value: impl Into<i64>) -> bool {
    let value = value.into();
    (0..64).contains(&value) && set & (1 << value) != 0
}

fn truncate_to_minute(t: DateTime) -> DateTime {
    t.with().second(0).subsec_nanosecond(0).build().unwrap_or(t)
}

fn hour_start(t: DateTime) -> DateTime {
    t.with().minute(0).build().unwrap_or(t)
}

/// Parse one field (a comma-separated list); returns the value bits and whether the field
/// was an unrestricted `*` (which `*/2` is not).
fn parse_field(text: &str, field: &Field) -> Result<(u64, bool), String> {
    let mut bits = 0;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("failed to parse step {step:?} in {text:?}"))?;
                if step == 0 {
                    return Err(format!("step of zero in {text:?}"));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            star |= step.is_none_or(|s| s == 1);
            (field.min, field.max)
        } else if let Some((low, high)) = range.split_once('-') {
            (value(low, field)?, value(high, field)?)
        } else {
            let low = value(range, field)?;
            // `N/step` means from N to the end of the field.
            (low, if step.is_some() { field.max } else { low })
        };
        if low > high {
            return Err(format!(
                "beginning of range ({low}) beyond end of range ({high}): {part}"
            ));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step.unwrap_or(1);
        }
    }
    Ok((bits, star))
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let v = match field.names.iter().position(|n| *n == lower) {
        Some(i) => i as u32 + field.min,
        None => text
            .parse()
            .map_err(|_| format!("failed to parse int from {text}"))?,
    };
    if v < field.min || v > field.max {
        return Err(format!(
            "value ({v}) out of range [{}, {}]: {text}",
            field.min, field.max
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next(schedule: &str, after: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .next_after(at(after), &TimeZone::UTC)
            .unwrap()
            .to_string()
    }

    fn prev(schedule: &str, at_or_before: &str) -> String {
        Schedule::parse(schedule)
            .unwrap()
            .latest_at_or_before(at(at_or_before), &TimeZone::UTC)
            .unwrap()
            .to_string()
    }

    #[test]
    fn next_fire_times() {
        assert_eq!(
            next("* * * * *", "2025-03-01T10:00:00Z"),
            "2025-03-01T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2025-03-01T10:00:30Z"),
            "2025-03-01T10:01:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2025-03-01T10:07:00Z"),
            "2025-03-01T10:15:00Z"
        );
        assert_eq!(
            next("10/20 * * * *", "2025-03-01T10:31:00Z"),
            "2025-03-01T10:50:00Z"
        );
        assert_eq!(
            next("0 9-17/4 * * *", "2025-03-01T14:00:00Z"),
            "2025-03-01T17:00:00Z"
        );
        assert_eq!(
            next("30 2 * * mon-fri", "2025-03-01T00:00:00Z"),
            "2025-03-03T02:30:00Z"
        );
        assert_eq!(
            next("0 0 29 feb *", "2025-03-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 12 1,15 JAN,jul *", "2025-03-01T00:00:00Z"),
            "2025-07-01T12:00:00Z"
        );
        assert_eq!(
            next("@hourly", "2025-03-01T10:00:00Z"),
            "2025-03-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", "2025-12-31T10:00:00Z"),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2025-03-01T00:00:00Z"),
            "2025-03-02T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2025-03-01T00:00:00Z"),
            "2025-04-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2025-03-01T00:00:00Z"),
            "2026-01-01T00:00:00Z"
        );
    }

    #[test]
    fn restricted_day_fields_match_either() {
        // The 13th or any Friday (2025-06-06 is a Friday).
        assert_eq!(
            next("0 0 13 * 5", "2025-06-01T00:00:00Z"),
            "2025-06-06T00:00:00Z"
        );
        // With a `*` day-of-month only Fridays count; `*/1` is not a wildcard for this rule
        // but still matches every day.
        assert_eq!(
            next("0 0 * * 5", "2025-06-01T00:00:00Z"),
            "2025-06-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 */2 * 5", "2025-06-01T00:00:00Z"),
            "2025-06-03T00:00:00Z"
        );
    }

    #[test]
    fn latest_fire_times() {
        assert_eq!(
            prev("* * * * *", "2025-03-01T10:00:30Z"),
            "2025-03-01T10:00:00Z"
        );
        assert_eq!(
            prev("0 * * * *", "2025-03-01T10:00:00Z"),
            "2025-03-01T10:00:00Z"
        );
        assert_eq!(
            prev("0 0 1 * *", "2025-03-15T10:00:00Z"),
            "2025-03-01T00:00:00Z"
        );
        assert_eq!(
            prev("45 23 * * sun", "2025-03-01T10:00:00Z"),
            "2025-02-23T23:45:00Z"
        );
        assert_eq!(
            prev("0 0 29 2 *", "2025-03-01T00:00:00Z"),
            "2024-02-29T00:00:00Z"
        );
    }

    #[test]
    fn time_zones_shift_the_wall_clock() {
        let Ok(tz) = TimeZone::get("America/New_York") else {
            return; // no zoneinfo on this machine: UTC is covered above
        };
        let s = Schedule::parse("0 9 * * *").unwrap();
        // 09:00 EST is 14:00 UTC.
        let got = s.next_after(at("2025-01-10T00:00:00Z"), &tz).unwrap();
        assert_eq!(got.to_string(), "2025-01-10T14:00:00Z");
        let etc = TimeZone::get("Etc/UTC").unwrap();
        let got = s.next_after(at("2025-01-10T00:00:00Z"), &etc).unwrap();
        assert_eq!(got.to_string(), "2025-01-10T09:00:00Z");
    }

    #[test]
    fn rejects_bad_schedules() {
        for bad in [
            "* * * *",
            "* * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "5-1 * * * *",
            "*/0 * * * *",
            "x * * * *",
            "@every 5m",
            "* * * foo *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad} should not parse");
        }
        // A valid schedule that never fires.
        let never = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(
            never.next_after(at("2025-01-01T00:00:00Z"), &TimeZone::UTC),
            None
        );
    }
}
