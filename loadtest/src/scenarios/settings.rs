//! The scenario settings, from `LOADTEST_*` environment variables.

use super::LoadTestError;
use std::time::Duration;

/// Scenario settings that goose has no flag for, from `LOADTEST_*` environment variables
/// (defaults in parentheses; `loadtest/README.md` lists them all).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `LOADTEST_EVENT`: the event (join_storm and waiting_room: a fresh `lt-<scenario>-<unix
    /// time>`; purchase_journey and webhook_flood: `loadtest`, which the backends must seed).
    pub event: Option<String>,
    /// `LOADTEST_SETUP` (1): create/configure the event through the admin API before the run;
    /// 0 uses it as it is.
    pub setup: bool,
    /// `LOADTEST_ADMIN_TOKEN` (none; required): the gateway's admin token.
    pub admin_token: Option<String>,
    /// `LOADTEST_ADMIN_URL` (`--host`): where the admin API is.
    pub admin_url: Option<String>,
    /// `LOADTEST_METRICS_URL` (`http://127.0.0.1:9464`, the gateway's `--metrics-listen`
    /// default): where `/metrics` is.
    pub metrics_url: String,
    /// `LOADTEST_ADMIT_PER_SECOND` (100): the event's admission rate (waiting_room,
    /// purchase_journey; join_storm pauses admissions).
    pub admit_per_second: u32,
    /// `LOADTEST_MAX_ACTIVE` (1000000): the event's `max_active`.
    pub max_active: u64,
    /// `LOADTEST_BACKENDS_URL` (`http://127.0.0.1:9090`): the backends' gRPC address, for the
    /// inventory and reservation reads and the webhook_flood set-up.
    pub backends_url: String,
    /// `LOADTEST_WEBHOOK_SECRET` (`whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, the docs' example):
    /// the gateway's `--webhook-secret`.
    pub webhook_secret: String,
    /// `LOADTEST_WEBHOOK_INTENTS` (50): reservations with a pending payment intent that the
    /// webhook flood reports on (created at the backends before the run).
    pub webhook_intents: usize,
    /// `LOADTEST_DUPLICATE_SHARE` (0.2): share of webhooks that repeat an accepted one.
    pub duplicate_share: f64,
    /// `LOADTEST_STALE_SHARE` (0.05): share signed with a timestamp 10 minutes old.
    pub stale_share: f64,
    /// `LOADTEST_FORGED_SHARE` (0.05): share signed with a wrong key.
    pub forged_share: f64,
    /// `LOADTEST_STATUS_SHARE` (0.3): chance per second of waiting that a waiting_room user
    /// also polls its status (a tab regaining focus).
    pub status_share: f64,
    /// `LOADTEST_LEAVE_SHARE` (0.1): share of waiting_room visits that leave the queue early.
    pub leave_share: f64,
    /// `LOADTEST_IDLE_SHARE` (0.1): share that close the tab without leaving (go idle).
    pub idle_share: f64,
    /// `LOADTEST_FAIL_SHARE` (0.1): share of purchase_journey payments with the `FAIL` scenario.
    pub fail_share: f64,
    /// `LOADTEST_POLL_MS` (1000): status / reservation polling interval of purchase_journey.
    pub poll_interval: Duration,
    /// `LOADTEST_WAIT_TIMEOUT_SECS` (120): longest a user waits in the queue.
    pub wait_timeout: Duration,
    /// `LOADTEST_SETTLE_TIMEOUT_SECS` (60): longest a payment may take to settle, also after the
    /// run; and longest the webhook consumer may take to drain.
    pub settle_timeout: Duration,
    /// `LOADTEST_RATE_TOLERANCE` (0.05): allowed relative error of the admission rate.
    pub rate_tolerance: f64,
    /// `LOADTEST_VERIFY_SAMPLE` (2000): join_storm places re-read after the run.
    pub verify_sample: usize,
}

