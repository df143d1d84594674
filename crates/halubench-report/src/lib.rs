//! Pure exporters for halubench reports: charts as SVG and PNG bytes, and one self-contained
//! HTML page.
//!
//! - [`accuracy_bars`], [`confusion_heatmap`], [`trend_lines`] and [`unit_curves`] (ROC curves
//!   and reliability diagrams) each return a [`Chart`]: the same drawing as an SVG document and
//!   as PNG bytes. Text is drawn with DejaVu Sans, embedded in the binary (the `dejavu` crate)
//!   and registered with plotters' `ab_glyph` renderer, so a PNG looks the same on every
//!   machine, including one with no system fonts.
//! - [`html_page`] turns a [`Page`] into one HTML file: inline CSS, charts as `data:` images, no
//!   JavaScript and no external resources (a Content-Security-Policy meta tag says so to the
//!   browser). Every piece of data is escaped by [`escape`]. Tables are halubench-core's
//!   [`Table`], the model the markdown and CSV reports render too.
//!
//! What this crate deliberately does not do: write files (callers get strings and bytes and
//! decide where they go), compute statistics (accuracy, intervals and counts arrive finished),
//! or know anything about judges, datasets or runs. That keeps every exporter a pure function
//! that tests can call directly.

mod bars;
mod chart;
mod curves;
mod error;
mod heatmap;
mod html;
mod raster;
mod trend;

pub use bars::{GroupedBars, Series, Whisker, accuracy_bars};
pub use chart::Chart;
pub use curves::{CurveSeries, Curves, unit_curves};
pub use error::ReportError;
pub use halubench_core::Table;
pub use heatmap::{Heatmap, confusion_heatmap};
pub use html::{Block, ExampleCard, Page, Reply, Section, escape, html_page};
pub use trend::{Trend, TrendSeries, trend_lines};
