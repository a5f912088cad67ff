//! The waiting room's values: event configuration, statuses, places and statistics.

use crate::error::QueueError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Default `admission_ttl_seconds`: how long an admission (reservation token) stays valid.
pub const DEFAULT_ADMISSION_TTL_SECONDS: u32 = 300;
/// Default `idle_timeout_seconds`: a waiting user silent this long loses the place.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u32 = 3600;
/// Default `ready_timeout_seconds`: a READY user who does not enter in time loses the slot.
pub const DEFAULT_READY_TIMEOUT_SECONDS: u32 = 120;

/// An event's admission configuration, as set by `PUT /admin/v1/events/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventConfig {
    /// Users made READY per second (0 pauses admissions).
    pub admit_per_second: u32,
    /// Most users READY or ADMITTED (unexpired) at once.
    pub max_active: u32,
    /// Lifetime of an admission, in seconds.
    #[serde(default = "default_admission_ttl")]
    pub admission_ttl_seconds: u32,
    /// Heartbeat-free seconds after which a waiting user is removed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u32,
    /// Seconds a READY user has to call `enter`.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_seconds: u32,
    /// When the queue opens; joins before it form the shuffled pre-queue.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub opens_at: Option<OffsetDateTime>,
    /// Where the waiting-room page sends admitted users (with `reservation_token` appended as
    /// a query parameter); an absolute http(s) URL.
    #[serde(default)]
    pub target_url: Option<String>,
    /// Proof of work asked of every join (`GET /api/v1/queue/challenge`); None or 0 bits: off.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_or_null"
    )]
    pub join_challenge: Option<JoinChallenge>,
    /// How the queue lets people through (docs/api.md, "Queueing methods"); default `fifo`.
    #[serde(default)]
    pub queueing_method: QueueingMethod,
    /// The waiting page's brand, text and template ([`crate::page::PageSettings`]).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "object_or_null"
    )]
    pub page: Option<crate::page::PageSettings>,
}

/// An optional struct-valued field that must be a JSON object or null: serde's derived
/// struct deserializers also take a sequence of the fields' values (`[16]`, `[null, null]`),
/// which the API does not (its schema says object or null).
fn object_or_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectOrNull<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for ObjectOrNull<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_option(ObjectOrNull(std::marker::PhantomData))
}

/// How an event's queue lets people through. Switching is live: the queue keeps its order
/// (arrival, or the pre-queue's draw) whatever the method, and only how it is taken changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueingMethod {
    /// First come, first served (the default).
    #[default]
    Fifo,
    /// A lottery: each admission draws uniformly among everyone waiting (after the priority
    /// lane); nobody is shown a position.
    Random,
    /// Admit at once while `max_active` allows, ignoring `admit_per_second`; queue as `fifo`
    /// when full.
    Passthrough,
    /// No new places: joins are refused (403 `QUEUE_CLOSED`); those already holding a place
    /// keep it and are admitted in order.
    Reject,
}

impl QueueingMethod {
    /// The stores' numeric code (`qm` in the event hash, bits 2..3 of a reply's flags).
    pub fn code(self) -> i64 {
        match self {
            Self::Fifo => 0,
            Self::Random => 1,
            Self::Passthrough => 2,
            Self::Reject => 3,
        }
    }

    /// The method of a store's code; unknown codes read as `fifo`.
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::Random,
            2 => Self::Passthrough,
            3 => Self::Reject,
            _ => Self::Fifo,
        }
    }

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fifo => "fifo",
            Self::Random => "random",
            Self::Passthrough => "passthrough",
            Self::Reject => "reject",
        }
    }
}

/// An event's proof-of-work setting: each join must carry a nonce such that
/// SHA-256(challenge ":" nonce) starts with `difficulty_bits` zero bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinChallenge {
    /// Leading zero bits required, 0 (off) to [`MAX_DIFFICULTY_BITS`].
    pub difficulty_bits: u32,
}

/// Largest accepted `join_challenge.difficulty_bits` (about 4 billion hashes on average: far
/// beyond what a phone solves in a reasonable time; see docs/operations.md for measured times).
pub const MAX_DIFFICULTY_BITS: u32 = 32;

fn default_admission_ttl() -> u32 {
    DEFAULT_ADMISSION_TTL_SECONDS
}
fn default_idle_timeout() -> u32 {
    DEFAULT_IDLE_TIMEOUT_SECONDS
}
fn default_ready_timeout() -> u32 {
    DEFAULT_READY_TIMEOUT_SECONDS
}

