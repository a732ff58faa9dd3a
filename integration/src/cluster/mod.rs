//! One cluster harness (as TiKV's `test_raftstore` Cluster): N control-plane members and M data
//! nodes of one named cluster, each in this process or as its real binary, every
//! server-to-server link through the [`Net`] fault layer (or direct, for benchmarks), with
//! kill and restart of any server. Several clusters in one test are several `Cluster`s:
//! ditto targets and external mirrors name the other cluster's [`Cluster::endpoint`].
//!
//! ```text
//! let mut c = Cluster::builder("a").members(3).data_nodes(2).start().await?;
//! let leader = c.wait_leader().await?;
//! c.isolate(Server::Member(leader))?;
//! ```

mod calls;
mod lifecycle;
mod process;
mod replicas;
mod waits;

pub use process::{binary, toml_of, ServerProcess};

use crate::net::{LinkId, Mode, Net, Server};
use crate::tls::ClusterTls;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tributary_common::addr_file::BoundAddrs;
use tributary_control_plane::{ControlPlaneConfig, RunningControlPlane};
use tributary_data_node::{DataNodeConfig, RunningDataNode};

/// Every member's `cluster_secret` and every data node's: ditto workers read target secrets.
pub const CLUSTER_SECRET: &str = "cluster-secret";
/// The ingest secret every data node accepts.
pub const INGEST_SECRET: &str = "ingest-secret";
/// What a test client with no credentials is taken for on an `insecure` cluster (an admin).
pub const HARNESS_ANONYMOUS: &str = "harness:anonymous";

/// Changes a member's config before every start, restarts included (`config.id` says which).
pub type MemberTune = Arc<dyn Fn(&mut ControlPlaneConfig) + Send + Sync>;
/// Changes a data node's config before every start, restarts included.
pub type DataNodeTune = Arc<dyn Fn(&mut DataNodeConfig) + Send + Sync>;

/// Where a server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// `start_on` in this process: fast, and its state can be inspected.
    InProcess,
    /// The real binary, which a kill stops with SIGKILL.
    Process,
}

enum Handle<T> {
    InProcess(T),
    Process(ServerProcess),
}

struct Slot<T> {
    run: Run,
    handle: Option<Handle<T>>,
    /// What it bound when it last started.
    addrs: Option<BoundAddrs>,
}

impl<T> Slot<T> {
    fn new(run: Run) -> Self {
        Slot {
            run,
            handle: None,
            addrs: None,
        }
    }
}

pub struct Builder {
    name: String,
    members: u64,
    data_nodes: u64,
    member_run: Run,
    data_node_run: Run,
    direct: bool,
    insecure: bool,
    tune_member: MemberTune,
    tune_data_node: DataNodeTune,
}

