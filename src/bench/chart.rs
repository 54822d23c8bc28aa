//! SVG charts of a sweep: throughput against the first axis, one line per
//! combination of the other axes; and, when latency was measured, latency
//! percentiles against the first axis (e.g. the offered load).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::checkpoint_figures::CheckpointFigures;
use super::output::{OutputError, OutputFile};
use super::result::SweepResult;

/// One line of a chart: its label and its (x index, y) points.
type Series = (String, Vec<(usize, f64)>);

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Per combination of the other axes: its label and, for each of its
/// points, (x index, point index).
type Lines = Vec<(String, Vec<(usize, usize)>)>;

/// The first axis's name and values (x labels), and the lines.
fn layout(sweep: &SweepResult) -> (String, Vec<String>, Lines) {
    let axis = sweep
        .profile
        .sweep
        .first()
        .map_or_else(|| "point".to_string(), |a| a.set.clone());
    let mut xs: Vec<String> = Vec::new();
    let mut series: Vec<(String, Vec<(usize, usize)>)> = Vec::new();
    for (i, point) in sweep.points.iter().enumerate() {
        let (x, rest) = match point.overrides.split_first() {
            Some((first, rest)) => (
                first
                    .split_once('=')
                    .map_or(first.as_str(), |(_, v)| v)
                    .to_string(),
                rest.join(", "),
            ),
            None => (i.to_string(), String::new()),
        };
        let xi = xs.iter().position(|v| *v == x).unwrap_or_else(|| {
            xs.push(x);
            xs.len() - 1
        });
        let label = if rest.is_empty() {
            sweep.profile.name.clone()
        } else {
            rest
        };
        match series.iter_mut().find(|(l, _)| *l == label) {
            Some((_, points)) => points.push((xi, i)),
            None => series.push((label, vec![(xi, i)])),
        }
    }
    (axis, xs, series)
}

/// The chart as SVG text.
fn draw(
    title: &str,
    x_desc: &str,
    xs: &[String],
    y_desc: &str,
    series: &[Series],
    log_y: bool,
) -> Result<String, String> {
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (960, 600)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("cannot draw {title}: {e}");
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let y_max = ys.clone().fold(0.0f64, f64::max).max(1.0);
    let y_min = ys.fold(f64::INFINITY, f64::min).max(1.0);
    let x_range = -0.5f64..(xs.len().max(1) as f64 - 0.5);
    let x_label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            xs.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(90);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_labels(xs.len().max(1) * 2 + 1)
                .x_label_formatter(&x_label)
                .y_label_formatter(&|y: &f64| super::report::thousands(*y))
                .x_desc(x_desc)
                .y_desc(y_desc)
                .draw()
                .map_err(|e| fail(&e))?;
            for (k, (label, points)) in series.iter().enumerate() {
                let color = PALETTE[k % PALETTE.len()];
                let line: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x as f64, y)).collect();
                chart
                    .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                    .map_err(|e| fail(&e))?
                    .label(label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(line.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                    .map_err(|e| fail(&e))?;
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(&e))?;
        }};
    }
    if log_y {
        finish!(builder
            .build_cartesian_2d(x_range, ((y_min * 0.8)..(y_max * 1.5)).log_scale())
            .map_err(|e| fail(&e))?);
    } else {
        finish!(builder
            .build_cartesian_2d(x_range, 0.0..y_max * 1.15)
            .map_err(|e| fail(&e))?);
    }
    root.present().map_err(|e| fail(&e))?;
    drop(root);
    Ok(svg)
}

/// A sweep's chart files: `<profile>-throughput.svg`,
/// `<profile>-latency.svg` and `<profile>-checkpoints.svg` in the chart
/// directory.
#[derive(Clone, Debug)]
pub struct Charts {
    throughput: OutputFile,
    latency: OutputFile,
    checkpoints: OutputFile,
}

impl Charts {
    /// The chart files of profile `name` in `dir`, checked before the
    /// sweep runs (a profile's name holds no path separator).
    pub fn check(dir: &Path, name: &str) -> Result<Self, OutputError> {
        let file = |kind: &str| OutputFile::check(&dir.join(format!("{name}-{kind}.svg")));
        Ok(Charts {
            throughput: file("throughput")?,
            latency: file("latency")?,
            checkpoints: file("checkpoints")?,
        })
    }

