//! Hodges–Lehmann shift estimates with distribution-free confidence
//! intervals: the rank statistics behind [`super::verdict`].
//!
//! Two samples (a baseline's and a candidate's repetitions): the shift is
//! the median of every difference `y_j − x_i`, and its interval runs between
//! two order statistics of those differences chosen from the exact
//! Mann–Whitney distribution. Paired samples (A/B neighbours): the shift is
//! the median of the Walsh averages `(d_i + d_j) / 2`, its interval taken
//! from the exact Wilcoxon signed-rank distribution. Both only assume the
//! two sides differ by a shift (on a log scale, by a factor), so one
//! outlying repetition moves them little, and at small sizes they are exact
//! rather than asymptotic: too few values give no interval at all instead of
//! a falsely narrow one.

use statrs::distribution::{ContinuousCDF, Normal};

/// Above this many values in total the exact distributions (kept in `i128`
/// counts) give way to the normal approximation, which is then very close.
const EXACT_LIMIT: usize = 120;

/// A shift estimate and, when the sizes allow one at the asked confidence,
/// its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    /// The Hodges–Lehmann estimate.
    pub estimate: f64,
    /// `(low, high)`, or `None` when no interval reaches the confidence.
    pub interval: Option<(f64, f64)>,
    /// The confidence the interval actually has (at least the one asked;
    /// rank intervals take discrete steps). 0 without an interval.
    pub confidence: f64,
}

/// The shift of `y` over `x` (median of `y_j − x_i`) with an interval of at
/// least `confidence` from the exact Mann–Whitney distribution.
///
/// # Panics
/// If either side is empty.
pub fn two_sample(x: &[f64], y: &[f64], confidence: f64) -> Shift {
    assert!(!x.is_empty() && !y.is_empty(), "a shift needs both sides");
    let mut diffs: Vec<f64> = y
        .iter()
        .flat_map(|&b| x.iter().map(move |&a| b - a))
        .collect();
    diffs.sort_by(f64::total_cmp);
    shift_of(&diffs, two_sample_tail(x.len(), y.len(), confidence))
}

/// Whether `n` against `m` values can give an interval at `confidence`.
pub fn two_sample_has_interval(n: usize, m: usize, confidence: f64) -> bool {
    two_sample_tail(n, m, confidence).0 > 0
}

/// Whether `n` paired differences can give an interval at `confidence`.
pub fn one_sample_has_interval(n: usize, confidence: f64) -> bool {
    one_sample_tail(n, confidence).0 > 0
}

fn two_sample_tail(n: usize, m: usize, confidence: f64) -> Tail {
    if n + m <= EXACT_LIMIT {
        exact_tail(&mann_whitney_counts(n, m), confidence)
    } else {
        let (n, m) = (n as f64, m as f64);
        normal_tail(
            n * m / 2.0,
            (n * m * (n + m + 1.0) / 12.0).sqrt(),
            confidence,
        )
    }
}

fn one_sample_tail(n: usize, confidence: f64) -> Tail {
    if n <= EXACT_LIMIT {
        exact_tail(&signed_rank_counts(n), confidence)
    } else {
        let n = n as f64;
        normal_tail(
            n * (n + 1.0) / 4.0,
            (n * (n + 1.0) * (2.0 * n + 1.0) / 24.0).sqrt(),
            confidence,
        )
    }
}

/// The shift of paired differences `d` (median of their Walsh averages)
/// with an interval of at least `confidence` from the exact Wilcoxon
/// signed-rank distribution.
///
/// # Panics
/// If `d` is empty.
pub fn one_sample(d: &[f64], confidence: f64) -> Shift {
    assert!(!d.is_empty(), "a shift needs at least one difference");
    let mut walsh = Vec::with_capacity(d.len() * (d.len() + 1) / 2);
    for (i, &a) in d.iter().enumerate() {
        walsh.extend(d[i..].iter().map(|&b| (a + b) / 2.0));
    }
    walsh.sort_by(f64::total_cmp);
    shift_of(&walsh, one_sample_tail(d.len(), confidence))
}

/// `(c, coverage)`: the interval drops the `c − 1` lowest and highest order
/// statistics. `c == 0` means no interval reaches the confidence.
type Tail = (usize, f64);

fn shift_of(sorted: &[f64], (c, coverage): Tail) -> Shift {
    let n = sorted.len();
    let estimate = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    let c = c.min(n.div_ceil(2));
    let interval = (c > 0).then(|| (sorted[c - 1], sorted[n - c]));
    Shift {
        estimate,
        interval,
        confidence: if c > 0 { coverage } else { 0.0 },
    }
}

/// The largest `c` with `P(S ≤ c − 1) ≤ (1 − confidence) / 2` for the
/// statistic whose counts per value are `counts`, and the interval's
/// coverage `1 − 2 P(S ≤ c − 1)`.
fn exact_tail(counts: &[i128], confidence: f64) -> Tail {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let alpha_half = (1.0 - confidence) / 2.0;
    let mut below = 0.0;
    let mut c = 0;
    for &count in counts {
        let next = below + count as f64 / total;
        if next > alpha_half * (1.0 + 1e-12) {
            break;
        }
        below = next;
        c += 1;
    }
    (c, 1.0 - 2.0 * below)
}

fn normal_tail(mean: f64, sd: f64, confidence: f64) -> Tail {
    let z = standard_normal_quantile(0.5 + confidence / 2.0);
    let c = (mean - z * sd).floor().max(0.0) as usize;
    (c, confidence)
}

