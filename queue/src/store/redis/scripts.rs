//! The queue's Lua scripts, each with the shared `lib.lua` in front (sent by hash, loaded on
//! NOSCRIPT by [`redis_layer`]).

use redis_layer::Script;

const LIB: &str = include_str!("../lua/lib.lua");

#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) join: Script,
    pub(super) status: Script,
    pub(super) enter: Script,
    pub(super) leave: Script,
    pub(super) admit: Script,
    pub(super) sweep: Script,
    pub(super) info: Script,
    pub(super) configure: Script,
    pub(super) action: Script,
    pub(super) pulse: Script,
    pub(super) places: Script,
    pub(super) resume: Script,
    pub(super) codes: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        let s = |body: &str| Script::new(LIB, body);
        Self {
            join: s(include_str!("../lua/join.lua")),
            status: s(include_str!("../lua/status.lua")),
            enter: s(include_str!("../lua/enter.lua")),
            leave: s(include_str!("../lua/leave.lua")),
            admit: s(include_str!("../lua/admit.lua")),
            sweep: s(include_str!("../lua/sweep.lua")),
            info: s(include_str!("../lua/info.lua")),
            configure: s(include_str!("../lua/configure.lua")),
            action: s(include_str!("../lua/action.lua")),
            pulse: s(include_str!("../lua/pulse.lua")),
            places: s(include_str!("../lua/places.lua")),
            resume: s(include_str!("../lua/resume.lua")),
            codes: s(include_str!("../lua/codes.lua")),
        }
    }
}
