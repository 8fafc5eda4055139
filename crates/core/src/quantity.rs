//! Kubernetes resource quantities (`100m`, `1.5`, `2Gi`, `1e3`) as numbers, for the
//! comparisons and sums admission and scheduling make. Not an exact decimal type: values
//! are `f64`, which is plenty for comparing requests with capacities.

/// The quantity's value in base units (`100m` = 0.1, `1Ki` = 1024, `1e3` = 1000), or
/// `None` when it is not a quantity.
pub fn parse(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent if exponent.starts_with(['e', 'E']) => {
            10f64.powi(exponent[1..].parse::<i32>().ok()?)
        }
        _ => return None,
    };
    Some(number * factor)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn suffixes_and_exponents() {
        assert_eq!(parse("100m"), Some(0.1));
        assert_eq!(parse("2Gi"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(parse("1.5"), Some(1.5));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("1k"), Some(1000.0));
        assert_eq!(parse("12x"), None);
        assert_eq!(parse(""), None);
    }
}
