//! Live queue positions over WebSockets.
//!
//! Polling is what makes waiting rooms expensive; this crate pushes instead. Each gateway
//! process runs one watcher per event that has local connections: every tick it reads the
//! event's departure log once ([`queue::store::Store::pulse`]) and derives every local
//! connection's new position from its last one, so there is no per-connection Redis polling.
//! Positions are re-read in pipelined batches only when they cannot be derived (a new
//! connection, a gap in the log, the queue opening) and on the heartbeat interval, which is also
//! what keeps connected users from being expired for idleness. Each message is serialized once
//! and handed to the connection's bounded outbox; a client that cannot keep up is dropped.

pub mod messages;

mod hub;
mod upgrade;

pub use hub::{default_close, Hub, HubConfig, SocketSlot};
pub use tokio_tungstenite::tungstenite;
pub use upgrade::{Io, NotAnUpgrade, Upgrade};