/// The `LOADTEST_*` variables as clap reads them: names, defaults and checks in one place.
#[derive(Debug, clap::Parser)]
#[command(name = "loadtest")]
struct Vars {
    #[arg(long, env = "LOADTEST_EVENT")]
    event: Option<String>,
    #[arg(long, env = "LOADTEST_SETUP", default_value = "1", value_parser = yes_no, action = clap::ArgAction::Set)]
    setup: bool,
    #[arg(long, env = "LOADTEST_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    #[arg(long, env = "LOADTEST_ADMIN_URL")]
    admin_url: Option<String>,
    #[arg(
        long,
        env = "LOADTEST_METRICS_URL",
        default_value = "http://127.0.0.1:9464"
    )]
    metrics_url: String,
    #[arg(long, env = "LOADTEST_ADMIT_PER_SECOND", default_value = "100", value_parser = number::<u32>)]
    admit_per_second: u32,
    #[arg(long, env = "LOADTEST_MAX_ACTIVE", default_value = "1000000", value_parser = number::<u64>)]
    max_active: u64,
    #[arg(
        long,
        env = "LOADTEST_BACKENDS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    backends_url: String,
    #[arg(
        long,
        env = "LOADTEST_WEBHOOK_SECRET",
        default_value = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        hide_env_values = true
    )]
    webhook_secret: String,
    #[arg(long, env = "LOADTEST_WEBHOOK_INTENTS", default_value = "50", value_parser = number::<usize>)]
    webhook_intents: usize,
    #[arg(long, env = "LOADTEST_DUPLICATE_SHARE", default_value = "0.2", value_parser = share)]
    duplicate_share: f64,
    #[arg(long, env = "LOADTEST_STALE_SHARE", default_value = "0.05", value_parser = share)]
    stale_share: f64,
    #[arg(long, env = "LOADTEST_FORGED_SHARE", default_value = "0.05", value_parser = share)]
    forged_share: f64,
    #[arg(long, env = "LOADTEST_STATUS_SHARE", default_value = "0.3", value_parser = share)]
    status_share: f64,
    #[arg(long, env = "LOADTEST_LEAVE_SHARE", default_value = "0.1", value_parser = share)]
    leave_share: f64,
    #[arg(long, env = "LOADTEST_IDLE_SHARE", default_value = "0.1", value_parser = share)]
    idle_share: f64,
    #[arg(long, env = "LOADTEST_FAIL_SHARE", default_value = "0.1", value_parser = share)]
    fail_share: f64,
    #[arg(long, env = "LOADTEST_POLL_MS", default_value = "1000", value_parser = number::<u64>)]
    poll_ms: u64,
    #[arg(long, env = "LOADTEST_WAIT_TIMEOUT_SECS", default_value = "120", value_parser = number::<u64>)]
    wait_timeout_secs: u64,
    #[arg(long, env = "LOADTEST_SETTLE_TIMEOUT_SECS", default_value = "60", value_parser = number::<u64>)]
    settle_timeout_secs: u64,
    #[arg(long, env = "LOADTEST_RATE_TOLERANCE", default_value = "0.05", value_parser = number::<f64>)]
    rate_tolerance: f64,
    #[arg(long, env = "LOADTEST_VERIFY_SAMPLE", default_value = "2000", value_parser = number::<usize>)]
    verify_sample: usize,
}

fn number<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| "not a number of the expected kind".to_owned())
}

fn share(v: &str) -> Result<f64, String> {
    let v: f64 = number(v)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 1".into())
    }
}

fn yes_no(v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err("1 or 0".into()),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_lookup(|_| None).expect("the defaults are valid")
    }
}

