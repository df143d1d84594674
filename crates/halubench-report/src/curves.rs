//! Curves on the unit square: ROC curves and reliability diagrams of a judge's `p_fail`.
//!
//! Both plot one rate against another on `[0, 1] × [0, 1]` and are read against the diagonal
//! `y = x` (chance for a ROC curve, perfect calibration for a reliability diagram), so one
//! chart serves both: the caller brings finished points (e.g. from `halubench-score`'s
//! `roc_points` and `reliability_bins`) and names the axes.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::chart::{
    self, Chart, DrawResult, Figure, LABEL_SIZE, LEGEND_TEXT_MAX, MARGIN, MUTED, Mark, TEXT, Y_AREA,
};
use crate::error::ReportError;

const KIND: &str = "unit curves";

/// One line of a [`Curves`] chart.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSeries {
    /// Shown in the legend.
    pub name: String,
    /// `(x, y)` with both in `[0, 1]`, joined in the order given (a ROC curve from `(0, 0)`
    /// to `(1, 1)`, reliability bins from the lowest up).
    pub points: Vec<(f64, f64)>,
    /// Draw a dot on every point. Wanted for a reliability diagram, where each point is a bin
    /// with rows behind it; a ROC curve has a point per distinct score and reads better bare.
    pub markers: bool,
}

/// Input of [`unit_curves`].
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    /// The chart title.
    pub title: String,
    /// The x axis name, e.g. `"false positive rate"` or `"mean p_fail"`.
    pub x_label: String,
    /// The y axis name, e.g. `"true positive rate"` or `"share of FAIL rows"`.
    pub y_label: String,
    /// One per line.
    pub series: Vec<CurveSeries>,
}

/// Lines on the unit square: both axes 0–1 with ticks every 0.1, the diagonal `y = x` dashed
/// as the reference, one coloured line per series (dots on its points when
/// [`CurveSeries::markers`]) and a legend of series names beside the plot. The plot is
/// square, so a curve's distance from the diagonal reads the same in x and y.
///
/// # Errors
/// [`ReportError::Empty`] without series or when a series has no point,
/// [`ReportError::BadValue`] for a coordinate that is not finite or lies outside `[0, 1]`.
pub fn unit_curves(chart: &Curves) -> Result<Chart, ReportError> {
    validate(chart)?;
    chart::render(&CurvesFigure::layout(chart)?)
}

fn validate(chart: &Curves) -> Result<(), ReportError> {
    if chart.series.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "series",
        });
    }
    for series in &chart.series {
        if series.points.is_empty() {
            return Err(ReportError::Empty {
                chart: KIND,
                what: "points",
            });
        }
        for (index, &(x, y)) in series.points.iter().enumerate() {
            if let Some(problem) = coordinate_problem("x", x).or_else(|| coordinate_problem("y", y))
            {
                return Err(ReportError::BadValue {
                    chart: KIND,
                    series: series.name.clone(),
                    index,
                    label: format!("({x}, {y})"),
                    problem,
                });
            }
        }
    }
    Ok(())
}

/// No slack around `[0, 1]`, unlike the percentages of the bar chart: rates and means of
/// probabilities computed in `f64` stay inside it exactly, so a value outside is a real bug.
fn coordinate_problem(what: &str, v: f64) -> Option<String> {
    if !v.is_finite() {
        Some(format!("{what} is {v}"))
    } else if !(0.0..=1.0).contains(&v) {
        Some(format!("{what} {v} is outside 0–1"))
    } else {
        None
    }
}

/// Side of the square plot in pixels.
const PLOT_PX: u32 = 460;
/// Below the plot: tick labels and the x axis name (plotters draws both).
const X_AXIS_PX: u32 = 56;
/// Above the plot: the title with its padding (see `chart::titled`) and the plot's top margin.
const TITLE_PX: u32 = 56;
/// The axes run a little past 0 and 1, so a curve along an edge (a ROC curve up the y axis)
/// is not hidden under the axis line and end markers are not cut in half.
const PAD: f64 = 0.02;

#[derive(Debug)]
struct CurvesFigure<'a> {
    input: &'a Curves,
    title: String,
    x_label: String,
    y_label: String,
    names: Vec<String>,
    width: u32,
    height: u32,
    legend_width: u32,
}

