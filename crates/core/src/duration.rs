//! Durations written the way Go's `time.ParseDuration` reads them (`40s`, `5m`, `1m30s`,
//! `500ms`, `1.5h`), as k3s flags, environment variables and config files write them.
//!
//! Only non-negative durations are accepted: a k3rs setting is never a negative span.

use std::time::Duration;

/// Nanoseconds per unit.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // µs, MICRO SIGN
    ("\u{3bc}s", 1_000), // μs, GREEK SMALL LETTER MU
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3600 * 1_000_000_000),
];

/// The largest span Go's `time.Duration` holds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parse a Go duration: an optional `+`, then one or more decimal numbers (with an
/// optional fraction) each followed by a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`).
/// `0` alone needs no unit. `None` for anything else, for a negative span, and for one
/// too long for Go's `time.Duration` (about 292 years).
pub fn parse(text: &str) -> Option<Duration> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let whole_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let fraction = match rest.strip_prefix('.') {
            Some(after) => {
                let len = after
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after.len());
                rest = &after[len..];
                &after[..len]
            }
            None => "",
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = UNITS
            .iter()
            .find(|(name, _)| *name == &rest[..unit_len])
            .map(|(_, nanos)| *nanos)?;
        rest = &rest[unit_len..];
        total = total.checked_add(whole_nanos(whole, unit)?)?;
        total = total.checked_add(fraction_nanos(fraction, unit))?;
        if total > MAX_NANOS {
            return None;
        }
    }
    if negative && total > 0 {
        return None;
    }
    let nanos = u64::try_from(total).ok()?;
    Some(Duration::from_nanos(nanos))
}

fn whole_nanos(digits: &str, unit: u128) -> Option<u128> {
    if digits.is_empty() {
        return Some(0);
    }
    // More digits than fit in a Go duration of nanoseconds is an overflow there too.
    if digits.len() > 20 {
        return None;
    }
    digits.parse::<u128>().ok()?.checked_mul(unit)
}

/// `0.digits` of `unit`, truncated to whole nanoseconds (digits past the nanosecond
/// cannot change the result).
fn fraction_nanos(digits: &str, unit: u128) -> u128 {
    let digits = &digits[..digits.len().min(20)];
    if digits.is_empty() {
        return 0;
    }
    let value: u128 = digits.parse().unwrap_or(0);
    value * unit / 10u128.pow(digits.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn reads_go_durations() {
        assert_eq!(parse("40s"), ms(40_000));
        assert_eq!(parse("5m"), ms(300_000));
        assert_eq!(parse("1m30s"), ms(90_000));
        assert_eq!(parse("500ms"), ms(500));
        assert_eq!(parse("1h"), ms(3_600_000));
        assert_eq!(parse("1h2m3s4ms"), ms(3_723_004));
        assert_eq!(parse("1.5h"), ms(5_400_000));
        assert_eq!(parse(".5s"), ms(500));
        assert_eq!(parse("1.s"), ms(1000));
        assert_eq!(parse("+2s"), ms(2000));
        assert_eq!(parse("0"), Some(Duration::ZERO));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("-0s"), Some(Duration::ZERO));
        assert_eq!(parse("10us"), Some(Duration::from_micros(10)));
        assert_eq!(parse("10µs"), Some(Duration::from_micros(10)));
        assert_eq!(parse("10μs"), Some(Duration::from_micros(10)));
        assert_eq!(parse("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse("1.000000001s"), Some(Duration::new(1, 1)));
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in [
            "",
            "s",
            "90",
            "1",
            ".",
            ".s",
            "1x",
            "1d",
            "1m 30s",
            " 1s",
            "1s ",
            "-1s",
            "--1s",
            "1..5s",
            "1h-1m",
            "9999999999999999999h",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_longest_go_duration_fits() {
        assert_eq!(
            parse("9223372036854775807ns"),
            Some(Duration::from_nanos(i64::MAX as u64))
        );
        assert_eq!(parse("9223372036854775808ns"), None);
        assert_eq!(
            parse("2562047h"),
            Some(Duration::from_secs(2_562_047 * 3600))
        );
        assert_eq!(parse("2562048h"), None);
    }
}