impl Settings {
    /// Reads the `LOADTEST_*` environment variables (an empty one counts as unset).
    pub fn from_env() -> Result<Self, LoadTestError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Reads the settings through `get` (a variable's value, or None).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, LoadTestError> {
        use clap::{CommandFactory, FromArgMatches};
        let cmd = Vars::command();
        let mut argv = vec!["loadtest".to_owned()];
        for a in cmd.get_arguments() {
            if let (Some(env), Some(long)) = (a.get_env(), a.get_long()) {
                if let Some(v) = get(&env.to_string_lossy()) {
                    argv.push(format!("--{long}={v}"));
                }
            }
        }
        // The values come from `get` alone: clap would read the process's own variables (and
        // refuse the empty ones that `from_env` leaves out).
        let vars = cmd
            .clone()
            .mut_args(|a| a.env(None))
            .try_get_matches_from(argv)
            .and_then(|m| Vars::from_arg_matches(&m))
            .map_err(|e| setting_error(&cmd, &e))?;
        let s = Self {
            event: vars.event,
            setup: vars.setup,
            admin_token: vars.admin_token,
            admin_url: vars.admin_url,
            metrics_url: vars.metrics_url,
            admit_per_second: vars.admit_per_second,
            max_active: vars.max_active,
            backends_url: vars.backends_url,
            webhook_secret: vars.webhook_secret,
            webhook_intents: vars.webhook_intents,
            duplicate_share: vars.duplicate_share,
            stale_share: vars.stale_share,
            forged_share: vars.forged_share,
            status_share: vars.status_share,
            leave_share: vars.leave_share,
            idle_share: vars.idle_share,
            fail_share: vars.fail_share,
            poll_interval: Duration::from_millis(vars.poll_ms.max(10)),
            wait_timeout: Duration::from_secs(vars.wait_timeout_secs),
            settle_timeout: Duration::from_secs(vars.settle_timeout_secs),
            rate_tolerance: vars.rate_tolerance,
            verify_sample: vars.verify_sample,
        };
        if s.duplicate_share + s.stale_share + s.forged_share > 1.0 {
            return Err(LoadTestError::Setting {
                name: "LOADTEST_DUPLICATE_SHARE".into(),
                value: s.duplicate_share.to_string(),
                reason: "duplicate + stale + forged shares exceed 1".into(),
            });
        }
        if s.leave_share + s.idle_share > 1.0 {
            return Err(LoadTestError::Setting {
                name: "LOADTEST_LEAVE_SHARE".into(),
                value: s.leave_share.to_string(),
                reason: "leave + idle shares exceed 1".into(),
            });
        }
        Ok(s)
    }
}

/// A clap error as the variable, its value and the reason.
fn setting_error(cmd: &clap::Command, e: &clap::Error) -> LoadTestError {
    use clap::error::{ContextKind, ContextValue};
    let text = |k| match e.get(k) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let arg = text(ContextKind::InvalidArg);
    let name = cmd
        .get_arguments()
        .find(|a| {
            a.get_long()
                .is_some_and(|l| arg.starts_with(&format!("--{l} ")))
        })
        .and_then(|a| a.get_env())
        .map_or(arg.clone(), |n| n.to_string_lossy().into_owned());
    let reason =
        std::error::Error::source(e).map_or_else(|| e.kind().to_string(), |s| s.to_string());
    LoadTestError::Setting {
        name,
        value: text(ContextKind::InvalidValue),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_have_defaults_and_refuse_bad_values() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.admit_per_second, 100);
        assert!(s.setup);
        let env = |k: &str| (k == "LOADTEST_ADMIT_PER_SECOND").then(|| "25".to_string());
        assert_eq!(Settings::from_lookup(env).unwrap().admit_per_second, 25);
        let bad = |k: &str| (k == "LOADTEST_STALE_SHARE").then(|| "1.5".to_string());
        assert!(Settings::from_lookup(bad).is_err());
        let nan = |k: &str| (k == "LOADTEST_MAX_ACTIVE").then(|| "lots".to_string());
        assert!(Settings::from_lookup(nan).is_err());
    }

    #[test]
    fn a_refused_value_names_its_variable() {
        let bad = |k: &str| (k == "LOADTEST_STALE_SHARE").then(|| "1.5".to_string());
        assert_eq!(
            Settings::from_lookup(bad).unwrap_err().to_string(),
            "LOADTEST_STALE_SHARE=\"1.5\": must be between 0 and 1"
        );
        let setup = |k: &str| (k == "LOADTEST_SETUP").then(|| "maybe".to_string());
        assert_eq!(
            Settings::from_lookup(setup).unwrap_err().to_string(),
            "LOADTEST_SETUP=\"maybe\": 1 or 0"
        );
        let poll = |k: &str| (k == "LOADTEST_POLL_MS").then(|| " 5 ".to_string());
        let s = Settings::from_lookup(poll).unwrap();
        assert_eq!(s.poll_interval, Duration::from_millis(10));
        assert_eq!(s.webhook_secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }
}
