//! Prometheus, which the dashboard test (`integration/tests/prometheus_dashboard.rs`) runs
//! against a cluster: `/usr/bin/prometheus` from Debian's package, installed when missing and
//! this is Debian and we are root. Not needed to build: without it that test says it skipped.

use std::path::Path;

pub const BINARY: &str = "/usr/bin/prometheus";

/// Makes sure `/usr/bin/prometheus` is there, or says what to do.
pub fn ensure() -> Result<(), String> {
    if Path::new(BINARY).exists() {
        return Ok(());
    }
    if !crate::apt::is_debian() {
        return Err(format!(
            "{BINARY} is missing and this is not Debian: install Prometheus there (the \
             dashboard test looks for exactly that path)"
        ));
    }
    crate::apt::install(&["prometheus".to_string()])?;
    if Path::new(BINARY).exists() {
        Ok(())
    } else {
        Err(format!("installed prometheus, yet {BINARY} is missing"))
    }
}
