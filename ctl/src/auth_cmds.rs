//! `tribctl auth whoami`: who the cluster takes this tribctl for.

use crate::client::ControlPlane;
use crate::output;
use anyhow::Result;
use clap::Subcommand;
use tributary_proto::v1::WhoAmIRequest;

#[derive(Subcommand)]
pub enum AuthCmd {
    /// The subjects a member resolved from your credentials, and how (`Cluster.WhoAmI`).
    Whoami,
}

pub async fn run(cmd: AuthCmd, cp: &ControlPlane, json: bool) -> Result<()> {
    match cmd {
        AuthCmd::Whoami => whoami(cp, json).await,
    }
}

async fn whoami(cp: &ControlPlane, json: bool) -> Result<()> {
    let r = cp
        .cluster(|mut c| async move { c.who_am_i(WhoAmIRequest {}).await })
        .await?;
    if json {
        return output::json(&serde_json::json!({
            "subjects": r.subjects,
            "method": r.method,
        }));
    }
    let subjects = if r.subjects.is_empty() {
        "(none)".to_string()
    } else {
        r.subjects.join("\n")
    };
    println!(
        "{}",
        output::table(
            &["field", "value"],
            vec![
                vec!["subjects".into(), subjects],
                vec!["method".into(), r.method.clone()],
            ],
        )
    );
    if r.subjects.is_empty() {
        println!(
            "no credentials reached the server: give --cert/--key (with --ca) or --token \
             (or TRIBUTARY_CERT/TRIBUTARY_KEY/TRIBUTARY_TOKEN)"
        );
    }
    Ok(())
}
