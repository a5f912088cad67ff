//! The gateway's side of the backing services: one lazily connected tonic channel per upstream
//! (reservation, inventory, payment) wrapped in tower layers (load shedding over a concurrency
//! limit, and a timeout), a deadline sent as `grpc-timeout`, and a circuit breaker.
//!
//! Calls are never retried here: creating a reservation or a payment intent is not idempotent
//! on the wire (the idempotency key makes a replay safe, but the client that sent the key is
//! the one that decides to replay), and a retry of an idempotent read would only add load to an
//! upstream that is already failing.

use crate::config::UpstreamConfig;
use crate::metrics::{Metrics, UpstreamLabels, UpstreamName};
use queue::clock::{Clock, SystemClock};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tower::limit::ConcurrencyLimit;
use tower::load_shed::LoadShed;
use tower::timeout::Timeout;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// Why an upstream call did not produce an answer (or produced an error status).
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No URL is configured for this upstream.
    #[error("the {0} service is not configured on this gateway")]
    NotConfigured(&'static str),
    /// The concurrency limit is reached; the call was not made.
    #[error("the {0} service is busy; retry shortly")]
    Overloaded(&'static str),
    /// The circuit breaker is open after repeated failures; the call was not made.
    #[error("the {0} service is unavailable; retry shortly")]
    CircuitOpen(&'static str),
    /// The call ran past its deadline.
    #[error("the {0} service did not answer in time")]
    Timeout(&'static str),
    /// The upstream answered an error status.
    #[error("the {upstream} service failed: {}", status.message())]
    Status {
        /// Which upstream.
        upstream: &'static str,
        /// Its answer.
        status: tonic::Status,
    },
}

/// Settings shared by every upstream, from [`UpstreamConfig`].
#[derive(Clone)]
pub struct UpstreamSettings {
    /// Most calls in flight per upstream.
    pub max_in_flight: usize,
    /// Consecutive failures that open the circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probe is let through.
    pub breaker_open: Duration,
    /// Where calls are counted (None: nowhere).
    pub metrics: Option<Arc<Metrics>>,
}

/// The three upstreams; each is None when its URL is not configured.
#[derive(Clone, Default)]
pub struct Upstreams {
    /// The CIRCUIT_BREAKER emergency switch of all three: while set, every call is refused
    /// as if its circuit were open (503 `CIRCUIT_OPEN`), without being made. Set and cleared
    /// by [`crate::system::SystemModes`], which every replica follows.
    pub forced_open: Arc<AtomicBool>,
    /// ReservationService.
    pub reservation: Option<Upstream>,
    /// Inventory.
    pub inventory: Option<Upstream>,
    /// PaymentService.
    pub payment: Option<Upstream>,
}

impl Upstreams {
    /// Builds a lazy channel per configured URL (nothing connects until the first call);
    /// calls are counted in `metrics`.
    pub fn from_config(
        config: &UpstreamConfig, metrics: Arc<Metrics>,
    ) -> Result<Self, tonic::transport::Error> {
        let settings = UpstreamSettings {
            max_in_flight: config.upstream_max_in_flight,
            breaker_failures: config.breaker_failures,
            breaker_open: Duration::from_millis(config.breaker_open_ms),
            metrics: Some(metrics),
        };
        let default = Duration::from_millis(config.upstream_timeout_ms);
        let inventory = Duration::from_millis(config.inventory_timeout_ms);
        let forced_open = Arc::new(AtomicBool::new(false));
        let make = |name, url: &Option<String>, deadline| {
            url.as_deref()
                .map(|u| {
                    Upstream::new(name, u, deadline, &settings)
                        .map(|up| up.with_switch(forced_open.clone()))
                })
                .transpose()
        };
        Ok(Self {
            forced_open: forced_open.clone(),
            reservation: make("reservation", &config.reservation_url, default)?,
            inventory: make("inventory", &config.inventory_url, inventory)?,
            payment: make("payment", &config.payment_url, default)?,
        })
    }

    /// The configured upstreams.
    pub fn all(&self) -> impl Iterator<Item = &Upstream> {
        [&self.reservation, &self.inventory, &self.payment]
            .into_iter()
            .flatten()
    }
}

/// What an upstream's calls go through, outermost first: a shed request (over the limit) is
/// told apart from the upstream's own answers; the limit sheds instead of queueing (waiting
/// for a permit would only queue behind a slow upstream: answer at once); the timeout is the
/// deadline that counts (it also covers connecting, the channel's own buffer and a server that
/// ignores `grpc-timeout`).
pub type UpstreamService = ShedMarked<LoadShed<ConcurrencyLimit<Timeout<ReadyInCall<Channel>>>>>;

/// One upstream: a shared channel in its layers, its deadline and its breaker.
#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    channel: Channel,
    service: UpstreamService,
    deadline: Duration,
    breaker: Arc<Breaker>,
    metrics: Option<Arc<Metrics>>,
    /// While set, calls are refused as by an open circuit (the CIRCUIT_BREAKER action).
    forced_open: Arc<AtomicBool>,
}

impl Upstream {
    /// An upstream named `name` at `url` (`http://host:port`) whose calls get `deadline`.
    pub fn new(
        name: &'static str, url: &str, deadline: Duration, settings: &UpstreamSettings,
    ) -> Result<Self, tonic::transport::Error> {
        // Connecting is bounded by the call's own deadline: a connect that takes longer than
        // the whole call may take is of no use to that call.
        let channel = proto::lazy_channel(url, deadline)?;
        let service = ServiceBuilder::new()
            .layer_fn(ShedMarked)
            .load_shed()
            .concurrency_limit(settings.max_in_flight.max(1))
            .timeout(deadline)
            .service(ReadyInCall(channel.clone()));
        Ok(Self {
            name,
            channel,
            service,
            deadline,
            breaker: Arc::new(Breaker::new(
                settings.breaker_failures,
                settings.breaker_open,
            )),
            metrics: settings.metrics.clone(),
            forced_open: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The same upstream refusing every call while `switch` is set.
    pub fn with_switch(mut self, switch: Arc<AtomicBool>) -> Self {
        self.forced_open = switch;
        self
    }

    /// The bare channel, for calls outside the forwarded API's limit and breaker (the admin's
    /// CANCEL_RESERVATIONS, health probes); the caller sets its own deadline.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The breaker's state as the health report names it: `CLOSED`, `OPEN`, `HALF_OPEN`, or
    /// `FORCED_OPEN` while the CIRCUIT_BREAKER emergency action holds it open.
    pub fn breaker_state(&self) -> &'static str {
        if self.forced_open.load(Ordering::Relaxed) {
            return "FORCED_OPEN";
        }
        self.breaker.state_name()
    }

    /// The upstream's name (`reservation`, `inventory`, `payment`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The per-call deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Whether the circuit is open now (calls are refused without being made).
    pub fn circuit_open(&self) -> bool {
        self.forced_open.load(Ordering::Relaxed) || self.breaker.is_open()
    }

    /// Makes one call: `f` gets a clone of the layered channel and the request (its
    /// `grpc-timeout` already set, and `x-request-id` when `request_id` is not empty, so that
    /// the upstream's logs can be correlated with the gateway's). Refused at once when the
    /// circuit is open or the limit is reached; never retried.
    pub async fn call<Req, Resp, F, Fut>(
        &self, message: Req, request_id: &str, f: F,
    ) -> Result<Resp, UpstreamError>
    where
        F: FnOnce(UpstreamService, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        if self.forced_open.load(Ordering::Relaxed) {
            self.count("circuit_open");
            return Err(UpstreamError::CircuitOpen(self.name));
        }
        let Some(attempt) = self.breaker.admit() else {
            self.count("circuit_open");
            return Err(UpstreamError::CircuitOpen(self.name));
        };
        let started = Instant::now();
        let mut req = tonic::Request::new(message);
        req.set_timeout(self.deadline);
        if let Ok(id) = request_id.parse() {
            if !request_id.is_empty() {
                req.metadata_mut().insert("x-request-id", id);
            }
        }
        let result = match f(self.service.clone(), req).await {
            Ok(resp) => Ok(resp.into_inner()),
            Err(status) if is_shed(&status) => {
                // Not made: it tells the breaker nothing (a shed probe lets the next call probe).
                drop(attempt);
                self.count("overloaded");
                return Err(UpstreamError::Overloaded(self.name));
            }
            Err(status) if is_deadline(&status) => Err(UpstreamError::Timeout(self.name)),
            Err(status) => Err(UpstreamError::Status {
                upstream: self.name,
                status,
            }),
        };
        let (healthy, outcome) = match &result {
            Ok(_) => (true, "ok"),
            Err(UpstreamError::Status { status, .. }) if !is_failure(status.code()) => {
                (true, "rejected")
            }
            Err(UpstreamError::Timeout(_)) => (false, "timeout"),
            Err(_) => (false, "failed"),
        };
        attempt.finish(healthy);
        self.count(outcome);
        if let Some(m) = &self.metrics {
            m.upstream_latency
                .get_or_create(&UpstreamName {
                    upstream: self.name,
                })
                .observe(started.elapsed().as_secs_f64());
        }
        result
    }

    fn count(&self, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.upstream_calls
                .get_or_create(&UpstreamLabels {
                    upstream: self.name,
                    outcome,
                })
                .inc();
        }
    }
}

/// A service that is always ready and waits for its inner service's readiness inside the call,
/// so that only [`ConcurrencyLimit`] decides what [`LoadShed`] sheds (a channel whose buffer is
/// full, or still connecting, is waited for within the deadline instead).
#[derive(Clone, Debug)]
pub struct ReadyInCall<S>(S);

impl<S, R> Service<R> for ReadyInCall<S>
where
    S: Service<R> + Clone + Send + 'static,
    S::Future: Send,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: R) -> Self::Future {
        Box::pin(self.0.clone().oneshot(req))
    }
}

/// A call shed by the concurrency limit. (tonic turns tower's own `Overloaded` into
/// RESOURCE_EXHAUSTED, which a backend may answer too; this one it keeps as the status's source.)
#[derive(Debug, thiserror::Error)]
#[error("over the upstream's concurrency limit")]
struct Shed;

/// Its inner service with tower's `Overloaded` error replaced by [`Shed`].
#[derive(Clone, Debug)]
pub struct ShedMarked<S>(S);

impl<S, R> Service<R> for ShedMarked<S>
where
    S: Service<R, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(shed_as_busy)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let answer = self.0.call(req);
        Box::pin(async move { answer.await.map_err(shed_as_busy) })
    }
}

