//! The verdict on one figure between a baseline and a candidate: the change
//! as a ratio with a confidence interval, judged against a minimum effect.
//!
//! # Method
//!
//! Figures are compared on a log scale, so a halving and a doubling are
//! equally far from "no change" and the interval of the ratio is symmetric
//! in that sense. The ratio `candidate / baseline` is `exp` of a
//! Hodges–Lehmann shift between the log figures ([`super::ranks`]): for
//! independent repetitions the median of all pairwise log-ratios with an
//! interval from the exact Mann–Whitney distribution; for A/B pairs the
//! median of the Walsh averages of the pairs' log-ratios with an interval
//! from the exact Wilcoxon signed-rank distribution.
//!
//! Why rank intervals rather than a bootstrap: results have 3 to 10
//! repetitions, where a bootstrap's percentile interval is too narrow (it
//! resamples only the values seen, so 1 repetition a side gives an interval
//! of width zero, and 5 under-cover), while the rank intervals are exact at
//! any size, need no seed, and with too few repetitions give no interval at
//! all. On this machine a run now and then stalls; ranks let one such
//! repetition move the verdict little.
//!
//! # Verdicts
//!
//! With `t = ln(1 + min_effect)` and the interval turned so that positive
//! is better (negated for smaller-is-better figures), as criterion's
//! `compare_to_threshold` but with equivalence made explicit:
//! the whole interval below `−t` is a [`Verdict::Regression`], above `t`
//! an [`Verdict::Improvement`], inside `[−t, t]` [`Verdict::Unchanged`];
//! anything else (an interval across a threshold, or none) is
//! [`Verdict::Inconclusive`], with an estimate of the repetitions that
//! would decide: interval width shrinks as `1/√n`, so the half-width `h`
//! reaches the distance `d` from the interval's centre to the threshold it
//! crosses after about `n (h/d)²` repetitions.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ranks::{self, Shift};
use super::validate::{self, FigureError};

/// The smallest change worth a verdict: 2 %.
pub const DEFAULT_MIN_EFFECT: f64 = 0.02;

/// The confidence of the interval: 95 %.
pub const DEFAULT_CONFIDENCE: f64 = 0.95;

/// Which way a figure gets better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Throughput and other rates.
    BiggerIsBetter,
    /// Latency, time and work per record.
    SmallerIsBetter,
}

impl Direction {
    /// The direction of a figure by its name: rates (`…per_sec`,
    /// `…per_ms`) get better bigger; anything else (latency, time, cost per
    /// record) smaller.
    pub fn of_figure(name: &str) -> Direction {
        if name.contains("_per_sec") || name.contains("_per_ms") {
            Direction::BiggerIsBetter
        } else {
            Direction::SmallerIsBetter
        }
    }

    fn sign(self) -> f64 {
        match self {
            Direction::BiggerIsBetter => 1.0,
            Direction::SmallerIsBetter => -1.0,
        }
    }
}

/// How a figure moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Worse by more than the minimum effect, the whole interval.
    Regression,
    /// Better by more than the minimum effect, the whole interval.
    Improvement,
    /// Within the minimum effect, the whole interval.
    Unchanged,
    /// Too noisy (or too few repetitions) to tell.
    Inconclusive,
}

impl Verdict {
    /// Whether the comparison passes: a regression never does, an
    /// inconclusive verdict does not in strict mode.
    pub fn passes(self, strict: bool) -> bool {
        match self {
            Verdict::Regression => false,
            Verdict::Inconclusive => !strict,
            Verdict::Improvement | Verdict::Unchanged => true,
        }
    }
}

/// The knobs of a judgement.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The smallest relative change that counts (0.02 = 2 %).
    pub min_effect: f64,
    /// Confidence of the interval (0.95 = 95 %).
    pub confidence: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_effect: DEFAULT_MIN_EFFECT,
            confidence: DEFAULT_CONFIDENCE,
        }
    }
}

/// How many more repetitions (per side, or pairs) would likely decide an
/// inconclusive verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct More {
    /// The count.
    pub repetitions: u32,
    /// `true` when no interval could be formed yet, so this many are needed
    /// for one to exist at all, and the spread is still unknown.
    pub at_least: bool,
}

