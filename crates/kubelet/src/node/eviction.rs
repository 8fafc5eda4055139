//! Hard eviction thresholds (`--kubelet-arg eviction-hard=...`), which decide when the
//! node reports MemoryPressure, DiskPressure and PIDPressure.
//!
//! The syntax and defaults are upstream's: `memory.available<100Mi,nodefs.available<10%`,
//! each value a quantity or a percentage of the signal's capacity. As upstream, the
//! defaults apply only when the flag is absent; once it is given, every signal it does
//! not name has no threshold. k3rs keeps images on the node's filesystem, so
//! `imagefs.*` and `nodefs.*` are checked against the same statvfs.

/// One threshold: crossed when what is available drops below it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Absolute(u64),
    /// Per cent of the capacity, 0–100.
    Percent(f64),
}

impl Threshold {
    /// Whether `available` out of `capacity` is below the threshold. An unknown
    /// capacity (0) never crosses a percentage.
    pub fn crossed(self, available: u64, capacity: u64) -> bool {
        match self {
            Threshold::Absolute(min) => available < min,
            Threshold::Percent(_) if capacity == 0 => false,
            Threshold::Percent(p) => (available as f64) < capacity as f64 * p / 100.0,
        }
    }
}

/// The thresholds per signal; `None` means the signal is not watched.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    pub memory_available: Option<Threshold>,
    pub nodefs_available: Option<Threshold>,
    pub nodefs_inodes_free: Option<Threshold>,
    pub imagefs_available: Option<Threshold>,
    pub imagefs_inodes_free: Option<Threshold>,
    pub pid_available: Option<Threshold>,
}

impl Default for Thresholds {
    /// Upstream's defaults (pid.available is k3rs's own guard: 10 % of pid_max).
    fn default() -> Self {
        Thresholds {
            memory_available: Some(Threshold::Absolute(100 << 20)),
            nodefs_available: Some(Threshold::Percent(10.0)),
            nodefs_inodes_free: Some(Threshold::Percent(5.0)),
            imagefs_available: Some(Threshold::Percent(15.0)),
            imagefs_inodes_free: None,
            pid_available: Some(Threshold::Percent(10.0)),
        }
    }
}

impl Thresholds {
    /// Parse an `eviction-hard` value, e.g. `memory.available<200Mi,nodefs.available<5%`.
    pub fn parse(text: &str) -> Result<Thresholds, String> {
        let mut out = Thresholds {
            memory_available: None,
            nodefs_available: None,
            nodefs_inodes_free: None,
            imagefs_available: None,
            imagefs_inodes_free: None,
            pid_available: None,
        };
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (signal, value) = item
                .split_once('<')
                .ok_or_else(|| format!("{item:?}: expected SIGNAL<VALUE"))?;
            let threshold = parse_value(value.trim())
                .ok_or_else(|| format!("{item:?}: {value:?} is not a quantity or a percentage"))?;
            let slot = match signal.trim() {
                "memory.available" => &mut out.memory_available,
                "nodefs.available" => &mut out.nodefs_available,
                "nodefs.inodesFree" => &mut out.nodefs_inodes_free,
                "imagefs.available" => &mut out.imagefs_available,
                "imagefs.inodesFree" => &mut out.imagefs_inodes_free,
                "pid.available" => &mut out.pid_available,
                other => {
                    return Err(format!(
                        "{item:?}: unknown signal {other:?} (memory.available, nodefs.available, \
                         nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available)"
                    ))
                }
            };
            *slot = Some(threshold);
        }
        Ok(out)
    }
}

fn parse_value(value: &str) -> Option<Threshold> {
    if let Some(percent) = value.strip_suffix('%') {
        let p: f64 = percent.trim().parse().ok()?;
        return (0.0..=100.0).contains(&p).then_some(Threshold::Percent(p));
    }
    let bytes = k3rs_core::quantity::Quantity::parse(value)?.value();
    u64::try_from(bytes).ok().map(Threshold::Absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_syntax_and_unnamed_signals_are_off() {
        let t = Thresholds::parse("memory.available<200Mi, nodefs.available<5%").unwrap();
        assert_eq!(t.memory_available, Some(Threshold::Absolute(200 << 20)));
        assert_eq!(t.nodefs_available, Some(Threshold::Percent(5.0)));
        assert_eq!(t.imagefs_available, None);
        assert_eq!(t.pid_available, None);
        let t = Thresholds::parse("nodefs.available<1Gi").unwrap();
        assert_eq!(t.nodefs_available, Some(Threshold::Absolute(1 << 30)));
    }

    #[test]
    fn bad_values_name_the_item() {
        for bad in [
            "memory.available",
            "memory.available<lots",
            "disk.available<1%",
            "nodefs.available<120%",
        ] {
            let err = Thresholds::parse(bad).unwrap_err();
            assert!(err.contains(bad.split('<').next().unwrap()), "{bad}: {err}");
        }
    }

    #[test]
    fn crossing() {
        assert!(Threshold::Percent(10.0).crossed(9, 100));
        assert!(!Threshold::Percent(10.0).crossed(10, 100));
        assert!(!Threshold::Percent(10.0).crossed(0, 0));
        assert!(Threshold::Absolute(5).crossed(4, 0));
    }
}
