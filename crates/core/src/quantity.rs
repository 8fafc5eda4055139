//! Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`), parsed exactly.
//!
//! A quantity is held as a whole number of nano-units in an `i128`, so `100m` is exactly
//! 100 millis and `0.1` equals `100m`; converting through `f64` instead can turn
//! `ceil(0.1 * 1000)` into 101. Whole values and milli-values round up, as upstream's
//! `Value()` and `MilliValue()` do. Admission, the scheduler and the kubelet all read
//! quantities through here so that a pod's resources mean the same number everywhere.
//! [`parse`] gives an `f64` for callers that only need an approximate magnitude.

/// A quantity as a whole number of billionths of its base unit (cores, bytes, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Quantity {
    nanos: i128,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;
const NANOS_PER_MILLI: i128 = 1_000_000;
/// Nano-units are 10^-9 of the base unit.
const NANO_EXPONENT: i32 = 9;

impl Quantity {
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    /// Parse `100m`, `1.5Gi`, `2e3`, `+7`, `-1`; `None` for anything that is not a
    /// quantity or is too large to hold. Digits below a nano-unit round up, as upstream
    /// rounds quantities it cannot represent at their scale.
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let number_len = unsigned
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        // The digits as one integer; the decimal point becomes a power of ten.
        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(digit - b'0'))?;
        }
        let (binary_power, decimal_exponent) = suffix_scale(suffix)?;
        let mantissa = mantissa.checked_mul(1i128.checked_shl(binary_power)?)?;
        // value = mantissa * 2^b * 10^(exponent - fraction digits), in nanos 10^9 times that.
        let exponent = decimal_exponent
            .checked_add(NANO_EXPONENT)?
            .checked_sub(i32::try_from(fraction.len()).ok()?)?;
        let nanos = if mantissa == 0 {
            0
        } else if exponent >= 0 {
            mantissa.checked_mul(10i128.checked_pow(exponent.unsigned_abs())?)?
        } else {
            match 10i128.checked_pow(exponent.unsigned_abs()) {
                Some(divisor) => div_ceil(mantissa, divisor),
                // Far below a nano-unit, but not zero: the smallest step up.
                None => 1,
            }
        };
        Some(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    /// A whole number of base units.
    pub fn from_units(units: i64) -> Quantity {
        Quantity {
            nanos: i128::from(units) * NANOS_PER_UNIT,
        }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The value in base units, rounded up (upstream's `Value()`).
    pub fn value(&self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_UNIT)
    }

    /// The value in thousandths, rounded up (upstream's `MilliValue()`).
    pub fn milli_value(&self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_MILLI)
    }

    /// The value as a float, for magnitudes only: not exact beyond 2^53 nano-units.
    pub fn as_f64(&self) -> f64 {
        // Dividing (rather than multiplying by 1e-9) keeps 100m at exactly 0.1.
        self.nanos as f64 / NANOS_PER_UNIT as f64
    }

    pub fn saturating_add(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

/// The quantity's value in base units as a float (`100m` = 0.1, `1Ki` = 1024), or `None`
/// when it is not a quantity. Prefer [`parse_milli`], [`parse_units`] or [`Quantity`]
/// whenever the result is compared, summed or printed.
pub fn parse(text: &str) -> Option<f64> {
    Quantity::parse(text).map(|q| q.as_f64())
}

/// A quantity in thousandths, rounded up (`100m` -> 100, `0.1` -> 100, `1.5` -> 1500):
/// how CPU is counted. Values beyond `i64` saturate.
pub fn parse_milli(text: &str) -> Option<i64> {
    Quantity::parse(text).map(|q| saturate(q.milli_value()))
}

/// A quantity in base units, rounded up (`1Ki` -> 1024, `1k` -> 1000, `500m` -> 1): how
/// memory, storage and countable resources are counted. Values beyond `i64` saturate.
pub fn parse_units(text: &str) -> Option<i64> {
    Quantity::parse(text).map(|q| saturate(q.value()))
}

fn saturate(value: i128) -> i64 {
    i64::try_from(value).unwrap_or(if value < 0 { i64::MIN } else { i64::MAX })
}

/// `(power of two, power of ten)` of a quantity suffix.
fn suffix_scale(suffix: &str) -> Option<(u32, i32)> {
    let binary = |power| Some((power, 0));
    let decimal = |exponent| Some((0, exponent));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        // `e3`, `E-3`, `e+3`; an exponent too large for `i32` cannot be held anyway.
        exponent if exponent.starts_with(['e', 'E']) => decimal(exponent[1..].parse().ok()?),
        _ => None,
    }
}

/// Division rounding towards positive infinity (`i128::div_ceil` is not stable).
pub fn div_ceil(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    // Integer division truncates towards zero, which is already up for negative results.
    if numerator % denominator != 0 && (numerator > 0) == (denominator > 0) {
        quotient + 1
    } else {
        quotient
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn decimal_and_binary_suffixes_are_exact() {
        assert_eq!(q("100m").milli_value(), 100);
        assert_eq!(q("0.1").milli_value(), 100);
        assert_eq!(q("0.1"), q("100m"));
        assert_eq!(q("1.5").milli_value(), 1500);
        assert_eq!(q("2Gi").value(), 2 << 30);
        assert_eq!(q("1.5Ki").value(), 1536);
        assert_eq!(q("64M").value(), 64_000_000);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1.5e3").value(), 1500);
        assert_eq!(q("1E-3").milli_value(), 1);
        assert_eq!(q("+7").value(), 7);
        assert_eq!(q("1Ei").value(), 1 << 60);
        assert_eq!(q("-1500m").milli_value(), -1500);
        assert_eq!(q(".5").milli_value(), 500);
    }

    #[test]
    fn rounding_is_upwards() {
        assert_eq!(q("1500m").value(), 2);
        assert_eq!(q("-1500m").value(), -1);
        assert_eq!(q("1n").milli_value(), 1);
        assert_eq!(q("0.5n").milli_value(), 1);
        assert_eq!(q("1e-50").milli_value(), 1);
        assert_eq!(q("0e-50").milli_value(), 0);
        assert_eq!(q("0").value(), 0);
        assert!(q("0m").is_zero());
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for text in [
            "", "m", "1.2.3", "12x", "1Ki2", ".", "1e", "1e+", "1e+-3", "--1", "1e99", "1 Gi",
        ] {
            assert_eq!(Quantity::parse(text), None, "{text}");
        }
    }

    #[test]
    fn float_convenience() {
        assert_eq!(parse("100m"), Some(0.1));
        assert_eq!(parse("2Gi"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(parse("1.5"), Some(1.5));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("1k"), Some(1000.0));
        assert_eq!(parse("12x"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn integer_helpers_round_up() {
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1"), Some(1000));
        assert_eq!(parse_milli("0.1"), Some(100));
        assert_eq!(parse_units("128Mi"), Some(128 << 20));
        assert_eq!(parse_units("1G"), Some(1_000_000_000));
        assert_eq!(parse_units("500m"), Some(1));
        assert_eq!(parse_units("1e20"), Some(i64::MAX));
        assert_eq!(parse_units("-1e20"), Some(i64::MIN));
        assert_eq!(parse_units("12abc"), None);
    }

    #[test]
    fn division_rounds_towards_positive_infinity() {
        assert_eq!(div_ceil(7, 2), 4);
        assert_eq!(div_ceil(-7, 2), -3);
        assert_eq!(div_ceil(6, 3), 2);
        assert_eq!(div_ceil(7, -2), -3);
    }
}
