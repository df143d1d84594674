//! A confusion heatmap: rows (e.g. the gold label) by columns (e.g. the verdict), each cell
//! shaded by its count and showing the count.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::chart::{self, Chart, DrawResult, Figure, LABEL_SIZE, TEXT};
use crate::error::ReportError;

const KIND: &str = "confusion heatmap";

/// Input of [`confusion_heatmap`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heatmap {
    /// The chart title.
    pub title: String,
    /// Row headings, e.g. `["label PASS", "label FAIL"]`.
    pub rows: Vec<String>,
    /// Column headings, e.g. `["PASS", "FAIL", "INVALID"]`.
    pub columns: Vec<String>,
    /// `counts[row][column]`.
    pub counts: Vec<Vec<u64>>,
}

/// Cells shaded by count (white for 0, darkest for the largest count), the count written in
/// each cell, row headings on the left and column headings on top.
///
/// # Errors
/// [`ReportError::Empty`] without rows or columns, [`ReportError::LengthMismatch`] when `counts`
/// has not one row per heading or a row has not one count per column.
pub fn confusion_heatmap(map: &Heatmap) -> Result<Chart, ReportError> {
    validate(map)?;
    chart::render(&HeatmapFigure::layout(map)?)
}

fn validate(map: &Heatmap) -> Result<(), ReportError> {
    if map.rows.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "rows",
        });
    }
    if map.columns.is_empty() {
        return Err(ReportError::Empty {
            chart: KIND,
            what: "columns",
        });
    }
    if map.counts.len() != map.rows.len() {
        return Err(ReportError::LengthMismatch {
            chart: KIND,
            series: "counts".into(),
            found: map.counts.len(),
            expected: map.rows.len(),
            what: "rows",
        });
    }
    for (row, counts) in map.rows.iter().zip(&map.counts) {
        if counts.len() != map.columns.len() {
            return Err(ReportError::LengthMismatch {
                chart: KIND,
                series: row.clone(),
                found: counts.len(),
                expected: map.columns.len(),
                what: "columns",
            });
        }
    }
    Ok(())
}

const MARGIN: i32 = 20;
const CELL_H: i32 = 60;
const MIN_CELL_W: u32 = 110;
const MAX_CELL_W: u32 = 200;
const MAX_ROW_LABEL: u32 = 240;
const HEADER_H: i32 = 34;
const COUNT_SIZE: f64 = 20.0;
/// The colour of the fullest cell; emptier cells blend towards white.
const FULL: (f64, f64, f64) = (33.0, 82.0, 140.0);

#[derive(Debug)]
struct HeatmapFigure<'a> {
    input: &'a Heatmap,
    title: String,
    rows: Vec<String>,
    columns: Vec<String>,
    row_label_w: i32,
    /// Where the row headings start, so the grid sits centred under the title.
    grid_left: i32,
    cell_w: i32,
    width: u32,
    height: u32,
}

impl<'a> HeatmapFigure<'a> {
    fn layout(input: &'a Heatmap) -> Result<Self, ReportError> {
        let rows = input
            .rows
            .iter()
            .map(|r| chart::fit(r, LABEL_SIZE, MAX_ROW_LABEL))
            .collect::<Result<Vec<_>, _>>()?;
        let row_label_w = chart::widest(rows.iter().map(String::as_str), LABEL_SIZE)?;
        let widest_column = chart::widest(input.columns.iter().map(String::as_str), LABEL_SIZE)?;
        let widest_count = chart::widest(
            input
                .counts
                .iter()
                .flatten()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
            COUNT_SIZE,
        )?;
        let cell_w = (widest_column.max(widest_count) + 20).clamp(MIN_CELL_W, MAX_CELL_W);
        let columns = input
            .columns
            .iter()
            .map(|c| chart::fit(c, LABEL_SIZE, cell_w - 8))
            .collect::<Result<Vec<_>, _>>()?;
        let n_columns = u32::try_from(input.columns.len()).unwrap_or(u32::MAX);
        let grid_w = cell_w
            .saturating_mul(n_columns)
            .saturating_add(row_label_w + 16);
        let title_w = chart::text_width(&chart::clean(&input.title), chart::TITLE_SIZE)?;
        let width = grid_w
            .max(title_w.min(900))
            .saturating_add(2 * MARGIN as u32);
        let title = chart::fit(&input.title, chart::TITLE_SIZE, width - 2 * MARGIN as u32)?;
        // Title band (see `chart::titled`), column headings, the cells, a margin.
        let n_rows = u32::try_from(input.rows.len()).unwrap_or(u32::MAX);
        let height = (CELL_H as u32)
            .saturating_mul(n_rows)
            .saturating_add(35 + (HEADER_H + 6) as u32 + 16);
        Ok(Self {
            input,
            title,
            rows,
            columns,
            row_label_w: row_label_w as i32,
            grid_left: ((width - grid_w) / 2) as i32,
            cell_w: cell_w as i32,
            width,
            height,
        })
    }
}