/// Largest accepted `admit_per_second`.
pub const MAX_ADMIT_PER_SECOND: u32 = 1_000_000;
/// Longest accepted `target_url`, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Whether `url` is `http(s)://host[:port]` followed by an RFC 3986 path, query and fragment:
/// the subset of URIs (no user info, no IP-literal host) that the API's schema describes with
/// a pattern, so that what the schema accepts the server accepts and the reverse.
pub fn is_target_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    let (before, fragment) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    host_ok && port_ok && uri_chars(before) && fragment.is_none_or(uri_chars)
}

/// RFC 3986 pchar, `/` and `?`, with every `%` starting a percent-encoded byte.
fn uri_chars(s: &str) -> bool {
    const OTHER: &[u8] = b"-._~!$&'()*+,;=:@/?";
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if b[i].is_ascii_alphanumeric() || OTHER.contains(&b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}
/// Largest accepted timeout or TTL, in seconds (30 days).
pub const MAX_SECONDS: u32 = 30 * 24 * 3600;

impl EventConfig {
    /// A configuration with the documented defaults for the optional fields.
    pub fn new(admit_per_second: u32, max_active: u32) -> Self {
        Self {
            admit_per_second,
            max_active,
            admission_ttl_seconds: DEFAULT_ADMISSION_TTL_SECONDS,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            ready_timeout_seconds: DEFAULT_READY_TIMEOUT_SECONDS,
            opens_at: None,
            target_url: None,
            join_challenge: None,
            queueing_method: QueueingMethod::Fifo,
            page: None,
        }
    }

    /// The proof of work's difficulty in bits; 0 when the event asks for none.
    pub fn challenge_bits(&self) -> u32 {
        self.join_challenge.map_or(0, |c| c.difficulty_bits)
    }

    /// Checks every value's range; the error names the offending field.
    pub fn validate(&self) -> Result<(), QueueError> {
        let bad = |m: String| Err(QueueError::InvalidArgument(m));
        if self.admit_per_second > MAX_ADMIT_PER_SECOND {
            return bad(format!(
                "admit_per_second must be at most {MAX_ADMIT_PER_SECOND}"
            ));
        }
        for (name, v) in [
            ("admission_ttl_seconds", self.admission_ttl_seconds),
            ("idle_timeout_seconds", self.idle_timeout_seconds),
            ("ready_timeout_seconds", self.ready_timeout_seconds),
        ] {
            if v == 0 || v > MAX_SECONDS {
                return bad(format!("{name} must be between 1 and {MAX_SECONDS}"));
            }
        }
        if let Some(url) = &self.target_url {
            if url.len() > MAX_URL_BYTES || !is_target_url(url) {
                return bad(format!(
                    "target_url must be an absolute http(s) URL (a host name, an optional port, RFC 3986 characters) of at most {MAX_URL_BYTES} bytes"
                ));
            }
        }
        if self.challenge_bits() > MAX_DIFFICULTY_BITS {
            return bad(format!(
                "join_challenge.difficulty_bits must be between 0 and {MAX_DIFFICULTY_BITS}"
            ));
        }
        if let Some(p) = &self.page {
            p.validate()?;
        }
        if let Some(t) = self.opens_at {
            if t.unix_timestamp() < 0 || t.year() > 9999 {
                return bad("opens_at must be between 1970 and 9999".into());
            }
        }
        Ok(())
    }

    /// `opens_at` in Unix milliseconds.
    pub fn opens_at_ms(&self) -> Option<u64> {
        self.opens_at
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Joined before `opens_at`; the place is drawn at random among the pre-queue.
    PreQueue,
    /// In the queue, `position` people from the front.
    Waiting,
    /// Let through: may call `enter` until the ready deadline.
    Ready,
    /// Entered: holds an unexpired admission.
    Admitted,
    /// The place is gone (left, idle, ready timeout, admission ran out).
    Expired,
    /// The event sold out while this user waited.
    SoldOut,
}

impl Status {
    /// The status of a store's numeric code (see `lib.lua`).
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::PreQueue,
            1 => Self::Waiting,
            2 => Self::Ready,
            3 => Self::Admitted,
            4 => Self::Expired,
            5 => Self::SoldOut,
            _ => return None,
        })
    }

    /// The name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreQueue => "PRE_QUEUE",
            Self::Waiting => "WAITING",
            Self::Ready => "READY",
            Self::Admitted => "ADMITTED",
            Self::Expired => "EXPIRED",
            Self::SoldOut => "SOLD_OUT",
        }
    }
}

