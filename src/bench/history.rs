//! Results over time in an embedded SQLite database (rusqlite's bundled
//! SQLite, one file, default [`DEFAULT_PATH`]): one row per result and
//! figure, and the change points of each figure's series behind
//! `taskbench history add/show/check`.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

use super::changepoint::{self, ChangePoint};
use super::figures;
use super::result::{RunResult, Stats, Status, SweepResult};
use super::validate::{self, FigureError};
use super::verdict::Direction;

/// Where `taskbench history` keeps its database unless `--db` says.
pub const DEFAULT_PATH: &str = "results/history.sqlite";

/// Bumped on any incompatible change of [`SCHEMA`].
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS results (
    id           INTEGER PRIMARY KEY,
    profile      TEXT NOT NULL,
    figure       TEXT NOT NULL,
    git_revision TEXT,
    dirty        INTEGER NOT NULL,
    date         TEXT NOT NULL,
    median       REAL NOT NULL,
    spread_pct   REAL NOT NULL,
    repetitions  TEXT NOT NULL,
    engine       TEXT NOT NULL,
    config       TEXT NOT NULL,
    UNIQUE (profile, figure, date, engine, git_revision, repetitions)
);
CREATE INDEX IF NOT EXISTS results_series ON results (profile, figure, date, id);
";

/// What can go wrong with the history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The database.
    #[error("history database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file that is not a taskbench result.
    #[error("not a taskbench result: {0}")]
    BadResult(String),
    /// A result whose figures are out of range.
    #[error("bad figure: {0}")]
    Figure(#[from] FigureError),
    /// A database written by another taskbench.
    #[error("history database has schema version {found}, this taskbench reads {SCHEMA_VERSION}; use another --db")]
    Schema {
        /// The version in the file.
        found: i64,
    },
    /// `--db` names something other than a regular file (a directory,
    /// FIFO or device): SQLite would write beside it, or block.
    #[error("{0}: not a regular file; give a history database file")]
    NotAFile(std::path::PathBuf),
    /// `--db` is a path no database can be created at.
    #[error("{0}; give a history database file")]
    BadPath(String),
    /// `--db` names a regular file that is not an SQLite database.
    #[error("{0}: not an SQLite database; give a history database file")]
    NotADatabase(std::path::PathBuf),
    /// Creating the database's folder.
    #[error("history database folder: {0}")]
    Io(#[from] std::io::Error),
}

/// One result's figure, as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry {
    /// Profile name (a sweep point's assignments in brackets).
    pub profile: String,
    /// Figure name.
    pub figure: String,
    /// Git revision of the build, without the dirty mark.
    pub git_revision: Option<String>,
    /// Whether the build's tree had uncommitted changes.
    pub dirty: bool,
    /// When the measurement started (RFC 3339, UTC).
    pub date: String,
    /// Median over the repetitions.
    pub median: f64,
    /// Relative standard deviation of the repetitions, in percent.
    pub spread_pct: f64,
    /// The figure of every repetition.
    pub repetitions: Vec<f64>,
    /// `taskbench` or `flink`.
    pub engine: String,
    /// The effective configuration (the profile as run).
    pub config: Value,
}

/// A change point of one figure, named by the first result of the new
/// regime.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// The change point over the medians.
    pub point: ChangePoint,
    /// The first result of the new regime.
    pub first: Entry,
    /// Whether the figure got worse.
    pub regression: bool,
}

/// The change points of one profile's figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// Profile name.
    pub profile: String,
    /// Figure name.
    pub figure: String,
    /// Which way is better.
    pub direction: Direction,
    /// Results in the series.
    pub results: usize,
    /// Every change point, oldest first.
    pub changes: Vec<Change>,
}

impl Check {
    /// Whether the newest regime began with a regression
    /// (`history check` exits 3).
    pub fn newest_is_regression(&self) -> bool {
        self.changes.last().is_some_and(|c| c.regression)
    }
}

/// The history database.
pub struct History {
    conn: Connection,
}

