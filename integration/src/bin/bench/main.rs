//! Benchmarks that print figures, e.g.
//! `cargo run --release -p tributary-integration --bin bench -- control-plane`.

// mimalloc: the catalogue and data paths allocate many small buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod control_plane;
mod data_plane;
mod ditto;
mod idle;
mod mirror;
mod replicated;
mod replicated_mirror;
mod security;

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
    /// Ingest entries/s and MB/s over gRPC beside the storage ceiling.
    Ingest {
        #[arg(long, default_value_t = 2_000_000)]
        entries: u64,
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        #[arg(long, default_value_t = 128)]
        payload: usize,
    },
    /// Pipelined publish msgs/s and MB/s to a file stream beside the storage ceiling; with
    /// `--replicas 3` (or 5), R1 beside the replicated stream on 3 data nodes, and failover.
    Publish {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 128)]
        payload: usize,
        #[arg(long, default_value_t = 1)]
        replicas: u32,
    },
    /// A stream mirrored (plain and filtered) until complete, and mirror lag under load; with
    /// `--replicas 3` (or 5), R1 on the origin's node, R1 across nodes and R3 of R3 beside.
    Mirror {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 128)]
        payload: usize,
        /// Copies timed per figure; the median is reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Seconds of full-speed publishing while mirror lag is sampled.
        #[arg(long, default_value_t = 10)]
        lag_secs: u64,
        /// Publish at this many msgs/s while lag is sampled (0 = full speed), e.g. the rate
        /// NATS's publisher reaches, to compare lag at the same load.
        #[arg(long, default_value_t = 0)]
        lag_rate: u64,
        #[arg(long, default_value_t = 1)]
        replicas: u32,
    },
    /// A stream sourcing two filled origins, until complete.
    Sources {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 128)]
        payload: usize,
        /// Copies timed; the median is reported.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// What security costs: catalogue writes/s, publish msgs/s and ingest entries/s on
    /// insecure servers with no auth, then with TLS, a JWT on every call and policies.
    Security {
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value = "10s")]
        duration: String,
        #[arg(long, default_value_t = 500_000)]
        messages: u64,
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        #[arg(long, default_value_t = 128)]
        payload: usize,
        /// Times each setup runs, alternating; medians are compared.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// CPU of idle servers with no stream, then with `--streams` replicated streams.
    Idle {
        #[arg(long, default_value_t = 1000)]
        streams: u32,
        #[arg(long, default_value_t = 3)]
        replicas: u32,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// `[replication] hibernate` of the data nodes: on, off, or both (off, then on).
        #[arg(long, default_value = "both", value_parser = ["on", "off", "both"])]
        hibernate: String,
    },
    /// A well's entries mirrored into a second cluster (ditto), compression off and on.
    Ditto {
        #[arg(long, default_value_t = 5_000_000)]
        entries: u64,
        #[arg(long, default_value_t = 128)]
        payload: usize,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Ditto { entries, payload } => ditto::run(entries, payload).await,
        Cmd::Idle {
            streams,
            replicas,
            secs,
            hibernate,
        } => {
            let runs: &[bool] = match hibernate.as_str() {
                "on" => &[true],
                "off" => &[false],
                _ => &[false, true],
            };
            for h in runs {
                idle::run(streams, replicas, secs, *h).await?;
            }
            Ok(())
        }
        Cmd::ControlPlane { clients, duration } => {
            let d = tributary_common::duration::parse(&duration).map_err(|e| anyhow!(e))?;
            control_plane::run(clients, d).await
        }
        Cmd::Ingest {
            entries,
            batch,
            payload,
        } => data_plane::ingest(entries, batch, payload).await,
        Cmd::Publish {
            messages,
            payload,
            replicas: 1,
        } => data_plane::publish(messages, payload).await,
        Cmd::Publish {
            messages,
            payload,
            replicas,
        } => replicated::publish(messages, payload, replicas).await,
        Cmd::Mirror {
            messages,
            payload,
            rounds,
            lag_secs,
            lag_rate,
            replicas: 1,
        } => mirror::mirror(messages, payload, rounds, lag_secs, lag_rate).await,
        Cmd::Mirror {
            messages,
            payload,
            rounds,
            replicas,
            ..
        } => replicated_mirror::mirror(messages, payload, rounds, replicas).await,
        Cmd::Security {
            clients,
            duration,
            messages,
            entries,
            payload,
            rounds,
        } => {
            let d = tributary_common::duration::parse(&duration).map_err(|e| anyhow!(e))?;
            security::run(clients, d, messages, entries, payload, rounds).await
        }
        Cmd::Sources {
            messages,
            payload,
            rounds,
        } => mirror::sources(messages, payload, rounds).await,
    }
}
