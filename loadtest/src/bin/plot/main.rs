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

mod csv;
mod stats;
mod svg;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Parser;
use csv::{read_requests, Request};
use stats::{per_second, percentile};
use svg::render;

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
    use crate::csv::parse_csv;
    use crate::stats::Second;
    use crate::svg::{nice_step, tick_label};

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
