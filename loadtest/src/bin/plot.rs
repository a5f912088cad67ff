//! `plot`: throughput and latency per second of a load test, as a self-contained SVG.
//!
//! Reads goose's request log (`--request-log FILE --request-format csv`: one row per request,
//! with a header naming the columns), puts every request into the second in which it started
//! (the `elapsed` column, milliseconds since the load test began) and draws two panels over the
//! run: requests per second (successful and failed), and the p50 and p99 latency of the requests
//! started in that second (`response_time_us` when the log has it, else `response_time` in ms).
//! The last second, which the run ends part-way through, is left out of the chart and of the
//! per-second figures (peak, median); the totals count every request.
//!
//! The SVG is written by hand (lines, text and rectangles), so it needs no font or graphics
//! library and renders the same in any browser or on GitHub. The last line printed is
//! `PLOT_JSON {...}` with the run's totals, for scripts.
//!
//! ```text
//! plot --input requests.csv --output docs/bench/join_storm.svg --title "join storm"
//! plot --input requests.csv --by-name      # only the figures, a Markdown row per request name
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;

/// Command-line arguments.
#[derive(Parser, Debug)]
#[command(about = "Throughput and latency per second from a goose CSV request log, as an SVG")]
struct Args {
    /// The goose request log (`--request-log FILE --request-format csv`).
    #[arg(long)]
    input: PathBuf,
    /// Where the SVG goes (no SVG without it: only the figures are printed).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Also print a Markdown table row per request name (requests, failed, req/s, p50, p99).
    #[arg(long)]
    by_name: bool,
    /// The chart's title.
    #[arg(long, default_value = "Load test")]
    title: String,
    /// Only requests whose `name` column contains this text (all requests if not given).
    #[arg(long)]
    name_contains: Option<String>,
    /// A line under the title (for example the command and the commit).
    #[arg(long, default_value = "")]
    subtitle: String,
}

/// One request from the log: when it started and how it went.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    /// Milliseconds from the start of the load test to the start of the request.
    elapsed_ms: u64,
    /// Response time in microseconds.
    latency_us: u64,
    /// Whether goose counted it a success.
    ok: bool,
    /// The request's name (goose's `name` column; empty if the log has none).
    name: String,
}

/// The requests that started in one second of the run.
#[derive(Debug, Default, Clone, PartialEq)]
struct Second {
    /// Successful requests.
    ok: u64,
    /// Failed requests.
    failed: u64,
    /// Latency percentiles of all of them, in milliseconds.
    p50_ms: f64,
    /// See `p50_ms`.
    p99_ms: f64,
}

/// The rows of CSV text, one at a time (a full run's log has hundreds of thousands of rows, so
/// they are not all held at once), RFC 4180: fields with commas, quotes or newlines are quoted
/// and inner quotes doubled (what goose writes). A trailing newline ends the last row.
struct CsvRows<'a> {
    /// The text not read yet.
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl<'a> CsvRows<'a> {
    /// Rows of `text`.
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.chars().peekable(),
        }
    }
}

impl Iterator for CsvRows<'_> {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut any = false;
        while let Some(c) = self.chars.next() {
            any = true;
            if quoted {
                match c {
                    '"' if self.chars.peek() == Some(&'"') => {
                        self.chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    row.push(field);
                    return Some(row);
                }
                _ => field.push(c),
            }
        }
        any.then(|| {
            row.push(field);
            row
        })
    }
}

/// All rows of CSV text (see [`CsvRows`]).
#[cfg(test)]
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    CsvRows::new(text).collect()
}

