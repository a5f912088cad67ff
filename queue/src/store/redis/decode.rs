//! The scripts' replies decoded into the model's types (a short or garbled reply is a
//! [`QueueError::Protocol`]: a bug or a mismatched script, never retried).

use crate::error::{QueueError, Result};
use crate::model::*;

pub(super) fn u(v: i64) -> u64 {
    v.max(0) as u64
}

/// Decodes `{code, ticket, status, position, expires_at, rate_m, aps, flags, opens, epoch,
/// log seq}`.
pub(super) fn decode_place(r: &[i64]) -> Result<Place> {
    if r.len() < 11 {
        return Err(QueueError::Protocol(format!("short place reply {r:?}")));
    }
    let status =
        Status::from_code(r[2]).ok_or_else(|| QueueError::Protocol(format!("status {}", r[2])))?;
    Ok(Place {
        ticket: u(r[1]),
        status,
        position: u(r[3]),
        expires_at_ms: u(r[4]),
        measured_rate_milli: r[5],
        admit_per_second: u32::try_from(r[6]).unwrap_or(0),
        stopped: r[7] & 1 != 0,
        opens_at_ms: (r[8] >= 0).then(|| r[8] as u64),
        epoch: u(r[9]),
        method: QueueingMethod::from_code((r[7] >> 2) & 3),
        log_seq: u(r[10]),
    })
}

/// Splits a batch reply into its first `head` values and one row of `width` values for each of
/// its `n` requests; a reply of any other length is a protocol error.
pub(super) fn split<'r>(
    r: &'r [i64], head: usize, width: usize, n: usize, what: &str,
) -> Result<(&'r [i64], std::slice::ChunksExact<'r, i64>)> {
    if r.len() != head + width * n {
        return Err(QueueError::Protocol(format!(
            "{what} reply of {} values for {n} requests",
            r.len()
        )));
    }
    let (head, rows) = r.split_at(head);
    Ok((head, rows.chunks_exact(width)))
}

/// Decodes one place of a batch reply from its ticket, its row `{status, position, expires_at,
/// log seq}` and the event's `{rate_m, aps, flags, opens, epoch}` that every place of the reply
/// shares.
pub(super) fn place_row(ticket: i64, row: &[i64], shared: &[i64]) -> Result<Place> {
    let mut r = [0; 11];
    r[1] = ticket;
    r[2..5].copy_from_slice(&row[..3]);
    r[5..10].copy_from_slice(&shared[..5]);
    r[10] = row[3];
    decode_place(&r)
}

/// Decodes info.lua's reply (its first element is "1": the event exists).
pub(super) fn info(raw: &[String]) -> Result<EventInfo> {
    if raw.len() < 16 {
        return Err(QueueError::Protocol(format!("short info reply {raw:?}")));
    }
    let r: Vec<i64> = raw[..15].iter().map(|v| v.parse().unwrap_or(0)).collect();
    let target_url = Some(raw[15].clone()).filter(|u| !u.is_empty());
    let secs = |v: i64| u32::try_from(v).unwrap_or(0);
    let [joined_total, admitted_total, entered_total, waiting, ready, active] =
        [8, 9, 10, 11, 12, 13].map(|i| u(r[i]));
    let opens_at = if r[6] >= 0 {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r[6]) * 1_000_000).ok()
    } else {
        None
    };
    Ok(EventInfo {
        config: EventConfig {
            admit_per_second: secs(r[1]),
            max_active: secs(r[2]),
            admission_ttl_seconds: secs(r[3]),
            idle_timeout_seconds: secs(r[4]),
            ready_timeout_seconds: secs(r[5]),
            opens_at,
            target_url,
            join_challenge: raw
                .get(16)
                .and_then(|b| b.parse().ok())
                .filter(|&b| b > 0)
                .map(|difficulty_bits| JoinChallenge { difficulty_bits }),
            queueing_method: QueueingMethod::from_code((r[7] >> 2) & 3),
            page: raw
                .get(17)
                .filter(|p| !p.is_empty())
                .and_then(|p| serde_json::from_str(p).ok()),
        },
        stopped: r[7] & 1 != 0,
        sold_out: r[7] & 2 != 0,
        measured_rate_milli: r[14],
        stats: EventStats {
            joined_total,
            admitted_total,
            entered_total,
            waiting,
            ready,
            active,
        },
    })
}

/// Decodes pulse.lua's reply (its first element is "1": the event exists).
pub(super) fn pulse(r: &[String]) -> Result<Pulse> {
    let num = |i: usize| -> Result<i64> {
        r.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| QueueError::Protocol(format!("bad pulse reply {r:?}")))
    };
    let flags = num(2)?;
    let opens = num(3)?;
    let departures = if num(6)? == 1 {
        None
    } else {
        let entries = r
            .get(11..)
            .ok_or_else(|| QueueError::Protocol(format!("short pulse reply {r:?}")))?;
        // An entry this version cannot read (one that a newer replica's scripts wrote, during a
        // rolling upgrade) counts as a reset: every position is read again, where an error
        // would stall the event's fan-out until the entry left the log.
        Some(
            entries
                .iter()
                .map(|e| Departure::parse(e).unwrap_or(Departure::Reset))
                .collect(),
        )
    };
    Ok(Pulse {
        seq: u(num(1)?),
        departures,
        stopped: flags & 1 != 0,
        sold_out: flags & 2 != 0,
        opens_at_ms: (opens >= 0).then_some(opens as u64),
        measured_rate_milli: num(4)?,
        admit_per_second: u32::try_from(num(5)?).unwrap_or(0),
        idle_timeout_seconds: u32::try_from(num(7)?).unwrap_or(0),
        queueing_method: QueueingMethod::from_code((flags >> 2) & 3),
        epoch: u(num(8)?),
        pause_end_s: u(num(9)?),
        pause_len_s: u(num(10)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(entries: &[&str]) -> Vec<String> {
        let head = ["1", "9", "0", "-1", "-1", "5", "0", "60", "42", "0", "0"];
        head.iter().chain(entries).map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_unknown_log_entry_reads_as_a_reset_not_an_error() {
        let p = pulse(&reply(&["a2", "q7", "p3"])).unwrap();
        assert_eq!(
            p.departures,
            Some(vec![
                Departure::Head(2),
                Departure::Reset,
                Departure::Arrival(3)
            ])
        );
        assert_eq!((p.seq, p.epoch, p.idle_timeout_seconds), (9, 42, 60));
        assert!(
            pulse(&reply(&[])[..10]).is_err(),
            "a short reply is a protocol error"
        );
    }
}
