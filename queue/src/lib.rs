//! The waiting room: events, tickets, positions, admission and tokens.
//!
//! People join a per-event queue and receive a ticket from a counter, so order is arrival order;
//! an admission tick, shared by every gateway replica through the store, lets them through at
//! the event's rate while capacity lasts; signed tokens carry a place ([`token::WaitingTokens`])
//! and an admission ([`token::AdmissionSigner`]). Two stores keep the same semantics: Redis
//! ([`store::RedisStore`], atomic Lua scripts, cluster-ready keys) and memory
//! ([`store::MemoryStore`], the embedded default). [`room::WaitingRoom`] ties store, clock and
//! tokens into the operations that the HTTP and gRPC edges expose; [`configs::EventConfigs`]
//! keeps each event's configuration for a second per process, for the paths every visitor
//! takes (the page, the join challenge). Nothing here knows HTTP.

pub mod challenge;
pub mod clock;
pub mod configs;
pub mod error;
pub mod follow;
pub mod ids;
pub mod model;
pub mod page;
pub mod room;
pub mod store;
pub mod token;

pub use error::QueueError;
