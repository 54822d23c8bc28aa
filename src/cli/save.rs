//! Where a result goes, and how it is kept while it grows: the result so
//! far is mirrored repetition by repetition (the new ones only, so a run
//! of thousands of repetitions does not copy itself thousands of times),
//! written to its file when the throttle says the measuring since the last
//! write outweighs that write, written at the end, and written once more,
//! marked `interrupted`, when SIGINT or SIGTERM stops the run. After that
//! write the saver takes nothing more, so the file keeps `interrupted`
//! whatever the run's own thread does before the process exits.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use taskbench::bench::ab::AbResult;
use taskbench::bench::export::{exporter, Exporter, Format};
use taskbench::bench::output::{OutputFile, Throttle};
use taskbench::bench::{RunResult, Status, SweepResult};

use super::term::{note, print};
use super::CliError;

/// Where a result goes.
#[derive(Debug)]
pub enum Target {
    /// A checked file.
    File(OutputFile),
    /// Standard output (`-`), written once, at the end.
    Stdout,
}

impl Target {
    /// The target of `--output`: `-` is stdout, anything else a file,
    /// checked now, before the first job.
    pub fn check(path: Option<&Path>) -> Result<Option<Target>, CliError> {
        Ok(match path {
            None => None,
            Some(p) if p == Path::new("-") => Some(Target::Stdout),
            Some(p) => Some(Target::File(OutputFile::check(p)?)),
        })
    }
}

/// The result as it grows.
enum Latest {
    Run(Box<RunResult>),
    Sweep(Box<SweepResult>),
    Ab(Box<AbResult>),
}

impl Latest {
    fn status(&mut self) -> &mut Status {
        match self {
            Latest::Run(r) => &mut r.status,
            Latest::Sweep(s) => &mut s.status,
            Latest::Ab(a) => &mut a.status,
        }
    }
}

struct Slot {
    target: Target,
    exporter: &'static dyn Exporter,
    latest: Option<Latest>,
    throttle: Throttle,
    /// Write errors so far, each path's first.
    error: Option<String>,
    /// A signal's write was made: the result is final.
    interrupted: bool,
}

impl Slot {
    fn render(&self) -> Option<String> {
        Some(match self.latest.as_ref()? {
            Latest::Run(r) => self.exporter.run(r),
            Latest::Sweep(s) => self.exporter.sweep(s),
            Latest::Ab(a) => self.exporter.ab(a),
        })
    }

    /// Writes the result so far to its file (stdout waits for the end).
    fn write_file(&mut self) -> Result<(), String> {
        let Target::File(file) = &self.target else {
            return Ok(());
        };
        let Some(text) = self.render() else {
            return Ok(());
        };
        let file = file.clone();
        self.throttle
            .time(|| file.write(text.as_bytes()))
            .map_err(|e| e.to_string())
    }

    fn save(&mut self) {
        if !self.interrupted && self.throttle.due() {
            if let Err(e) = self.write_file() {
                self.error.get_or_insert(e);
            }
        }
    }

    /// The final write, to the file or stdout.
    fn finish(&mut self) -> Result<(), CliError> {
        if self.interrupted {
            return Ok(());
        }
        match &self.target {
            Target::Stdout => self.render().map_or(Ok(()), |text| print(&text)),
            Target::File(_) => match self.write_file() {
                Ok(()) => {
                    if let Some(e) = self.error.take() {
                        note(&format!(
                            "warning: an earlier write failed ({e}); the final one succeeded"
                        ));
                    }
                    Ok(())
                }
                Err(e) => Err(CliError::Failed(e)),
            },
        }
    }
}

/// Every live saver, for the signal handler.
static SAVERS: Mutex<Vec<Weak<Mutex<Slot>>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes every live saver's result, marked interrupted (SIGINT, SIGTERM).
/// A write in progress finishes first: the saver's lock is held for it.
pub fn interrupt_all() {
    let savers: Vec<_> = lock(&SAVERS).iter().filter_map(Weak::upgrade).collect();
    for saver in savers {
        let mut slot = lock(&saver);
        if slot.interrupted {
            continue;
        }
        if let Some(latest) = slot.latest.as_mut() {
            *latest.status() = Status::Interrupted;
            let written = match slot.target {
                Target::Stdout => slot.finish(),
                Target::File(_) => slot.write_file().map_err(CliError::Failed),
            };
            if let Err(CliError::Failed(e)) = written {
                note(&format!("error: {e}"));
            }
        }
        slot.interrupted = true;
    }
}

