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
    /// Second gRPC address serving Catalog and Cluster over TLS (with --tls-cert, --tls-key)
    /// for clients outside the cluster, such as another cluster's mirror workers.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_listen: Option<String>,
    /// PEM certificate chain of the TLS listener.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<String>,
    /// PEM private key of the TLS listener.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<String>,
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
    tributary_common::telemetry::init_logging("info");
    let flags = Flags::parse();
    let config: ControlPlaneConfig =
        tributary_common::config::load(flags.config.as_deref(), &flags)?;
    let running = tributary_control_plane::start(config).await?;
    let bound = BoundAddrs {
        grpc: running.addr,
        admin: running.admin_addr,
        tls: running.tls_addr,
    };
    let off = |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".into(), |a| a.to_string());
    let (admin, tls) = (off(bound.admin), off(bound.tls));
    tracing::info!(grpc = %bound.grpc, %admin, %tls, "serving");
    if let Some(path) = &flags.addr_file {
        bound.write_atomically(path)?;
    }
    tributary_common::telemetry::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}
