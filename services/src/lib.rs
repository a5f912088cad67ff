//! The reference backing services behind the admission gateway: ReservationService, Inventory,
//! PaymentService (a payment simulator that reports outcomes by signed webhook) and
//! WorkerService, served together over gRPC by the `backends` binary. State lives in Redis
//! (atomic Lua scripts, shared by any number of processes) or in memory; seats are never
//! oversold because a seat is held only while free and sold only while held by the paying
//! reservation.

pub mod clock;
pub mod error;
pub mod model;
pub mod payment_webhooks;
pub mod server;
pub mod service;
pub mod store;
pub mod updates;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{to_status, Result, ServiceError};
pub use payment_webhooks::{WebhookConfig, WebhookSecret, WebhookSender};
pub use server::serve;
pub use service::{Backends, Settings};
pub use store::{MemoryStore, RedisOptions, RedisStore, Store};
pub use updates::ReservationUpdate;
