//! `cargo xtask demo` and `cargo xtask test`: the README's two commands. Before handing over to
//! cargo they make sure what the build needs outside cargo is there — libclang, which
//! RocksDB's bindings (bindgen) load at build time, and for the tests headless Chromium and
//! Prometheus — and install it on Debian when they can, or say exactly what to do when they
//! cannot (not root, not Debian). Without Prometheus only the dashboard test skips (a warning).
//!
//! This crate has no dependencies, so it builds in seconds on a fresh machine.

mod apt;
mod chromium;
mod libclang;
mod prometheus;

use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <demo|test|setup> [ARGS...]
  demo   build (release) and run `tribctl demo`, the showcase on an embedded default
  test   run the test suite (`cargo test --workspace`); ARGS go to cargo test
  setup  only check and install what the build and tests need outside cargo (libclang, chromium, prometheus)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let cargo_args: Vec<String> = match cmd.as_str() {
        "demo" => ["run", "--release", "-p", "tributary-ctl", "--", "demo"]
            .map(String::from)
            .into_iter()
            .chain(rest)
            .collect(),
        "test" => ["test", "--workspace"]
            .map(String::from)
            .into_iter()
            .chain(rest)
            .collect(),
        "setup" => Vec::new(),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("xtask: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = libclang::ensure() {
        eprintln!("xtask: {e}");
        return ExitCode::FAILURE;
    }
    // The status-page test renders the page in headless Chromium; the demo needs none.
    if cmd != "demo" {
        if let Err(e) = chromium::ensure() {
            eprintln!("xtask: {e}");
            return ExitCode::FAILURE;
        }
        // Only the dashboard test needs Prometheus: without it that test skips, saying why.
        if let Err(e) = prometheus::ensure() {
            eprintln!("xtask: warning: {e}; the dashboard test will be skipped");
        }
    }
    if cargo_args.is_empty() {
        println!("xtask: everything the build needs is here");
        return ExitCode::SUCCESS;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match Command::new(&cargo).args(&cargo_args).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => ExitCode::from(u8::try_from(s.code().unwrap_or(1)).unwrap_or(1)),
        Err(e) => {
            eprintln!("xtask: cannot run {cargo}: {e}");
            ExitCode::FAILURE
        }
    }
}
