//! The A/B driver behind `taskbench ab`: runs two builds (or two
//! configurations) one run at a time, interleaved, pairs each A with its
//! neighbouring B and stops once the paired verdict is decided or the
//! budget is spent.
//!
//! On this machine the same binary's throughput drifts by 2× over minutes;
//! two runs side by side share most of that drift, so the ratio within a
//! pair is far steadier than either figure, and the verdict is taken over
//! the pairs' log-ratios ([`verdict::judge_paired`]). ABBA order (or a
//! seeded coin per pair) keeps either side from always running first.
//!
//! The verdict is looked at after every pair, which would inflate the error
//! rate of a plain test of "no difference"; a regression here needs the
//! whole interval beyond the minimum effect, so equal sides (true change 0)
//! rarely reach it.

use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::result::Status;
use super::validate::FigureError;
use super::verdict::{self, Direction, Judgement, Verdict};

/// Version of the `ab` result's schema, always its first field. Version 1
/// was the result before it carried one: no `schema_version`, `status` or
/// `failure`, and `stop` always present. Version 2 added them, so a failed
/// or interrupted session is written too. (Run and sweep results have
/// their own [`SCHEMA_VERSION`](super::SCHEMA_VERSION).)
pub const AB_SCHEMA_VERSION: u32 = 2;

/// One side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// The baseline.
    A,
    /// The candidate.
    B,
}

/// Runs one side once and measures its figure: a process of the baseline
/// or candidate build in `taskbench ab`, a deterministic stand-in in tests.
pub trait Runner {
    /// Why a run failed.
    type Error: std::fmt::Display;

    /// Runs `side` once; returns its figure.
    fn run(&mut self, side: Side) -> Result<f64, Self::Error>;
}

/// The order of the two runs in each pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Order {
    /// A B, B A, A B, …: each side leads every other pair.
    Abba,
    /// A fair coin per pair, from a ChaCha8 generator with this seed.
    Random {
        /// The generator's seed.
        seed: u64,
    },
}

/// When to give up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Runs of both sides together.
    pub max_runs: usize,
    /// Wall time; a pair that would likely end past it is not started.
    pub max_time: Option<Duration>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            max_runs: 40,
            max_time: Some(Duration::from_secs(120)),
        }
    }
}

/// How to drive and judge.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Run order within pairs.
    pub order: Order,
    /// When to stop undecided.
    pub budget: Budget,
    /// Which way the figure gets better.
    pub direction: Direction,
    /// Minimum effect and confidence.
    pub verdict: verdict::Settings,
    /// For a deterministic figure (instruction counts): how far two runs
    /// of one side may differ; the verdict is then
    /// [`verdict::judge_exact`]'s over both sides' runs, and one pair can
    /// decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_tolerance: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            order: Order::Abba,
            budget: Budget::default(),
            direction: Direction::BiggerIsBetter,
            verdict: verdict::Settings::default(),
            exact_tolerance: None,
        }
    }
}

/// One run of one side.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbRun {
    /// 0-based, in the order run.
    pub index: usize,
    /// Which side.
    pub side: Side,
    /// Its figure.
    pub figure: f64,
    /// When it ended, from the start of the session.
    pub elapsed_secs: f64,
}

/// Two neighbouring runs, one of each side.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// Index of the A run.
    pub a: usize,
    /// Index of the B run.
    pub b: usize,
    /// B's figure over A's.
    pub ratio: f64,
}

/// What one side runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SideInfo {
    /// Which side.
    pub side: Side,
    /// The command line of one run.
    pub command: Vec<String>,
}

/// Why the session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stop {
    /// The verdict was decided.
    Decided,
    /// `max_runs` reached.
    MaxRuns,
    /// `max_time` (nearly) reached.
    MaxTime,
}

/// Everything an A/B session measured and concluded, as it grows: the
/// driver updates it after every run, so a session that fails or is
/// interrupted keeps what it measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AbResult {
    /// [`AB_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `"ab"`.
    pub kind: String,
    /// `running` while the session goes on, `complete` once decided or
    /// out of budget, `failed` when a run failed, `interrupted` when
    /// SIGINT or SIGTERM stopped it. The runs, pairs and verdict so far are
    /// kept in every case.
    pub status: Status,
    /// Which run failed and why, when `status` is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The profile run (filled in by the caller).
    #[serde(default)]
    pub profile: String,
    /// The figure compared.
    pub figure: String,
    /// What each side ran (filled in by the caller: binaries, settings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sides: Vec<SideInfo>,
    /// How the session was driven.
    pub settings: Settings,
    /// Every run of both sides, in order.
    pub runs: Vec<AbRun>,
    /// The pairing.
    pub pairs: Vec<Pair>,
    /// The paired verdict over every pair (`None` before the first pair).
    pub judgement: Option<Judgement>,
    /// Why a complete session ended; absent while it runs and when it
    /// failed or was interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
}

