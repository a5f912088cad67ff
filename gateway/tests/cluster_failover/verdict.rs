//! What a run measured, read from the records and the gateways once the primary is killed:
//! when each gateway served the killed primary's events again, which acknowledged joins were
//! lost, whether places kept the order of acknowledgement, what was admitted after recovery;
//! and the figures printed.

use super::load::{join_once, Record};
use super::ADMIT_PER_SECOND;
use crate::common::ADMIN;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// What one run measured.
pub struct Report {
    pub records: Vec<Record>,
    pub victim_events: HashSet<usize>,
    pub kill_at: Instant,
    pub promoted_after: Duration,
    /// Per gateway, from the kill to its first 2xx on a killed primary's event.
    pub recovery: Vec<Option<Duration>>,
    pub lost: Vec<Record>,
    pub order_violations: usize,
    /// Per event, what it admitted after recovery.
    pub admissions: Vec<Admitted>,
    pub probe_statuses: Vec<u16>,
    /// The HTTP status of every webhook posted during the run (0: no answer).
    pub webhook_statuses: Vec<u16>,
}

/// Per gateway (of 3), the time from the kill to the first 2xx on a killed primary's event.
pub fn recovered(
    records: &[Record], victim_events: &HashSet<usize>, kill_at: Instant,
) -> Vec<Option<Duration>> {
    (0..3)
        .map(|g| {
            records
                .iter()
                .filter(|r| {
                    r.gateway == g && victim_events.contains(&r.event) && r.sent > kill_at && r.ok()
                })
                .map(|r| r.done - kill_at)
                .min()
        })
        .collect()
}

