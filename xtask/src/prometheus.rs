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
    if !Path::new("/etc/debian_version").exists() {
        return Err(format!(
            "{BINARY} is missing and this is not Debian: install Prometheus there (the \
             dashboard test looks for exactly that path)"
        ));
    }
    if !crate::libclang::is_root() {
        return Err(format!(
            "{BINARY} is missing: run `sudo apt-get install -y --no-install-recommends \
             prometheus`"
        ));
    }
    eprintln!("xtask: installing prometheus from Debian's packages");
    crate::libclang::run("apt-get", &["update", "-qq"])?;
    crate::libclang::run(
        "apt-get",
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "prometheus",
        ],
    )?;
    if Path::new(BINARY).exists() {
        Ok(())
    } else {
        Err(format!("installed prometheus, yet {BINARY} is missing"))
    }
}
