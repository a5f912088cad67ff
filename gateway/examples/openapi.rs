//! Prints the gateway's OpenAPI document as YAML: `cargo run -p gateway --example openapi >
//! docs/openapi.yaml`.
fn main() {
    print!("{}", gateway::openapi::yaml());
}
