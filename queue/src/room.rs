//! The waiting room's operations as the edges (HTTP, gRPC) expose them: validated ids in,
//! tokens and places out. One [`WaitingRoom`] is shared by every request of a process.

use crate::clock::Clock;
use crate::error::{QueueError, Result};
use crate::follow::{Follower, FOLLOW_TICK};
use crate::ids::{check_session_id, EventId, SessionKey};
use crate::model::*;
use crate::store::{
    CodeHash, Holder, JoinRequest, Store, MAX_ACCESS_CODES_PER_CALL, PRE_SCORE_MIN,
};
use crate::token::{
    AdmissionClaims, AdmissionSigner, PositionHint, PositionHints, UserAssertions, WaitingClaims,
    WaitingTokens, ISSUER,
};
use rand::Rng;
use std::sync::Arc;
use time::OffsetDateTime;

/// A place as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceView {
    /// Where the ticket stands.
    pub status: Status,
    /// 1-based among waiting users; 0 unless WAITING.
    pub position: u64,
    /// Seconds until READY (see [`Place::eta_seconds`]); -1 when unknown.
    pub eta_seconds: i64,
    /// `enter` would grant (status READY).
    pub admission_ready: bool,
    /// When the current state lapses unless renewed; None when nothing is held.
    pub expires_at: Option<OffsetDateTime>,
    /// The event's queueing method now.
    pub queueing_method: QueueingMethod,
}

/// The outcome of a join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinView {
    /// The waiting token (the same one on every re-join of a standing place).
    pub waiting_token: String,
    /// True for a new place.
    pub created: bool,
    /// The place.
    pub place: PlaceView,
    /// A position hint for the next status read, while WAITING ([`WaitingRoom::status_hinted`]).
    pub poll_hint: Option<String>,
}

/// The answer of [`WaitingRoom::status_hinted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HintedStatus {
    /// The place.
    pub place: PlaceView,
    /// The hint for the next read (None unless WAITING).
    pub poll_hint: Option<String>,
    /// True when the answer came from the followed departure log, without a store operation.
    pub from_log: bool,
}

/// A granted admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The JWT to present to origins.
    pub reservation_token: String,
    /// Seconds the grant has left.
    pub ttl_seconds: u64,
    /// When the grant ends.
    pub valid_until: OffsetDateTime,
}

/// Store, clock and keys: everything a waiting-room operation needs. Cheap to clone (the
/// HTTP edge clones its state for every request), so the parts live behind one `Arc`.
#[derive(Clone)]
pub struct WaitingRoom {
    inner: Arc<Parts>,
}

#[derive(Clone)]
struct Parts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    waiting: WaitingTokens,
    signer: AdmissionSigner,
    /// Verifies joins' user assertions; None: joins with one are refused.
    assertions: Option<UserAssertions>,
    hints: PositionHints,
    follower: Follower,
}