fn shed_as_busy(e: BoxError) -> BoxError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        Box::new(Shed)
    } else {
        e
    }
}

fn is_shed(status: &tonic::Status) -> bool {
    std::error::Error::source(status).is_some_and(|e| e.is::<Shed>())
}

/// A deadline that ran out, whether the server, tonic's client or our timeout noticed it.
fn is_deadline(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::DeadlineExceeded
        || (status.code() == tonic::Code::Cancelled && status.message().contains("Timeout expired"))
        || std::error::Error::source(status)
            .is_some_and(|e| e.is::<tower::timeout::error::Elapsed>())
}

/// Codes that say the upstream is unwell (as opposed to the request being refused).
fn is_failure(code: tonic::Code) -> bool {
    use tonic::Code as C;
    matches!(
        code,
        C::Unavailable
            | C::DeadlineExceeded
            | C::Internal
            | C::Unknown
            | C::DataLoss
            | C::Cancelled
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls flow; `failures` consecutive ones failed.
    Closed { failures: u32 },
    /// Calls are refused until `until_ms` (the clock's); then one probe goes through.
    Open { until_ms: u64 },
    /// One probe is in flight; other calls are refused until it answers.
    HalfOpen,
}

/// A consecutive-failures circuit breaker with a single half-open probe.
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("threshold", &self.threshold)
            .field("open_for", &self.open_for)
            .field("state", &*self.lock())
            .finish()
    }
}