    /// Draws the sweep's throughput chart and, when latency was measured,
    /// its latency chart. Returns the files written and every error.
    pub fn draw(&self, sweep: &SweepResult) -> (Vec<PathBuf>, Vec<String>) {
        let (mut written, mut errors) = (Vec::new(), Vec::new());
        for (file, svg) in [
            (&self.throughput, Some(throughput_chart(sweep))),
            (&self.latency, latency_chart(sweep)),
            (&self.checkpoints, checkpoint_chart(sweep)),
        ] {
            let Some(svg) = svg else { continue };
            match svg.and_then(|svg| file.write(svg.as_bytes()).map_err(|e| e.to_string())) {
                Ok(()) => written.push(file.path().to_path_buf()),
                Err(e) => errors.push(e),
            }
        }
        (written, errors)
    }
}

fn throughput_chart(sweep: &SweepResult) -> Result<String, String> {
    let (axis, xs, layout) = layout(sweep);
    let name = &sweep.profile.name;
    let summary = |i: usize| sweep.points[i].result.summary.as_ref();
    let throughput: Vec<Series> = layout
        .iter()
        .map(|(label, points)| {
            let values = points
                .iter()
                .filter_map(|&(x, i)| Some((x, summary(i)?.records_per_ms.median)))
                .collect();
            (label.clone(), values)
        })
        .collect();
    draw(
        &format!("{name}: throughput (median of repetitions)"),
        &axis,
        &xs,
        "records/ms",
        &throughput,
        false,
    )
}

/// The checkpoint chart, when any point checkpointed: end-to-end median
/// and p90, start delay and alignment, in milliseconds.
fn checkpoint_chart(sweep: &SweepResult) -> Option<Result<String, String>> {
    let (axis, xs, layout) = layout(sweep);
    let name = &sweep.profile.name;
    let figures = |i: usize| {
        sweep.points[i]
            .result
            .summary
            .as_ref()?
            .checkpoints
            .as_ref()
    };
    if !(0..sweep.points.len()).any(|i| figures(i).is_some_and(|c| c.completed > 0)) {
        return None;
    }
    type Pick = fn(&CheckpointFigures) -> f64;
    let metrics: [(&str, Pick); 4] = [
        ("end-to-end p50", |c| c.end_to_end_ms.median),
        ("end-to-end p90", |c| c.end_to_end_ms.p90),
        ("start delay p50", |c| c.start_delay_ms.median),
        ("alignment p50", |c| c.alignment_ms.median),
    ];
    let mut series: Vec<Series> = Vec::new();
    for (label, points) in &layout {
        for (metric, pick) in metrics {
            let values = points
                .iter()
                .filter_map(|&(x, i)| Some((x, pick(figures(i)?))))
                .collect();
            let series_label = if layout.len() == 1 {
                metric.to_string()
            } else {
                format!("{metric} {label}")
            };
            series.push((series_label, values));
        }
    }
    Some(draw(
        &format!("{name}: checkpoints (ms)"),
        &axis,
        &xs,
        "ms",
        &series,
        false,
    ))
}

/// The latency chart, when any point measured latency.
fn latency_chart(sweep: &SweepResult) -> Option<Result<String, String>> {
    let (axis, xs, layout) = layout(sweep);
    let name = &sweep.profile.name;
    let summary = |i: usize| sweep.points[i].result.summary.as_ref();
    let measured =
        (0..sweep.points.len()).any(|i| summary(i).is_some_and(|s| s.latency_ns.is_some()));
    if !measured {
        return None;
    }
    let mut latency: Vec<Series> = Vec::new();
    for (label, points) in &layout {
        type Pick = fn(&super::result::Latency) -> u64;
        let percentiles: [(&str, Pick); 4] = [
            ("p50", |l| l.p50),
            ("p90", |l| l.p90),
            ("p99", |l| l.p99),
            ("p99.9", |l| l.p999),
        ];
        for (pname, pick) in percentiles {
            let values = points
                .iter()
                .filter_map(|&(x, i)| Some((x, pick(&summary(i)?.latency_ns?) as f64)))
                .collect();
            let series_label = if layout.len() == 1 {
                pname.to_string()
            } else {
                format!("{pname} {label}")
            };
            latency.push((series_label, values));
        }
    }
    Some(draw(
        &format!("{name}: latency percentiles (coordinated-omission corrected)"),
        &axis,
        &xs,
        "latency (ns, log scale)",
        &latency,
        true,
    ))
}
