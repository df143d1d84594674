//! What every chart shares: the font, the palette, text fitting, the legend, and rendering one
//! drawing to both SVG and PNG.

use std::fmt;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontFamily, FontStyle, register_font};

use crate::error::ReportError;
use crate::raster::PngBackend;

/// A finished chart: the same drawing as SVG text and as PNG bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Chart {
    /// A standalone SVG document (`<svg xmlns=…>`); text uses the `sans-serif` family.
    pub svg: String,
    /// An 8-bit RGB PNG of the same drawing, text rendered with the embedded DejaVu Sans.
    pub png: Vec<u8>,
    /// Width of both images in pixels.
    pub width: u32,
    /// Height of both images in pixels.
    pub height: u32,
}

impl fmt::Debug for Chart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chart")
            .field("svg", &format_args!("<{} bytes>", self.svg.len()))
            .field("png", &format_args!("<{} bytes>", self.png.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// The family every text is drawn in; registered with plotters from the `dejavu` crate.
pub(crate) const FONT: &str = "sans-serif";
pub(crate) const TITLE_SIZE: f64 = 22.0;
pub(crate) const LABEL_SIZE: f64 = 15.0;
pub(crate) const SMALL_SIZE: f64 = 12.0;
/// Around the plot of an axis chart (bars, trend): the y tick labels and axis name on the
/// left, the x labels below, and the outer margin.
pub(crate) const Y_AREA: u32 = 70;
pub(crate) const X_AREA: u32 = 44;
pub(crate) const MARGIN: u32 = 16;
pub(crate) const ELLIPSIS: char = '\u{2026}';

pub(crate) const TEXT: RGBColor = RGBColor(33, 33, 33);
pub(crate) const MUTED: RGBColor = RGBColor(110, 110, 110);
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);

/// Tableau 10: distinct hues that stay apart for the common kinds of colour blindness.
static PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

/// The colour of the `index`-th series (cycles after ten).
pub(crate) fn series_color(index: usize) -> &'static RGBColor {
    &PALETTE[index % PALETTE.len()]
}

/// Registers DejaVu Sans once per process; plotters needs it for layout even when writing SVG.
fn ensure_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok { Ok(()) } else { Err(ReportError::Font) }
}

pub(crate) fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::Name(FONT), size, FontStyle::Normal)
}

pub(crate) fn title_style() -> TextStyle<'static> {
    FontDesc::new(FontFamily::Name(FONT), TITLE_SIZE, FontStyle::Bold).color(&TEXT)
}

pub(crate) fn text_style(
    size: f64,
    color: &'static RGBColor,
    h: HPos,
    v: VPos,
) -> TextStyle<'static> {
    font(size).color(color).pos(Pos::new(h, v))
}

/// Width of `text` in pixels at `size`, as both backends lay it out.
pub(crate) fn text_width(text: &str, size: f64) -> Result<u32, ReportError> {
    ensure_font()?;
    font(size)
        .box_size(text)
        .map(|(w, _)| w)
        .map_err(|_| ReportError::Font)
}

/// One line of drawable text: control characters (which SVG may not contain) become spaces.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` cleaned and, when wider than `max_px`, cut and ended with an ellipsis.
pub(crate) fn fit(text: &str, size: f64, max_px: u32) -> Result<String, ReportError> {
    let text = clean(text);
    if text_width(&text, size)? <= max_px {
        return Ok(text);
    }
    let chars: Vec<char> = text.chars().collect();
    // Binary search for the longest prefix that fits together with the ellipsis.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().chain([&ELLIPSIS]).collect();
        if text_width(&candidate, size)? <= max_px {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let kept: String = chars[..lo].iter().collect();
    Ok(format!("{}{ELLIPSIS}", kept.trim_end()))
}

/// The widest of `texts` in pixels.
pub(crate) fn widest<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    size: f64,
) -> Result<u32, ReportError> {
    let mut max = 0;
    for text in texts {
        max = max.max(text_width(&clean(text), size)?);
    }
    Ok(max)
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mark {
    /// A filled square, for bars.
    Swatch,
    /// A short line with a dot, for trend lines.
    Line,
}

pub(crate) const LEGEND_ROW: i32 = 24;
const LEGEND_MARK: i32 = 28;
const LEGEND_PAD: i32 = 12;

/// Width the legend column needs for these (already fitted) names.
pub(crate) fn legend_width(names: &[String]) -> Result<u32, ReportError> {
    let text = widest(names.iter().map(String::as_str), LABEL_SIZE)?;
    Ok(text + (LEGEND_MARK + 2 * LEGEND_PAD) as u32)
}

/// The widest a legend name may be before it is cut.
pub(crate) const LEGEND_TEXT_MAX: u32 = 220;

/// Draws the legend as a column at the top of `area` (its own strip, never over the data).
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    names: &[String],
    mark: Mark,
    top: i32,
) -> DrawResult<DB> {
    let style = text_style(LABEL_SIZE, &TEXT, HPos::Left, VPos::Center);
    for (i, name) in names.iter().enumerate() {
        let color = series_color(i);
        let y = top + LEGEND_ROW / 2 + i as i32 * LEGEND_ROW;
        let x = LEGEND_PAD;
        match mark {
            Mark::Swatch => {
                area.draw(&Rectangle::new(
                    [(x + 6, y - 8), (x + 22, y + 8)],
                    color.filled(),
                ))?;
            }
            Mark::Line => {
                area.draw(&PathElement::new(
                    vec![(x, y), (x + LEGEND_MARK - 4, y)],
                    color.stroke_width(3),
                ))?;
                area.draw(&Circle::new(
                    (x + (LEGEND_MARK - 4) / 2, y),
                    4,
                    color.filled(),
                ))?;
            }
        }
        area.draw_text(name, &style, (x + LEGEND_MARK + 4, y))?;
    }
    Ok(())
}