fn at(ms: u64) -> Option<OffsetDateTime> {
    if ms == 0 {
        return None;
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

impl WaitingRoom {
    /// A room over `store` with the given clock and keys.
    pub fn new(
        store: Arc<dyn Store>, clock: Arc<dyn Clock>, waiting: WaitingTokens,
        signer: AdmissionSigner,
    ) -> Self {
        Self {
            inner: Arc::new(Parts {
                follower: Follower::new(store.clone(), clock.clone(), FOLLOW_TICK),
                hints: PositionHints::for_tokens(&waiting),
                store,
                clock,
                waiting,
                signer,
                assertions: None,
            }),
        }
    }

    /// The departure-log follower that answers hinted status reads (tests refresh it).
    pub fn follower(&self) -> &Follower {
        &self.inner.follower
    }

    /// The same room, verifying joins' user assertions with `assertions`.
    pub fn with_user_assertions(mut self, assertions: UserAssertions) -> Self {
        Arc::make_mut(&mut self.inner).assertions = Some(assertions);
        self
    }

    /// The store (for readiness checks and the admission loop).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The admission token signer (for the JWKS and for origins in this process).
    pub fn signer(&self) -> &AdmissionSigner {
        &self.inner.signer
    }

    /// The current time of the room's clock, in Unix ms.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    fn view(&self, p: &Place, now: u64) -> PlaceView {
        PlaceView {
            status: p.status,
            position: p.shown_position(),
            eta_seconds: p.eta_seconds(now),
            admission_ready: p.status == Status::Ready,
            expires_at: at(p.expires_at_ms),
            queueing_method: p.method,
        }
    }

    /// Joins (or re-joins) `session_id` to the event's queue. With a `user_assertion` (a JWT
    /// the origin signed, see [`UserAssertions`]) that verifies, the place is the pair (session,
    /// verified user)'s and its admission's `sub` is that user; without one, the session's, and
    /// `sub` is the session id. An empty assertion counts as none. A re-join under another
    /// identity is another place ([`SessionKey::of_place`]): the identity bound to a ticket
    /// never changes.
    pub async fn join(
        &self, event_id: &str, session_id: &str, user_assertion: Option<&str>,
    ) -> Result<JoinView> {
        self.join_with_code(event_id, session_id, user_assertion, None)
            .await
    }

    /// [`WaitingRoom::join`] with an access code: a new place takes the priority lane and
    /// spends the code (atomically with the place); a standing place is kept as it is and the
    /// code is not spent. An unknown, revoked or (by another session) spent code refuses the
    /// join with [`QueueError::InvalidAccessCode`]; the session that spent it, back after its
    /// place ended, joins the general queue. An empty code counts as none.
    pub async fn join_with_code(
        &self, event_id: &str, session_id: &str, user_assertion: Option<&str>,
        access_code: Option<&str>,
    ) -> Result<JoinView> {
        let event = EventId::parse(event_id)?;
        check_session_id(session_id)?;
        let now = self.inner.clock.now_ms();
        let user = match user_assertion.filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(
                self.inner
                    .assertions
                    .as_ref()
                    .ok_or(QueueError::AssertionsDisabled)?
                    .verify(a, event.as_str(), session_id, now)?,
            ),
        };
        let pre_score = rand::thread_rng().gen_range(PRE_SCORE_MIN..=-1);
        let session = SessionKey::of_place(session_id, user.as_deref());
        let joined = match access_code.filter(|c| !c.is_empty()) {
            None => {
                self.inner
                    .store
                    .join(&event, session, pre_score, now)
                    .await?
            }
            // Alone, not group-committed: a batch is refused whole for one bad code.
            Some(code) => {
                let req = JoinRequest {
                    session,
                    pre_score,
                    access_code: Some(access_code_hash(code)?),
                };
                self.inner
                    .store
                    .join_many(&event, &[req], now)
                    .await?
                    .pop()
                    .ok_or_else(|| QueueError::Protocol("empty join reply".into()))?
            }
        };
        let claims = WaitingClaims {
            event_id: event.to_string(),
            ticket: joined.place.ticket,
            session_id: session_id.to_owned(),
            user_id: user,
            epoch: Some(joined.place.epoch),
        };
        let waiting_token = self.inner.waiting.issue(&claims);
        Ok(JoinView {
            poll_hint: self.hint_for(&event, &waiting_token, &joined.place, now),
            waiting_token,
            created: joined.created,
            place: self.view(&joined.place, now),
        })
    }

    /// The hint for a place just read from the store (whose heartbeat that read wrote), while
    /// it waits; the event is followed from now on so that the next read can use it.
    fn hint_for(&self, event: &EventId, token: &str, p: &Place, now: u64) -> Option<String> {
        if p.status != Status::Waiting {
            return None;
        }
        self.inner.follower.follow(event);
        let hint = PositionHint {
            seq: p.log_seq,
            position: p.position,
            beat_s: now / 1000,
        };
        Some(self.inner.hints.issue(token, &hint))
    }

    fn claims(&self, token: &str) -> Result<(WaitingClaims, EventId)> {
        let claims = self.inner.waiting.verify(token)?;
        let event = EventId::parse(&claims.event_id).map_err(|_| QueueError::InvalidToken)?;
        Ok((claims, event))
    }

    /// The place `claims` name as the store has it, read as a heartbeat.
    async fn beat(&self, claims: &WaitingClaims, event: &EventId, now: u64) -> Result<Place> {
        let place = self
            .inner
            .store
            .status(event, holder(claims), true, now)
            .await?;
        same_epoch(claims, &place)?;
        Ok(place)
    }

    /// Where the token's place stands; the call is a heartbeat.
    pub async fn status(&self, token: &str) -> Result<PlaceView> {
        let (claims, event) = self.claims(token)?;
        let now = self.inner.clock.now_ms();
        let place = self.beat(&claims, &event, now).await?;
        Ok(self.view(&place, now))
    }

    /// [`WaitingRoom::status`] for a client that presents the position hint of its last
    /// answer: while the place waits, its position is derived from the departure log this
    /// process follows ([`Follower`]), without a store operation, and the heartbeat is written
    /// only once a tenth of the idle timeout has passed since the last one (so a place idles
    /// out between 0.9 and 1 idle timeout after its last read, not exactly 1). Whatever the log
    /// cannot answer (a hint that does not verify, a departure that concerns this place, the
    /// pre-queue, a sold-out event, a heartbeat due) is read from the store as by `status`.
    /// The answer carries the hint for the next read, and says where it came from.
    pub async fn status_hinted(&self, token: &str, hint: Option<&str>) -> Result<HintedStatus> {
        let (claims, event) = self.claims(token)?;
        let now = self.inner.clock.now_ms();
        let verified = hint.and_then(|h| self.inner.hints.verify(token, h));
        let derived = verified.and_then(|h| Some((self.derived(&claims, &event, &h, now)?, h)));
        if let Some((p, hint)) = derived {
            // The heartbeat was not written, so the next hint keeps the last one written.
            let next = PositionHint {
                seq: p.log_seq,
                position: p.position,
                beat_s: hint.beat_s,
            };
            return Ok(HintedStatus {
                place: self.view(&p, now),
                poll_hint: Some(self.inner.hints.issue(token, &next)),
                from_log: true,
            });
        }
        let place = self.beat(&claims, &event, now).await?;
        Ok(HintedStatus {
            poll_hint: self.hint_for(&event, token, &place, now),
            place: self.view(&place, now),
            from_log: false,
        })
    }

    /// The place a verified hint and the followed log say, exactly as the store would answer
    /// it now without writing a heartbeat; None where only the store can answer.
    fn derived(
        &self, claims: &WaitingClaims, event: &EventId, hint: &PositionHint, now: u64,
    ) -> Option<Place> {
        let d = self.inner.follower.derive(event, hint)?;
        let p = &d.pulse;
        let (now_s, idle) = (now / 1000, u64::from(p.idle_timeout_seconds));
        let last = p.beat(hint.beat_s);
        let beat_due = now_s >= hint.beat_s + (idle / 10).max(1);
        let idled = now_s.saturating_sub(last) >= idle;
        let pre_queue = p.opens_at_ms.is_some_and(|o| now < o);
        let other_epoch = claims.epoch.is_some_and(|e| e != p.epoch);
        if beat_due || idled || pre_queue || p.sold_out || other_epoch {
            return None;
        }
        Some(Place {
            ticket: claims.ticket,
            status: Status::Waiting,
            position: d.position,
            expires_at_ms: (last + idle) * 1000,
            measured_rate_milli: p.measured_rate_milli,
            admit_per_second: p.admit_per_second,
            stopped: p.stopped,
            opens_at_ms: p.opens_at_ms,
            epoch: p.epoch,
            method: p.queueing_method,
            log_seq: d.seq,
        })
    }

    /// The event and ticket a genuine waiting token names (for streams that watch a place).
    pub fn ticket_of(&self, token: &str) -> Result<(EventId, u64)> {
        let (claims, event) = self.claims(token)?;
        Ok((event, claims.ticket))
    }

    /// The event, ticket and session a genuine waiting token names: what the store's calls
    /// about that place take.
    pub fn holder_of(&self, token: &str) -> Result<(EventId, u64, SessionKey)> {
        let (claims, event) = self.claims(token)?;
        let Holder { ticket, session } = holder(&claims);
        Ok((event, ticket, session))
    }

    /// Turns a READY place into an admission JWT; the same grant on every call.
    pub async fn enter(&self, token: &str) -> Result<Grant> {
        let (claims, event) = self.claims(token)?;
        let now = self.inner.clock.now_ms();
        let holder = holder(&claims);
        let place = match self.inner.store.enter(&event, holder, now).await? {
            EnterOutcome::Granted(p) => {
                same_epoch(&claims, &p)?;
                p
            }
            EnterOutcome::Refused(p) => {
                same_epoch(&claims, &p)?;
                return Err(match p.status {
                    Status::Waiting | Status::PreQueue => QueueError::NotReady,
                    Status::SoldOut => QueueError::EventClosed(event.to_string()),
                    _ => QueueError::TokenExpired,
                });
            }
        };
        let until_ms = place.expires_at_ms;
        let exp = until_ms / 1000;
        let jti = self.inner.waiting.derive_id(&[
            event.as_str(),
            &claims.ticket.to_string(),
            &until_ms.to_string(),
        ]);
        let token = self.inner.signer.sign(&AdmissionClaims {
            iss: ISSUER.to_owned(),
            aud: event.to_string(),
            sub: claims
                .user_id
                .clone()
                .unwrap_or_else(|| claims.session_id.clone()),
            exp,
            jti,
            tkt: Some(claims.ticket),
            sk: Some(holder.session.to_hex()),
        })?;
        Ok(Grant {
            reservation_token: token,
            ttl_seconds: until_ms.saturating_sub(now).div_ceil(1000),
            valid_until: at(until_ms)
                .ok_or_else(|| QueueError::Protocol("grant without expiry".into()))?,
        })
    }

    /// Gives up the token's place; everyone behind moves up one.
    pub async fn leave(&self, token: &str) -> Result<()> {
        let (claims, event) = self.claims(token)?;
        let now = self.inner.clock.now_ms();
        self.inner.store.leave(&event, holder(&claims), now).await?;
        Ok(())
    }

    /// Whether the admission `claims` (already verified) still stands in the store: its ticket
    /// is ADMITTED and unexpired. A left (`leave`) or expired admission is
    /// [`QueueError::AdmissionEnded`]. A token without a ticket claim (from a gateway before
    /// the claims existed) cannot be checked and passes: it ends at its `exp`.
    pub async fn admission_stands(&self, claims: &AdmissionClaims) -> Result<()> {
        let (Some(ticket), Some(session)) = (
            claims.tkt,
            claims.sk.as_deref().and_then(SessionKey::from_hex),
        ) else {
            return Ok(());
        };
        let event = EventId::parse(&claims.aud).map_err(|_| QueueError::AdmissionEnded)?;
        let now = self.inner.clock.now_ms();
        let place = match self
            .inner
            .store
            .status(&event, Holder { ticket, session }, false, now)
            .await
        {
            Ok(p) => p,
            Err(QueueError::EventNotFound(_)) => return Err(QueueError::AdmissionEnded),
            Err(e) => return Err(e),
        };
        if place.status == Status::Admitted && place.expires_at_ms > now {
            Ok(())
        } else {
            Err(QueueError::AdmissionEnded)
        }
    }

    /// Creates or updates an event; true when created.
    pub async fn configure(&self, event_id: &str, config: &EventConfig) -> Result<bool> {
        let event = EventId::parse(event_id)?;
        config.validate()?;
        self.inner
            .store
            .configure(&event, config, self.inner.clock.now_ms())
            .await
    }

    /// The event's configuration and counters.
    pub async fn info(&self, event_id: &str) -> Result<EventInfo> {
        let event = EventId::parse(event_id)?;
        self.inner
            .store
            .info(&event, self.inner.clock.now_ms())
            .await?
            .ok_or_else(|| QueueError::EventNotFound(event.to_string()))
    }

    /// Mints `count` (1 to [`MAX_ACCESS_CODES_PER_CALL`]) new single-use access codes for the
    /// event: 128 random bits each, URL-safe base64 (22 characters). Only their SHA-256 is
    /// stored, so the codes exist in this answer only.
    pub async fn mint_access_codes(&self, event_id: &str, count: usize) -> Result<Vec<String>> {
        let event = EventId::parse(event_id)?;
        if count == 0 || count > MAX_ACCESS_CODES_PER_CALL {
            return Err(QueueError::InvalidArgument(format!(
                "count must be between 1 and {MAX_ACCESS_CODES_PER_CALL}"
            )));
        }
        use base64::Engine as _;
        // The generator is not Send: dropped before the store is awaited.
        let codes: Vec<String> = {
            let mut rng = rand::thread_rng();
            (0..count)
                .map(|_| {
                    let bytes: [u8; 16] = rng.gen();
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
                })
                .collect()
        };
        let hashes: Vec<CodeHash> = codes.iter().map(|c| sha256(c)).collect();
        self.inner.store.add_access_codes(&event, &hashes).await?;
        Ok(codes)
    }

    /// Revokes access codes (at most [`MAX_ACCESS_CODES_PER_CALL`]); returns how many existed.
    /// A code that is not well formed was never minted and counts as not there.
    pub async fn revoke_access_codes(&self, event_id: &str, codes: &[String]) -> Result<u64> {
        let event = EventId::parse(event_id)?;
        if codes.len() > MAX_ACCESS_CODES_PER_CALL {
            return Err(QueueError::InvalidArgument(format!(
                "at most {MAX_ACCESS_CODES_PER_CALL} codes a request"
            )));
        }
        let hashes: Vec<CodeHash> = codes
            .iter()
            .filter_map(|c| access_code_hash(c).ok())
            .collect();
        if hashes.is_empty() {
            return Ok(0);
        }
        self.inner.store.revoke_access_codes(&event, &hashes).await
    }

    /// Applies an emergency action.
    pub async fn act(&self, event_id: &str, action: Action) -> Result<()> {
        let event = EventId::parse(event_id)?;
        self.inner.store.act(&event, action).await
    }

    /// One admission tick for `event`.
    pub async fn admit(&self, event: &EventId) -> Result<AdmitReport> {
        self.inner
            .store
            .admit(event, self.inner.clock.now_ms())
            .await
    }

    /// One step of the idle sweep of `event`: at most `budget` x 64 places, from where the last
    /// step stopped; `done` when it reached the end of the queue (the next step starts a pass).
    pub async fn sweep_step(&self, event: &EventId, budget: u32) -> Result<SweepReport> {
        self.inner
            .store
            .sweep(event, budget, self.inner.clock.now_ms())
            .await
    }

    /// A full idle sweep of `event` in steps of `budget` x 64 places; returns users expired.
    pub async fn sweep(&self, event: &EventId, budget: u32) -> Result<u64> {
        let mut expired = 0;
        // Bounded: each step reads at least 64 places, and a pass ends at the end of the queue.
        for _ in 0..1_000_000 {
            let r = self
                .inner
                .store
                .sweep(event, budget, self.inner.clock.now_ms())
                .await?;
            expired += r.expired;
            if r.done {
                break;
            }
        }
        Ok(expired)
    }
}

