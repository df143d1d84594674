//! Grouped accuracy bars with confidence whiskers: one group per task, one bar per judge.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::chart::{
    self, Chart, DrawResult, Figure, LABEL_SIZE, LEGEND_TEXT_MAX, MARGIN, MUTED, Mark, SMALL_SIZE,
    TEXT, X_AREA, Y_AREA,
};
use crate::error::ReportError;

const KIND: &str = "accuracy bars";

/// One bar with a confidence whisker; all in percent (0–100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Whisker {
    /// The bar's height.
    pub value: f64,
    /// The lower end of the whisker.
    pub lower: f64,
    /// The upper end of the whisker.
    pub upper: f64,
}

/// One judge's bars, one per group (task).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The judge's name, shown in the legend.
    pub name: String,
    /// One per group, in the order of [`GroupedBars::groups`]; `None` = the judge has no rows of
    /// that task (drawn as a grey "n/a").
    pub values: Vec<Option<Whisker>>,
}

/// Input of [`accuracy_bars`].
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedBars {
    /// The chart title.
    pub title: String,
    /// Group headings along the x axis (tasks).
    pub groups: Vec<String>,
    /// One series per judge.
    pub series: Vec<Series>,
}

/// Grouped bars with whiskers, a legend of judge names beside the plot, y axis 0–100
/// "accuracy (%)".
///
/// # Errors
/// [`ReportError::Empty`] without groups or series, [`ReportError::LengthMismatch`] when a series
/// has not one value per group, [`ReportError::BadValue`] for a non-finite number, one outside
/// 0–100, or a lower end above the upper end.
pub fn accuracy_bars(chart: &GroupedBars) -> Result<Chart, ReportError> {
    validate(chart)?;
    chart::render(&BarsFigure::layout(chart)?)
}

/// Allowed slack on the 0–100 range for floating-point noise (e.g. 100.00000000000001).
const SLACK: f64 = 1e-6;

fn validate(chart: &GroupedBars) -> Result<(), ReportError> {
    if chart.groups.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "groups",
        });
    }
    if chart.series.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "series",
        });
    }
    for series in &chart.series {
        if series.values.len() != chart.groups.len() {
            return Err(ReportError::LengthMismatch {
                chart: KIND,
                series: series.name.clone(),
                found: series.values.len(),
                expected: chart.groups.len(),
                what: "groups",
            });
        }
        for (index, whisker) in series.values.iter().enumerate() {
            let Some(w) = whisker else { continue };
            let problem = whisker_problem(w);
            if let Some(problem) = problem {
                return Err(ReportError::BadValue {
                    chart: KIND,
                    series: series.name.clone(),
                    index,
                    label: chart.groups[index].clone(),
                    problem,
                });
            }
        }
    }
    Ok(())
}

fn whisker_problem(w: &Whisker) -> Option<String> {
    for (what, v) in [("value", w.value), ("lower", w.lower), ("upper", w.upper)] {
        if !v.is_finite() {
            return Some(format!("{what} is {v}"));
        }
        if !(-SLACK..=100.0 + SLACK).contains(&v) {
            return Some(format!("{what} {v} is outside 0–100"));
        }
    }
    (w.lower > w.upper).then(|| format!("lower {} is above upper {}", w.lower, w.upper))
}

/// Pixels per bar, and the space between groups.
const BAR_PX: u32 = 34;
const GROUP_GAP_PX: u32 = 40;
const MIN_GROUP_PX: u32 = 130;
const MAX_PLOT_PX: u32 = 3000;
/// Share of a group's width left empty on each side.
const GROUP_PAD: f64 = 0.12;

#[derive(Debug)]
struct BarsFigure<'a> {
    input: &'a GroupedBars,
    title: String,
    groups: Vec<String>,
    names: Vec<String>,
    width: u32,
    height: u32,
    legend_width: u32,
}

