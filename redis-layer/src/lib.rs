//! The one Redis layer of the workspace: `queue`, `webhooks` and `services` reach Redis only
//! through it.
//!
//! Layout: [`options`] says where Redis is and how long to wait for it; [`connection`] holds a
//! pool per server, one per primary in a cluster (so a dead primary stalls only its own keys),
//! runs [`script`]s by `EVALSHA` with reload on NOSCRIPT, and pins `WAIT` to the node that took
//! the write; [`group`] group-commits requests of one key into one script call; [`error`] is the one table that says whether a Redis failure is worth a retry;
//! [`clock`] is the injected time every store takes. Keys are the callers' business, with one
//! rule: every key a script touches carries the same hash tag, so it lives in one slot.

pub mod clock;
pub mod connection;
pub mod error;
pub mod group;
pub mod options;
pub mod pubsub;
pub mod script;

pub use connection::{slot_of, PrimaryPing, Redis};
pub use error::{classify, RedisError};
/// The command traits of the clients this layer hands out ([`Redis::client`]), for the plain
/// commands that need no script (HGETALL, XLEN, SMEMBERS, ...).
pub use fred::interfaces as commands;
pub use fred::types::{Expiration, SetOptions, Value};
pub use group::{Full, Group, GroupOptions};
pub use options::RedisOptions;
pub use pubsub::{Published, Subscription};
pub use script::Script;

/// Shorthand for results of this crate.
pub type Result<T, E = RedisError> = std::result::Result<T, E>;

/// `Debug` for a type that shows only some of its state, as `Name { field: value, .. }`: the
/// handles, keys and caches it holds stay out of logs. In each `field = value`, the closure's
/// argument is the value being formatted. (It lives here because the crates that use it,
/// `queue`, `webhooks`, `services` and `gateway`, all depend on this one.)
///
/// ```
/// struct Pool {
///     size: usize,
///     secret: String,
/// }
/// redis_layer::debug_some!(Pool, |p| size = p.size);
/// let p = Pool { size: 4, secret: "s".into() };
/// assert_eq!(format!("{p:?}"), "Pool { size: 4, .. }");
/// ```
#[macro_export]
macro_rules! debug_some {
    ($ty:ident, |$s:ident| $($field:ident = $value:expr),+ $(,)?) => {
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let $s = self;
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), &$value))+
                    .finish_non_exhaustive()
            }
        }
    };
}
