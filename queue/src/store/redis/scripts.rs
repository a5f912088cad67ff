//! The queue's Lua scripts, each with the shared `lib.lua` in front (sent by hash, loaded on
//! NOSCRIPT by [`redis_layer`]).

const LIB: &str = include_str!("../lua/lib.lua");

redis_layer::scripts! {
    #[derive(Debug)]
    pub(super) struct Scripts in "../lua/" {
        prelude LIB => [
            join, status, enter, leave, admit, sweep, info, configure, action, pulse, places,
            resume, codes,
        ];
    }
}
