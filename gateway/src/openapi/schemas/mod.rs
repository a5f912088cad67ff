//! Schema components. Bodies the server builds with `json!` are written as JSON Schema
//! (`json_schema!`); see the module docs of `openapi` for adding one.

mod queue;
pub use queue::*;
mod ws;
pub use ws::*;
mod forward;
pub use forward::*;
mod webhooks;
pub use webhooks::*;
mod admin;
pub use admin::*;
mod system;
pub use system::*;
mod page;
pub use page::*;
mod console;
pub use console::*;
