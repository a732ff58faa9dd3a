//! One control-plane member as its real binary, so that what an attack costs is the memory
//! (`VmRSS`) and disk of that process alone, read from /proc and its data dir.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;
use tonic::transport::Channel;
use tributary_common::addr_file::BoundAddrs;
use tributary_integration::{cluster::binary, wait};
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, StatusRequest,
};

/// What a caller with no credentials is taken for: an admin of the cluster.
pub const ANONYMOUS: &str = "test:anonymous";
/// The cluster token (`cluster_secret`): a data node's credentials on an insecure cluster.
pub const CLUSTER_TOKEN: &str = "hostile-cluster";

/// `msg` as a data node of the cluster sends it.
pub fn as_node<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        tributary_common::grpc::CLUSTER_TOKEN_HEADER,
        tonic::metadata::MetadataValue::from_static(CLUSTER_TOKEN),
    );
    req
}

pub struct Member {
    child: Child,
    pub addr: String,
    admin: std::net::SocketAddr,
    dir: TempDir,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Member {
    /// A one-member control plane on 127.0.0.1 with `env` (`TRIBUTARY_LIMITS__…`) set,
    /// started, serving and leading.
    pub async fn start(env: &[(&str, String)]) -> Result<Member> {
        let dir = tempfile::tempdir()?;
        let addr_file = dir.path().join("addr.json");
        let log = std::fs::File::create(dir.path().join("member.log"))?;
        let mut cmd = Command::new(binary("tributary-control-plane")?);
        cmd.args(["--id", "1", "--listen", "127.0.0.1:0"])
            .args(["--admin-listen", "127.0.0.1:0", "--insecure"])
            // The attacks come from callers who got in (an admin, a data node of the cluster):
            // what they can make a member hold is bounded all the same.
            .args([
                "--anonymous-subject",
                ANONYMOUS,
                "--admin-subject",
                ANONYMOUS,
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--addr-file")
            .arg(&addr_file)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("TRIBUTARY_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("TRIBUTARY_CLUSTER_SECRET", CLUSTER_TOKEN);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning tributary-control-plane")?;
        let found = wait::until("the member to serve", wait::WAIT, || {
            let exited = child.try_wait();
            let read = BoundAddrs::read(&addr_file);
            async move {
                match (exited, read) {
                    (Ok(Some(status)), _) => Some(Err(anyhow!("member exited: {status}"))),
                    (_, Ok(Some(a))) => Some(Ok(a)),
                    (_, Err(e)) => Some(Err(e.into())),
                    _ => None,
                }
            }
        })
        .await
        .and_then(|r| r);
        let addrs = match found {
            Ok(a) => a,
            Err(e) => {
                let _ = child.kill();
                return Err(e);
            }
        };
        let Some(admin) = addrs.admin else {
            bail!("the member reported no admin address");
        };
        let m = Member {
            child,
            addr: addrs.grpc.to_string(),
            admin,
            dir,
        };
        wait::until("the member to lead", wait::WAIT, || {
            let cluster = m.cluster();
            async move {
                let st = cluster.ok()?.status(StatusRequest {}).await.ok()?;
                (st.into_inner().leader == 1).then_some(())
            }
        })
        .await?;
        Ok(m)
    }

    /// A new connection: each watcher of an attack comes on its own, as the probes' did.
    pub fn channel(&self) -> Result<Channel> {
        Ok(tributary_common::grpc::channel(&self.addr)?)
    }

    pub fn catalog(&self) -> Result<CatalogClient<Channel>> {
        Ok(CatalogClient::new(self.channel()?)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    }

    pub fn cluster(&self) -> Result<ClusterClient<Channel>> {
        Ok(ClusterClient::new(self.channel()?).max_encoding_message_size(64 << 20))
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's resident memory, in MiB.
    pub fn rss_mib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", self.child.id()))?;
        Ok(kib / 1024)
    }

    /// The bytes under the member's data dir, in MiB.
    pub fn data_mib(&self) -> Result<u64> {
        Ok(bytes_under(&self.dir.path().join("data"))? >> 20)
    }

    /// The resident memory once it holds still (within 1 MiB over 250 ms, for at most 5 s):
    /// the allocator hands freed pages back a little later.
    pub async fn settled_rss_mib(&self) -> Result<u64> {
        let mut last = self.rss_mib()?;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.rss_mib()?;
            if now.abs_diff(last) <= 1 {
                return Ok(now);
            }
            last = now;
        }
        Ok(last)
    }

    /// A gauge or counter from the member's `/metrics` (0 when it was never set).
    pub async fn metric(&self, name: &str) -> Result<f64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.admin).await?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: member\r\nConnection: close\r\n\r\n")
            .await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok(body
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0))
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("member.log")
    }
}

fn bytes_under(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            bytes_under(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Prints a figure the test measured with its bound, and fails if it is over.
pub fn within(what: &str, figure: u64, bound: u64) -> Result<()> {
    println!("{what}: {figure} (bound {bound})");
    if figure > bound {
        bail!("{what}: {figure} is over the bound of {bound}");
    }
    Ok(())
}
