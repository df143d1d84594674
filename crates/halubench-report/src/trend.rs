//! Trend lines: one line with markers per series over categorical x labels (e.g. run dates).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::chart::{
    self, Chart, DrawResult, Figure, LABEL_SIZE, LEGEND_TEXT_MAX, MARGIN, Mark, TEXT, X_AREA,
    Y_AREA,
};
use crate::error::ReportError;

const KIND: &str = "trend";

/// One line of a [`Trend`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrendSeries {
    /// Shown in the legend.
    pub name: String,
    /// `(x label, value in percent)`, e.g. `("2026-03-01", 81.5)`. A series may skip labels
    /// that other series have; it may not repeat one.
    pub points: Vec<(String, f64)>,
}

/// Input of [`trend_lines`].
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    /// The chart title.
    pub title: String,
    /// The y axis name, e.g. `"accuracy (%)"`.
    pub y_label: String,
    /// The x axis in order (times, say). Empty: the union of the series' labels in
    /// first-seen order. Every point's label must be one of them.
    pub labels: Vec<String>,
    /// One per line.
    pub series: Vec<TrendSeries>,
}

/// Lines with markers over categorical x labels: `labels`, or the union of all series'
/// labels in first-seen order. The y axis runs 0–100, widened if a value lies outside.
///
/// # Errors
/// [`ReportError::Empty`] without series or without any point, [`ReportError::BadValue`] for a
/// non-finite value or an x label repeated within one series.
pub fn trend_lines(trend: &Trend) -> Result<Chart, ReportError> {
    let xs = validate(trend)?;
    chart::render(&TrendFigure::layout(trend, xs)?)
}

/// Checks `trend` and returns the x labels in order.
fn validate(trend: &Trend) -> Result<Vec<&str>, ReportError> {
    if trend.series.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "series",
        });
    }
    let mut xs: Vec<&str> = trend.labels.iter().map(String::as_str).collect();
    let given = !xs.is_empty();
    for series in &trend.series {
        for (index, (label, value)) in series.points.iter().enumerate() {
            let bad = |problem: String| ReportError::BadValue {
                chart: KIND,
                series: series.name.clone(),
                index,
                label: label.clone(),
                problem,
            };
            if !value.is_finite() {
                return Err(bad(format!("value is {value}")));
            }
            if series.points[..index].iter().any(|(l, _)| l == label) {
                return Err(bad("the x label appears twice in this series".into()));
            }
            if !xs.contains(&label.as_str()) {
                if given {
                    return Err(bad("the x label is not among the chart's labels".into()));
                }
                xs.push(label);
            }
        }
    }
    if xs.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "points",
        });
    }
    Ok(xs)
}

const X_STEP_PX: u32 = 90;
const MAX_X_LABEL: u32 = 160;

#[derive(Debug)]
struct TrendFigure {
    title: String,
    y_label: String,
    names: Vec<String>,
    /// The x labels, fitted; `None` where a label is skipped to keep neighbours apart.
    xs: Vec<Option<String>>,
    /// Index of each series' points along x, sorted by x.
    points: Vec<Vec<(usize, f64)>>,
    y_range: (f64, f64),
    width: u32,
    height: u32,
    legend_width: u32,
}

