//! Lua scripts sent by hash (`EVALSHA`) and loaded again when the server lacks them.

/// One Lua script: its text (a shared prelude plus one `.lua` file) and its SHA-1.
#[derive(Clone)]
pub struct Script(pub(crate) fred::types::scripts::Script);

/// The SHA-1 names the script; its text (kilobytes of Lua) would drown whatever prints it.
impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Script").field(&self.sha1()).finish()
    }
}

impl Script {
    /// A script made of `prelude` (shared helpers, may be empty) followed by `body`.
    pub fn new(prelude: &str, body: &str) -> Self {
        if prelude.is_empty() {
            Self(fred::types::scripts::Script::from_lua(body))
        } else {
            Self(fred::types::scripts::Script::from_lua(format!(
                "{prelude}\n{body}"
            )))
        }
    }

    /// The script's SHA-1, as `EVALSHA` takes it.
    pub fn sha1(&self) -> &str {
        self.0.sha1()
    }
}

/// Declares a struct of [`Script`]s, one field a Lua file, and its `new()`: field `join` is the
/// file `join.lua` in `$dir` (relative to the file that calls the macro), with the `prelude`
/// of its group in front (`""` for none).
///
/// ```ignore
/// redis_layer::scripts! {
///     #[derive(Debug)]
///     pub(super) struct Scripts in "../lua/" {
///         prelude LIB => [join, leave];
///         prelude "" => [outcome];
///     }
/// }
/// ```
#[macro_export]
macro_rules! scripts {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident in $dir:literal {
            $(prelude $prelude:expr => [$($field:ident),* $(,)?];)+
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($($vis $field: $crate::Script,)*)+
        }

        impl $name {
            /// Every script, with its prelude in front.
            $vis fn new() -> Self {
                Self {
                    $($(
                        $field: $crate::Script::new(
                            $prelude,
                            include_str!(concat!($dir, stringify!($field), ".lua")),
                        ),
                    )*)+
                }
            }
        }
    };
}
