//! `loadtest`: the goose load-test scenarios of the waiting room (`join_storm`, `waiting_room`,
//! `purchase_journey`, `webhook_flood`). The command line is goose's own (`--host`, `--users`,
//! `--increase-rate`, `--run-time`, `--report-file`, `--request-log`, `--co-mitigation`,
//! `--scenarios`, `--list`, ...); scenario settings come from `LOADTEST_*` environment
//! variables (`loadtest/README.md`). After the attack it checks the scenario's invariants,
//! prints one `LOADTEST_JSON {...}` line on stdout and a summary on stderr, and exits 1 when an
//! invariant failed (2 when the harness itself could not run, 3 when only a goose threshold
//! failed).

use goose::config::GooseConfiguration;
use loadtest::scenarios::{self, Settings};

#[tokio::main]
async fn main() {
    let config = GooseConfiguration::parse_args_default_or_exit();
    if scenarios::informational(&config) {
        // Goose prints the list (or version) and exits.
        if let Err(e) = scenarios::inform(config).await {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
        return;
    }
    let report = match Settings::from_env() {
        Ok(settings) => scenarios::run(config, settings).await,
        Err(e) => Err(e),
    };
    match report {
        Ok(r) => {
            println!(
                "LOADTEST_JSON {}",
                serde_json::to_string(&r).unwrap_or_else(|_| "{}".into())
            );
            eprint!("{}", r.summary());
            std::process::exit(if !r.passed {
                1
            } else if r.goose_error.is_some() {
                3
            } else {
                0
            });
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            std::process::exit(2);
        }
    }
}
