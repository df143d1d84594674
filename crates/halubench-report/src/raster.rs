//! The PNG backend: plotters' bitmap backend with text laid out here.
//!
//! plotters 0.3.7 draws `ab_glyph` text without each glyph's left bearing and with the baseline
//! half a font size below the anchor, so letters such as `l` and `i` sit crooked ("baselin e")
//! and top-anchored text climbs out of its box. This wrapper hands every other operation to
//! [`BitMapBackend`] and rasterises text with `ab_glyph` directly, using the same advance widths
//! plotters uses for layout.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::backend::{BitMapBackend, DrawingBackend, RGBPixel};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind, FontStyle,
};

use crate::error::ReportError;

type Inner<'a> = BitMapBackend<'a, RGBPixel>;
type Error<'a> = DrawingErrorKind<<Inner<'a> as DrawingBackend>::ErrorType>;

pub(crate) struct PngBackend<'a> {
    inner: Inner<'a>,
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

impl<'a> PngBackend<'a> {
    /// Draws into `pixels`, RGB, `width * height * 3` bytes.
    pub(crate) fn new(
        pixels: &'a mut [u8],
        size: (u32, u32),
        chart: &'static str,
    ) -> Result<Self, ReportError> {
        let inner = Inner::with_buffer_and_format(pixels, size).map_err(|e| ReportError::Draw {
            chart,
            format: "PNG",
            message: e.to_string(),
        })?;
        let regular =
            FontRef::try_from_slice(dejavu::sans::regular()).map_err(|_| ReportError::Font)?;
        let bold = FontRef::try_from_slice(dejavu::sans::bold()).map_err(|_| ReportError::Font)?;
        Ok(Self {
            inner,
            regular,
            bold,
        })
    }
}

impl<'a> DrawingBackend for PngBackend<'a> {
    type ErrorType = <Inner<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), Error<'a>> {
        // plotters' own estimate, so the layout matches the SVG drawn from the same code.
        self.inner.estimate_text_size(text, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Error<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let font = match style.style() {
            FontStyle::Bold => &self.bold,
            _ => &self.regular,
        };
        let scaled = font.as_scaled(PxScale::from(style.size() as f32));

        let mut glyphs = Vec::with_capacity(text.len());
        let mut pen = 0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(prev) = prev {
                pen += scaled.kern(prev, id);
            }
            glyphs.push(id.with_scale_and_position(scaled.scale(), point(pen, scaled.ascent())));
            pen += scaled.h_advance(id);
            prev = Some(id);
        }

        let width = pen.round() as i32;
        let height = (scaled.ascent() - scaled.descent()).round() as i32;
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let transform = style.transform();

        for glyph in glyphs {
            let Some(outline) = font.outline_glyph(glyph) else {
                continue; // blank glyphs such as spaces
            };
            let bounds = outline.px_bounds();
            let (left, top) = (bounds.min.x as i32 + dx, bounds.min.y as i32 + dy);
            let mut result = Ok(());
            outline.draw(|x, y, coverage| {
                if result.is_err() || coverage <= 0.0 {
                    return;
                }
                let (tx, ty) = transform.transform(left + x as i32, top + y as i32);
                let ink = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                result = self.inner.draw_pixel((pos.0 + tx, pos.1 + ty), ink);
            });
            result?;
        }
        Ok(())
    }
}
