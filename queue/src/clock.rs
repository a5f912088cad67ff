//! Time as the waiting room sees it: injected, so tests move it instead of sleeping. The clock
//! is the shared Redis layer's, so that queue, webhooks and services keep one notion of time.
//!
//! Every replica passes its own clock to the store; keep replicas NTP-synchronised (the token
//! bucket tolerates skew without double refills, but TTLs are only as good as the clocks).

pub use redis_layer::clock::{Clock, ManualClock, SystemClock};
