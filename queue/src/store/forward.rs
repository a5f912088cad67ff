//! [`forward_store!`](crate::forward_store): a [`Store`](super::Store) that wraps another
//! writes out only the methods it changes.

/// Implements [`Store`](crate::store::Store) for a wrapper whose field `$inner` is the store it
/// wraps. Each `fn` line of the bracket forwards that method, with those arguments, to
/// `self.$inner` unchanged; the brace holds the wrapper's own methods, written as in any
/// `#[async_trait]` impl.
///
/// ```ignore
/// queue::forward_store!(Logged, inner, [
///     fn info(event: &EventId, now_ms: u64) -> Option<EventInfo>;
///     fn events() -> Vec<EventId>;
/// ], {
///     async fn ping(&self) -> Result<()> { Ok(()) }
/// });
/// ```
#[macro_export]
macro_rules! forward_store {
    ($ty:ty, $inner:ident, [
        $(fn $name:ident($($arg:ident: $argty:ty),* $(,)?) -> $ret:ty;)*
    ], { $($own:tt)* }) => {
        #[$crate::store::__async_trait]
        impl $crate::store::Store for $ty {
            $(
                async fn $name(&self, $($arg: $argty),*) -> $crate::error::Result<$ret> {
                    self.$inner.$name($($arg),*).await
                }
            )*
            $($own)*
        }
    };
}