impl TrendFigure {
    fn layout(input: &Trend, xs: Vec<&str>) -> Result<Self, ReportError> {
        let n = u32::try_from(xs.len()).unwrap_or(u32::MAX);
        let plot_px = n.saturating_mul(X_STEP_PX).clamp(560, 1800);
        let step_px = plot_px / n;
        // Show every k-th label when the labels are wider than the space between points.
        let widest = chart::widest(xs.iter().copied(), LABEL_SIZE)?.min(MAX_X_LABEL) + 12;
        let every = widest.div_ceil(step_px.max(1)).max(1) as usize;
        let label_px = step_px
            .saturating_mul(every as u32)
            .saturating_sub(12)
            .min(MAX_X_LABEL);
        let fitted = xs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                if i % every == 0 {
                    chart::fit(x, LABEL_SIZE, label_px).map(Some)
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;

        let points: Vec<Vec<(usize, f64)>> = input
            .series
            .iter()
            .map(|s| {
                let mut p: Vec<(usize, f64)> = s
                    .points
                    .iter()
                    .filter_map(|(label, v)| xs.iter().position(|x| x == label).map(|i| (i, *v)))
                    .collect();
                p.sort_by_key(|&(i, _)| i);
                p
            })
            .collect();
        let (lo, hi) = points
            .iter()
            .flatten()
            .fold((0.0f64, 100.0f64), |(lo, hi), &(_, v)| {
                (lo.min(v), hi.max(v))
            });

        let names = input
            .series
            .iter()
            .map(|s| chart::fit(&s.name, LABEL_SIZE, LEGEND_TEXT_MAX))
            .collect::<Result<Vec<_>, _>>()?;
        let legend_width = chart::legend_width(&names)?;
        let width = Y_AREA + plot_px + 2 * MARGIN + legend_width;
        let n_names = u32::try_from(names.len()).unwrap_or(u32::MAX);
        let height = n_names
            .saturating_mul(chart::LEGEND_ROW as u32)
            .saturating_add(X_AREA + 100)
            .max(440);
        let title = chart::fit(&input.title, chart::TITLE_SIZE, width - 2 * MARGIN)?;
        let y_label = chart::fit(&input.y_label, LABEL_SIZE, height - 140)?;
        Ok(Self {
            title,
            y_label,
            names,
            xs: fitted,
            points,
            y_range: (lo, hi),
            width,
            height,
            legend_width,
        })
    }
}

impl Figure for TrendFigure {
    const KIND: &'static str = KIND;

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = chart::titled(root, &self.title)?;
        let (plot_area, legend_area) = body.split_horizontally(self.width - self.legend_width);
        let n = self.xs.len() as f64;
        let (lo, hi) = self.y_range;
        let mut plot = ChartBuilder::on(&plot_area)
            .margin(MARGIN)
            .margin_top(8)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(-0.5f64..n - 0.5, lo..hi)?;
        plot.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(11)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc(self.y_label.as_str())
            .label_style(chart::font(LABEL_SIZE).color(&TEXT))
            .axis_desc_style(chart::font(LABEL_SIZE).color(&TEXT))
            .light_line_style(TRANSPARENT)
            .bold_line_style(chart::GRID)
            .draw()?;

        for (s, points) in self.points.iter().enumerate() {
            let color = chart::series_color(s);
            let line: Vec<(f64, f64)> = points.iter().map(|&(i, v)| (i as f64, v)).collect();
            if line.len() > 1 {
                plot.draw_series([PathElement::new(line.clone(), color.stroke_width(3))])?;
            }
            plot.draw_series(line.iter().map(|&p| Circle::new(p, 5, color.filled())))?;
            plot.draw_series(
                line.iter()
                    .map(|&p| Circle::new(p, 5, WHITE.stroke_width(1))),
            )?;
        }

        let label_style = chart::text_style(LABEL_SIZE, &TEXT, HPos::Center, VPos::Top);
        for (i, label) in self.xs.iter().enumerate() {
            let Some(label) = label else { continue };
            let (px, py) = plot.backend_coord(&(i as f64, lo));
            root.draw_text(label, &label_style, (px, py + 10))?;
        }