impl Figure for HeatmapFigure<'_> {
    const KIND: &'static str = KIND;

    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = chart::titled(root, &self.title)?;
        let max = self
            .input
            .counts
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        let left = self.grid_left + self.row_label_w + 16;
        let top = HEADER_H + 6;

        let column_style = chart::text_style(LABEL_SIZE, &TEXT, HPos::Center, VPos::Center);
        for (c, column) in self.columns.iter().enumerate() {
            let x = left + c as i32 * self.cell_w + self.cell_w / 2;
            body.draw_text(column, &column_style, (x, top - HEADER_H / 2))?;
        }

        let row_style = chart::text_style(LABEL_SIZE, &TEXT, HPos::Right, VPos::Center);
        for (r, (row, counts)) in self.rows.iter().zip(&self.input.counts).enumerate() {
            let y0 = top + r as i32 * CELL_H;
            body.draw_text(row, &row_style, (left - 12, y0 + CELL_H / 2))?;
            for (c, &count) in counts.iter().enumerate() {
                let x0 = left + c as i32 * self.cell_w;
                let share = if max == 0 {
                    0.0
                } else {
                    count as f64 / max as f64
                };
                let fill = shade(share);
                let corners = [(x0, y0), (x0 + self.cell_w, y0 + CELL_H)];
                body.draw(&Rectangle::new(corners, fill.filled()))?;
                body.draw(&Rectangle::new(corners, chart::GRID.stroke_width(1)))?;
                let ink: &'static RGBColor = if share > 0.5 { &WHITE } else { &TEXT };
                let style =
                    chart::font(COUNT_SIZE)
                        .color(ink)
                        .pos(plotters::style::text_anchor::Pos::new(
                            HPos::Center,
                            VPos::Center,
                        ));
                body.draw_text(
                    &count.to_string(),
                    &style,
                    (x0 + self.cell_w / 2, y0 + CELL_H / 2),
                )?;
            }
        }
        Ok(())
    }
}

/// White at 0, [`FULL`] at 1.
fn shade(share: f64) -> RGBColor {
    let mix = |full: f64| (255.0 + (full - 255.0) * share).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(FULL.0), mix(FULL.1), mix(FULL.2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::tests::{assert_png, svg_has_text};

    fn sample() -> Heatmap {
        Heatmap {
            title: "Confusion: llama-3.1-8b on summarization".into(),
            rows: vec!["label PASS".into(), "label FAIL".into()],
            columns: vec!["PASS".into(), "FAIL".into(), "INVALID".into()],
            counts: vec![vec![412, 61, 7], vec![88, 395, 12]],
        }
    }

    #[test]
    fn svg_holds_labels_and_counts() {
        let chart = confusion_heatmap(&sample()).expect("chart");
        for text in [
            "Confusion: llama-3.1-8b on summarization",
            "label PASS",
            "label FAIL",
            "PASS",
            "FAIL",
            "INVALID",
            "412",
            "61",
            "7",
            "88",
            "395",
            "12",
        ] {
            assert!(svg_has_text(&chart.svg, text), "{text} missing");
        }
    }

    #[test]
    fn png_decodes_to_its_size_and_has_text() {
        assert_png(&confusion_heatmap(&sample()).expect("chart"));
    }

    #[test]
    fn all_zero_counts_draw() {
        let mut map = sample();
        map.counts = vec![vec![0; 3]; 2];
        confusion_heatmap(&map).expect("zeros are fine");
    }

    #[test]
    fn shade_runs_from_white_to_full() {
        assert_eq!(shade(0.0), WHITE);
        assert_eq!(shade(1.0), RGBColor(33, 82, 140));
    }

    #[test]
    fn ragged_counts_name_the_row() {
        let mut map = sample();
        map.counts[1].push(3);
        let msg = confusion_heatmap(&map).expect_err("ragged").to_string();
        assert!(
            msg.contains("\"label FAIL\"") && msg.contains("4 values") && msg.contains("3 columns"),
            "{msg}"
        );
        map.counts.pop();
        let err = confusion_heatmap(&map).expect_err("missing row");
        assert!(matches!(
            err,
            ReportError::LengthMismatch {
                found: 1,
                expected: 2,
                ..
            }
        ));
        map.rows.clear();
        assert!(matches!(
            confusion_heatmap(&map),
            Err(ReportError::Empty { what: "rows", .. })
        ));
    }
}