/// The standard normal quantile at `p`.
pub fn standard_normal_quantile(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

/// How many of the `C(n + m, n)` orderings of two samples give the
/// Mann–Whitney statistic `U = u`, for `u` in `0..=n·m`: the coefficients of
/// the Gaussian binomial `[n + m choose n]_q`, built as
/// `∏_{i=1..n} (1 − q^{m+i}) / (1 − q^i)`. Each partial product is itself
/// a Gaussian binomial, so coefficients stay below `2 · C(n + m, n)`.
fn mann_whitney_counts(n: usize, m: usize) -> Vec<i128> {
    let mut poly = vec![0i128; n * m + 1];
    poly[0] = 1;
    for i in 1..=n {
        let shift = m + i;
        for k in (shift..poly.len()).rev() {
            poly[k] -= poly[k - shift];
        }
        for k in i..poly.len() {
            poly[k] += poly[k - i];
        }
    }
    poly
}

/// How many of the `2^n` sign patterns give the signed-rank sum `T = t`,
/// for `t` in `0..=n(n+1)/2`: subsets of `{1..n}` by their sum.
fn signed_rank_counts(n: usize) -> Vec<i128> {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0i128; max + 1];
    counts[0] = 1;
    for r in 1..=n {
        for t in (r..=max).rev() {
            counts[t] += counts[t - r];
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mann_whitney_counts_match_the_tables() {
        // n = m = 2: orderings xxyy, xyxy, xyyx, yxxy, yxyx, yyxx.
        assert_eq!(mann_whitney_counts(2, 2), vec![1, 1, 2, 1, 1]);
        let c = mann_whitney_counts(5, 5);
        assert_eq!(c.iter().sum::<i128>(), 252);
        assert_eq!(&c[..4], &[1, 1, 2, 3]);
        assert_eq!(c, c.iter().rev().copied().collect::<Vec<_>>());
        let big = mann_whitney_counts(60, 60);
        assert_eq!(
            big.iter().sum::<i128>(),
            96_614_908_840_363_322_603_893_139_521_372_656
        ); // C(120, 60)
    }

    #[test]
    fn signed_rank_counts_match_the_tables() {
        assert_eq!(signed_rank_counts(3), vec![1, 1, 1, 2, 1, 1, 1]);
        let c = signed_rank_counts(10);
        assert_eq!(c.iter().sum::<i128>(), 1024);
        // P(T ≤ 8) = 25/1024 ≤ 0.025 < P(T ≤ 9) = 33/1024: 8 is the 5 %
        // critical value.
        assert_eq!(c[..=8].iter().sum::<i128>(), 25);
        assert_eq!(c[..=9].iter().sum::<i128>(), 33);
    }

    #[test]
    fn five_against_five_keep_the_third_differences() {
        // P(U ≤ 2) = 4/252 ≤ 0.025 < P(U ≤ 3) = 7/252: the 95 % interval is
        // [D(3), D(23)] of the 25 differences, coverage 1 − 8/252.
        let x = [0.0, 10.0, 20.0, 30.0, 40.0];
        let y = [1.0, 2.0, 3.0, 4.0, 5.0];
        let s = two_sample(&x, &y, 0.95);
        // differences y − x: {1..5} − {0, 10, 20, 30, 40}; sorted, the 3rd
        // is −37 and the 23rd is 3; the 13th (median) is −17.
        assert_eq!(s.estimate, -17.0);
        assert_eq!(s.interval, Some((-37.0, 3.0)));
        assert!((s.confidence - (1.0 - 8.0 / 252.0)).abs() < 1e-12);
    }

    #[test]
    fn too_few_values_give_no_interval() {
        assert_eq!(two_sample(&[1.0], &[2.0], 0.95).interval, None);
        assert_eq!(
            two_sample(&[1.0, 2.0, 3.0], &[2.0, 3.0, 4.0], 0.95).interval,
            None
        );
        // 4 against 4: P(U = 0) = 1/70 ≤ 0.025: the whole range.
        let s = two_sample(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 0.95);
        assert_eq!(s.interval, Some((1.0, 7.0)));
        assert_eq!(one_sample(&[0.1; 5], 0.95).interval, None);
        assert!(one_sample(&[0.1; 6], 0.95).interval.is_some());
    }

    #[test]
    fn paired_interval_takes_walsh_averages() {
        // d = 1..=10: 55 Walsh averages; critical value 8 drops the 8 lowest
        // and highest, so the interval is [W(9), W(47)].
        let d: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = one_sample(&d, 0.95);
        assert_eq!(s.estimate, 5.5);
        let mut walsh = Vec::new();
        for i in 0..10 {
            for j in i..10 {
                walsh.push((d[i] + d[j]) / 2.0);
            }
        }
        walsh.sort_by(f64::total_cmp);
        assert_eq!(s.interval, Some((walsh[8], walsh[46])));
        assert_eq!(s.interval, Some((3.0, 8.0)));
    }

    #[test]
    fn large_samples_use_the_normal_approximation() {
        let x: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 0.5).collect();
        let s = two_sample(&x, &y, 0.95);
        assert!((s.estimate - 0.5).abs() < 1e-9);
        let (lo, hi) = s.interval.unwrap();
        assert!(lo < 0.5 && hi > 0.5 && hi - lo < 0.2, "{lo} {hi}");
        let d: Vec<f64> = (0..196).map(|i| f64::from(i % 7) - 3.0).collect();
        let (lo, hi) = one_sample(&d, 0.95).interval.unwrap();
        assert!(lo < 0.0 && hi > 0.0, "{lo} {hi}");
    }
}