/// A ticket's place as a store reports it, with the inputs of its ETA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// The ticket (arrival number within the event).
    pub ticket: u64,
    /// Where it stands.
    pub status: Status,
    /// 1-based among waiting users; 0 unless WAITING.
    pub position: u64,
    /// When the current state lapses (Unix ms): heartbeat deadline, ready deadline or admission
    /// end; 0 when EXPIRED or SOLD_OUT.
    pub expires_at_ms: u64,
    /// The measured admission rate in milli-users per second, or -1 before any measurement.
    pub measured_rate_milli: i64,
    /// The configured `admit_per_second`.
    pub admit_per_second: u32,
    /// STOP_ADMISSIONS is in force.
    pub stopped: bool,
    /// `opens_at` in Unix ms.
    pub opens_at_ms: Option<u64>,
    /// The event's epoch: random, chosen when the event was created
    /// ([`crate::store::new_epoch`]), so different for every incarnation of an event id (and
    /// not its creation time: events created in the same millisecond differ too); waiting
    /// tokens carry it. Events created before epochs were random keep their creation time (Unix
    /// ms); 0 for an event created before epochs existed.
    pub epoch: u64,
    /// The event's queueing method now.
    pub method: QueueingMethod,
    /// The departure log's sequence at which `position` is exact ([`Pulse::seq`]).
    pub log_seq: u64,
}

impl Place {
    /// The position a client is shown: 0 in a `random` queue, where a lottery has no order to
    /// show (everyone waiting has the same chance at each draw); else the position.
    pub fn shown_position(&self) -> u64 {
        if self.method == QueueingMethod::Random {
            0
        } else {
            self.position
        }
    }

    /// Estimated seconds until READY: the position over the measured admission rate (the
    /// configured rate until one is measured); for the pre-queue, the time until opening.
    /// -1 when no estimate exists (admissions paused, or a `random` queue: a lottery's wait
    /// has no estimate for one person).
    pub fn eta_seconds(&self, now_ms: u64) -> i64 {
        match self.status {
            Status::Waiting if self.method == QueueingMethod::Random => -1,
            Status::PreQueue => {
                let wait = self.opens_at_ms.unwrap_or(now_ms).saturating_sub(now_ms);
                wait.div_ceil(1000) as i64
            }
            Status::Waiting => eta_seconds(
                self.position,
                self.measured_rate_milli,
                self.admit_per_second,
                self.stopped,
            ),
            _ => 0,
        }
    }
}

/// Seconds until a waiting user at `position` is READY: the position over the measured rate
/// (milli-users/s), the configured rate until one is measured; -1 when admissions are stopped or
/// paused and nothing was measured.
pub fn eta_seconds(
    position: u64, measured_rate_milli: i64, admit_per_second: u32, stopped: bool,
) -> i64 {
    let milli = if measured_rate_milli > 0 && !stopped {
        measured_rate_milli as u64
    } else if !stopped && admit_per_second > 0 {
        u64::from(admit_per_second) * 1000
    } else {
        return -1;
    };
    position.saturating_mul(1000).div_ceil(milli) as i64
}

/// What `join` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    /// True for a new place, false when the session already held one.
    pub created: bool,
    /// The place, new or existing.
    pub place: Place,
}

/// What `enter` answered: the admission granted, or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnterOutcome {
    /// Admitted until `place.expires_at_ms` (the same grant on every call).
    Granted(Place),
    /// Not admitted; the place says why (WAITING/PRE_QUEUE, EXPIRED, SOLD_OUT).
    Refused(Place),
}

/// An event's counters, as `GET /admin/v1/events/{id}` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EventStats {
    /// Users in the queue (pre-queue included).
    pub waiting: u64,
    /// Users READY and not yet entered.
    pub ready: u64,
    /// Users holding an unexpired admission.
    pub active: u64,
    /// New places handed out since the event was created.
    pub joined_total: u64,
    /// Users let through the queue (made READY) since the event was created.
    pub admitted_total: u64,
    /// Users who entered (took an admission) since the event was created.
    pub entered_total: u64,
}

/// An event as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInfo {
    /// The configuration.
    pub config: EventConfig,
    /// STOP_ADMISSIONS is in force.
    pub stopped: bool,
    /// SOLD_OUT was declared.
    pub sold_out: bool,
    /// The measured admission rate in milli-users per second, -1 before a measurement.
    pub measured_rate_milli: i64,
    /// The counters.
    pub stats: EventStats,
}

