//! Reading goose's command line: informational runs, the selected scenario, the run's end.

use super::{register, Ctx, Kind, LoadTestError, Settings};
use goose::config::GooseConfiguration;
use goose::{GooseAttack, GooseError};
use std::sync::Arc;
use std::time::Duration;

/// Whether the command line only asks for information (`--list`, `--scenarios-list`,
/// `--version`): then goose prints it and exits, and nothing is set up.
pub fn informational(config: &GooseConfiguration) -> bool {
    config.list || config.scenarios_list || config.version
}

/// The attack for an informational command line (it exits the process).
pub async fn inform(config: GooseConfiguration) -> Result<(), GooseError> {
    let ctx = Arc::new(Ctx::new(
        Kind::JoinStorm,
        Settings::default(),
        String::new(),
        String::new(),
    ));
    register(GooseAttack::initialize_with_config(config)?, &ctx)
        .execute()
        .await
        .map(|_| ())
}

/// The scenario `--scenarios` selects: exactly one, by name (`join_storm`) or goose's machine
/// name (`joinstorm`), `*` wildcards allowed.
pub fn selected(config: &GooseConfiguration) -> Result<Kind, LoadTestError> {
    let patterns: Vec<String> = config
        .scenarios
        .as_ref()
        .map(|s| s.active.iter().map(|p| p.replace('_', "")).collect())
        .unwrap_or_default();
    let chosen: Vec<Kind> = Kind::ALL
        .into_iter()
        .filter(|k| patterns.iter().any(|p| wildcard(p, &k.machine_name())))
        .collect();
    match chosen.as_slice() {
        [one] => Ok(*one),
        _ if patterns.is_empty() => Err(LoadTestError::Scenario("none".into())),
        _ => Err(LoadTestError::Scenario(format!("{patterns:?}"))),
    }
}

fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(t) = text.strip_prefix(head) else {
                return false;
            };
            (0..=t.len()).any(|i| wildcard(rest, &t[i..]))
        }
    }
}

/// Goose's TIME (`30`, `30s`, `2m30s`, `1h`) in seconds.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let (mut total, mut n) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            n.push(c);
            continue;
        }
        let v: u64 = n.parse().ok()?;
        n.clear();
        total += match c {
            'h' => v * 3600,
            'm' => v * 60,
            's' => v,
            _ => return None,
        };
    }
    n.is_empty().then_some(total)
}

/// When the run time will be over: the ramp (`--users` over `--increase-rate`, or
/// `--increase-time`) plus `--run-time`; None without a run time.
pub(crate) fn run_end(config: &GooseConfiguration) -> Option<Duration> {
    let run = parse_time(config.run_time.as_deref()?)?;
    let users = config.users.unwrap_or(1) as f64;
    let ramp = match (&config.increase_time, &config.increase_rate) {
        (Some(t), _) => parse_time(t).unwrap_or(0) as f64,
        (None, Some(r)) => users / r.parse::<f64>().ok().filter(|r| *r > 0.0).unwrap_or(1.0),
        (None, None) => users,
    };
    Some(Duration::from_secs_f64(ramp + run as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> GooseConfiguration {
        GooseConfiguration::parse_args_default(args).unwrap()
    }

    #[test]
    fn scenarios_are_selected_by_name_or_machine_name() {
        assert_eq!(
            selected(&config(&["--scenarios", "join_storm"])).unwrap(),
            Kind::JoinStorm
        );
        assert_eq!(
            selected(&config(&["--scenarios", "webhookflood"])).unwrap(),
            Kind::WebhookFlood
        );
        assert_eq!(
            selected(&config(&["--scenarios", "purchase*"])).unwrap(),
            Kind::PurchaseJourney
        );
        assert!(selected(&config(&[])).is_err());
        assert!(selected(&config(&["--scenarios", "join_storm,waiting_room"])).is_err());
        assert!(selected(&config(&["--scenarios", "nope"])).is_err());
    }

    #[test]
    fn goose_times_are_parsed() {
        assert_eq!(parse_time("30"), Some(30));
        assert_eq!(parse_time("30s"), Some(30));
        assert_eq!(parse_time("2m30s"), Some(150));
        assert_eq!(parse_time("1h"), Some(3600));
        assert_eq!(parse_time("1x"), None);
        assert_eq!(parse_time("5m3"), None);
    }
}