/// Draws the title with some air above it and returns the area below.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.margin(8, 0, 0, 0).titled(title, title_style())
}

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A chart whose layout has been worked out and whose input has been checked; drawing it can
/// only fail inside plotters.
pub(crate) trait Figure {
    /// Used in error messages.
    const KIND: &'static str;
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

fn draw_whole<F: Figure, DB: DrawingBackend>(
    figure: &F,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    figure.draw(root)?;
    root.present()
}

fn draw_error(chart: &'static str, format: &'static str, error: impl fmt::Display) -> ReportError {
    ReportError::Draw {
        chart,
        format,
        message: error.to_string(),
    }
}

/// A bound on the PNG buffer (3 bytes a pixel): far above any sensible chart.
const MAX_PIXELS: u64 = 40_000_000;

/// Draws `figure` once into an SVG string and once into an RGB buffer encoded as PNG.
pub(crate) fn render<F: Figure>(figure: &F) -> Result<Chart, ReportError> {
    ensure_font()?;
    let (width, height) = figure.size();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ReportError::TooLarge {
            chart: F::KIND,
            width,
            height,
        });
    }

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        draw_whole(figure, &root).map_err(|e| draw_error(F::KIND, "SVG", e))?;
    }

    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let backend = PngBackend::new(&mut pixels, (width, height), F::KIND)?;
        let root = backend.into_drawing_area();
        draw_whole(figure, &root).map_err(|e| draw_error(F::KIND, "PNG", e))?;
    }
    let png = encode_png(&pixels, width, height).map_err(|source| ReportError::Png {
        chart: F::KIND,
        source,
    })?;

    Ok(Chart {
        svg,
        png,
        width,
        height,
    })
}

fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes a PNG into (width, height, RGB bytes).
    pub(crate) fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
        let info = reader.next_frame(&mut buf).expect("png frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// Pixels in rows `y0..y1` darker than mid grey: text, once rendered, is dark.
    pub(crate) fn dark_pixels(rgb: &[u8], width: u32, y0: u32, y1: u32) -> usize {
        let row = width as usize * 3;
        rgb[y0 as usize * row..y1 as usize * row]
            .chunks_exact(3)
            .filter(|p| p.iter().map(|&c| u32::from(c)).sum::<u32>() < 3 * 100)
            .count()
    }

    /// Whether the SVG has a `<text>` element reading exactly `text` (already XML-escaped).
    pub(crate) fn svg_has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    pub(crate) fn assert_png(chart: &Chart) {
        assert!(chart.png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let (w, h, rgb) = decode(&chart.png);
        assert_eq!((w, h), (chart.width, chart.height));
        // The title sits in the top 40 pixels; with no font nothing dark would be there.
        let dark = dark_pixels(&rgb, w, 0, 40);
        assert!(dark > 150, "only {dark} dark pixels in the title band");
    }

    #[test]
    fn fit_keeps_short_text_and_cuts_long_text_with_an_ellipsis() {
        assert_eq!(fit("gpt-4o", LABEL_SIZE, 200).expect("fit"), "gpt-4o");
        let long = "a-very-long-judge-name-that-goes-on-and-on-and-on";
        let cut = fit(long, LABEL_SIZE, 120).expect("fit");
        assert!(cut.ends_with(ELLIPSIS), "{cut}");
        assert!(cut.len() < long.len());
        assert!(text_width(&cut, LABEL_SIZE).expect("width") <= 120);
        assert_eq!(
            fit("line\nbreak\ttab", LABEL_SIZE, 400).expect("fit"),
            "line break tab"
        );
    }

    #[test]
    fn chart_debug_does_not_dump_the_images() {
        let chart = Chart {
            svg: "x".repeat(5000),
            png: vec![0; 7],
            width: 3,
            height: 4,
        };
        let debug = format!("{chart:?}");
        assert!(
            debug.contains("<5000 bytes>") && debug.len() < 200,
            "{debug}"
        );
    }
}