        let (_, plot_top) = plot.backend_coord(&(0.0, hi));
        let (_, body_top) = legend_area.get_base_pixel();
        chart::draw_legend(&legend_area, &self.names, Mark::Line, plot_top - body_top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::tests::{assert_png, svg_has_text};

    fn series(name: &str, points: &[(&str, f64)]) -> TrendSeries {
        TrendSeries {
            name: name.into(),
            points: points.iter().map(|(l, v)| ((*l).into(), *v)).collect(),
        }
    }

    fn sample() -> Trend {
        Trend {
            labels: Vec::new(),
            title: "Accuracy over runs".into(),
            y_label: "accuracy (%)".into(),
            series: vec![
                series(
                    "baseline",
                    &[
                        ("2026-01-05", 60.0),
                        ("2026-02-02", 61.5),
                        ("2026-03-01", 59.0),
                    ],
                ),
                series(
                    "llama-3.1-8b",
                    &[
                        ("2026-02-02", 77.0),
                        ("2026-03-01", 80.5),
                        ("2026-04-01", 82.0),
                    ],
                ),
            ],
        }
    }

    #[test]
    fn svg_holds_title_labels_and_names() {
        let chart = trend_lines(&sample()).expect("chart");
        for text in [
            "Accuracy over runs",
            "accuracy (%)",
            "2026-01-05",
            "2026-02-02",
            "2026-03-01",
            "2026-04-01",
            "baseline",
            "llama-3.1-8b",
        ] {
            assert!(svg_has_text(&chart.svg, text), "{text} missing");
        }
    }

    #[test]
    fn png_decodes_to_its_size_and_has_text() {
        assert_png(&trend_lines(&sample()).expect("chart"));
    }

    #[test]
    fn given_labels_fix_the_order_and_points_must_use_them() {
        let input = Trend {
            labels: vec!["d1".into(), "d2".into(), "d3".into()],
            series: vec![
                series("a", &[("d1", 1.0), ("d3", 3.0)]),
                series("b", &[("d2", 2.0), ("d3", 4.0)]),
            ],
            ..sample()
        };
        assert_eq!(validate(&input).expect("valid"), ["d1", "d2", "d3"]);
        let figure = TrendFigure::layout(&input, validate(&input).expect("valid")).expect("layout");
        assert_eq!(figure.points[0], [(0, 1.0), (2, 3.0)]);
        let stray = Trend {
            labels: vec!["d1".into()],
            series: vec![series("a", &[("d1", 1.0), ("d9", 3.0)])],
            ..sample()
        };
        assert!(matches!(
            validate(&stray),
            Err(ReportError::BadValue { index: 1, .. })
        ));
    }

    #[test]
    fn x_labels_are_the_union_in_first_seen_order() {
        let input = Trend {
            labels: Vec::new(),
            series: vec![
                series("a", &[("d1", 1.0), ("d3", 3.0)]),
                series("b", &[("d2", 2.0), ("d3", 4.0)]),
            ],
            ..sample()
        };
        assert_eq!(validate(&input).expect("valid"), ["d1", "d3", "d2"]);
        let figure = TrendFigure::layout(&input, validate(&input).expect("valid")).expect("layout");
        // b's points sorted along x: d3 (index 1) before d2 (index 2).
        assert_eq!(figure.points[1], [(1, 4.0), (2, 2.0)]);
    }

    #[test]
    fn values_outside_0_to_100_widen_the_axis() {
        let input = Trend {
            labels: Vec::new(),
            series: vec![series("delta", &[("a", -12.0), ("b", 130.0)])],
            ..sample()
        };
        let figure = TrendFigure::layout(&input, validate(&input).expect("valid")).expect("layout");
        assert_eq!(figure.y_range, (-12.0, 130.0));
        trend_lines(&input).expect("draws");
    }

    #[test]
    fn many_labels_are_thinned_not_overlapped() {
        let points: Vec<(String, f64)> = (0..60)
            .map(|i| (format!("2026-01-{i:02}T00:00"), f64::from(i)))
            .collect();
        let input = Trend {
            labels: Vec::new(),
            series: vec![TrendSeries {
                name: "x".into(),
                points,
            }],
            ..sample()
        };
        let figure = TrendFigure::layout(&input, validate(&input).expect("valid")).expect("layout");
        let shown = figure.xs.iter().flatten().count();
        assert!(shown > 1 && shown < 60, "{shown}");
        trend_lines(&input).expect("draws");
    }

    #[test]
    fn bad_points_name_series_and_index() {
        let mut input = sample();
        input.series[1].points[2].1 = f64::INFINITY;
        let msg = trend_lines(&input).expect_err("inf").to_string();
        assert!(
            msg.contains("\"llama-3.1-8b\"")
                && msg.contains("index 2")
                && msg.contains("2026-04-01"),
            "{msg}"
        );

        let mut input = sample();
        input.series[0].points[1].0 = "2026-01-05".into();
        let msg = trend_lines(&input).expect_err("dup").to_string();
        assert!(
            msg.contains("\"baseline\"") && msg.contains("index 1") && msg.contains("twice"),
            "{msg}"
        );
    }

    #[test]
    fn no_points_is_empty() {
        let input = Trend {
            labels: Vec::new(),
            series: vec![series("a", &[])],
            ..sample()
        };
        assert!(matches!(
            trend_lines(&input),
            Err(ReportError::Empty { what: "points", .. })
        ));
        let input = Trend {
            labels: Vec::new(),
            series: vec![],
            ..sample()
        };
        assert!(matches!(
            trend_lines(&input),
            Err(ReportError::Empty { what: "series", .. })
        ));
    }
}
