//! The SVG, written by hand: two panels (requests per second, latency) over the run.

use crate::stats::Second;
use std::fmt::Write as _;

/// A "nice" axis step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `max`.
pub(crate) fn nice_step(max: f64, ticks: usize) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let raw = max / ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let n = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

/// A tick label without needless decimals (`0.5`, `20`, `1,500`).
pub(crate) fn tick_label(v: f64) -> String {
    if v != 0.0 && v.abs() < 1.0 {
        let s = format!("{v:.3}");
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let whole = v.round() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if whole < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// Escapes text for SVG.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One data series of a panel: a label, a colour and a value per second.
pub(crate) struct Series<'a> {
    /// Legend text.
    pub(crate) label: &'a str,
    /// Stroke colour.
    pub(crate) color: &'a str,
    /// Dashed line?
    pub(crate) dashed: bool,
    /// One value per second.
    pub(crate) values: Vec<f64>,
}

/// Draws one panel (axes, grid, ticks, series, legend) into `svg` at `(x, y)` of size `w`x`h`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn panel(
    svg: &mut String, x: f64, y: f64, w: f64, h: f64, y_label: &str, seconds: usize,
    series: &[Series<'_>],
) {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max);
    let step = nice_step(max * 1.05, 5);
    let top = ((max * 1.05) / step).ceil().max(1.0) * step;
    let x_max = seconds.max(1) as f64;
    let x_step = nice_step(x_max, 10).max(1.0);
    let px = |s: f64| x + w * s / x_max;
    let py = |v: f64| y + h - h * v / top;
    let _ = writeln!(
        svg,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#fff" stroke="#999"/>"##
    );
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let yy = py(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            x + w,
            x - 6.0,
            yy + 4.0,
            tick_label(v)
        );
        v += step;
    }
    let mut s = 0.0;
    while s <= x_max + x_step / 2.0 {
        let xx = px(s);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#999"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"##,
            y + h,
            y + h + 4.0,
            y + h + 17.0,
            tick_label(s)
        );
        s += x_step;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 {:.1} {:.1})">{}</text>"##,
        x - 48.0,
        y + h / 2.0,
        x - 48.0,
        y + h / 2.0,
        esc(y_label)
    );
    for (i, se) in series.iter().enumerate() {
        // Each value is drawn at the middle of its second.
        let points: Vec<String> = se
            .values
            .iter()
            .enumerate()
            .map(|(s, v)| format!("{:.1},{:.1}", px(s as f64 + 0.5), py(*v)))
            .collect();
        let dash = if se.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if !points.is_empty() {
            let _ = writeln!(
                svg,
                r##"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{}"/>"##,
                se.color,
                points.join(" ")
            );
        }
        // The legend sits above the panel's right end, clear of the data.
        let lx = x + w - 130.0 * (series.len() - i) as f64;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            y - 8.0,
            lx + 22.0,
            y - 8.0,
            se.color,
            lx + 27.0,
            y - 4.0,
            esc(se.label)
        );
    }
}

/// The whole chart: a title, a throughput panel and a latency panel over the same seconds.
pub(crate) fn render(title: &str, subtitle: &str, seconds: &[Second]) -> String {
    let (width, height) = (960.0, 620.0);
    let (left, right) = (80.0, 20.0);
    let w = width - left - right;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"##
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="24" font-size="16" font-weight="bold">{}</text>"##,
        esc(title)
    );
    if !subtitle.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{left}" y="42" font-size="11" fill="#555">{}</text>"##,
            esc(subtitle)
        );
    }
    let n = seconds.len();
    panel(
        &mut svg,
        left,
        70.0,
        w,
        210.0,
        "requests / s",
        n,
        &[
            Series {
                label: "successful",
                color: "#1f77b4",
                dashed: false,
                values: seconds.iter().map(|s| s.ok as f64).collect(),
            },
            Series {
                label: "failed",
                color: "#d62728",
                dashed: false,
                values: seconds.iter().map(|s| s.failed as f64).collect(),
            },
        ],
    );
    panel(
        &mut svg,
        left,
        340.0,
        w,
        220.0,
        "latency, ms",
        n,
        &[
            Series {
                label: "p50",
                color: "#2ca02c",
                dashed: false,
                values: seconds.iter().map(|s| s.p50_ms).collect(),
            },
            Series {
                label: "p99",
                color: "#ff7f0e",
                dashed: true,
                values: seconds.iter().map(|s| s.p99_ms).collect(),
            },
        ],
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">seconds since the start of the run, ramp-up included (each request counted in the second it started; the last, partial second left out)</text>"##,
        left + w / 2.0,
        height - 16.0
    );
    svg.push_str("</svg>\n");
    svg
}
