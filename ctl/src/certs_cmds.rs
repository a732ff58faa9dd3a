//! `tribctl certs init|add`: a cluster's CA and the certificates its members (`member-N`),
//! data nodes (`data-node-N`) and clients (`tls:NAME`) show, made by `common::certs` (rcgen).

use crate::output;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use tributary_common::certs::{self, Ca};

/// The CA's files in the directory.
const CA: &str = "ca";

#[derive(Subcommand)]
pub enum CertsCmd {
    /// A new cluster CA, and certificates for members, data nodes and clients.
    Init(InitArgs),
    /// More certificates, signed by the CA already in --dir (a new client, a new member).
    Add(AddArgs),
}

#[derive(Args)]
pub struct InitArgs {
    /// Where the PEM files go (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Member certificates member-1 … member-N.
    #[arg(long, default_value_t = 3)]
    members: u64,
    /// Data node certificates data-node-1 … data-node-N.
    #[arg(long, default_value_t = 3)]
    data_nodes: u64,
    /// Client certificates: NAME is the CN, the subject `tls:NAME` (repeat or comma-separate).
    #[arg(long = "client", value_delimiter = ',', default_value = "admin")]
    clients: Vec<String>,
    /// Host names or IP addresses the servers are reached at, besides localhost and
    /// 127.0.0.1 (repeat or comma-separate).
    #[arg(long = "host", value_delimiter = ',')]
    hosts: Vec<String>,
    /// Replace a CA already in --dir (every certificate it signed stops being trusted).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct AddArgs {
    /// The directory of `tribctl certs init` (its ca.pem and ca-key.pem sign).
    #[arg(long)]
    dir: PathBuf,
    /// A member certificate member-N (repeatable).
    #[arg(long = "member", value_delimiter = ',')]
    members: Vec<u64>,
    /// A data node certificate data-node-N (repeatable).
    #[arg(long = "data-node", value_delimiter = ',')]
    data_nodes: Vec<u64>,
    /// A client certificate, subject `tls:NAME` (repeatable).
    #[arg(long = "client", value_delimiter = ',')]
    clients: Vec<String>,
    /// Host names or IP addresses, besides localhost and 127.0.0.1.
    #[arg(long = "host", value_delimiter = ',')]
    hosts: Vec<String>,
}

/// Who a certificate is for.
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Role {
    Member,
    DataNode,
    Client,
}

/// One certificate written.
#[derive(serde::Serialize)]
struct Issued {
    role: Role,
    name: String,
    /// What the servers take its holder for.
    subject: String,
    cert: PathBuf,
    key: PathBuf,
}

pub fn run(cmd: CertsCmd, json: bool) -> Result<()> {
    match cmd {
        CertsCmd::Init(a) => init(a, json),
        CertsCmd::Add(a) => add(a, json),
    }
}

fn init(a: InitArgs, json: bool) -> Result<()> {
    if a.members > 1000 || a.data_nodes > 1000 {
        bail!("--members/--data-nodes: at most 1000 each");
    }
    let names = Names::check(
        (1..=a.members).collect(),
        (1..=a.data_nodes).collect(),
        &a.clients,
        &a.hosts,
    )?;
    let (ca_cert, ca_key) = (a.dir.join("ca.pem"), a.dir.join("ca-key.pem"));
    if !a.force {
        if let Some(p) = [&ca_cert, &ca_key].into_iter().find(|p| p.exists()) {
            bail!(
                "{} exists: refusing to replace the cluster CA (every certificate it signed would \
                 stop being trusted). `tribctl certs add --dir {}` signs more with it; --force \
                 makes a new one",
                p.display(),
                a.dir.display()
            );
        }
    }
    let ca = Ca::new("Tributary cluster CA")?;
    certs::write(&a.dir, CA, &ca.pem).with_context(|| format!("--dir {}", a.dir.display()))?;
    let issued = names.issue(&ca, &a.dir)?;
    report(&a.dir, &issued, true, json)
}

fn add(a: AddArgs, json: bool) -> Result<()> {
    let names = Names::check(a.members, a.data_nodes, &a.clients, &a.hosts)?;
    if names.is_empty() {
        bail!("nothing to add: give --member, --data-node or --client");
    }
    let ca = Ca::load(&a.dir.join("ca.pem"), &a.dir.join("ca-key.pem")).with_context(|| {
        format!(
            "--dir {}: no CA to sign with (`tribctl certs init` makes one)",
            a.dir.display()
        )
    })?;
    let issued = names.issue(&ca, &a.dir)?;
    report(&a.dir, &issued, false, json)
}

/// The certificates to make, checked.
struct Names {
    members: Vec<u64>,
    data_nodes: Vec<u64>,
    clients: Vec<String>,
    /// Every certificate's SANs.
    hosts: Vec<String>,
}