impl<'a> BarsFigure<'a> {
    fn layout(input: &'a GroupedBars) -> Result<Self, ReportError> {
        let n_groups = input.groups.len() as u32;
        let n_series = input.series.len() as u32;
        let group_px = n_series
            .saturating_mul(BAR_PX)
            .saturating_add(GROUP_GAP_PX)
            .max(MIN_GROUP_PX);
        let plot_px = group_px.saturating_mul(n_groups).clamp(480, MAX_PLOT_PX);
        let label_px = (plot_px / n_groups).saturating_sub(8).max(20);
        let groups = input
            .groups
            .iter()
            .map(|g| chart::fit(g, LABEL_SIZE, label_px))
            .collect::<Result<Vec<_>, _>>()?;
        let names = input
            .series
            .iter()
            .map(|s| chart::fit(&s.name, LABEL_SIZE, LEGEND_TEXT_MAX))
            .collect::<Result<Vec<_>, _>>()?;
        let legend_width = chart::legend_width(&names)?;
        let width = Y_AREA + plot_px + 2 * MARGIN + legend_width;
        let title = chart::fit(&input.title, chart::TITLE_SIZE, width - 2 * MARGIN)?;
        let legend_px = n_series.saturating_mul(chart::LEGEND_ROW as u32);
        let height = legend_px.saturating_add(X_AREA + 100).max(480);
        Ok(Self {
            input,
            title,
            groups,
            names,
            width,
            height,
            legend_width,
        })
    }
}

impl Figure for BarsFigure<'_> {
    const KIND: &'static str = KIND;

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = chart::titled(root, &self.title)?;
        let (plot_area, legend_area) = body.split_horizontally(self.width - self.legend_width);
        let n_groups = self.groups.len();
        let mut plot = ChartBuilder::on(&plot_area)
            .margin(MARGIN)
            .margin_top(8)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(0f64..n_groups as f64, 0f64..100f64)?;
        plot.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(11)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc("accuracy (%)")
            .label_style(chart::font(LABEL_SIZE).color(&TEXT))
            .axis_desc_style(chart::font(LABEL_SIZE).color(&TEXT))
            .light_line_style(TRANSPARENT)
            .bold_line_style(chart::GRID)
            .draw()?;

        let n_series = self.input.series.len();
        let slot = (1.0 - 2.0 * GROUP_PAD) / n_series as f64;
        let inset = slot * 0.08;
        let cap = slot * 0.22;
        let whisker_style = ShapeStyle::from(&TEXT).stroke_width(2);
        let na_style = chart::text_style(SMALL_SIZE, &MUTED, HPos::Center, VPos::Bottom);
        for (s, series) in self.input.series.iter().enumerate() {
            let color = chart::series_color(s);
            for (g, whisker) in series.values.iter().enumerate() {
                let x0 = g as f64 + GROUP_PAD + s as f64 * slot;
                let mid = x0 + slot / 2.0;
                let Some(w) = whisker else {
                    let (px, py) = plot.backend_coord(&(mid, 0.0));
                    root.draw_text("n/a", &na_style, (px, py - 3))?;
                    continue;
                };
                let (value, lower, upper) = (clamp(w.value), clamp(w.lower), clamp(w.upper));
                plot.draw_series([Rectangle::new(
                    [(x0 + inset, 0.0), (x0 + slot - inset, value)],
                    color.filled(),
                )])?;
                plot.draw_series([
                    PathElement::new(vec![(mid, lower), (mid, upper)], whisker_style),
                    PathElement::new(vec![(mid - cap, lower), (mid + cap, lower)], whisker_style),
                    PathElement::new(vec![(mid - cap, upper), (mid + cap, upper)], whisker_style),
                ])?;
            }
        }

        let label_style = chart::text_style(LABEL_SIZE, &TEXT, HPos::Center, VPos::Top);
        for (g, label) in self.groups.iter().enumerate() {
            let (px, py) = plot.backend_coord(&(g as f64 + 0.5, 0.0));
            root.draw_text(label, &label_style, (px, py + 10))?;
        }

        let (_, plot_top) = plot.backend_coord(&(0.0, 100.0));
        let (_, body_top) = legend_area.get_base_pixel();
        chart::draw_legend(&legend_area, &self.names, Mark::Swatch, plot_top - body_top)
    }
}