/// The judgement of one figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The verdict.
    pub verdict: Verdict,
    /// Which way is better.
    pub direction: Direction,
    /// Whether the samples were A/B pairs.
    pub paired: bool,
    /// Baseline repetitions (pairs, when paired).
    pub baseline_n: usize,
    /// Candidate repetitions (pairs, when paired).
    pub candidate_n: usize,
    /// Estimated `candidate / baseline`.
    pub ratio: f64,
    /// The interval of the ratio, when the sizes allow one.
    pub interval: Option<(f64, f64)>,
    /// The interval's actual confidence (0 without an interval).
    pub confidence: f64,
    /// The minimum effect judged against.
    pub min_effect: f64,
    /// For an inconclusive verdict: the repetitions that would likely
    /// decide (`None` when no estimate can be made).
    pub more: Option<More>,
}

impl Judgement {
    /// The estimated change in percent (positive: the figure grew).
    pub fn change_pct(&self) -> f64 {
        100.0 * (self.ratio - 1.0)
    }
}

impl fmt::Display for Judgement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |r: f64| 100.0 * (r - 1.0);
        let name = match self.verdict {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Inconclusive => "inconclusive",
        };
        write!(f, "{name} {:+.1} %", self.change_pct())?;
        if let Some((lo, hi)) = self.interval {
            write!(
                f,
                " [{:+.1} %, {:+.1} %] ({:.1} % interval)",
                pct(lo),
                pct(hi),
                100.0 * self.confidence
            )?;
        }
        if let Some(more) = self.more {
            let what = if self.paired { "pairs" } else { "repetitions" };
            let (lead, tail) = if more.at_least {
                ("at least", " for an interval to exist")
            } else {
                ("about", " would decide")
            };
            write!(
                f,
                "; too noisy: {lead} {} more {what}{tail}",
                more.repetitions
            )?;
        }
        Ok(())
    }
}

/// Judges independent repetitions of a figure: `candidate` against
/// `baseline`.
pub fn judge(
    baseline: &[f64],
    candidate: &[f64],
    direction: Direction,
    settings: Settings,
) -> Result<Judgement, FigureError> {
    validate::positive("baseline", baseline)?;
    validate::positive("candidate", candidate)?;
    let logs = |v: &[f64]| v.iter().map(|x| x.ln()).collect::<Vec<_>>();
    let shift = ranks::two_sample(&logs(baseline), &logs(candidate), settings.confidence);
    let (n, m) = (baseline.len(), candidate.len());
    let n_eff = 2.0 * (n * m) as f64 / (n + m) as f64;
    let first_with_interval = (n.max(m)..)
        .find(|&k| ranks::two_sample_has_interval(k, k, settings.confidence))
        .expect("some size has an interval");
    let needed = first_with_interval - n.min(m);
    Ok(decide(
        shift,
        direction,
        settings,
        false,
        (n, m),
        n_eff,
        needed,
    ))
}

/// Judges A/B pairs `(baseline, candidate)` by the log-ratios within each
/// pair, so drift that moves both neighbours cancels.
pub fn judge_paired(
    pairs: &[(f64, f64)],
    direction: Direction,
    settings: Settings,
) -> Result<Judgement, FigureError> {
    let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
    validate::positive("pairs.baseline", &a)?;
    validate::positive("pairs.candidate", &b)?;
    let d: Vec<f64> = pairs.iter().map(|(a, b)| (b / a).ln()).collect();
    let shift = ranks::one_sample(&d, settings.confidence);
    let n = d.len();
    let first_with_interval = (n..)
        .find(|&k| ranks::one_sample_has_interval(k, settings.confidence))
        .expect("some size has an interval");
    Ok(decide(
        shift,
        direction,
        settings,
        true,
        (n, n),
        n as f64,
        first_with_interval - n,
    ))
}

/// How far apart two runs of one binary may put a deterministic figure
/// (instruction counts under callgrind): ±0.1 %.
pub const EXACT_TOLERANCE: f64 = 0.001;

