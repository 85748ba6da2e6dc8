//! Line charts of the load curve, written as SVG and PNG with plotters as the lab's report
//! charts are: one line with point markers per series over a numeric x axis. Text is drawn
//! with a TrueType font found on the system (DejaVu Sans, as Debian's `fonts-dejavu-core`
//! installs it), registered once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::BenchError;

/// Where a sans-serif TrueType font is looked for, in order.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Chart size in pixels (and SVG user units).
const SIZE: (u32, u32) = (960, 540);

/// Colours of the series, distinguishable in print and for common colour blindness
/// (Okabe and Ito's palette).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// One named line: `(x, y)` points; non-finite points are left out.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Line {
    pub(crate) name: String,
    pub(crate) points: Vec<(f64, f64)>,
}

/// A chart's title and axis descriptions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Labels {
    pub(crate) title: String,
    pub(crate) x: String,
    pub(crate) y: String,
}

fn register_font_once() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = FONT_PATHS
                .iter()
                .find_map(|path| std::fs::read(path).ok())
                .ok_or_else(|| {
                    format!(
                        "no TrueType font found (looked for {})",
                        FONT_PATHS.join(", ")
                    )
                })?;
            // plotters keeps registered fonts for the life of the process; one font, leaked
            // once, is the price.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| "the font file is not a valid TrueType font".to_owned())
        })
        .clone()
}

/// The two files a chart called `stem` is written to in `dir`: `stem.svg` and `stem.png`.
pub(crate) fn chart_files(dir: &Path, stem: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{stem}.svg")),
        dir.join(format!("{stem}.png")),
    ]
}

/// Draws one line (with point markers) per series into `dir/stem.svg` and `dir/stem.png`.
pub(crate) fn lines(
    dir: &Path,
    stem: &str,
    labels: &Labels,
    series: &[Line],
) -> Result<(), BenchError> {
    let [svg, png] = chart_files(dir, stem);
    let failed = |path: &Path, message: String| BenchError::Plot {
        path: path.to_owned(),
        message,
    };
    register_font_once().map_err(|m| failed(&svg, m))?;
    draw_lines(
        SVGBackend::new(&svg, SIZE).into_drawing_area(),
        labels,
        series,
    )
    .map_err(|m| failed(&svg, m))?;
    draw_lines(
        BitMapBackend::new(&png, SIZE).into_drawing_area(),
        labels,
        series,
    )
    .map_err(|m| failed(&png, m))
}

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    series: &[Line],
) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let points = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| finite(p)))
    };
    let x_min = points().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = points().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min < x_max {
        (x_min, x_max)
    } else if x_min.is_finite() {
        (x_min - 1.0, x_min + 1.0)
    } else {
        (0.0, 1.0)
    };
    // 10 % headroom above the largest value, so the top point is not on the frame.
    let y_max = points().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let mut chart = ChartBuilder::on(&root)
        .caption(&labels.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x_min..x_max, 0.0..top)
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc(&labels.x)
        .y_desc(&labels.y)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(text)?;
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let points: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| finite(p)).collect();
        // A series without a single point (a broker that failed throughout) gets no legend.
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(text)?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour.filled())),
            )
            .map_err(text)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(text)?;
    root.present().map_err(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_written_as_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels {
            title: "CPU".into(),
            x: "subscribers".into(),
            y: "%".into(),
        };
        let series = [
            Line {
                name: "mquictt TCP".into(),
                points: vec![(10.0, 5.0), (20.0, 9.0), (30.0, f64::NAN)],
            },
            Line {
                name: "failed throughout".into(),
                points: vec![(10.0, f64::NAN)],
            },
        ];
        lines(dir.path(), "cpu", &labels, &series).unwrap();
        let [svg, png] = chart_files(dir.path(), "cpu");
        let svg_text = std::fs::read_to_string(svg).unwrap();
        assert!(svg_text.contains("<svg") && svg_text.contains("mquictt TCP"));
        assert!(!svg_text.contains("failed throughout"));
        let png_bytes = std::fs::read(png).unwrap();
        assert_eq!(png_bytes.get(..4), Some(&b"\x89PNG"[..]));
    }
}