impl History {
    /// Opens (creating if needed) the database at `path`.
    ///
    /// # Errors
    ///
    /// [`HistoryError::NotAFile`] when `path` exists and is not a regular
    /// file, [`HistoryError::NotADatabase`] when it is one SQLite does not
    /// read, [`HistoryError::Schema`] for another taskbench's database.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            return Err(HistoryError::NotAFile(path.to_path_buf()));
        }
        if path.symlink_metadata().is_ok() && !path.exists() {
            let link = path.display();
            return Err(HistoryError::BadPath(format!(
                "{link} is a symbolic link to nothing"
            )));
        }
        let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(problem) = parent.and_then(crate::files::directory_problem) {
            return Err(HistoryError::BadPath(problem));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Connection::open(path)
            .map_err(HistoryError::from)
            .and_then(Self::init)
            .map_err(|e| match e {
                HistoryError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    HistoryError::NotADatabase(path.to_path_buf())
                }
                e => e,
            })
    }

    /// A database that lives in memory only.
    pub fn in_memory() -> Result<Self, HistoryError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, HistoryError> {
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        match found {
            0 => {
                conn.execute_batch(SCHEMA)?;
                conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            SCHEMA_VERSION => {}
            found => return Err(HistoryError::Schema { found }),
        }
        Ok(History { conn })
    }

    /// Adds a result file's text (a run, or every point of a sweep);
    /// returns the rows added (a result added before adds none).
    pub fn add(&mut self, result_json: &str) -> Result<usize, HistoryError> {
        let value: Value = serde_json::from_str(result_json)
            .map_err(|e| HistoryError::BadResult(e.to_string()))?;
        super::result::check_schema_version(&value).map_err(HistoryError::BadResult)?;
        let bad = |e: serde_json::Error| HistoryError::BadResult(e.to_string());
        match value.get("kind").and_then(Value::as_str) {
            Some("run") => self.add_run(&serde_json::from_value(value).map_err(bad)?, None),
            Some("sweep") => {
                let sweep: SweepResult = serde_json::from_value(value).map_err(bad)?;
                complete(sweep.status)?;
                for point in &sweep.points {
                    complete(point.result.status)?;
                }
                let mut added = 0;
                for point in &sweep.points {
                    let label = format!("{} [{}]", sweep.profile.name, point.overrides.join(", "));
                    added += self.add_run(&point.result, Some(label))?;
                }
                Ok(added)
            }
            Some("ab") => Err(HistoryError::BadResult(
                "an ab session (kind \"ab\"); history keeps runs and sweeps".into(),
            )),
            _ => Err(HistoryError::BadResult(format!(
                "kind {}; expected \"run\" or \"sweep\"",
                value.get("kind").map_or("missing".into(), Value::to_string)
            ))),
        }
    }

    /// Adds one run under its profile's name (or `label`); returns the rows
    /// added.
    pub fn add_run(
        &mut self,
        run: &RunResult,
        label: Option<String>,
    ) -> Result<usize, HistoryError> {
        complete(run.status)?;
        validate::repetitions(&run.repetitions)?;
        let profile = label.unwrap_or_else(|| run.profile.name.clone());
        let (git_revision, dirty) = match run.testbed.git_revision.as_deref() {
            Some(r) => match r.strip_suffix("-dirty") {
                Some(clean) => (Some(clean.to_string()), true),
                None => (Some(r.to_string()), false),
            },
            None => (None, false),
        };
        let engine = serde_json::to_value(run.engine)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let config = serde_json::to_string(&run.profile)
            .map_err(|e| HistoryError::BadResult(e.to_string()))?;
        let tx = self.conn.transaction()?;
        let mut added = 0;
        for figure in figures::of_run(run) {
            validate::positive(figure.name, &figure.values)?;
            let stats = Stats::of(&figure.values);
            added += tx.execute(
                "INSERT OR IGNORE INTO results (profile, figure, git_revision, dirty, date, median,
                    spread_pct, repetitions, engine, config)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    profile,
                    figure.name,
                    git_revision,
                    dirty,
                    run.testbed.date,
                    stats.median,
                    stats.rsd_pct,
                    serde_json::to_string(&figure.values).expect("numbers serialise"),
                    engine,
                    config,
                ],
            )?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Every profile with results, by name.
    pub fn profiles(&self) -> Result<Vec<String>, HistoryError> {
        self.strings("SELECT DISTINCT profile FROM results ORDER BY profile", [])
    }

    /// Every figure recorded for `profile`, by name.
    pub fn figures(&self, profile: &str) -> Result<Vec<String>, HistoryError> {
        self.strings(
            "SELECT DISTINCT figure FROM results WHERE profile = ?1 ORDER BY figure",
            [profile],
        )
    }

    fn strings<P: rusqlite::Params>(&self, sql: &str, p: P) -> Result<Vec<String>, HistoryError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(p, |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One profile's figure over time, oldest first.
    pub fn series(&self, profile: &str, figure: &str) -> Result<Vec<Entry>, HistoryError> {
        let mut stmt = self.conn.prepare(
            "SELECT profile, figure, git_revision, dirty, date, median, spread_pct, repetitions,
                    engine, config
             FROM results WHERE profile = ?1 AND figure = ?2 ORDER BY date, id",
        )?;
        let rows = stmt.query_map([profile, figure], |r| {
            let reps: String = r.get(7)?;
            let config: String = r.get(9)?;
            Ok(Entry {
                profile: r.get(0)?,
                figure: r.get(1)?,
                git_revision: r.get(2)?,
                dirty: r.get(3)?,
                date: r.get(4)?,
                median: r.get(5)?,
                spread_pct: r.get(6)?,
                repetitions: serde_json::from_str(&reps).unwrap_or_default(),
                engine: r.get(8)?,
                config: serde_json::from_str(&config).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest entry of a series, if any.
    pub fn latest(&self, profile: &str, figure: &str) -> Result<Option<String>, HistoryError> {
        Ok(self
            .conn
            .query_row(
                "SELECT date FROM results WHERE profile = ?1 AND figure = ?2
                 ORDER BY date DESC, id DESC LIMIT 1",
                [profile, figure],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The change points of one figure's medians.
    pub fn check(
        &self,
        profile: &str,
        figure: &str,
        settings: changepoint::Settings,
    ) -> Result<Check, HistoryError> {
        let entries = self.series(profile, figure)?;
        let medians: Vec<f64> = entries.iter().map(|e| e.median).collect();
        let direction = Direction::of_figure(figure);
        let changes = changepoint::change_points(&medians, settings)
            .into_iter()
            .map(|point| Change {
                point,
                first: entries[point.index].clone(),
                regression: point.is_regression(direction),
            })
            .collect();
        Ok(Check {
            profile: profile.into(),
            figure: figure.into(),
            direction,
            results: entries.len(),
            changes,
        })
    }

    /// [`History::check`] for every figure of `profile`, or of every
    /// profile.
    pub fn check_all(
        &self,
        profile: Option<&str>,
        settings: changepoint::Settings,
    ) -> Result<Vec<Check>, HistoryError> {
        let profiles = match profile {
            Some(p) => vec![p.to_string()],
            None => self.profiles()?,
        };
        let mut out = Vec::new();
        for p in &profiles {
            for f in self.figures(p)? {
                out.push(self.check(p, &f, settings)?);
            }
        }
        Ok(out)
    }
}

/// Only complete results go into the history: a failed or interrupted
/// run's figures cover part of a job and would read as a change.
fn complete(status: Status) -> Result<(), HistoryError> {
    match status {
        Status::Complete => Ok(()),
        other => Err(HistoryError::BadResult(format!(
            "status {}: only complete results are added",
            serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::bench::figures::tests::repetition;
    use crate::bench::Profile;

    /// A quickstart run (made once: it detects the testbed).
    fn run(date: &str, revision: &str, rates: &[f64]) -> RunResult {
        static BASE: std::sync::OnceLock<RunResult> = std::sync::OnceLock::new();
        let mut run = BASE
            .get_or_init(|| {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/quickstart.toml");
                let profile = Profile::from_file(&path, &[]).unwrap();
                RunResult::started(&profile, &[], Default::default(), "none".into())
            })
            .clone();
        run.testbed.date = date.into();
        run.testbed.git_revision = Some(revision.into());
        run.repetitions = rates
            .iter()
            .map(|r| repetition(*r as u64, 1.0, None))
            .collect();
        run.status = Status::Complete;
        run
    }

    fn date(i: usize) -> String {
        format!(
            "2026-11-{:02}T{:02}:{:02}:00Z",
            1 + i / 600,
            i / 60 % 10,
            i % 60
        )
    }

    #[test]
    fn a_result_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/history.sqlite");
        let json =
            serde_json::to_string(&run(&date(0), "abc123-dirty", &[100.0, 300.0, 200.0])).unwrap();
        {
            let mut h = History::open(&path).unwrap();
            assert_eq!(h.add(&json).unwrap(), 2); // records and bytes per second
            assert_eq!(h.add(&json).unwrap(), 0, "added twice, stored once");
        }
        let h = History::open(&path).unwrap();
        assert_eq!(h.profiles().unwrap(), ["quickstart"]);
        assert_eq!(
            h.figures("quickstart").unwrap(),
            ["bytes_per_sec", "records_per_sec"]
        );
        let s = h.series("quickstart", "records_per_sec").unwrap();
        assert_eq!(s.len(), 1);
        let e = &s[0];
        assert_eq!((e.git_revision.as_deref(), e.dirty), (Some("abc123"), true));
        assert_eq!(
            (e.median, e.repetitions.clone()),
            (200.0, vec![100.0, 300.0, 200.0])
        );
        assert!((e.spread_pct - 50.0).abs() < 1e-9);
        assert_eq!(e.engine, "taskbench");
        assert_eq!(e.config["name"], "quickstart");
        assert_eq!(
            h.latest("quickstart", "records_per_sec").unwrap(),
            Some(date(0))
        );
    }

    #[test]
    fn bad_files_are_refused() {
        let mut h = History::in_memory().unwrap();
        assert!(matches!(h.add("{"), Err(HistoryError::BadResult(_))));
        assert!(matches!(
            h.add(r#"{"kind": "x"}"#),
            Err(HistoryError::BadResult(_))
        ));
        let mut says = |json: &str| h.add(json).unwrap_err().to_string();
        assert!(says(r#"{"schema_version": 2, "kind": "ab"}"#).contains("an ab session"));
        assert!(says(r#"{"schema_version": 2, "kind": 5}"#).contains("kind 5; expected"));
        assert!(says(r#"{"schema_version": 2}"#).contains("kind missing; expected"));
        assert!(says(r#"{"schema_version": "2"}"#).contains("schema_version \"2\", this"));
        assert!(says("[]").contains("schema_version missing (the file is not a JSON object)"));
        let mut bad = run(&date(0), "abc", &[100.0]);
        bad.repetitions[0].records_per_sec = 2.0;
        let err = h.add(&serde_json::to_string(&bad).unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("repetitions[0].records_per_sec"),
            "{err}"
        );
        for status in [Status::Running, Status::Failed, Status::Interrupted] {
            let mut partial = run(&date(0), "abc", &[100.0]);
            partial.status = status;
            let err = h
                .add(&serde_json::to_string(&partial).unwrap())
                .unwrap_err();
            assert!(err.to_string().contains("only complete results"), "{err}");
        }
        assert!(h.profiles().unwrap().is_empty(), "nothing added");
    }

    #[test]
    fn check_names_the_first_result_of_a_slower_regime() {
        let dir = tempfile::tempdir().unwrap();
        let mut h = History::open(&dir.path().join("h.sqlite")).unwrap();
        for i in 0..40 {
            let level = if i < 25 { 1000.0 } else { 900.0 };
            let wobble = [0.0, 5.0, -5.0, 3.0, -3.0][i % 5];
            let rates = [level + wobble, level + wobble + 2.0, level + wobble - 2.0];
            h.add_run(&run(&date(i), &format!("rev{i}"), &rates), None)
                .unwrap();
        }
        let checks = h.check_all(None, changepoint::Settings::default()).unwrap();
        assert_eq!(checks.len(), 2);
        for check in &checks {
            assert_eq!(check.results, 40);
            assert_eq!(check.changes.len(), 1, "{check:?}");
            let change = &check.changes[0];
            assert_eq!(change.first.git_revision.as_deref(), Some("rev25"));
            assert_eq!(change.first.date, date(25));
            assert!((change.point.relative_change() + 0.1).abs() < 0.01);
            assert!(check.newest_is_regression());
        }
    }

    #[test]
    fn a_faster_newest_regime_is_not_a_regression() {
        let mut h = History::in_memory().unwrap();
        for i in 0..30 {
            let level = if i < 15 { 1000.0 } else { 1100.0 };
            let rates = [level + (i % 3) as f64, level - (i % 4) as f64];
            h.add_run(&run(&date(i), "r", &rates), None).unwrap();
        }
        let check = h
            .check("quickstart", "records_per_sec", Default::default())
            .unwrap();
        assert_eq!(check.changes.len(), 1);
        assert!(!check.newest_is_regression());
        let empty = h
            .check("nothing", "records_per_sec", Default::default())
            .unwrap();
        assert!(empty.changes.is_empty() && !empty.newest_is_regression());
    }
}
