//! The compressed index lists of Indexed Jobs (`status.completedIndexes`, e.g. `0-2,5`):
//! parsing what is stored and rendering what is written, as upstream formats them.

use std::collections::BTreeSet;

/// Parse `"0-2,5"` into `{0, 1, 2, 5}`, keeping only indexes below `completions`.
/// Malformed parts are skipped: the list is ours, but a bad one must not stop the Job.
pub fn parse(text: &str, completions: i32) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (low, high) = match part.split_once('-') {
            Some((low, high)) => (low.parse::<i32>(), high.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        let (Ok(low), Ok(high)) = (low, high) else {
            continue;
        };
        set.extend((low.max(0)..=high.min(completions - 1)).filter(|i| *i >= low));
    }
    set
}

/// Render a set as upstream does: ascending, consecutive runs of two or more as `a-b`.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &i in set {
        run = match run {
            Some((start, end)) if i == end + 1 => Some((start, i)),
            Some(done) => {
                parts.push(render_run(done));
                Some((i, i))
            }
            None => Some((i, i)),
        };
    }
    if let Some(done) = run {
        parts.push(render_run(done));
    }
    parts.join(",")
}

fn render_run((start, end): (i32, i32)) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_runs_and_singles() {
        let set: BTreeSet<i32> = [0, 1, 2, 5, 7, 8].into();
        assert_eq!(format(&set), "0-2,5,7-8");
        assert_eq!(parse("0-2,5,7-8", 10), set);
        assert_eq!(format(&BTreeSet::new()), "");
        assert!(parse("", 3).is_empty());
    }

    #[test]
    fn parse_drops_out_of_range_and_garbage() {
        assert_eq!(parse("1-9,x,2-a", 3), [1, 2].into());
        assert_eq!(parse("4", 3), BTreeSet::new());
    }
}
