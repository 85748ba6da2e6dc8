//! Summaries of measured samples: nearest-rank percentiles of one run's latencies, and the
//! median with its spread (minimum and maximum) of one figure across seeds or repetitions.
//! Pure arithmetic on `f64` milliseconds or ratios; non-finite values are left out.

/// Nearest-rank percentiles of one set of samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Percentiles {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (all `NaN` when there are none).
    pub fn of(samples: &[f64]) -> Percentiles {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Percentiles {
            count: sorted.len(),
            p50: nearest_rank(&sorted, 50),
            p90: nearest_rank(&sorted, 90),
            p99: nearest_rank(&sorted, 99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The smallest sample with at least `percent`% of the samples at or below it.
fn nearest_rank(sorted: &[f64], percent: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (percent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// The median of one figure across runs, and its spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Runs with a finite value.
    pub runs: usize,
    /// Median (mean of the middle two for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// Median, minimum and maximum of the finite values (all `NaN` when none is finite).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => sorted.get(n / 2).copied().unwrap_or(f64::NAN),
            _ => {
                let low = sorted.get(n / 2 - 1).copied().unwrap_or(f64::NAN);
                let high = sorted.get(n / 2).copied().unwrap_or(f64::NAN);
                (low + high) / 2.0
            }
        };
        Spread {
            runs: n,
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// `value` with `decimals` decimals, or `-` when it is not a number.
pub fn format_value(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{value:.decimals$}")
    } else {
        "-".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank_and_skip_nan() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        samples.push(f64::NAN);
        let p = Percentiles::of(&samples);
        assert_eq!(p.count, 100);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert!(Percentiles::of(&[]).p50.is_nan());
    }

    #[test]
    fn spread_takes_the_middle() {
        let odd = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max, odd.runs), (2.0, 1.0, 3.0, 3));
        let even = Spread::of([4.0, 1.0, 2.0, 3.0, f64::INFINITY]);
        assert_eq!((even.median, even.runs), (2.5, 4));
        assert!(Spread::of([]).median.is_nan());
        assert_eq!(format_value(f64::NAN, 2), "-");
        assert_eq!(format_value(1.234, 1), "1.2");
    }
}