/// Keeps one result and writes it (see the module doc).
pub struct Saver {
    slot: Option<Arc<Mutex<Slot>>>,
}

impl Saver {
    /// A saver writing to `target` in `format`; none when there is no
    /// target.
    pub fn new(target: Option<Target>, format: Format) -> Self {
        let slot = target.map(|target| {
            Arc::new(Mutex::new(Slot {
                target,
                exporter: exporter(format),
                latest: None,
                throttle: Throttle::default(),
                error: None,
                interrupted: false,
            }))
        });
        if let Some(slot) = &slot {
            let mut savers = lock(&SAVERS);
            savers.retain(|s| s.strong_count() > 0);
            savers.push(Arc::downgrade(slot));
        }
        Saver { slot }
    }

    /// A run measured another repetition (or ended): mirror what is new,
    /// and write if due.
    pub fn measured(&self, result: &RunResult) {
        let Some(slot) = &self.slot else { return };
        let mut slot = lock(slot);
        if slot.interrupted {
            return;
        }
        match &mut slot.latest {
            Some(Latest::Run(mirror)) if mirror.repetitions.len() <= result.repetitions.len() => {
                let known = mirror.repetitions.len();
                mirror
                    .repetitions
                    .extend_from_slice(&result.repetitions[known..]);
                mirror.summary.clone_from(&result.summary);
                mirror.status = result.status;
                mirror.failure.clone_from(&result.failure);
                mirror.network_setup_ms = result.network_setup_ms;
                mirror.flink.clone_from(&result.flink);
            }
            latest => *latest = Some(Latest::Run(Box::new(result.clone()))),
        }
        slot.save();
    }

    /// A sweep finished another point (or ended).
    pub fn swept(&self, sweep: &SweepResult) {
        let Some(slot) = &self.slot else { return };
        let mut slot = lock(slot);
        if slot.interrupted {
            return;
        }
        match &mut slot.latest {
            Some(Latest::Sweep(mirror)) if mirror.points.len() <= sweep.points.len() => {
                let known = mirror.points.len();
                mirror.points.extend_from_slice(&sweep.points[known..]);
                mirror.status = sweep.status;
            }
            latest => *latest = Some(Latest::Sweep(Box::new(sweep.clone()))),
        }
        slot.save();
    }

    /// An A/B session ran another run (or ended): mirror what is new, and
    /// write if due.
    pub fn ab(&self, session: &AbResult) {
        let Some(slot) = &self.slot else { return };
        let mut slot = lock(slot);
        if slot.interrupted {
            return;
        }
        match &mut slot.latest {
            Some(Latest::Ab(mirror))
                if mirror.runs.len() <= session.runs.len()
                    && mirror.pairs.len() <= session.pairs.len() =>
            {
                let (runs, pairs) = (mirror.runs.len(), mirror.pairs.len());
                mirror.runs.extend_from_slice(&session.runs[runs..]);
                mirror.pairs.extend_from_slice(&session.pairs[pairs..]);
                mirror.judgement.clone_from(&session.judgement);
                mirror.status = session.status;
                mirror.failure.clone_from(&session.failure);
                mirror.stop = session.stop;
            }
            latest => *latest = Some(Latest::Ab(Box::new(session.clone()))),
        }
        slot.save();
    }

    /// The run stopped on an error after measuring: keep what was measured,
    /// marked failed.
    pub fn failed(&self, why: &str) {
        let Some(slot) = &self.slot else { return };
        let mut slot = lock(slot);
        if slot.interrupted {
            return;
        }
        match &mut slot.latest {
            Some(Latest::Run(r)) => {
                r.status = Status::Failed;
                r.failure.get_or_insert_with(|| why.to_string());
            }
            Some(Latest::Sweep(s)) => s.status = Status::Failed,
            Some(Latest::Ab(a)) => a.status = Status::Failed,
            None => {}
        }
    }

    /// Writes the result a last time (to the file, or to stdout).
    pub fn finish(&self) -> Result<(), CliError> {
        match &self.slot {
            Some(slot) => lock(slot).finish(),
            None => Ok(()),
        }
    }
}
