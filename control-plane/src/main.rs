// mimalloc: the catalogue and data paths allocate many small buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use serde::Serialize;
use std::path::PathBuf;
use tributary_common::addr_file::BoundAddrs;
use tributary_control_plane::ControlPlaneConfig;

/// A Tributary control-plane member. Every flag is also a TOML key and a
/// `TRIBUTARY_<KEY>` environment variable (`TRIBUTARY_RAFT__TICK_MS` for nested keys).
#[derive(Parser, Serialize)]
#[command(version, about)]
struct Flags {
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// Initial voters: 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<String>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_listen: Option<String>,
    /// gRPC address serving the other members (Raft; mutual TLS). Default: the --listen host,
    /// any free port (members find it through each other's client port).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    peer_listen: Option<String>,
    /// Cleartext everywhere, members unauthenticated (demos and local trials only).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure: bool,
    #[command(flatten)]
    #[serde(skip_serializing_if = "tributary_common::cli::TlsFlags::is_empty")]
    tls: tributary_common::cli::TlsFlags,
    /// A subject with READ, WRITE and ADMIN on everything (`issuer:subject`); repeatable.
    #[arg(long = "admin-subject")]
    #[serde(rename = "admin_subjects", skip_serializing_if = "Vec::is_empty")]
    admin_subjects: Vec<String>,
    /// What a caller with no credentials is taken for (local trials only); repeatable.
    #[arg(long = "anonymous-subject")]
    #[serde(rename = "anonymous_subjects", skip_serializing_if = "Vec::is_empty")]
    anonymous_subjects: Vec<String>,
    /// Once serving, write the bound addresses here as JSON (`{"grpc": …, "admin": …}`,
    /// written whole by a rename): how a launcher learns the ports of `--listen HOST:0`.
    #[arg(long, env = "TRIBUTARY_ADDR_FILE")]
    #[serde(skip)]
    addr_file: Option<PathBuf>,
    /// TOML config file.
    #[arg(long, env = "TRIBUTARY_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Flags::parse();
    let config: ControlPlaneConfig =
        tributary_common::config::load(flags.config.as_deref(), &flags)?;
    // Kept to the end: dropping it flushes the log file.
    // Kept to the end too: dropping it sends the spans still queued.
    let _logs = tributary_common::logging::init_with_tracing(
        &config.logging,
        &config.tracing,
        "control-plane",
        &format!("member-{}", config.id),
    )?;
    let running = tributary_control_plane::start(config).await?;
    let bound = BoundAddrs {
        grpc: running.addr,
        admin: running.admin_addr,
        peer: Some(running.peer_addr),
    };
    let admin = bound.admin.map_or_else(|| "off".into(), |a| a.to_string());
    tracing::info!(grpc = %bound.grpc, peer = %running.peer_addr, %admin, "serving");
    if let Some(path) = &flags.addr_file {
        bound.write_atomically(path)?;
    }
    tributary_common::telemetry::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}
