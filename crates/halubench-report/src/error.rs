//! The crate's one error type.

/// Why a chart could not be made.
///
/// Input problems name the chart, the series (or heatmap row) and the index at fault, so a caller
/// can point at the run or task that produced the bad number.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Nothing to draw: no groups, no series, no rows or no points.
    #[error("{chart}: no {what} to draw")]
    Empty {
        /// Which chart (`accuracy bars`, `confusion heatmap`, `trend`).
        chart: &'static str,
        /// What is missing (`groups`, `series`, `rows` …).
        what: &'static str,
    },
    /// A series (or heatmap row) has a different number of values than there are groups (columns).
    #[error("{chart}: {series:?} has {found} values but there are {expected} {what}")]
    LengthMismatch {
        /// Which chart.
        chart: &'static str,
        /// The series name (or heatmap row label).
        series: String,
        /// How many values it has.
        found: usize,
        /// How many it should have.
        expected: usize,
        /// What the values line up with (`groups`, `columns`).
        what: &'static str,
    },
    /// One value is unusable: NaN, infinite, out of range, or a repeated x label.
    #[error("{chart}: {series:?} at index {index} ({label:?}): {problem}")]
    BadValue {
        /// Which chart.
        chart: &'static str,
        /// The series name.
        series: String,
        /// The position of the value inside the series.
        index: usize,
        /// The group or x label at that position.
        label: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The input asks for an absurdly large image (thousands of series or groups).
    #[error("{chart}: a {width}x{height} pixel chart is too large to draw")]
    TooLarge {
        /// Which chart.
        chart: &'static str,
        /// Width in pixels the layout asked for.
        width: u32,
        /// Height in pixels the layout asked for.
        height: u32,
    },
    /// The embedded DejaVu Sans font could not be registered with plotters.
    #[error("could not register the embedded DejaVu Sans font for chart text")]
    Font,
    /// Plotters failed while drawing.
    #[error("{chart}: drawing the {format} failed: {message}")]
    Draw {
        /// Which chart.
        chart: &'static str,
        /// `SVG` or `PNG`.
        format: &'static str,
        /// Plotters' own message.
        message: String,
    },
    /// The PNG encoder failed.
    #[error("{chart}: encoding the PNG failed")]
    Png {
        /// Which chart.
        chart: &'static str,
        /// The encoder's error.
        #[source]
        source: png::EncodingError,
    },
}
