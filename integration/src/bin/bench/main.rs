//! Benchmarks that print figures, e.g.
//! `cargo run --release -p tributary-integration --bin bench -- control-plane`.

mod control_plane;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Catalogue writes/s and latency on a 3-member loopback cluster, and leader failover time.
    ControlPlane {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[arg(long, default_value = "10s")]
        duration: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::ControlPlane { clients, duration } => {
            let d = tributary_common::duration::parse(&duration).map_err(|e| anyhow!(e))?;
            control_plane::run(clients, d).await
        }
    }
}