impl<'a> CurvesFigure<'a> {
    fn layout(input: &'a Curves) -> Result<Self, ReportError> {
        let names = input
            .series
            .iter()
            .map(|s| chart::fit(&s.name, LABEL_SIZE, LEGEND_TEXT_MAX))
            .collect::<Result<Vec<_>, _>>()?;
        let legend_width = chart::legend_width(&names)?;
        let width = Y_AREA + PLOT_PX + 2 * MARGIN + legend_width;
        let n_names = u32::try_from(names.len()).unwrap_or(u32::MAX);
        let legend_px = n_names.saturating_mul(chart::LEGEND_ROW as u32);
        let height = (TITLE_PX + PLOT_PX + X_AXIS_PX + MARGIN)
            .max(legend_px.saturating_add(TITLE_PX + MARGIN + 8));
        let title = chart::fit(&input.title, chart::TITLE_SIZE, width - 2 * MARGIN)?;
        let x_label = chart::fit(&input.x_label, LABEL_SIZE, PLOT_PX)?;
        let y_label = chart::fit(&input.y_label, LABEL_SIZE, PLOT_PX)?;
        Ok(Self {
            input,
            title,
            x_label,
            y_label,
            names,
            width,
            height,
            legend_width,
        })
    }
}

impl Figure for CurvesFigure<'_> {
    const KIND: &'static str = KIND;

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = chart::titled(root, &self.title)?;
        let (plot_area, legend_area) = body.split_horizontally(self.width - self.legend_width);
        // Only as tall as the square needs: a long legend makes the image taller, never the
        // plot.
        let (plot_area, _) = plot_area.split_vertically(8 + PLOT_PX + X_AXIS_PX + MARGIN);
        let range = -PAD..1.0 + PAD;
        let mut plot = ChartBuilder::on(&plot_area)
            .margin(MARGIN)
            .margin_top(8)
            .x_label_area_size(X_AXIS_PX)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(range.clone(), range)?;
        plot.configure_mesh()
            .x_labels(11)
            .y_labels(11)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .label_style(chart::font(LABEL_SIZE).color(&TEXT))
            .axis_desc_style(chart::font(LABEL_SIZE).color(&TEXT))
            .light_line_style(TRANSPARENT)
            .bold_line_style(chart::GRID)
            .draw()?;

        plot.draw_series([DashedPathElement::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            6,
            5,
            MUTED.stroke_width(2),
        )])?;

        for (s, series) in self.input.series.iter().enumerate() {
            let color = chart::series_color(s);
            if series.points.len() > 1 {
                plot.draw_series([PathElement::new(
                    series.points.clone(),
                    color.stroke_width(3),
                )])?;
            }
            // A lone point would be invisible without its dot.
            if series.markers || series.points.len() == 1 {
                plot.draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 5, color.filled())),
                )?;
                plot.draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 5, WHITE.stroke_width(1))),
                )?;
            }
        }

        let (_, plot_top) = plot.backend_coord(&(0.0, 1.0 + PAD));
        let (_, body_top) = legend_area.get_base_pixel();
        chart::draw_legend(&legend_area, &self.names, Mark::Line, plot_top - body_top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::tests::{assert_png, svg_has_text};

    fn roc() -> Curves {
        Curves {
            title: "ROC of p_fail".into(),
            x_label: "false positive rate".into(),
            y_label: "true positive rate".into(),
            series: vec![
                CurveSeries {
                    name: "llama-3.1-8b (AUROC 0.81)".into(),
                    points: vec![
                        (0.0, 0.0),
                        (0.0, 0.3),
                        (0.1, 0.55),
                        (0.25, 0.75),
                        (0.5, 0.9),
                        (1.0, 1.0),
                    ],
                    markers: false,
                },
                CurveSeries {
                    name: "gpt-4o-mini (AUROC 0.90)".into(),
                    points: vec![(0.0, 0.0), (0.05, 0.6), (0.2, 0.9), (1.0, 1.0)],
                    markers: false,
                },
            ],
        }
    }

    fn reliability() -> Curves {
        Curves {
            title: "Reliability of p_fail (10 bins)".into(),
            x_label: "mean p_fail in bin".into(),
            y_label: "share of FAIL rows".into(),
            series: vec![CurveSeries {
                name: "llama-3.1-8b (ECE 0.07)".into(),
                points: vec![
                    (0.04, 0.1),
                    (0.17, 0.12),
                    (0.33, 0.4),
                    (0.55, 0.48),
                    (0.71, 0.8),
                    (0.96, 0.99),
                ],
                markers: true,
            }],
        }
    }

    #[test]
    fn svg_holds_title_axes_ticks_and_names() {
        let chart = unit_curves(&roc()).expect("chart");
        for text in [
            "ROC of p_fail",
            "false positive rate",
            "true positive rate",
            "llama-3.1-8b (AUROC 0.81)",
            "gpt-4o-mini (AUROC 0.90)",
            "0.0",
            "0.5",
            "1.0",
        ] {
            assert!(svg_has_text(&chart.svg, text), "{text} missing");
        }
        assert!(chart.svg.starts_with("<svg"));
    }

    #[test]
    fn png_decodes_to_its_size_and_has_text() {
        assert_png(&unit_curves(&roc()).expect("chart"));
        assert_png(&unit_curves(&reliability()).expect("chart"));
    }

    #[test]
    fn markers_are_drawn_only_when_asked() {
        let circles = |curves: &Curves| {
            unit_curves(curves)
                .expect("chart")
                .svg
                .matches("<circle")
                .count()
        };
        // The legend has one dot per series either way.
        let bare = circles(&roc());
        assert_eq!(bare, 2);
        let mut marked = roc();
        marked.series[1].markers = true;
        // Filled dot and white ring on each of the 4 points.
        assert_eq!(circles(&marked), bare + 2 * 4);
    }

    #[test]
    fn the_plot_is_square() {
        let input = roc();
        let figure = CurvesFigure::layout(&input).expect("layout");
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
            let body = chart::titled(&root, &figure.title).expect("title");
            let (plot_area, _) = body.split_horizontally(figure.width - figure.legend_width);
            let (_, h) = plot_area.dim_in_pixel();
            // Everything below the title must fit the square, its axis and its margins.
            assert!(h >= 8 + PLOT_PX + X_AXIS_PX + MARGIN, "{h}");
            let (w, _) = plot_area.dim_in_pixel();
            assert_eq!(w - 2 * MARGIN - Y_AREA, PLOT_PX);
        }
    }

    #[test]
    fn bad_coordinates_name_series_and_index() {
        let mut input = roc();
        input.series[1].points[2].1 = f64::NAN;
        let err = unit_curves(&input).expect_err("nan");
        assert!(matches!(err, ReportError::BadValue { index: 2, .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("\"gpt-4o-mini (AUROC 0.90)\"")
                && msg.contains("index 2")
                && msg.contains("y is NaN"),
            "{msg}"
        );

        let mut input = reliability();
        input.series[0].points[4].0 = 1.2;
        let msg = unit_curves(&input).expect_err("range").to_string();
        assert!(
            msg.contains("index 4") && msg.contains("x 1.2 is outside 0–1"),
            "{msg}"
        );
        input.series[0].points[4].0 = f64::NEG_INFINITY;
        assert!(
            unit_curves(&input)
                .expect_err("inf")
                .to_string()
                .contains("x is -inf")
        );
        input.series[0].points[4] = (-0.0, 1.0);
        unit_curves(&input).expect("both ends are in range");
    }

    #[test]
    fn empty_input_is_an_error() {
        let mut input = roc();
        input.series[0].points.clear();
        assert!(matches!(
            unit_curves(&input),
            Err(ReportError::Empty { what: "points", .. })
        ));
        input.series.clear();
        assert!(matches!(
            unit_curves(&input),
            Err(ReportError::Empty { what: "series", .. })
        ));
    }

    #[test]
    fn a_long_legend_grows_the_image_not_the_plot() {
        let mut input = reliability();
        let one = input.series[0].clone();
        input.series = vec![one; 40];
        let figure = CurvesFigure::layout(&input).expect("layout");
        assert!(figure.height > TITLE_PX + PLOT_PX + X_AXIS_PX + MARGIN);
        assert_png(&unit_curves(&input).expect("draws"));
    }
}
