//! `tribctl`: operate a Tributary cluster.

mod catalog_cmds;
mod client;
mod cluster_cmds;
mod demo;
mod output;
mod stream_args;

use catalog_cmds::{Crud, PolicyArgs, StreamArgs, TargetArgs, WellArgs};
use clap::{Parser, Subcommand};

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
    Well(Crud<WellArgs>),
    /// Ditto targets: other clusters' ingest endpoints.
    #[command(subcommand)]
    Target(Crud<TargetArgs>),
    /// Streams: sequence-numbered messages, mirrors and sources.
    #[command(subcommand)]
    Stream(Crud<StreamArgs>),
    /// Policies: who may do what to which resource.
    #[command(subcommand)]
    Policy(Crud<PolicyArgs>),
    /// Run the showcase in-process on an embedded default.
    Demo,
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
    if matches!(cli.cmd, Cmd::Demo) {
        return demo::run(cli.json).await;
    }
    let cp = client::ControlPlane::new(&cli.server)?;
    match cli.cmd {
        Cmd::Cluster(c) => cluster_cmds::run(c, &cp, cli.json).await,
        Cmd::Well(c) => catalog_cmds::run(c, &cp, cli.json).await,
        Cmd::Target(c) => catalog_cmds::run(c, &cp, cli.json).await,
        Cmd::Stream(c) => catalog_cmds::run(c, &cp, cli.json).await,
        Cmd::Policy(c) => catalog_cmds::run(c, &cp, cli.json).await,
        Cmd::Demo => Ok(()),
    }
}