impl Names {
    fn check(
        members: Vec<u64>,
        data_nodes: Vec<u64>,
        clients: &[String],
        hosts: &[String],
    ) -> Result<Names> {
        if let Some(0) = members.iter().chain(&data_nodes).find(|id| **id == 0) {
            bail!("--member/--data-node: ids start at 1");
        }
        let mut clients_ok: Vec<String> = Vec::new();
        for c in clients.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
            check_client(c)?;
            if !clients_ok.iter().any(|x| x == c) {
                clients_ok.push(c.to_string());
            }
        }
        let mut all_hosts: Vec<String> = Vec::new();
        let given = hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty());
        for h in given.chain(["localhost", "127.0.0.1"]) {
            check_host(h)?;
            if !all_hosts.iter().any(|x| x == h) {
                all_hosts.push(h.to_string());
            }
        }
        Ok(Names {
            members,
            data_nodes,
            clients: clients_ok,
            hosts: all_hosts,
        })
    }

    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.data_nodes.is_empty() && self.clients.is_empty()
    }

    fn issue(&self, ca: &Ca, dir: &Path) -> Result<Vec<Issued>> {
        let wanted = self
            .members
            .iter()
            .map(|id| (Role::Member, certs::member_name(*id)))
            .chain(
                self.data_nodes
                    .iter()
                    .map(|id| (Role::DataNode, certs::data_node_name(*id))),
            )
            .chain(self.clients.iter().map(|c| (Role::Client, c.clone())));
        let mut out = Vec::new();
        for (role, name) in wanted {
            let pem = ca
                .sign(&name, &self.hosts)
                .with_context(|| format!("certificate {name}"))?;
            certs::write(dir, &name, &pem).with_context(|| format!("--dir {}", dir.display()))?;
            out.push(Issued {
                role,
                subject: format!("tls:{name}"),
                cert: absolute(&dir.join(format!("{name}.pem"))),
                key: absolute(&dir.join(format!("{name}-key.pem"))),
                name,
            });
        }
        Ok(out)
    }
}

/// A client name becomes a CN and a DNS name: letters, digits, `.`, `_`, `-`. Names of the
/// cluster's own parts are refused, since their holder would be taken for that member or node.
fn check_client(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok_chars || name.is_empty() || name.len() > 64 || name.starts_with(['.', '-']) {
        bail!(
            "--client {name:?}: want up to 64 letters, digits, '.', '_' or '-' (the certificate's \
             CN; the subject is tls:NAME)"
        );
    }
    if certs::member_id(name).is_some() || certs::data_node_id(name).is_some() {
        bail!("--client {name:?}: that is a member's or data node's name, not a client's");
    }
    if name == CA {
        bail!("--client {name:?}: the CA's files are named so");
    }
    Ok(())
}

fn check_host(h: &str) -> Result<()> {
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if !ok {
        bail!("--host {h:?}: not a host name or an IP address");
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Prints what went where; `init` also says how to make its first client the admin.
fn report(dir: &Path, issued: &[Issued], init: bool, json: bool) -> Result<()> {
    let (ca_cert, ca_key) = (
        absolute(&dir.join("ca.pem")),
        absolute(&dir.join("ca-key.pem")),
    );
    let server_flags = |i: &Issued| {
        format!(
            "--tls-cert {} --tls-key {} --tls-ca {}",
            i.cert.display(),
            i.key.display(),
            ca_cert.display()
        )
    };
    if json {
        let certs: Vec<serde_json::Value> = issued
            .iter()
            .map(|i| {
                let mut v = serde_json::json!(i);
                if i.role != Role::Client {
                    v["flags"] = server_flags(i).into();
                }
                v
            })
            .collect();
        return output::json(&serde_json::json!({
            "ca": { "cert": ca_cert, "key": ca_key },
            "certificates": certs,
        }));
    }
    let mut rows = vec![vec![
        "CA".to_string(),
        "-".to_string(),
        ca_cert.display().to_string(),
        format!("{} (keep it offline)", ca_key.display()),
    ]];
    rows.extend(issued.iter().map(|i| {
        vec![
            i.name.clone(),
            i.subject.clone(),
            i.cert.display().to_string(),
            i.key.display().to_string(),
        ]
    }));
    println!(
        "{}",
        output::table(&["certificate", "subject", "file", "key (0600)"], rows)
    );
    let servers: Vec<&Issued> = issued.iter().filter(|i| i.role != Role::Client).collect();
    if !servers.is_empty() {
        println!("\nServer flags:");
        for i in servers {
            let who = match i.role {
                Role::Member => "tributary-control-plane",
                _ => "tributary-data-node",
            };
            println!("  {who} ({}): {}", i.name, server_flags(i));
        }
    }
    let clients: Vec<&Issued> = issued.iter().filter(|i| i.role == Role::Client).collect();
    if let Some(first) = clients.first() {
        if init {
            println!(
                "\nGive the servers --admin-subject {}: that client then holds READ, WRITE and \
                 ADMIN on everything.",
                first.subject
            );
        }
        println!("\ntribctl as {}:", first.name);
        println!(
            "  export TRIBUTARY_CA={} TRIBUTARY_CERT={} TRIBUTARY_KEY={}",
            ca_cert.display(),
            first.cert.display(),
            first.key.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_that_would_pose_as_the_cluster_are_refused() {
        assert!(check_client("admin").is_ok());
        assert!(check_client("ops.team_1").is_ok());
        for bad in [
            "member-1",
            "data-node-2",
            "ca",
            "a b",
            "-x",
            "tls:admin",
            "",
        ] {
            assert!(check_client(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_host("db-1.example.org").is_ok());
        assert!(check_host("10.0.0.7").is_ok());
        assert!(check_host("::1").is_ok());
        assert!(check_host("a..b").is_err());
        assert!(check_host("a b").is_err());
    }
}