fn clamp(v: f64) -> f64 {
    v.clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::tests::{assert_png, svg_has_text};

    fn w(value: f64, lower: f64, upper: f64) -> Option<Whisker> {
        Some(Whisker {
            value,
            lower,
            upper,
        })
    }

    pub(crate) fn sample() -> GroupedBars {
        GroupedBars {
            title: "Accuracy by task".into(),
            groups: vec!["summarization".into(), "qa".into(), "dialogue".into()],
            series: vec![
                Series {
                    name: "baseline".into(),
                    values: vec![w(61.0, 55.2, 66.5), w(48.0, 42.0, 54.0), None],
                },
                Series {
                    name: "llama-3.1-8b-instruct-q4_k_m".into(),
                    values: vec![
                        w(78.5, 73.0, 83.1),
                        w(81.0, 76.0, 85.5),
                        w(70.0, 64.0, 75.0),
                    ],
                },
            ],
        }
    }

    #[test]
    fn svg_holds_title_and_every_label() {
        let chart = accuracy_bars(&sample()).expect("chart");
        for text in [
            "Accuracy by task",
            "summarization",
            "qa",
            "dialogue",
            "baseline",
            "llama-3.1-8b-instruct-q4_k_m",
            "accuracy (%)",
            "n/a",
        ] {
            assert!(svg_has_text(&chart.svg, text), "{text} missing");
        }
        assert!(chart.svg.starts_with("<svg"));
    }

    #[test]
    fn png_decodes_to_its_size_and_has_text() {
        let chart = accuracy_bars(&sample()).expect("chart");
        assert_png(&chart);
    }

    #[test]
    fn markup_in_names_is_escaped_in_the_svg() {
        let mut input = sample();
        input.series[0].name = "a<b&c".into();
        input.title = "<script>x</script>".into();
        let chart = accuracy_bars(&input).expect("chart");
        assert!(svg_has_text(&chart.svg, "a&lt;b&amp;c"));
        assert!(svg_has_text(&chart.svg, "&lt;script&gt;x&lt;/script&gt;"));
        assert!(!chart.svg.contains("a<b"));
        assert!(!chart.svg.to_lowercase().contains("<script"));
    }

    #[test]
    fn long_group_names_are_cut_with_an_ellipsis() {
        let mut input = sample();
        input.groups[0] = "a task heading far too long to fit below its own bars at all".into();
        let chart = accuracy_bars(&input).expect("chart");
        assert!(chart.svg.contains('\u{2026}'));
        assert!(!chart.svg.contains("at all"));
    }

    #[test]
    fn series_of_the_wrong_length_is_named() {
        let mut input = sample();
        input.series[1].values.pop();
        let err = accuracy_bars(&input).expect_err("mismatch");
        assert!(matches!(
            err,
            ReportError::LengthMismatch {
                found: 2,
                expected: 3,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("llama-3.1-8b-instruct-q4_k_m") && msg.contains('2') && msg.contains('3'),
            "{msg}"
        );
    }

    #[test]
    fn nan_is_reported_with_series_and_index() {
        let mut input = sample();
        input.series[0].values[1] = w(f64::NAN, 1.0, 2.0);
        let err = accuracy_bars(&input).expect_err("nan");
        let msg = err.to_string();
        assert!(
            msg.contains("\"baseline\"")
                && msg.contains("index 1")
                && msg.contains("qa")
                && msg.contains("NaN"),
            "{msg}"
        );
    }

    #[test]
    fn out_of_range_and_inverted_whiskers_are_rejected() {
        let mut input = sample();
        input.series[1].values[2] = w(70.0, 64.0, 100.5);
        assert!(
            accuracy_bars(&input)
                .expect_err("range")
                .to_string()
                .contains("outside 0–100")
        );
        input.series[1].values[2] = w(70.0, 75.0, 64.0);
        assert!(
            accuracy_bars(&input)
                .expect_err("order")
                .to_string()
                .contains("above upper")
        );
        // Floating-point noise at the ends is fine.
        input.series[1].values[2] = w(100.000_000_000_01, 90.0, 100.000_000_000_01);
        accuracy_bars(&input).expect("noise is tolerated");
    }

    #[test]
    fn thousands_of_series_are_refused_not_drawn() {
        let mut input = sample();
        let one = input.series[1].clone();
        input.series = vec![one; 5000];
        assert!(matches!(
            accuracy_bars(&input),
            Err(ReportError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_input_is_an_error() {
        let mut input = sample();
        input.series.clear();
        assert!(matches!(
            accuracy_bars(&input),
            Err(ReportError::Empty { what: "series", .. })
        ));
        input.groups.clear();
        assert!(matches!(
            accuracy_bars(&input),
            Err(ReportError::Empty { what: "groups", .. })
        ));
    }
}
