//! Time as the services see it: injected, so tests move it instead of sleeping. The clock is the
//! shared Redis layer's, so that queue, webhooks and services keep one notion of time.

pub use redis_layer::clock::{Clock, ManualClock, SystemClock};