/// The seed spec's emergency actions on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Stop letting anyone through (joins continue).
    StopAdmissions,
    /// Undo STOP_ADMISSIONS.
    ResumeAdmissions,
    /// No more joins (410 EVENT_CLOSED); waiting users see SOLD_OUT.
    SoldOut,
}

/// What one admission tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmitReport {
    /// Users made READY by this tick.
    pub admitted: u64,
    /// READY users removed because their ready deadline passed.
    pub ready_expired: u64,
    /// Users still waiting.
    pub waiting: u64,
    /// Users READY now.
    pub ready: u64,
    /// Users holding an admission now.
    pub active: u64,
}

/// What one sweep step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Idle waiting users removed.
    pub expired: u64,
    /// The step reached the newest ticket (a full pass is complete).
    pub done: bool,
}

/// One change to who waits ahead of whom, from the event's departure log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// The first `n` waiting users left the queue (admitted, or skipped as idle).
    Head(u64),
    /// The waiting user at this 1-based position left (gave up or expired).
    Rank(u64),
    /// A priority place (access code) arrived at this 1-based position: everyone from it on
    /// moved back one.
    Arrival(u64),
    /// Positions moved in a way the log does not describe (the opening time changed): every
    /// position must be read again.
    Reset,
}

impl Departure {
    /// A waiting user's position after this entry; None when the user was the one leaving, or
    /// the position cannot be derived (read it again).
    pub fn apply(self, position: u64) -> Option<u64> {
        match self {
            Self::Head(n) if position <= n => None,
            Self::Head(n) => Some(position - n),
            Self::Rank(k) if position == k => None,
            Self::Rank(k) if position > k => Some(position - 1),
            Self::Rank(_) => Some(position),
            Self::Arrival(k) if position >= k => Some(position + 1),
            Self::Arrival(_) => Some(position),
            Self::Reset => None,
        }
    }

    /// Parses a log entry (`a<n>`, `r<k>`, `p<k>` or `x0`).
    pub fn parse(s: &str) -> Option<Self> {
        let n = s.get(1..)?.parse().ok()?;
        match s.as_bytes().first()? {
            b'a' => Some(Self::Head(n)),
            b'r' => Some(Self::Rank(n)),
            b'p' => Some(Self::Arrival(n)),
            b'x' => Some(Self::Reset),
            _ => None,
        }
    }
}

/// An event's pulse: what a position fan-out reads of it on every tick (the departure log's
/// sequence, the departures since the caller's, and the flags that change every connection).
/// Read by [`crate::store::Store::pulse`] (`pulse.lua` in the Redis store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulse {
    /// The departure log's sequence number now.
    pub seq: u64,
    /// Departures since the caller's sequence, oldest first; None when they cannot be derived
    /// (too far behind, or the event was recreated): re-read the positions instead.
    pub departures: Option<Vec<Departure>>,
    /// STOP_ADMISSIONS is in force.
    pub stopped: bool,
    /// SOLD_OUT was declared.
    pub sold_out: bool,
    /// `opens_at` in Unix ms.
    pub opens_at_ms: Option<u64>,
    /// The measured admission rate (milli-users/s), -1 before a measurement.
    pub measured_rate_milli: i64,
    /// The configured rate.
    pub admit_per_second: u32,
    /// The event's idle timeout (an open connection must heartbeat well within it).
    pub idle_timeout_seconds: u32,
    /// The event's queueing method now (a `random` queue shows no positions).
    pub queueing_method: QueueingMethod,
    /// The event's epoch ([`Place::epoch`]).
    pub epoch: u64,
    /// The end of the last pause `resume` recorded (Unix s; 0 for none) and every pause's
    /// seconds added up: what a heartbeat from before that end is credited with.
    pub pause_end_s: u64,
    /// See `pause_end_s`.
    pub pause_len_s: u64,
}

impl Pulse {
    /// A heartbeat at `last` (Unix s) as the idle timeout counts it: the mirror of `beat` in
    /// lib.lua (time the queue stood still is not held against anyone).
    pub fn beat(&self, last: u64) -> u64 {
        if last < self.pause_end_s {
            (last + self.pause_len_s).min(self.pause_end_s)
        } else {
            last
        }
    }
}

#[cfg(test)]
mod tests;