impl AbResult {
    /// A session about to start: no runs, `running`.
    pub fn new(figure: &str, settings: Settings) -> Self {
        AbResult {
            schema_version: AB_SCHEMA_VERSION,
            kind: "ab".into(),
            status: Status::Running,
            failure: None,
            profile: String::new(),
            figure: figure.into(),
            sides: Vec::new(),
            settings,
            runs: Vec::new(),
            pairs: Vec::new(),
            judgement: None,
            stop: None,
        }
    }

    /// The verdict, inconclusive without a pair.
    pub fn verdict(&self) -> Verdict {
        self.judgement
            .as_ref()
            .map_or(Verdict::Inconclusive, |j| j.verdict)
    }
}

/// A session that could not go on (the session keeps the runs before it,
/// marked failed).
#[derive(Debug, thiserror::Error)]
pub enum AbError<E: std::fmt::Display> {
    /// A run failed.
    #[error("run {index} ({side:?}) failed: {error}")]
    Run {
        /// The failing run's index.
        index: usize,
        /// Its side.
        side: Side,
        /// Why.
        error: E,
    },
    /// A run gave a figure no ratio can be taken of.
    #[error(transparent)]
    Figure(#[from] FigureError),
}

/// Runs the A/B session `session` (from [`AbResult::new`]) against the
/// wall clock, calling `progress` after every run.
pub fn run<R: Runner>(
    runner: &mut R,
    session: &mut AbResult,
    progress: &mut dyn FnMut(&AbResult),
) -> Result<(), AbError<R::Error>> {
    let start = Instant::now();
    run_with_clock(runner, session, &mut || start.elapsed(), progress)
}

/// [`run`], with `elapsed` telling the time since the session began
/// (tests pass a clock that only moves when told). On an error the session
/// is marked failed, its runs, pairs and verdict so far kept.
pub fn run_with_clock<R: Runner>(
    runner: &mut R,
    session: &mut AbResult,
    elapsed: &mut dyn FnMut() -> Duration,
    progress: &mut dyn FnMut(&AbResult),
) -> Result<(), AbError<R::Error>> {
    session.status = Status::Running;
    match drive(runner, session, elapsed, progress) {
        Ok(stop) => {
            session.status = Status::Complete;
            session.stop = Some(stop);
            Ok(())
        }
        Err(e) => {
            session.status = Status::Failed;
            session.failure = Some(e.to_string());
            Err(e)
        }
    }
}

/// Pairs until decided or out of budget; says why it stopped.
fn drive<R: Runner>(
    runner: &mut R,
    session: &mut AbResult,
    elapsed: &mut dyn FnMut() -> Duration,
    progress: &mut dyn FnMut(&AbResult),
) -> Result<Stop, AbError<R::Error>> {
    let settings = session.settings;
    let mut coin = match settings.order {
        Order::Random { seed } => Some(ChaCha8Rng::seed_from_u64(seed)),
        Order::Abba => None,
    };
    let budget = settings.budget;
    loop {
        let (runs, pairs) = (session.runs.len(), session.pairs.len());
        if runs + 2 > budget.max_runs {
            return Ok(Stop::MaxRuns);
        }
        if let Some(max) = budget.max_time {
            let now = elapsed();
            let per_pair = if pairs == 0 {
                Duration::ZERO
            } else {
                now / pairs as u32
            };
            if now + per_pair > max {
                return Ok(Stop::MaxTime);
            }
        }
        let a_first = match &mut coin {
            Some(rng) => rng.random_bool(0.5),
            None => pairs % 2 == 0,
        };
        let order = if a_first {
            [Side::A, Side::B]
        } else {
            [Side::B, Side::A]
        };
        for (k, side) in order.into_iter().enumerate() {
            let index = session.runs.len();
            let value = runner
                .run(side)
                .map_err(|error| AbError::Run { index, side, error })?;
            session.runs.push(AbRun {
                index,
                side,
                figure: value,
                elapsed_secs: elapsed().as_secs_f64(),
            });
            if k == 0 {
                progress(session);
            }
        }
        let (first, second) = (session.runs.len() - 2, session.runs.len() - 1);
        let (a, b) = if a_first {
            (first, second)
        } else {
            (second, first)
        };
        let runs = &session.runs;
        session.pairs.push(Pair {
            a,
            b,
            ratio: runs[b].figure / runs[a].figure,
        });
        let sides: Vec<(f64, f64)> = session
            .pairs
            .iter()
            .map(|p| (runs[p.a].figure, runs[p.b].figure))
            .collect();
        let j = match settings.exact_tolerance {
            Some(tolerance) => {
                let (a, b): (Vec<f64>, Vec<f64>) = sides.into_iter().unzip();
                verdict::judge_exact(&a, &b, settings.direction, settings.verdict, tolerance)?
            }
            None => verdict::judge_paired(&sides, settings.direction, settings.verdict)?,
        };
        let decided = j.verdict != Verdict::Inconclusive;
        session.judgement = Some(j);
        progress(session);
        if decided {
            return Ok(Stop::Decided);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for two builds: throughput 100 drifting
    /// slowly by up to ±40 % (both sides alike, as this machine does), B
    /// scaled by `b_factor`, each run with multiplicative noise of about
    /// `noise` from a seeded generator.
    struct StandIn {
        b_factor: f64,
        noise: f64,
        rng: ChaCha8Rng,
        runs: u32,
        log: Vec<Side>,
    }

    impl StandIn {
        fn new(b_factor: f64, noise: f64, seed: u64) -> Self {
            StandIn {
                b_factor,
                noise,
                rng: ChaCha8Rng::seed_from_u64(seed),
                runs: 0,
                log: Vec::new(),
            }
        }
    }

    impl Runner for StandIn {
        type Error = String;

        fn run(&mut self, side: Side) -> Result<f64, String> {
            self.runs += 1;
            self.log.push(side);
            let drift = 1.0 + 0.4 * (f64::from(self.runs) / 40.0).sin();
            let wobble = 1.0 + self.noise * (2.0 * self.rng.random::<f64>() - 1.0) * 3f64.sqrt();
            let factor = if side == Side::B { self.b_factor } else { 1.0 };
            Ok(100.0 * drift * factor * wobble)
        }
    }

    /// A clock that moves 10 s per look.
    fn ticking() -> impl FnMut() -> Duration {
        let mut t = Duration::ZERO;
        move || {
            t += Duration::from_secs(10);
            t
        }
    }

    fn session(stand_in: &mut StandIn, settings: Settings) -> AbResult {
        let mut r = AbResult::new("records_per_sec", settings);
        run_with_clock(stand_in, &mut r, &mut ticking(), &mut |_| {}).unwrap();
        assert_eq!(r.status, Status::Complete);
        r
    }

    fn untimed() -> Settings {
        Settings {
            budget: Budget {
                max_runs: 40,
                max_time: None,
            },
            ..Settings::default()
        }
    }

    #[test]
    fn a_five_percent_slower_b_is_a_regression() {
        for seed in 0..5 {
            let r = session(&mut StandIn::new(0.95, 0.01, seed), untimed());
            assert_eq!(
                r.verdict(),
                Verdict::Regression,
                "seed {seed}: {:?}",
                r.judgement
            );
            assert_eq!(r.stop, Some(Stop::Decided));
            let j = r.judgement.unwrap();
            assert!((j.ratio - 0.95).abs() < 0.01, "{j}");
        }
    }

    #[test]
    fn identical_sides_are_unchanged() {
        for seed in 0..5 {
            let r = session(&mut StandIn::new(1.0, 0.01, seed), untimed());
            assert_eq!(
                r.verdict(),
                Verdict::Unchanged,
                "seed {seed}: {:?}",
                r.judgement
            );
            assert_eq!(r.stop, Some(Stop::Decided));
        }
    }

    #[test]
    fn a_noisy_stand_in_spends_the_budget_and_is_inconclusive() {
        let settings = Settings {
            budget: Budget {
                max_runs: 13,
                max_time: None,
            },
            ..Settings::default()
        };
        let r = session(&mut StandIn::new(0.98, 0.30, 1), settings);
        assert_eq!(r.stop, Some(Stop::MaxRuns));
        assert_eq!(r.verdict(), Verdict::Inconclusive);
        assert_eq!((r.runs.len(), r.pairs.len()), (12, 6));
        assert!(r.judgement.unwrap().more.is_some());
    }

    #[test]
    fn the_time_budget_stops_before_a_pair_would_overrun() {
        // Each look moves the clock 10 s: a pair takes about 30 s of looks.
        let settings = Settings {
            budget: Budget {
                max_runs: 1000,
                max_time: Some(Duration::from_secs(200)),
            },
            ..Settings::default()
        };
        let r = session(&mut StandIn::new(1.0, 0.30, 2), settings);
        assert_eq!(r.stop, Some(Stop::MaxTime));
        assert!(
            r.runs.last().unwrap().elapsed_secs <= 200.0,
            "{:?}",
            r.runs.last()
        );
        assert_eq!(r.verdict(), Verdict::Inconclusive);
    }

    #[test]
    fn abba_order_pairs_neighbours() {
        let mut s = StandIn::new(0.95, 0.01, 0);
        let r = session(&mut s, untimed());
        use Side::{A, B};
        assert_eq!(&s.log[..8], &[A, B, B, A, A, B, B, A]);
        assert_eq!((r.pairs[0].a, r.pairs[0].b), (0, 1));
        assert_eq!((r.pairs[1].a, r.pairs[1].b), (3, 2));
        for p in &r.pairs {
            assert_eq!(p.a.abs_diff(p.b), 1);
            assert_eq!((r.runs[p.a].side, r.runs[p.b].side), (A, B));
            assert_eq!(p.ratio, r.runs[p.b].figure / r.runs[p.a].figure);
        }
    }

    #[test]
    fn random_order_is_seeded_and_pairs_one_of_each() {
        let settings = Settings {
            order: Order::Random { seed: 9 },
            budget: Budget {
                max_runs: 20,
                max_time: None,
            },
            ..Settings::default()
        };
        let (mut x, mut y) = (StandIn::new(1.0, 0.3, 3), StandIn::new(1.0, 0.3, 3));
        let (rx, _) = (session(&mut x, settings), session(&mut y, settings));
        assert_eq!(x.log, y.log);
        assert_ne!(
            x.log.chunks(2).map(|c| c[0]).collect::<Vec<_>>(),
            [Side::A; 10]
        );
        for p in &rx.pairs {
            assert_eq!(p.a.abs_diff(p.b), 1);
            assert_eq!(p.a.min(p.b) % 2, 0);
        }
    }

    #[test]
    fn a_failed_run_keeps_the_session_before_it_marked_failed() {
        struct Failing(usize);
        impl Runner for Failing {
            type Error = String;
            fn run(&mut self, _: Side) -> Result<f64, String> {
                self.0 += 1;
                if self.0 == 4 {
                    Err("exit status 101".into())
                } else {
                    Ok(1.0)
                }
            }
        }
        let mut r = AbResult::new("x", untimed());
        let err = run_with_clock(&mut Failing(0), &mut r, &mut ticking(), &mut |_| {}).unwrap_err();
        match &err {
            AbError::Run { index, side, .. } => assert_eq!((*index, *side), (3, Side::A)),
            other => panic!("{other}"),
        }
        assert_eq!((r.status, r.stop), (Status::Failed, None));
        assert_eq!(
            r.failure.as_deref(),
            Some("run 3 (A) failed: exit status 101")
        );
        assert_eq!((r.runs.len(), r.pairs.len()), (3, 1));
        assert!(r.judgement.is_some());
    }

    #[test]
    fn progress_sees_every_run_while_the_session_is_running() {
        let mut seen: Vec<(usize, usize, Status)> = Vec::new();
        let mut r = AbResult::new("records_per_sec", untimed());
        let mut s = StandIn::new(0.95, 0.01, 0);
        run_with_clock(&mut s, &mut r, &mut ticking(), &mut |x| {
            seen.push((x.runs.len(), x.pairs.len(), x.status));
        })
        .unwrap();
        let expected: Vec<_> = (1..=r.runs.len())
            .map(|n| (n, n / 2, Status::Running))
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(r.status, Status::Complete);
    }

    #[test]
    fn a_deterministic_figure_is_decided_by_one_pair() {
        struct Counts(f64);
        impl Runner for Counts {
            type Error = String;
            fn run(&mut self, side: Side) -> Result<f64, String> {
                Ok(if side == Side::B { 20.0 * self.0 } else { 20.0 })
            }
        }
        let settings = Settings {
            exact_tolerance: Some(verdict::EXACT_TOLERANCE),
            verdict: verdict::Settings {
                min_effect: verdict::DEFAULT_EXACT_MIN_EFFECT,
                ..verdict::Settings::default()
            },
            direction: Direction::SmallerIsBetter,
            ..untimed()
        };
        let run = |factor| {
            let mut r = AbResult::new("ipr", settings);
            run_with_clock(&mut Counts(factor), &mut r, &mut ticking(), &mut |_| {}).unwrap();
            r
        };
        let worse = run(1.01);
        assert_eq!(
            (worse.verdict(), worse.pairs.len()),
            (Verdict::Regression, 1)
        );
        let same = run(1.0);
        assert_eq!((same.verdict(), same.pairs.len()), (Verdict::Unchanged, 1));
    }

    #[test]
    fn the_result_round_trips_through_json() {
        let r = session(&mut StandIn::new(0.95, 0.01, 0), untimed());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["schema_version"], AB_SCHEMA_VERSION);
        assert_eq!(json["kind"], "ab");
        assert_eq!(json["status"], "complete");
        assert_eq!(json["settings"]["order"]["kind"], "abba");
        assert_eq!(json["judgement"]["verdict"], "regression");
        assert_eq!(json["stop"], "decided");
        let back: AbResult = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }
}
