//! Reading goose's CSV request log.

use anyhow::{bail, Context, Result};

/// One request from the log: when it started and how it went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// Milliseconds from the start of the load test to the start of the request.
    pub(crate) elapsed_ms: u64,
    /// Response time in microseconds.
    pub(crate) latency_us: u64,
    /// Whether goose counted it a success.
    pub(crate) ok: bool,
    /// The request's name (goose's `name` column; empty if the log has none).
    pub(crate) name: String,
}

/// The rows of CSV text, one at a time (a full run's log has hundreds of thousands of rows, so
/// they are not all held at once), RFC 4180: fields with commas, quotes or newlines are quoted
/// and inner quotes doubled (what goose writes). A trailing newline ends the last row.
pub(crate) struct CsvRows<'a> {
    /// The text not read yet.
    pub(crate) chars: std::iter::Peekable<std::str::Chars<'a>>,
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
pub(crate) fn parse_csv(text: &str) -> Vec<Vec<String>> {
    CsvRows::new(text).collect()
}

/// The requests of a goose CSV request log (header row first), optionally only those whose
/// `name` contains `name_filter`.
pub(crate) fn read_requests(text: &str, name_filter: Option<&str>) -> Result<Vec<Request>> {
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
