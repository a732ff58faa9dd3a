use clap::Parser;
// mimalloc: the catalogue and data paths allocate many small buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde::Serialize;
use std::path::PathBuf;
use tributary_common::addr_file::BoundAddrs;
use tributary_data_node::DataNodeConfig;

/// A Tributary data node. Every flag is also a TOML key and a `TRIBUTARY_<KEY>` environment
/// variable (keys: `DataNodeConfig` in data-node/src/config.rs).
#[derive(Parser, Serialize)]
#[command(version, about)]
struct Flags {
    /// This node's id (1, 2, …): the catalogue's owner_node.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    /// gRPC address (HOST:PORT; port 0 picks one).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    /// Address to register with the control plane (default: the bound listen address).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    advertise: Option<String>,
    /// Control-plane members: HOST:PORT[,HOST:PORT…].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    control_plane: Option<String>,
    /// Where the node's RocksDB (and relative cold locations) live.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Admin HTTP (/metrics, /health, /ready, /devops/…); empty disables it.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_listen: Option<String>,
    /// Accepted ingest secret; repeat for several (rotation).
    #[arg(
        long = "ingest-secret",
        env = "TRIBUTARY_INGEST_SECRET",
        value_delimiter = ','
    )]
    #[serde(rename = "ingest_secrets", skip_serializing_if = "Vec::is_empty")]
    ingest_secrets: Vec<String>,
    /// Accepted stream secret (x-tributary-stream-secret on every Streams call); repeat for
    /// several (rotation). The cluster's data nodes share them.
    #[arg(
        long = "stream-secret",
        env = "TRIBUTARY_STREAM_SECRET",
        value_delimiter = ','
    )]
    #[serde(rename = "stream_secrets", skip_serializing_if = "Vec::is_empty")]
    stream_secrets: Vec<String>,
    /// A placement tag of this node (`az:eu-1`, `ssd`); repeatable. Streams' placement tags
    /// and unique_tag choose their replicas' nodes by them.
    #[arg(long = "tag", value_delimiter = ',')]
    #[serde(rename = "tags", skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    /// fsync the WAL on every write (survive power loss, not only process crashes).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_writes: Option<bool>,
    /// Cleartext on the listener and every link (demos and local trials only).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure: bool,
    /// A subject with READ, WRITE and ADMIN on everything (`issuer:subject`); repeatable.
    #[arg(long = "admin-subject")]
    #[serde(rename = "admin_subjects", skip_serializing_if = "Vec::is_empty")]
    admin_subjects: Vec<String>,
    /// What a caller with no credentials is taken for (local trials only); repeatable.
    #[arg(long = "anonymous-subject")]
    #[serde(rename = "anonymous_subjects", skip_serializing_if = "Vec::is_empty")]
    anonymous_subjects: Vec<String>,
    #[command(flatten)]
    #[serde(skip_serializing_if = "tributary_common::cli::TlsFlags::is_empty")]
    tls: tributary_common::cli::TlsFlags,
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
    let config: DataNodeConfig = tributary_common::config::load(flags.config.as_deref(), &flags)?;
    // Kept to the end: dropping it flushes the log file.
    // Kept to the end too: dropping it sends the spans still queued.
    let _logs = tributary_common::logging::init_with_tracing(
        &config.logging,
        &config.tracing,
        "data-node",
        &format!("data-node-{}", config.id),
    )?;
    let running = tributary_data_node::start(config).await?;
    let bound = BoundAddrs {
        grpc: running.addr,
        admin: running.admin_addr,
        peer: None,
    };
    let admin = bound
        .admin
        .map_or_else(|| "off".to_string(), |a| a.to_string());
    tracing::info!(grpc = %bound.grpc, %admin, "serving");
    if let Some(path) = &flags.addr_file {
        bound.write_atomically(path)?;
    }
    tributary_common::telemetry::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}
