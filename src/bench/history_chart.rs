//! The SVG trend chart of one figure's history: each result's median as a
//! line, its repetitions' range (min to max) as a whisker, and the change
//! points found over the series as red verticals at the first result of
//! each new regime.

use plotters::prelude::*;

use super::history::Entry;

const LINE: RGBColor = RGBColor(31, 119, 180);
const WHISKER: RGBColor = RGBColor(120, 160, 200);
const CHANGE: RGBColor = RGBColor(214, 39, 40);

/// The chart as SVG text; `changes` are indices into `entries`.
pub fn trend(title: &str, entries: &[Entry], changes: &[usize]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| format!("cannot draw {title}: {e}");
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let range = |e: &Entry| {
            let lo = e.repetitions.iter().copied().fold(e.median, f64::min);
            let hi = e.repetitions.iter().copied().fold(e.median, f64::max);
            (lo, hi)
        };
        let y_lo = entries
            .iter()
            .map(|e| range(e).0)
            .fold(f64::INFINITY, f64::min);
        let y_hi = entries.iter().map(|e| range(e).1).fold(0.0, f64::max);
        let (y_lo, y_hi) = if y_lo.is_finite() && y_hi > y_lo {
            let pad = 0.05 * (y_hi - y_lo);
            ((y_lo - pad).max(0.0), y_hi + pad)
        } else {
            (0.0, y_hi.max(1.0) * 1.1)
        };
        let n = entries.len().max(1);
        let label = |x: &f64| {
            let i = x.round();
            match entries.get(i as usize) {
                Some(e) if (x - i).abs() < 1e-6 && i >= 0.0 => {
                    e.git_revision.as_deref().map_or_else(
                        || e.date.get(..10).unwrap_or("").to_string(),
                        |r| r.chars().take(7).collect::<String>() + if e.dirty { "+" } else { "" },
                    )
                }
                _ => String::new(),
            }
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(100)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y_lo..y_hi)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&label)
            .y_label_formatter(&|y: &f64| {
                if y.abs() >= 1000.0 {
                    super::report::thousands(*y)
                } else {
                    format!("{y:.2}")
                }
            })
            .x_desc("result (git revision, + = dirty tree), oldest first")
            .y_desc(entries.first().map_or("", |e| e.figure.as_str()))
            .draw()
            .map_err(|e| fail(&e))?;
        for &c in changes {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(c as f64 - 0.5, y_lo), (c as f64 - 0.5, y_hi)],
                    CHANGE.stroke_width(2),
                )))
                .map_err(|e| fail(&e))?;
        }
        chart
            .draw_series(entries.iter().enumerate().map(|(i, e)| {
                let (lo, hi) = range(e);
                PathElement::new(
                    vec![(i as f64, lo), (i as f64, hi)],
                    WHISKER.stroke_width(3),
                )
            }))
            .map_err(|e| fail(&e))?
            .label("repetitions: min to max")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], WHISKER.stroke_width(3)));
        let medians: Vec<(f64, f64)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i as f64, e.median))
            .collect();
        chart
            .draw_series(LineSeries::new(medians.clone(), LINE.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label("median")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], LINE.stroke_width(2)));
        chart
            .draw_series(
                medians
                    .into_iter()
                    .map(|p| Circle::new(p, 3, LINE.filled())),
            )
            .map_err(|e| fail(&e))?;
        if !changes.is_empty() {
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
                .map_err(|e| fail(&e))?
                .label("change point (first result of a new regime)")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], CHANGE.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}
