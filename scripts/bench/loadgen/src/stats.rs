//! Latency samples and the one-line summaries the benchmark prints.

use std::fmt;
use std::time::Duration;

/// Latencies of one phase, kept whole so percentiles are exact.
#[derive(Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    pub fn push(&mut self, sample: Duration) {
        self.samples.push(sample);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Percentile summary; sorts the samples once.
    pub fn summary(mut self) -> Summary {
        self.samples.sort_unstable();
        let at = |q: f64| -> Duration {
            if self.samples.is_empty() {
                return Duration::ZERO;
            }
            // Nearest-rank percentile.
            let rank = (q * self.samples.len() as f64).ceil() as usize;
            self.samples[rank.clamp(1, self.samples.len()) - 1]
        };
        Summary {
            p50: at(0.50),
            p99: at(0.99),
            max: self.samples.last().copied().unwrap_or_default(),
        }
    }
}

pub struct Summary {
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} ms, p99 {} ms, max {} ms",
            millis(self.p50),
            millis(self.p99),
            millis(self.max)
        )
    }
}

/// Milliseconds with two decimals, the unit every latency is printed in.
pub fn millis(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