/// The minimum effect for deterministic figures: 0.5 %, five times
/// [`EXACT_TOLERANCE`], so a 1 % change in the work per record is decided.
pub const DEFAULT_EXACT_MIN_EFFECT: f64 = 0.005;

/// Judges a deterministic figure (instruction counts): no sampling
/// distribution to speak of, so the interval is every ratio the values
/// allow, `min(candidate) / max(baseline)` to `max(candidate) /
/// min(baseline)`, widened by `tolerance` either way. One value a side
/// decides; an inconclusive verdict means the change sits within the
/// tolerance of the threshold, where more runs do not help.
pub fn judge_exact(
    baseline: &[f64],
    candidate: &[f64],
    direction: Direction,
    settings: Settings,
    tolerance: f64,
) -> Result<Judgement, FigureError> {
    validate::positive("baseline", baseline)?;
    validate::positive("candidate", candidate)?;
    let ln = |v: &[f64], f: fn(f64, f64) -> f64| v.iter().copied().fold(v[0], f).ln();
    let median = |v: &[f64]| super::result::Stats::of(v).median.ln();
    let slack = tolerance.ln_1p();
    let shift = Shift {
        estimate: median(candidate) - median(baseline),
        interval: Some((
            ln(candidate, f64::min) - ln(baseline, f64::max) - slack,
            ln(candidate, f64::max) - ln(baseline, f64::min) + slack,
        )),
        confidence: 1.0,
    };
    let (n, m) = (baseline.len(), candidate.len());
    let mut j = decide(shift, direction, settings, false, (n, m), 1.0, 0);
    j.more = None;
    Ok(j)
}