/// The requests of a goose CSV request log (header row first), optionally only those whose
/// `name` contains `name_filter`.
fn read_requests(text: &str, name_filter: Option<&str>) -> Result<Vec<Request>> {
    let mut rows = CsvRows::new(text);
    let Some(header) = rows.next() else {
        bail!(
            "the request log is empty (was goose run with --request-log and --request-format csv?)"
        );
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let elapsed = col("elapsed").context("no `elapsed` column in the request log's header")?;
    let micros = col("response_time_us");
    let millis = col("response_time");
    if micros.is_none() && millis.is_none() {
        bail!("no `response_time_us` or `response_time` column in the request log's header");
    }
    let success = col("success");
    let status = col("status_code");
    let name = col("name");
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        if row.len() == 1 && row[0].is_empty() {
            continue; // a blank line
        }
        let get = |c: usize| row.get(c).map(|s| s.trim()).unwrap_or("");
        if let (Some(f), Some(n)) = (name_filter, name) {
            if !get(n).contains(f) {
                continue;
            }
        }
        let elapsed_ms: u64 = get(elapsed)
            .parse()
            .with_context(|| format!("row {}: bad elapsed {:?}", i + 2, get(elapsed)))?;
        let latency_us = match (micros, millis) {
            (Some(c), _) if !get(c).is_empty() => get(c).parse::<u64>(),
            (_, Some(c)) => get(c).parse::<u64>().map(|ms| ms * 1000),
            (Some(c), None) => get(c).parse::<u64>(),
            (None, None) => unreachable!("checked above"),
        }
        .with_context(|| format!("row {}: bad response time", i + 2))?;
        let ok = match (success, status) {
            (Some(c), _) => get(c) == "true",
            (None, Some(c)) => get(c).parse::<u16>().is_ok_and(|s| (200..400).contains(&s)),
            (None, None) => true,
        };
        out.push(Request {
            elapsed_ms,
            latency_us,
            ok,
            name: name.map(|c| get(c).to_string()).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The nearest-rank percentile `p` (0..=100) of sorted values; 0 for none.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Groups requests by the second they started in, from second 0 to the last one with a request
/// (seconds without any request are kept, as zeros, so a stall shows).
fn per_second(requests: &[Request]) -> Vec<Second> {
    let mut buckets: BTreeMap<u64, (u64, u64, Vec<u64>)> = BTreeMap::new();
    for r in requests {
        let b = buckets.entry(r.elapsed_ms / 1000).or_default();
        if r.ok {
            b.0 += 1;
        } else {
            b.1 += 1;
        }
        b.2.push(r.latency_us);
    }
    let last = buckets.keys().next_back().copied().unwrap_or(0);
    (0..=last)
        .map(|s| match buckets.get_mut(&s) {
            None => Second::default(),
            Some((ok, failed, lat)) => {
                lat.sort_unstable();
                Second {
                    ok: *ok,
                    failed: *failed,
                    p50_ms: percentile(lat, 50.0) as f64 / 1000.0,
                    p99_ms: percentile(lat, 99.0) as f64 / 1000.0,
                }
            }
        })
        .collect()
}

/// A "nice" axis step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `max`.
fn nice_step(max: f64, ticks: usize) -> f64 {
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
fn tick_label(v: f64) -> String {
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
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One data series of a panel: a label, a colour and a value per second.
struct Series<'a> {
    /// Legend text.
    label: &'a str,
    /// Stroke colour.
    color: &'a str,
    /// Dashed line?
    dashed: bool,
    /// One value per second.
    values: Vec<f64>,
}

/// Draws one panel (axes, grid, ticks, series, legend) into `svg` at `(x, y)` of size `w`x`h`.
#[allow(clippy::too_many_arguments)]
fn panel(
    svg: &mut String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    y_label: &str,
    seconds: usize,
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
fn render(title: &str, subtitle: &str, seconds: &[Second]) -> String {
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

/// One Markdown table row per request name, in order of first appearance: requests, failed,
/// mean rate over `span_s` seconds, p50 and p99 in ms.
fn by_name(requests: &[Request], span_s: f64) -> Vec<String> {
    let mut order: Vec<&str> = Vec::new();
    let mut groups: BTreeMap<&str, (u64, Vec<u64>)> = BTreeMap::new();
    for r in requests {
        let g = groups.entry(&r.name).or_insert_with(|| {
            order.push(&r.name);
            (0, Vec::new())
        });
        if !r.ok {
            g.0 += 1;
        }
        g.1.push(r.latency_us);
    }
    order
        .into_iter()
        .map(|name| {
            let (failed, lat) = groups.get_mut(name).expect("grouped above");
            lat.sort_unstable();
            format!(
                "| `{}` | {} | {failed} | {:.0} | {:.2} | {:.2} |",
                name.replace('|', "\\|").replace('`', "'"),
                lat.len(),
                lat.len() as f64 / span_s,
                percentile(lat, 50.0) as f64 / 1000.0,
                percentile(lat, 99.0) as f64 / 1000.0
            )
        })
        .collect()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let requests = read_requests(&text, args.name_contains.as_deref())?;
    if requests.is_empty() {
        bail!(
            "no requests in {} (after the name filter)",
            args.input.display()
        );
    }
    let mut seconds = per_second(&requests);
    // The run ends part-way through its last second: that second's count would show as a
    // collapse, so it is left out of the chart and of the per-second figures (not of the totals).
    if seconds.len() > 1 {
        seconds.pop();
    }
    if let Some(output) = &args.output {
        let svg = render(&args.title, &args.subtitle, &seconds);
        if let Some(dir) = output.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        std::fs::write(output, svg).with_context(|| format!("writing {}", output.display()))?;
    }
    // The run's length: from the first request's start to the last one's.
    let first = requests.iter().map(|r| r.elapsed_ms).min().unwrap_or(0);
    let last = requests.iter().map(|r| r.elapsed_ms).max().unwrap_or(0);
    let span_s = ((last - first) as f64 / 1000.0).max(0.001);
    if args.by_name {
        println!("| request | requests | failed | req/s | p50 ms | p99 ms |");
        println!("|---|---:|---:|---:|---:|---:|");
        for row in by_name(&requests, span_s) {
            println!("{row}");
        }
    }
    let mut all: Vec<u64> = requests.iter().map(|r| r.latency_us).collect();
    all.sort_unstable();
    let failed = requests.iter().filter(|r| !r.ok).count();
    let rates: Vec<u64> = seconds.iter().map(|s| s.ok + s.failed).collect();
    let mut sorted_rates = rates.clone();
    sorted_rates.sort_unstable();
    let peak = rates.iter().copied().max().unwrap_or(0);
    let worst_p99 = seconds.iter().map(|s| s.p99_ms).fold(0.0f64, f64::max);
    eprintln!(
        "plot: {} requests ({failed} failed) over {} s, peak {peak}/s{}",
        requests.len(),
        seconds.len(),
        args.output
            .as_ref()
            .map(|o| format!(", wrote {}", o.display()))
            .unwrap_or_default()
    );
    println!(
        "PLOT_JSON {{\"requests\":{},\"failed\":{failed},\"seconds\":{},\"mean_rps\":{:.1},\"peak_rps\":{peak},\"median_rps\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"worst_second_p99_ms\":{worst_p99:.3}}}",
        requests.len(),
        seconds.len(),
        requests.len() as f64 / span_s,
        percentile(&sorted_rates, 50.0),
        percentile(&all, 50.0) as f64 / 1000.0,
        percentile(&all, 99.0) as f64 / 1000.0,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "elapsed,scenario_index,scenario_name,transaction_index,transaction_name,raw,name,final_url,redirected,response_time,status_code,success,update,user,error,coordinated_omission_elapsed,user_cadence,response_time_us\n";

    #[test]
    fn quoted_fields_with_commas_quotes_and_newlines_stay_one_field() {
        let rows = parse_csv("a,\"b,c\",\"say \"\"hi\"\"\"\n\"two\nlines\",x\n");
        assert_eq!(
            rows,
            vec![vec!["a", "b,c", "say \"hi\""], vec!["two\nlines", "x"]]
        );
    }

    #[test]
    fn goose_rows_are_read_by_header_name() {
        let log = format!(
            "{HEADER}1500,0,join_storm,0,join,\"GooseRawRequest {{ method: Post, url: \"\"http://x/a,b\"\" }}\",join,http://x,false,3,201,true,false,1,,0,0,2750\n\
             2100,0,join_storm,0,join,raw,status,http://x,false,9,503,false,false,2,\"503, busy\",0,0,\n"
        );
        let r = read_requests(&log, None).unwrap();
        assert_eq!(
            r,
            vec![
                Request {
                    elapsed_ms: 1500,
                    latency_us: 2750,
                    ok: true,
                    name: "join".into()
                },
                // an empty microsecond cell falls back to the millisecond column
                Request {
                    elapsed_ms: 2100,
                    latency_us: 9000,
                    ok: false,
                    name: "status".into()
                },
            ]
        );
        assert_eq!(read_requests(&log, Some("status")).unwrap().len(), 1);
    }

    #[test]
    fn a_log_without_the_needed_columns_is_an_error() {
        assert!(read_requests("", None).is_err());
        assert!(read_requests("when,latency\n1,2\n", None).is_err());
        assert!(read_requests("elapsed,name\n1,x\n", None).is_err());
    }

    #[test]
    fn requests_are_grouped_by_the_second_they_started_in_and_gaps_show() {
        let req = |elapsed_ms, latency_us, ok| Request {
            elapsed_ms,
            latency_us,
            ok,
            name: String::new(),
        };
        let mut reqs: Vec<Request> = (1..=100).map(|i| req(10 + i, i * 1000, true)).collect();
        reqs.push(req(2999, 7000, false));
        let s = per_second(&reqs);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].ok, s[0].failed), (100, 0));
        assert_eq!((s[0].p50_ms, s[0].p99_ms), (50.0, 99.0));
        assert_eq!(
            s[1],
            Second::default(),
            "a second without requests is a zero, not skipped"
        );
        assert_eq!((s[2].ok, s[2].failed, s[2].p99_ms), (0, 1, 7.0));
    }

    #[test]
    fn rows_per_request_name_keep_the_order_of_first_appearance() {
        let req = |name: &str, latency_us, ok| Request {
            elapsed_ms: 0,
            latency_us,
            ok,
            name: name.into(),
        };
        let reqs = [
            req("join", 1000, true),
            req("status", 3000, false),
            req("join", 2000, true),
        ];
        assert_eq!(
            by_name(&reqs, 1.0),
            vec![
                "| `join` | 2 | 0 | 2 | 1.00 | 2.00 |".to_string(),
                "| `status` | 1 | 1 | 1 | 3.00 | 3.00 |".to_string(),
            ]
        );
    }

    #[test]
    fn axis_steps_and_labels_are_round() {
        assert_eq!(nice_step(1000.0, 5), 200.0);
        assert_eq!(nice_step(23.0, 5), 5.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
        assert_eq!(tick_label(25000.0), "25,000");
        assert_eq!(tick_label(0.5), "0.5");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn the_svg_is_well_formed_and_escapes_the_title() {
        let s = per_second(&[Request {
            elapsed_ms: 0,
            latency_us: 1000,
            ok: true,
            name: String::new(),
        }]);
        let svg = render("a <b> & c", "", &s);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