/// The acknowledged joins whose session, joining again, does not get the same ticket back.
pub async fn lost_joins(
    http: &reqwest::Client, bases: &[String], events: &[String], acked: &[Record],
) -> Vec<Record> {
    let mut lost = Vec::new();
    for chunk in acked.chunks(64) {
        let mut checks = Vec::new();
        for r in chunk {
            let (http, base, event, r) = (
                http.clone(),
                bases[r.gateway].clone(),
                events[r.event].clone(),
                r.clone(),
            );
            checks.push(tokio::spawn(async move {
                for _ in 0..20 {
                    let (status, _, _, ticket) = join_once(&http, &base, &event, &r.session).await;
                    if status == 200 && ticket == r.ticket {
                        return None;
                    }
                    if status != 503 {
                        return Some(r);
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                panic!("re-join of {} kept failing", r.session);
            }));
        }
        for c in checks {
            if let Some(r) = c.await.unwrap() {
                lost.push(r);
            }
        }
    }
    lost
}

/// Acknowledged joins with a ticket not above that of a join acknowledged (on the same event)
/// before they were sent.
pub fn order_violations(acked: &[Record]) -> usize {
    let mut violations = 0;
    let mut by_event: HashMap<usize, Vec<&Record>> = HashMap::new();
    for r in acked {
        by_event.entry(r.event).or_default().push(r);
    }
    for list in by_event.values_mut() {
        list.sort_by_key(|r| r.done);
        let mut prefix_max = Vec::with_capacity(list.len());
        let mut m = 0u64;
        for r in list.iter() {
            m = m.max(r.ticket.unwrap_or(0));
            prefix_max.push(m);
        }
        for b in list.iter() {
            let earlier = list.partition_point(|a| a.done < b.sent);
            if earlier > 0 && prefix_max[earlier - 1] >= b.ticket.unwrap_or(0) {
                violations += 1;
            }
        }
    }
    violations
}

/// What one event admitted between two reads of its `admitted_total`, and the time from the
/// start of the first read to the end of the second (so at least the time between the two
/// counts, however slow the reads).
#[derive(Debug, Clone, Copy)]
pub struct Admitted {
    pub count: u64,
    pub within: Duration,
}

/// Every event's `admitted_total`, read through `base`.
async fn admitted_totals(http: &reqwest::Client, base: &str, events: &[String]) -> Vec<u64> {
    let mut out = Vec::new();
    for ev in events {
        let r = http
            .get(format!("{base}/admin/v1/events/{ev}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("admin info");
        let body: serde_json::Value = r.json().await.unwrap();
        out.push(body["stats"]["admitted_total"].as_u64().expect("stats"));
    }
    out
}

/// Reads every event's admitted count through the first gateway, then through the last until
/// every event has admitted at least a second's worth more (or `limit` has passed).
pub async fn admissions(
    http: &reqwest::Client, bases: &[String], events: &[String], limit: Duration,
) -> Vec<Admitted> {
    let start = Instant::now();
    let before = admitted_totals(http, &bases[0], events).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = admitted_totals(http, &bases[bases.len() - 1], events).await;
        let within = start.elapsed();
        let counts: Vec<u64> = after
            .iter()
            .zip(&before)
            .map(|(n1, n0)| n1.saturating_sub(*n0))
            .collect();
        if counts.iter().all(|n| *n >= ADMIT_PER_SECOND) || within > limit {
            return counts
                .into_iter()
                .map(|count| Admitted { count, within })
                .collect();
        }
    }
}

/// Counts per status.
fn tally(statuses: &[u16]) -> BTreeMap<u16, usize> {
    statuses.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(*s).or_default() += 1;
        m
    })
}

/// Prints the figures of a run.
pub fn print(label: &str, r: &Report) {
    let last = r
        .recovery
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or_default();
    let during = |victim: bool| {
        let list: Vec<&Record> = r
            .records
            .iter()
            .filter(|x| {
                x.sent > r.kill_at
                    && r.victim_events.contains(&x.event) == victim
                    && x.sent - r.kill_at <= last
            })
            .collect();
        (list.iter().filter(|x| x.ok()).count(), list.len())
    };
    let (v_ok, v_all) = during(true);
    let (o_ok, o_all) = during(false);
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for x in r
        .records
        .iter()
        .filter(|x| x.status >= 300 || x.status == 0)
    {
        *codes
            .entry(format!("{} {}", x.status, x.error_code))
            .or_default() += 1;
    }
    let slowest = r
        .records
        .iter()
        .map(|x| x.done - x.sent)
        .max()
        .unwrap_or_default();
    // Per gateway, the longest time without a 2xx on the other primaries' events after the kill
    // (an upper bound: a worker waiting on a killed primary's event sends nothing else).
    let stalls: Vec<String> = (0..3)
        .map(|g| {
            let mut t = vec![r.kill_at];
            t.extend(
                r.records
                    .iter()
                    .filter(|x| {
                        x.gateway == g
                            && !r.victim_events.contains(&x.event)
                            && x.done > r.kill_at
                            && x.ok()
                    })
                    .map(|x| x.done),
            );
            t.sort();
            let gap = t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
            format!("{:.2} s", gap.as_secs_f64())
        })
        .collect();
    let acked = r.records.iter().filter(|x| x.ok()).count();
    eprintln!(
        "[{label}] joins sent {}, acknowledged {acked}; replica promoted {:.2} s after the kill; \
         killed primary's events serving again per gateway: {:?}",
        r.records.len(),
        r.promoted_after.as_secs_f64(),
        r.recovery
            .iter()
            .map(|d| d.map(|d| format!("{:.2} s", d.as_secs_f64())))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "[{label}] until recovery: killed primary's events {v_ok}/{v_all} 2xx, other events \
         {o_ok}/{o_all} 2xx (longest stall of the other events per gateway {stalls:?}); \
         non-2xx answers {codes:?}; slowest answer {:.2} s",
        slowest.as_secs_f64()
    );
    eprintln!(
        "[{label}] lost acknowledged joins: {} of {acked}; order violations {}; admissions/s per \
         event after recovery (configured {ADMIT_PER_SECOND}): {:?}; availability probe \
         statuses {:?}; webhook statuses {:?}",
        r.lost.len(),
        r.order_violations,
        r.admissions
            .iter()
            .map(|a| format!("{:.2}", a.count as f64 / a.within.as_secs_f64()))
            .collect::<Vec<_>>(),
        tally(&r.probe_statuses),
        tally(&r.webhook_statuses)
    );
}
