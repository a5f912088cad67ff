//! The harness's errors.

/// Errors of the harness (the attack itself reports through goose's metrics).
#[derive(Debug, thiserror::Error)]
pub enum LoadTestError {
    /// A `LOADTEST_*` variable has a value that cannot be used.
    #[error("{name}={value:?}: {reason}")]
    Setting {
        /// The variable.
        name: String,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// `--scenarios` did not name exactly one scenario.
    #[error("choose exactly one scenario with --scenarios (join_storm, waiting_room, purchase_journey or webhook_flood); got {0}")]
    Scenario(String),
    /// No `--host`.
    #[error("--host is required (the gateway, e.g. http://127.0.0.1:8080)")]
    NoHost,
    /// The admin API refused or failed a set-up or read.
    #[error("admin API: {0}")]
    Admin(String),
    /// The backends' gRPC API refused or failed a call.
    #[error("backends: {0}")]
    Backends(String),
    /// An HTTP call of the harness failed.
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// Goose refused the configuration.
    #[error("goose: {0}")]
    Goose(String),
}