impl Breaker {
    /// Opens after `threshold` consecutive failures, for `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self::with_clock(threshold, open_for, Arc::new(SystemClock))
    }

    /// [`Breaker::new`] on `clock`.
    pub fn with_clock(threshold: u32, open_for: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            threshold: threshold.max(1),
            open_for,
            clock,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: one poisoned by a panic elsewhere is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn open_until(&self) -> State {
        let open_for = u64::try_from(self.open_for.as_millis()).unwrap_or(u64::MAX);
        State::Open {
            until_ms: self.now_ms().saturating_add(open_for),
        }
    }

    /// Whether calls are refused now.
    pub fn is_open(&self) -> bool {
        match *self.lock() {
            State::Closed { .. } => false,
            State::Open { until_ms } => self.now_ms() < until_ms,
            State::HalfOpen => true,
        }
    }

    /// `CLOSED`, `OPEN` (refusing calls now) or `HALF_OPEN` (a probe is in flight, or the
    /// open period is over and the next call probes).
    pub fn state_name(&self) -> &'static str {
        match *self.lock() {
            State::Closed { .. } => "CLOSED",
            State::Open { until_ms } if self.now_ms() < until_ms => "OPEN",
            State::Open { .. } | State::HalfOpen => "HALF_OPEN",
        }
    }

    /// Lets a call through (or not); the call reports back through the returned attempt.
    pub fn admit(&self) -> Option<Attempt<'_>> {
        let mut s = self.lock();
        let probe = match *s {
            State::Closed { .. } => false,
            State::Open { until_ms } if self.now_ms() >= until_ms => {
                *s = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => return None,
        };
        Some(Attempt {
            breaker: self,
            probe,
            done: false,
        })
    }

    fn record(&self, probe: bool, ok: bool) {
        let mut s = self.lock();
        *s = match *s {
            // Only the probe decides what a half-open circuit becomes: the answer of a call
            // admitted before the circuit opened says nothing about the upstream now.
            State::HalfOpen if probe && ok => State::Closed { failures: 0 },
            State::HalfOpen if probe => self.open_until(),
            State::HalfOpen => return,
            // Likewise a late success does not close an open circuit; a late failure keeps it
            // open for the full period.
            State::Open { .. } if ok => return,
            State::Open { .. } => self.open_until(),
            State::Closed { .. } if ok => State::Closed { failures: 0 },
            State::Closed { failures } if failures + 1 >= self.threshold => self.open_until(),
            State::Closed { failures } => State::Closed {
                failures: failures + 1,
            },
        };
    }
}

/// One admitted call; reports its outcome to the breaker once.
pub struct Attempt<'a> {
    breaker: &'a Breaker,
    probe: bool,
    done: bool,
}

impl Attempt<'_> {
    /// Records the outcome: `ok` is false when the upstream failed.
    pub fn finish(mut self, ok: bool) {
        self.done = true;
        self.breaker.record(self.probe, ok);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        // A probe whose caller went away (client disconnected), or that was shed, told us
        // nothing: let the next call probe instead of leaving the circuit half-open forever.
        if !self.done && self.probe {
            let mut s = self.breaker.lock();
            if *s == State::HalfOpen {
                *s = State::Open {
                    until_ms: self.breaker.now_ms(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests;
