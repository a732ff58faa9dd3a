//! `tribctl dev up|status|down`: a local cluster of real server processes on 127.0.0.1, for
//! trying Tributary out and for developing against it. What `up` started is recorded in
//! `DIR/dev.json`, so `status` and `down` work from any shell.

mod args;
mod down;
mod record;
mod status;
mod up;

use args::{DirArg, DownArgs, UpArgs};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum DevCmd {
    /// Start a local cluster of server processes in the background.
    ///
    /// Starts control-plane members and data nodes (the binaries beside tribctl, else on PATH),
    /// waits until a leader is elected and every data node is up, and prints the cluster
    /// status and the TRIBUTARY_SERVER line. Members listen on the base port
    /// and up, data nodes right after them, admin HTTP (/metrics, /health) 1000 above each.
    /// The servers get only the flags planned here: this shell's TRIBUTARY_* variables are not
    /// passed on. The cluster is insecure (cleartext gRPC, no authentication).
    Up(UpArgs),
    /// Each recorded process (running or not, pid, address, log file) and the cluster status.
    Status(DirArg),
    /// Stop the recorded processes, waiting for each to exit.
    ///
    /// SIGTERM, then SIGKILL after --timeout. The data is kept (`up` with the same flags
    /// starts the cluster again) unless --purge.
    Down(DownArgs),
}

pub async fn run(cmd: DevCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        DevCmd::Up(a) => up::run(a, json).await,
        DevCmd::Status(d) => status::run(&d.resolve(), json).await,
        DevCmd::Down(a) => down::run(a, json).await,
    }
}