fn decide(
    shift: Shift,
    direction: Direction,
    settings: Settings,
    paired: bool,
    (baseline_n, candidate_n): (usize, usize),
    n_eff: f64,
    needed_for_interval: usize,
) -> Judgement {
    let t = settings.min_effect.ln_1p();
    let sign = direction.sign();
    let (verdict, more) = match shift.interval {
        None => (
            Verdict::Inconclusive,
            Some(More {
                repetitions: needed_for_interval.max(1) as u32,
                at_least: true,
            }),
        ),
        Some((lo, hi)) => {
            let (b_lo, b_hi) = if sign > 0.0 { (lo, hi) } else { (-hi, -lo) };
            if b_hi < -t {
                (Verdict::Regression, None)
            } else if b_lo > t {
                (Verdict::Improvement, None)
            } else if b_lo >= -t && b_hi <= t {
                (Verdict::Unchanged, None)
            } else {
                let centre = (b_lo + b_hi) / 2.0;
                let half = (b_hi - b_lo) / 2.0;
                let distance = (t - centre.abs()).abs();
                let more = (distance > 1e-9 * t).then(|| {
                    let wanted = n_eff * (half / distance).powi(2);
                    More {
                        repetitions: (wanted - n_eff).ceil().clamp(1.0, 1e6) as u32,
                        at_least: false,
                    }
                });
                (Verdict::Inconclusive, more)
            }
        }
    };
    Judgement {
        verdict,
        direction,
        paired,
        baseline_n,
        candidate_n,
        ratio: shift.estimate.exp(),
        interval: shift.interval.map(|(lo, hi)| (lo.exp(), hi.exp())),
        confidence: shift.confidence,
        min_effect: settings.min_effect,
        more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::Stats;

    const UP: Direction = Direction::BiggerIsBetter;
    const DOWN: Direction = Direction::SmallerIsBetter;

    /// `exp(offset + k · step)` for `k` in `0..n`.
    fn series(offset: f64, step: f64, n: usize) -> Vec<f64> {
        (0..n).map(|k| (offset + k as f64 * step).exp()).collect()
    }

    fn judged(base: &[f64], cur: &[f64], direction: Direction) -> Judgement {
        judge(base, cur, direction, Settings::default()).unwrap()
    }

    #[test]
    fn a_ten_percent_drop_is_a_regression_with_its_hand_worked_interval() {
        // log differences −0.10 + {−0.04 … 0.04} with multiplicities
        // 1,2,3,4,5,4,3,2,1: D(3) = −0.13, D(13) = −0.10, D(23) = −0.07.
        let j = judged(&series(0.0, 0.01, 5), &series(-0.10, 0.01, 5), UP);
        assert_eq!(j.verdict, Verdict::Regression);
        assert!((j.ratio - (-0.10f64).exp()).abs() < 1e-12);
        let (lo, hi) = j.interval.unwrap();
        assert!((lo - (-0.13f64).exp()).abs() < 1e-12 && (hi - (-0.07f64).exp()).abs() < 1e-12);
        assert!((j.confidence - (1.0 - 8.0 / 252.0)).abs() < 1e-12);
        assert_eq!(j.more, None);
        // The same drop of a latency is an improvement.
        assert_eq!(
            judged(&series(0.0, 0.01, 5), &series(-0.10, 0.01, 5), DOWN).verdict,
            Verdict::Improvement
        );
    }

    #[test]
    fn a_tight_interval_inside_the_threshold_is_unchanged() {
        let j = judged(&series(0.0, 0.001, 5), &series(0.0, 0.001, 5), UP);
        assert_eq!(j.verdict, Verdict::Unchanged);
        assert!(j.verdict.passes(true));
    }

    #[test]
    fn an_interval_across_a_threshold_says_how_many_more_would_decide() {
        // Interval [−0.03, 0.03] crosses ±ln 1.02: the half-width 0.03 must
        // shrink to 0.0198, so 5 · (0.03 / 0.0198)² = 11.5 a side: 7 more.
        let j = judged(&series(0.0, 0.01, 5), &series(0.0, 0.01, 5), UP);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(
            j.more,
            Some(More {
                repetitions: 7,
                at_least: false
            })
        );
        assert!(j.verdict.passes(false) && !j.verdict.passes(true));
        // Interval [−0.06, 0]: centre −0.03 is 0.0102 past −0.0198, so
        // 5 · (0.03 / 0.0102)² = 43.3 a side: 39 more.
        let j = judged(&series(0.0, 0.01, 5), &series(-0.03, 0.01, 5), UP);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(
            j.more,
            Some(More {
                repetitions: 39,
                at_least: false
            })
        );
        assert!(
            j.to_string()
                .contains("about 39 more repetitions would decide"),
            "{j}"
        );
    }

    /// Five repetitions of 3,000 records on this machine: spread ≈ 67 %.
    const NOISY: [f64; 5] = [100e6, 150e6, 300e6, 380e6, 70e6];

    #[test]
    fn a_noisy_baseline_against_itself_divided_by_50_is_a_regression() {
        assert!(Stats::of(&NOISY).rsd_pct > 60.0);
        let slow: Vec<f64> = NOISY.iter().map(|v| v / 50.0).collect();
        let j = judged(&NOISY, &slow, UP);
        assert_eq!(j.verdict, Verdict::Regression, "{j}");
        assert!(!j.verdict.passes(false));
        assert!((j.ratio - 0.02).abs() < 0.02, "{j}");
    }

    #[test]
    fn the_mirror_image_is_an_improvement() {
        let fast: Vec<f64> = NOISY.iter().map(|v| v * 50.0).collect();
        assert_eq!(judged(&NOISY, &fast, UP).verdict, Verdict::Improvement);
        let slow: Vec<f64> = NOISY.iter().map(|v| v / 50.0).collect();
        assert_eq!(judged(&slow, &NOISY, UP).verdict, Verdict::Improvement);
    }

    #[test]
    fn one_repetition_a_side_is_never_a_verdict() {
        // The third input: −91.4 % from one repetition each.
        let j = judged(&[481e6], &[41.4e6], UP);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.interval, None);
        // 4 a side is the first size with a 95 % interval.
        assert_eq!(
            j.more,
            Some(More {
                repetitions: 3,
                at_least: true
            })
        );
        assert!(j.to_string().contains("at least 3 more repetitions"), "{j}");
        assert_eq!(
            judged(&[1.0, 2.0, 3.0], &[0.1, 0.2, 0.3], UP).verdict,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn pairs_are_judged_by_their_log_ratios() {
        // d_i = −0.05 + (i − 5.5) · 0.002, i = 1..=10: the Walsh interval of
        // 1..=10 is [3, 8], so the log interval is [−0.055, −0.045].
        let pairs: Vec<(f64, f64)> = (1..=10)
            .map(|i| {
                let a = 100.0 + f64::from(i * 37 % 11); // drift cancels within a pair
                (a, a * (-0.05 + (f64::from(i) - 5.5) * 0.002).exp())
            })
            .collect();
        let j = judge_paired(&pairs, UP, Settings::default()).unwrap();
        assert_eq!(j.verdict, Verdict::Regression);
        let (lo, hi) = j.interval.unwrap();
        assert!(
            (lo.ln() + 0.055).abs() < 1e-9 && (hi.ln() + 0.045).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert!(j.paired && j.baseline_n == 10);
        let few = judge_paired(&pairs[..5], UP, Settings::default()).unwrap();
        assert_eq!(few.verdict, Verdict::Inconclusive);
        assert_eq!(
            few.more,
            Some(More {
                repetitions: 1,
                at_least: true
            })
        );
    }

    #[test]
    fn bad_figures_are_errors_naming_the_side() {
        let err = judge(&[1.0, 2.0], &[1.0, f64::NAN], UP, Settings::default()).unwrap_err();
        assert!(
            matches!(err, FigureError::OutOfRange { ref field, .. } if field == "candidate[1]")
        );
        let err = judge_paired(&[(-1.0, 1.0)], UP, Settings::default()).unwrap_err();
        assert!(
            matches!(err, FigureError::OutOfRange { ref field, .. } if field == "pairs.baseline[0]")
        );
        assert!(matches!(
            judge(&[], &[1.0], UP, Settings::default()),
            Err(FigureError::Empty { .. })
        ));
    }

    #[test]
    fn directions_follow_figure_names() {
        assert_eq!(Direction::of_figure("records_per_sec"), UP);
        assert_eq!(Direction::of_figure("records_per_ms"), UP);
        assert_eq!(Direction::of_figure("latency_p99_ns"), DOWN);
        assert_eq!(Direction::of_figure("instructions_per_record"), DOWN);
    }

    #[test]
    fn exact_figures_decide_from_one_value_a_side() {
        let s = Settings {
            min_effect: DEFAULT_EXACT_MIN_EFFECT,
            ..Settings::default()
        };
        let j = |b: &[f64], c: &[f64]| judge_exact(b, c, DOWN, s, EXACT_TOLERANCE).unwrap();
        // 1 % more instructions: [1.01 / 1.001, 1.01 · 1.001] is past 1.005.
        let worse = j(&[20.0], &[20.2]);
        assert_eq!(worse.verdict, Verdict::Regression);
        let (lo, hi) = worse.interval.unwrap();
        assert!((lo - 1.01 / 1.001).abs() < 1e-12 && (hi - 1.01 * 1.001).abs() < 1e-12);
        assert_eq!(j(&[20.2], &[20.0]).verdict, Verdict::Improvement);
        // Two runs 26 instructions apart in 20 M: unchanged.
        assert_eq!(
            j(&[20.845402, 20.845428], &[20.845428]).verdict,
            Verdict::Unchanged
        );
        // 0.5 % sits on the threshold: inconclusive, and more runs will not help.
        let edge = j(&[20.0], &[20.1]);
        assert_eq!((edge.verdict, edge.more), (Verdict::Inconclusive, None));
    }

    #[test]
    fn the_threshold_is_symmetric_on_the_log_scale() {
        // ×1.03 and ÷1.03 are equally far from no change.
        let up = judged(&series(0.0, 0.001, 5), &series(1.03f64.ln(), 0.001, 5), UP);
        let down = judged(
            &series(0.0, 0.001, 5),
            &series(-(1.03f64.ln()), 0.001, 5),
            UP,
        );
        assert_eq!(
            (up.verdict, down.verdict),
            (Verdict::Improvement, Verdict::Regression)
        );
        assert!((up.ratio * down.ratio - 1.0).abs() < 1e-12);
    }
}
