//! `loadtest`: the goose load-test scenarios of the waiting room (`join_storm`, `waiting_room`,
//! `purchase_journey`, `webhook_flood`). The command line is goose's own (`--host`, `--users`,
//! `--increase-rate`, `--run-time`, `--report-file`, `--request-log`, `--co-mitigation`,
//! `--scenarios`, `--list`, ...); scenario settings come from `LOADTEST_*` environment
//! variables (`loadtest/README.md`). After the attack it checks the scenario's invariants,
//! prints one `LOADTEST_JSON {...}` line on stdout and a summary on stderr, and exits 1 when an
//! invariant failed (2 when the harness itself could not run, 3 when only a goose threshold
//! failed).

use clap::{CommandFactory, FromArgMatches};
use goose::config::GooseConfiguration;
use loadtest::scenarios::{self, Settings};

/// Goose's command line, with `--hatch-rate` (goose's and Locust's older name, the one the
/// issue and many runbooks use) accepted as an alias of `--increase-rate`.
fn parse_config() -> GooseConfiguration {
    match parse_config_from(std::env::args_os()) {
        Ok(config) => config,
        // Help, version and usage errors: clap prints them and exits (0 for help, 2 otherwise).
        Err(e) => e.exit(),
    }
}

/// [`parse_config`] over the given arguments (the program name first).
fn parse_config_from<I, T>(args: I) -> Result<GooseConfiguration, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    GooseConfiguration::command()
        .mut_arg("increase_rate", |a| a.visible_alias("hatch-rate"))
        .try_get_matches_from(args)
        .and_then(|m| GooseConfiguration::from_arg_matches(&m))
}

#[tokio::main]
async fn main() {
    let config = parse_config();
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

#[cfg(test)]
mod tests {
    use super::parse_config_from;

    #[test]
    fn hatch_rate_is_increase_rate() {
        let c = parse_config_from(["loadtest", "--hatch-rate", "7", "--users", "3"]).unwrap();
        assert_eq!(c.increase_rate.as_deref(), Some("7"));
        let c = parse_config_from(["loadtest", "-r", "9"]).unwrap();
        assert_eq!(c.increase_rate.as_deref(), Some("9"));
        assert!(parse_config_from(["loadtest", "--hatch-rat", "7"]).is_err());
    }
}
