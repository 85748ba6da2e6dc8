//! The charts of the lab's and the benchmark comparison's reports, each written as SVG and PNG
//! with plotters: grouped bars (one group per category, one bar per series) and lines (one per
//! series over a numeric x axis).
//! Text is drawn with a TrueType font found on the system (DejaVu Sans, as Debian's
//! `fonts-dejavu-core` installs it), registered once per process; nothing else is global.

// Nothing a peer sends may panic the process: outside tests, a fallible call is handled or
// carries an `allow` with the reason it cannot fail.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// A chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("chart {path}: {message}")]
pub struct ChartError {
    /// The chart's file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Where a sans-serif TrueType font is looked for, in order.
const FONT_PATHS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Chart size in pixels (and SVG user units) of a chart with few categories.
const SIZE: (u32, u32) = (960, 540);

/// A bar chart grows wider with its categories so that their labels do not overlap.
fn bar_chart_size(categories: usize) -> (u32, u32) {
    let wide = 160 + 80 * u32::try_from(categories).unwrap_or(u32::MAX / 80);
    (SIZE.0.max(wide), SIZE.1)
}

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

/// One named series of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<T> {
    /// Legend text.
    pub name: String,
    /// Values: one per category for bars, `(x, y)` points for lines. `NaN` is left out.
    pub values: Vec<T>,
}

/// A chart's title and axis descriptions.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Caption above the chart.
    pub title: String,
    /// X axis description.
    pub x: String,
    /// Y axis description.
    pub y: String,
}

impl Labels {
    /// Labels from three strings.
    pub fn new(title: impl Into<String>, x: impl Into<String>, y: impl Into<String>) -> Labels {
        Labels {
            title: title.into(),
            x: x.into(),
            y: y.into(),
        }
    }
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
pub fn chart_files(dir: &Path, stem: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{stem}.svg")),
        dir.join(format!("{stem}.png")),
    ]
}

/// Draws grouped bars: for each category a group with one bar per series.
pub fn grouped_bars(
    dir: &Path,
    stem: &str,
    labels: &Labels,
    categories: &[String],
    series: &[Series<f64>],
) -> Result<(), ChartError> {
    let [svg, png] = chart_files(dir, stem);
    let failed = |path: &Path, message: String| ChartError {
        path: path.to_owned(),
        message,
    };
    register_font_once().map_err(|m| failed(&svg, m))?;
    let size = bar_chart_size(categories.len());
    draw_bars(
        SVGBackend::new(&svg, size).into_drawing_area(),
        labels,
        categories,
        series,
    )
    .map_err(|m| failed(&svg, m))?;
    draw_bars(
        BitMapBackend::new(&png, size).into_drawing_area(),
        labels,
        categories,
        series,
    )
    .map_err(|m| failed(&png, m))
}