/// A token of an earlier incarnation of the event (its data lost and the event created again)
/// names a ticket of the old queue: `InvalidToken`, whatever the new queue holds under it.
/// Tokens from before epochs carry none and pass.
fn same_epoch(claims: &WaitingClaims, place: &Place) -> Result<()> {
    match claims.epoch {
        Some(e) if e != place.epoch => Err(QueueError::InvalidToken),
        _ => Ok(()),
    }
}

/// Longest access code accepted (minted ones have 22 characters).
pub const MAX_ACCESS_CODE_LEN: usize = 64;

fn sha256(s: &str) -> CodeHash {
    use sha2::Digest as _;
    sha2::Sha256::digest(s.as_bytes()).into()
}

/// The stored form of an access code; a code that is not URL-safe base64 of a sane length was
/// never minted.
fn access_code_hash(code: &str) -> Result<CodeHash> {
    if crate::ids::is_key_safe(code, MAX_ACCESS_CODE_LEN) {
        Ok(sha256(code))
    } else {
        Err(QueueError::InvalidAccessCode)
    }
}

/// The place a waiting token names: its ticket, and the session it was given to as the store
/// files it.
fn holder(claims: &WaitingClaims) -> Holder {
    Holder {
        ticket: claims.ticket,
        session: SessionKey::of_place(&claims.session_id, claims.user_id.as_deref()),
    }
}
