//! `tribctl`: operate a Tributary cluster.

// mimalloc: the catalogue and data paths allocate many small buffers per request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod auth_cmds;
mod catalog_cmds;
mod certs_cmds;
mod client;
mod cluster_cmds;
mod connect_args;
mod demo;
mod demo_ditto;
mod dev;
mod devops_cmds;
mod ditto_cmds;
mod failure;
mod jetstream_config;
mod launcher;
mod links;
mod locate;
mod namespace_cmds;
mod output;
mod policy_args;
mod policy_cmds;
mod start_time;
mod stream_args;
mod stream_cluster;
mod stream_data;
mod stream_report;
mod topology_cmd;
mod well_data;
mod well_ingest;

use catalog_cmds::{Crud, TargetArgs, WellArgs};
use clap::{Parser, Subcommand};
use stream_args::StreamArgs;

#[derive(Parser)]
#[command(name = "tribctl", version, about = "Operate a Tributary cluster")]
struct Cli {
    #[command(flatten)]
    connect: connect_args::ConnectArgs,
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
    /// Policies: who may do what to which resource (Eclipse Ditto's model and JSON).
    #[command(subcommand)]
    Policy(policy_cmds::PolicyCmd),
    /// Who the cluster takes you for.
    #[command(subcommand)]
    Auth(auth_cmds::AuthCmd),
    /// A cluster's CA and the certificates of its members, data nodes and clients.
    #[command(subcommand)]
    Certs(certs_cmds::CertsCmd),
    /// Ditto (well mirroring into other clusters): worker stats.
    #[command(subcommand)]
    Ditto(ditto_cmds::DittoCmd),
    /// Every well with its ditto targets and every stream with its mirror and sources: one
    /// graph, each edge with its live lag and last error.
    Topology {
        /// Also write the graph as Graphviz to this file (`dot -Tsvg FILE`).
        #[arg(long)]
        dot: Option<std::path::PathBuf>,
    },
    /// Apply a configuration file to the catalogue.
    Apply {
        /// A Gravwell config (`[Ditto-Target "x"]`, `[Default-Well]`, `[Storage-Well "x"]`).
        #[arg(long)]
        gravwell: std::path::PathBuf,
    },
    /// Eclipse Ditto's devops commands through any member: log levels, config by path,
    /// piggyback commands.
    #[command(subcommand)]
    Devops(devops_cmds::DevopsCmd),
    /// Namespace erasure as Eclipse Ditto's: block, shutdown, purge, unblock (or erase: all).
    #[command(subcommand)]
    Namespace(namespace_cmds::NamespaceCmd),
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
    /// A replicated stream's leader hands leadership to its most current replica (as
    /// `nats stream cluster step-down`).
    StepDown { name: String },
    /// Change the replicas of a live stream, 1 → 3 → 1 (as `nats stream edit --replicas`):
    /// every message is kept.
    Edit {
        name: String,
        #[arg(long)]
        replicas: u32,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let ctx = cli.connect.failure_context();
    if let Err(e) = run(cli).await {
        let (text, code) = failure::report(&e, &ctx);
        if !text.is_empty() {
            eprintln!("{text}");
        }
        std::process::exit(code);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cmd = match cli.cmd {
        Cmd::Demo => return demo::run(cli.json).await,
        Cmd::Dev(d) => return dev::run(d, cli.json).await,
        Cmd::Certs(c) => return certs_cmds::run(c, cli.json),
        other => other,
    };
    let cp = cli.connect.control_plane()?;
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
        Cmd::Stream(StreamCmd::StepDown { name }) => {
            stream_cluster::step_down(name, &cp, cli.json).await
        }
        Cmd::Stream(StreamCmd::Edit { name, replicas }) => {
            stream_cluster::edit(name, replicas, &cp, cli.json).await
        }
        Cmd::Policy(c) => policy_cmds::run(c, &cp, cli.json).await,
        Cmd::Auth(c) => auth_cmds::run(c, &cp, cli.json).await,
        Cmd::Ditto(c) => ditto_cmds::run(c, &cp, cli.json).await,
        Cmd::Topology { dot } => topology_cmd::run(&cp, dot.as_deref(), cli.json).await,
        Cmd::Devops(c) => devops_cmds::run(c, &cp, cli.json).await,
        Cmd::Namespace(c) => namespace_cmds::run(c, &cp, cli.json).await,
        Cmd::Apply { gravwell } => ditto_cmds::apply_gravwell(&gravwell, &cp, cli.json).await,
        Cmd::Demo | Cmd::Dev(_) | Cmd::Certs(_) => Ok(()),
    }
}