/// Draws one line (with point markers) per series.
pub fn lines(
    dir: &Path,
    stem: &str,
    labels: &Labels,
    series: &[Series<(f64, f64)>],
) -> Result<(), ChartError> {
    let [svg, png] = chart_files(dir, stem);
    let failed = |path: &Path, message: String| ChartError {
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

/// The top of the y axis: 10% above the largest finite value (1 when there is none).
fn y_top(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    if max > 0.0 {
        max * 1.1
    } else {
        1.0
    }
}

/// The top of a bar chart's value axis: room above the tallest bar for the legend, which
/// sits in the upper left corner over the first group, one line per series (about 26 of the
/// plot's roughly 430 pixels each, plus its margin and frame; measured on a rendered chart).
fn bar_top(values: impl Iterator<Item = f64>, series: usize) -> f64 {
    let legend_share = (26.0 * series as f64 + 24.0) / 430.0;
    y_top(values) / 1.1 / (1.0 - legend_share).max(0.3)
}

fn draw_bars<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    categories: &[String],
    series: &[Series<f64>],
) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    let n = categories.len().max(1);
    let top = bar_top(
        series.iter().flat_map(|s| s.values.iter().copied()),
        series.len(),
    );
    // Category i is centred on x = i, so integer key points fall under the groups.
    let mut chart = ChartBuilder::on(&root)
        .caption(&labels.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..top)
        .map_err(text)?;
    let names = categories.to_vec();
    let category_label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&category_label)
        .x_desc(&labels.x)
        .y_desc(&labels.y)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(text)?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let bars = s.values.iter().enumerate().filter_map(move |(i, &v)| {
            let left = i as f64 - 0.4 + k as f64 * width;
            v.is_finite()
                .then(|| Rectangle::new([(left, 0.0), (left + width * 0.92, v)], colour.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(text)?
            .label(s.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
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

fn draw_lines<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    labels: &Labels,
    series: &[Series<(f64, f64)>],
) -> Result<(), String> {
    let text = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(text)?;
    let finite = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
    let xs = || {
        series
            .iter()
            .flat_map(|s| s.values.iter().filter(|p| finite(p)))
    };
    let x_min = xs().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let x_max = xs().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let (x_min, x_max) = if x_min < x_max {
        (x_min, x_max)
    } else if x_min.is_finite() {
        (x_min - 1.0, x_min + 1.0)
    } else {
        (0.0, 1.0)
    };
    let top = y_top(xs().map(|p| p.1));
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
        let points: Vec<(f64, f64)> = s.values.iter().copied().filter(|p| finite(p)).collect();
        // A series without a single point (a transport left out) gets no legend entry either.
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
    fn bars_leave_room_for_the_legend_above_the_tallest() {
        // Four series: the legend takes about 30 % of the height, so the tallest bar ends
        // at about 70 % of the axis.
        let top = bar_top([1.0, 10.0, f64::NAN].into_iter(), 4);
        assert!(10.0 / top < 0.71, "{top}");
        assert!(10.0 / top > 0.6, "not needlessly flat: {top}");
        // No bars: the axis still has a height.
        assert!(bar_top(std::iter::empty(), 2) > 0.0);
    }

    #[test]
    fn both_chart_kinds_write_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::new("Test chart", "link", "ms");
        grouped_bars(
            dir.path(),
            "bars",
            &labels,
            &["wifi".to_owned(), "4g".to_owned()],
            &[
                Series {
                    name: "TCP".into(),
                    values: vec![1.0, 2.0],
                },
                Series {
                    name: "QUIC".into(),
                    values: vec![0.5, f64::NAN],
                },
            ],
        )
        .unwrap();
        lines(
            dir.path(),
            "lines",
            &labels,
            &[Series {
                name: "TCP".into(),
                values: vec![(0.0, 1.0), (2.0, 3.0), (4.0, f64::NAN)],
            }],
        )
        .unwrap();
        for stem in ["bars", "lines"] {
            let [svg, png] = chart_files(dir.path(), stem);
            let svg_text = std::fs::read_to_string(svg).unwrap();
            assert!(svg_text.contains("<svg") && svg_text.contains("TCP"));
            let png_bytes = std::fs::read(png).unwrap();
            assert_eq!(png_bytes.get(..4), Some(&b"\x89PNG"[..]));
        }
    }

    #[test]
    fn a_line_without_finite_points_gets_no_legend() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::new("CPU", "subscribers", "%");
        let series = [
            Series {
                name: "mquictt TCP".into(),
                values: vec![(10.0, 5.0), (20.0, 9.0), (30.0, f64::NAN)],
            },
            Series {
                name: "failed throughout".into(),
                values: vec![(10.0, f64::NAN)],
            },
        ];
        lines(dir.path(), "cpu", &labels, &series).unwrap();
        let [svg, _] = chart_files(dir.path(), "cpu");
        let svg_text = std::fs::read_to_string(svg).unwrap();
        assert!(svg_text.contains("mquictt TCP"));
        assert!(!svg_text.contains("failed throughout"));
    }
}