impl Builder {
    /// Cleartext everywhere (`insecure = true`), as the demo and `tribctl dev` run; by
    /// default every server speaks TLS with certificates from the cluster's own CA.
    pub fn insecure(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Control-plane voters (1, 3 or 5; 0 for standalone data nodes). Default 1.
    pub fn members(mut self, n: u64) -> Self {
        self.members = n;
        self
    }

    /// Data nodes, ids 1..=n. Default 1.
    pub fn data_nodes(mut self, n: u64) -> Self {
        self.data_nodes = n;
        self
    }

    /// Members run as `tributary-control-plane` processes.
    pub fn member_processes(mut self) -> Self {
        self.member_run = Run::Process;
        self
    }

    /// Data nodes run as `tributary-data-node` processes.
    pub fn data_node_processes(mut self) -> Self {
        self.data_node_run = Run::Process;
        self
    }

    /// Servers reach each other directly, with no proxy in between: what benchmarks measure.
    /// No faults can be injected, and members cannot restart (their peers know the old port).
    pub fn direct(mut self) -> Self {
        self.direct = true;
        self
    }

    pub fn tune_members(
        mut self,
        f: impl Fn(&mut ControlPlaneConfig) + Send + Sync + 'static,
    ) -> Self {
        self.tune_member = Arc::new(f);
        self
    }

    pub fn tune_data_nodes(
        mut self,
        f: impl Fn(&mut DataNodeConfig) + Send + Sync + 'static,
    ) -> Self {
        self.tune_data_node = Arc::new(f);
        self
    }

    /// Starts every member, then every data node, and waits until each data node is
    /// registered with the control plane.
    pub async fn start(self) -> Result<Cluster> {
        if self.direct && self.member_run == Run::Process && self.members > 1 {
            bail!("direct links need in-process members: a member process's port is known only once it runs, after its peers needed it");
        }
        let voters: Vec<u64> = (1..=self.members).collect();
        let dir = tempfile::tempdir()?;
        let tls = match self.insecure {
            true => None,
            false => Some(ClusterTls::new(&dir.path().join("tls"), &self.name)?),
        };
        let mut c = Cluster {
            name: self.name,
            tls,
            dir,
            net: Net::default(),
            direct: self.direct,
            voters: voters.clone(),
            members: BTreeMap::new(),
            data_nodes: BTreeMap::new(),
            tune_member: self.tune_member,
            tune_data_node: self.tune_data_node,
        };
        // In-process members bind first, so every address is known before any member starts.
        let mut listeners = BTreeMap::new();
        for id in &voters {
            let mut slot = Slot::new(self.member_run);
            if self.member_run == Run::InProcess {
                let l = TcpListener::bind("127.0.0.1:0").await?;
                slot.addrs = Some(bound(l.local_addr()?));
                listeners.insert(*id, l);
            }
            c.members.insert(*id, slot);
        }
        if !c.direct {
            for i in &voters {
                for j in voters.iter().filter(|j| *j != i) {
                    // Upstream set once j runs and its peer listener is known.
                    c.net.link(LinkId::raft(*i, *j), None).await?;
                }
            }
            for j in &voters {
                let up = c.members[j].addrs.as_ref().map(|a| a.grpc);
                let a = c.net.link(LinkId::into(Server::Member(*j)), up).await?;
                c.register_client(&a.to_string());
            }
        }
        for id in &voters {
            c.start_member(*id, listeners.remove(id)).await?;
        }
        c.wait_first_policy().await?;
        for k in 1..=self.data_nodes {
            c.data_nodes.insert(k, Slot::new(self.data_node_run));
            c.start_data_node(k).await?;
        }
        if !c.members.is_empty() {
            for k in 1..=self.data_nodes {
                c.wait_registered(k).await?;
            }
        }
        Ok(c)
    }
}

fn bound(grpc: SocketAddr) -> BoundAddrs {
    BoundAddrs {
        grpc,
        admin: None,
        peer: None,
    }
}

/// One cluster's servers, their storage (a temp dir) and the links between them.
pub struct Cluster {
    name: String,
    /// The cluster's CA and certificates; None: cleartext (`insecure`).
    tls: Option<ClusterTls>,
    dir: TempDir,
    net: Net,
    direct: bool,
    /// The initial voters, as every member's `peers` lists them.
    voters: Vec<u64>,
    members: BTreeMap<u64, Slot<RunningControlPlane>>,
    data_nodes: BTreeMap<u64, Slot<RunningDataNode>>,
    tune_member: MemberTune,
    tune_data_node: DataNodeTune,
}

impl Cluster {
    /// One member and one data node, in-process, links proxied; change with the builder.
    pub fn builder(name: &str) -> Builder {
        Builder {
            name: name.to_string(),
            members: 1,
            data_nodes: 1,
            member_run: Run::InProcess,
            data_node_run: Run::InProcess,
            direct: false,
            insecure: false,
            tune_member: Arc::new(|_| {}),
            tune_data_node: Arc::new(|_| {}),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cluster's CA and certificates (None: it runs `insecure`).
    pub fn tls(&self) -> Option<&ClusterTls> {
        self.tls.as_ref()
    }

    /// The CA PEM other clusters trust for this one (empty when insecure).
    pub fn ca_pem(&self) -> String {
        self.tls
            .as_ref()
            .map_or_else(String::new, |t| t.ca_pem().to_string())
    }

    /// Test clients of `addr` (a server of this cluster, or a link in front of one) speak
    /// TLS with the test client's certificate when the cluster does.
    pub(super) fn register_client(&self, addr: &str) {
        if let Some(t) = &self.tls {
            crate::tls::register(addr, &t.client());
        }
    }

    /// Where the servers keep their storage, configs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    /// Every member id, running or not.
    pub fn member_ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    pub fn running_members(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|(_, s)| s.handle.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn data_node_ids(&self) -> Vec<u64> {
        self.data_nodes.keys().copied().collect()
    }

    /// An in-process member's handle (its Raft node and catalogue).
    pub fn member(&self, id: u64) -> Result<&RunningControlPlane> {
        match self.members.get(&id).and_then(|s| s.handle.as_ref()) {
            Some(Handle::InProcess(m)) => Ok(m),
            Some(Handle::Process(_)) => bail!("member {id} is a process"),
            None => bail!("member {id} is not running"),
        }
    }

    /// An in-process data node's handle (its node state and storage).
    pub fn data_node(&self, k: u64) -> Result<&RunningDataNode> {
        match self.data_nodes.get(&k).and_then(|s| s.handle.as_ref()) {
            Some(Handle::InProcess(n)) => Ok(n),
            Some(Handle::Process(_)) => bail!("data node {k} is a process"),
            None => bail!("data node {k} is not running"),
        }
    }

    fn last_addrs(&self, s: Server) -> Result<&BoundAddrs> {
        let addrs = match s {
            Server::Member(id) => self.members.get(&id).and_then(|s| s.addrs.as_ref()),
            Server::DataNode(k) => self.data_nodes.get(&k).and_then(|s| s.addrs.as_ref()),
        };
        addrs.ok_or_else(|| anyhow!("{s:?} never started"))
    }

    /// What a running server bound (gRPC, admin, TLS), for clients in the test.
    pub fn addrs(&self, s: Server) -> Result<&BoundAddrs> {
        let running = match s {
            Server::Member(id) => self.members.get(&id).is_some_and(|s| s.handle.is_some()),
            Server::DataNode(k) => self.data_nodes.get(&k).is_some_and(|s| s.handle.is_some()),
        };
        if !running {
            bail!("{s:?} is not running");
        }
        self.last_addrs(s)
    }

    /// A running member's own gRPC address (clients in tests talk to servers directly).
    pub fn cp_addr(&self, id: u64) -> Result<String> {
        Ok(self.addrs(Server::Member(id))?.grpc.to_string())
    }

    /// Every running member's address, comma-separated (`tribctl --server`, `external`).
    pub fn cp_addrs(&self) -> String {
        self.running_members()
            .iter()
            .filter_map(|id| self.cp_addr(*id).ok())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A running data node's own gRPC address.
    pub fn data_addr(&self, k: u64) -> Result<String> {
        Ok(self.addrs(Server::DataNode(k))?.grpc.to_string())
    }

    /// The address other servers reach data node `k` at (another cluster's ditto target
    /// endpoints, say): the link in front of it, or the node itself with direct links.
    pub fn endpoint(&self, k: u64) -> Result<String> {
        if self.direct || self.members.is_empty() {
            return self.data_addr(k);
        }
        Ok(self
            .net
            .addr(LinkId::into(Server::DataNode(k)))?
            .to_string())
    }

    fn proxied(&self) -> Result<&Net> {
        if self.direct {
            bail!(
                "cluster {} has direct links: no faults can be injected",
                self.name
            );
        }
        Ok(&self.net)
    }

    /// Cuts every link between a server of `a` and one of `b`, both ways.
    pub fn partition(&self, a: &[Server], b: &[Server]) -> Result<()> {
        self.proxied()?.partition(a, b);
        Ok(())
    }

    /// Cuts every link to and from `s`.
    pub fn isolate(&self, s: Server) -> Result<()> {
        self.proxied()?.isolate(s);
        Ok(())
    }

    pub fn heal_all(&self) -> Result<()> {
        self.proxied()?.heal_all();
        Ok(())
    }

    pub fn set_link(&self, id: LinkId, mode: Mode) -> Result<()> {
        self.proxied()?.set(id, mode)
    }

    /// Every link into `s` (from every caller) gets `mode`.
    pub fn set_links_into(&self, s: Server, mode: Mode) -> Result<()> {
        self.proxied()?.set_into(s, mode);
        Ok(())
    }
}
