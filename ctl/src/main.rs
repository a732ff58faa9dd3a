//! `tribctl`: operate a Tributary cluster.

// mimalloc: the catalogue and data paths allocate many small buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod catalog_cmds;
mod client;
mod cluster_cmds;
mod demo;
mod demo_ditto;
mod dev;
mod ditto_cmds;
mod jetstream_config;
mod launcher;
mod locate;
mod output;
mod policy_args;
mod start_time;
mod stream_args;
mod stream_data;
mod stream_report;
mod well_data;
mod well_ingest;

use catalog_cmds::{Crud, TargetArgs, WellArgs};
use clap::{Parser, Subcommand};
use policy_args::PolicyArgs;
use stream_args::StreamArgs;

#[derive(Parser)]
#[command(name = "tribctl", version, about = "Operate a Tributary cluster")]
struct Cli {
    /// Control-plane member(s), HOST:PORT, comma-separated; any member will do.
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_SERVER",
        default_value = "127.0.0.1:7100"
    )]
    server: String,
    /// Stream secret sent to data nodes on every stream call (x-tributary-stream-secret).
    #[arg(
        long,
        global = true,
        env = "TRIBUTARY_STREAM_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    stream_secret: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Control-plane members and data nodes.
    #[command(subcommand)]
    Cluster(cluster_cmds::ClusterCmd),
    /// Wells: time-sharded entry stores.
    #[command(subcommand)]
    Well(WellCmd),
    /// Ditto targets: other clusters' ingest endpoints.
    #[command(subcommand)]
    Target(Crud<TargetArgs>),
    /// Streams: sequence-numbered messages, mirrors and sources.
    #[command(subcommand)]
    Stream(StreamCmd),
    /// Policies: who may do what to which resource.
    #[command(subcommand)]
    Policy(Crud<PolicyArgs>),
    /// Ditto (well mirroring into other clusters): worker stats.
    #[command(subcommand)]
    Ditto(ditto_cmds::DittoCmd),
    /// Apply a configuration file to the catalogue.
    Apply {
        /// A Gravwell config (`[Ditto-Target "x"]`, `[Default-Well]`, `[Storage-Well "x"]`).
        #[arg(long)]
        gravwell: std::path::PathBuf,
    },
    /// Run the showcase in-process on an embedded default.
    Demo,
    /// A local cluster of real server processes: up, status, down.
    #[command(subcommand)]
    Dev(dev::DevCmd),
}

#[derive(Subcommand)]
enum WellCmd {
    #[command(flatten)]
    Catalog(Box<Crud<WellArgs>>),
    /// Ingest plain or JSON lines from a file or stdin.
    Ingest(well_ingest::IngestArgs),
    /// Entries by time range and tags.
    Query(well_data::QueryArgs),
    /// Shards with entry counts, bytes and tier.
    Shards { name: String },
}

#[derive(Subcommand)]
enum StreamCmd {
    #[command(flatten)]
    Catalog(Box<Crud<StreamArgs>>),
    /// Publish to the stream whose subjects match.
    Publish(stream_data::PublishArgs),
    /// Follow a stream from a sequence or time.
    Sub(stream_data::SubArgs),
    /// Configuration and state.
    Info { name: String },
    /// Every stream's state and every mirror/source link (as `nats stream report`).
    Report {
        /// Also write the replication topology as a Graphviz graph to this file.
        #[arg(long)]
        dot: Option<std::path::PathBuf>,
    },
    /// Remove all messages, or those of one subject.
    Purge {
        name: String,
        #[arg(long)]
        subject: Option<String>,
    },
    /// Delete one message.
    RmMsg { name: String, seq: u64 },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        match e.downcast_ref::<tonic::Status>() {
            Some(s) => eprintln!("error: {} ({:?})", s.message(), s.code()),
            None => eprintln!("error: {e:#}"),
        }
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cmd = match cli.cmd {
        Cmd::Demo => return demo::run(cli.json).await,
        Cmd::Dev(d) => return dev::run(d, cli.json).await,
        other => other,
    };
    let cp = client::ControlPlane::new(&cli.server)?.with_stream_secret(&cli.stream_secret)?;
    match cmd {
        Cmd::Cluster(c) => cluster_cmds::run(c, &cp, cli.json).await,
        Cmd::Well(WellCmd::Catalog(c)) => catalog_cmds::run(*c, &cp, cli.json).await,
        Cmd::Well(WellCmd::Ingest(a)) => well_ingest::ingest(a, &cp, cli.json).await,
        Cmd::Well(WellCmd::Query(a)) => well_data::query(a, &cp, cli.json).await,
        Cmd::Well(WellCmd::Shards { name }) => well_data::shards(name, &cp, cli.json).await,
        Cmd::Target(c) => catalog_cmds::run(c, &cp, cli.json).await,
        Cmd::Stream(StreamCmd::Catalog(c)) => catalog_cmds::run(*c, &cp, cli.json).await,
        Cmd::Stream(StreamCmd::Publish(a)) => stream_data::publish(a, &cp, cli.json).await,
        Cmd::Stream(StreamCmd::Sub(a)) => stream_data::sub(a, &cp, cli.json).await,
        Cmd::Stream(StreamCmd::Info { name }) => stream_data::info(name, &cp, cli.json).await,
        Cmd::Stream(StreamCmd::Report { dot }) => {
            stream_report::run(&cp, dot.as_deref(), cli.json).await
        }
        Cmd::Stream(StreamCmd::Purge { name, subject }) => {
            stream_data::purge(name, subject, &cp, cli.json).await
        }
        Cmd::Stream(StreamCmd::RmMsg { name, seq }) => {
            stream_data::rm_msg(name, seq, &cp, cli.json).await
        }
        Cmd::Policy(c) => catalog_cmds::run(c, &cp, cli.json).await,
        Cmd::Ditto(c) => ditto_cmds::run(c, &cp, cli.json).await,
        Cmd::Apply { gravwell } => ditto_cmds::apply_gravwell(&gravwell, &cp, cli.json).await,
        Cmd::Demo | Cmd::Dev(_) => Ok(()),
    }
}
