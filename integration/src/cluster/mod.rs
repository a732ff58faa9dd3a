//! One cluster harness (as TiKV's `test_raftstore` Cluster): N control-plane members and M data
//! nodes of one named cluster, each in this process or as its real binary, every
//! server-to-server link through the [`Net`] fault layer (or direct, for benchmarks), with
//! kill and restart of any server. Several clusters in one test are several `Cluster`s:
//! ditto targets and external mirrors name the other cluster's [`Cluster::endpoint`].
//!
//! ```ignore
//! let mut c = Cluster::builder("a").members(3).data_nodes(2).start().await?;
//! let leader = c.wait_leader().await?;
//! c.isolate(Server::Member(leader))?;
//! ```

mod calls;
mod process;
mod waits;

pub use process::{binary, toml_of, ServerProcess};

use crate::net::{LinkId, Mode, Net, Server};
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tributary_common::addr_file::BoundAddrs;
use tributary_control_plane::{ControlPlaneConfig, Faults, RunningControlPlane};
use tributary_data_node::{DataNodeConfig, RunningDataNode};

/// Every member's `cluster_secret` and every data node's: ditto workers read target secrets.
pub const CLUSTER_SECRET: &str = "cluster-secret";
/// The ingest secret every data node accepts.
pub const INGEST_SECRET: &str = "ingest-secret";

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
    tune_member: MemberTune,
    tune_data_node: DataNodeTune,
}

impl Builder {
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
        let mut c = Cluster {
            name: self.name,
            dir: tempfile::tempdir()?,
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
                    let up = c.members[j].addrs.as_ref().map(|a| a.grpc);
                    c.net.link(LinkId::raft(*i, *j), up).await?;
                }
            }
        }
        for id in &voters {
            c.start_member(*id, listeners.remove(id)).await?;
        }
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
        tls: None,
    }
}

/// One cluster's servers, their storage (a temp dir) and the links between them.
pub struct Cluster {
    name: String,
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
            tune_member: Arc::new(|_| {}),
            tune_data_node: Arc::new(|_| {}),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the servers keep their storage, configs and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn net(&self) -> &Net {
        &self.net
    }

    fn member_config(&self, id: u64, listen: &str) -> Result<ControlPlaneConfig> {
        let solo = self.voters.len() <= 1 && self.voters.contains(&id);
        let mut peers = Vec::new();
        for j in self.voters.iter().filter(|_| !solo) {
            let a = if *j == id {
                listen.to_string()
            } else if self.direct {
                self.last_addrs(Server::Member(*j))?.grpc.to_string()
            } else {
                self.net.addr(LinkId::raft(id, *j))?.to_string()
            };
            peers.push(format!("{j}={a}"));
        }
        let mut config = ControlPlaneConfig {
            id,
            listen: listen.to_string(),
            peers: peers.join(","),
            data_dir: self.dir.path().join(format!("cp-{id}")),
            admin_listen: String::new(),
            request_timeout_ms: 3_000,
            cluster_secret: CLUSTER_SECRET.into(),
            ..Default::default()
        };
        (self.tune_member)(&mut config);
        Ok(config)
    }

    /// Starts member `id` from its data dir: on `listener` if given, else on a new port.
    async fn start_member(&mut self, id: u64, listener: Option<TcpListener>) -> Result<()> {
        let slot = self
            .members
            .get(&id)
            .ok_or_else(|| anyhow!("no member {id}"))?;
        if slot.handle.is_some() {
            bail!("member {id} is running");
        }
        let run = slot.run;
        let (handle, addrs) = match run {
            Run::InProcess => {
                let l = match listener {
                    Some(l) => l,
                    None if self.direct && self.voters.len() > 1 && self.voters.contains(&id) => {
                        bail!("member {id} cannot restart with direct links: its peers know only its old port")
                    }
                    None => TcpListener::bind("127.0.0.1:0").await?,
                };
                let config = self.member_config(id, &l.local_addr()?.to_string())?;
                let m = tributary_control_plane::start_on(config, l, Faults::default()).await?;
                let addrs = BoundAddrs {
                    grpc: m.addr,
                    admin: m.admin_addr,
                    tls: m.tls_addr,
                };
                (Handle::InProcess(m), addrs)
            }
            Run::Process => {
                let config = self.member_config(id, "127.0.0.1:0")?;
                let p = process::spawn(
                    "tributary-control-plane",
                    &config,
                    self.dir.path(),
                    &format!("cp-{id}"),
                )
                .await?;
                let addrs = p.addrs.clone();
                (Handle::Process(p), addrs)
            }
        };
        self.net.set_upstream(Server::Member(id), Some(addrs.grpc));
        if let Some(slot) = self.members.get_mut(&id) {
            slot.handle = Some(handle);
            slot.addrs = Some(addrs);
        }
        Ok(())
    }

    async fn data_node_config(&self, k: u64) -> Result<DataNodeConfig> {
        let proxied = !self.direct && !self.members.is_empty();
        let mut control_plane = Vec::new();
        for m in self.members.keys() {
            let up = self.members[m].addrs.as_ref().map(|a| a.grpc);
            let a = if proxied {
                Some(self.net.link(LinkId::to_member(k, *m), up).await?)
            } else {
                up
            };
            control_plane.extend(a.map(|a| a.to_string()));
        }
        let advertise = if proxied {
            let up = self
                .data_nodes
                .get(&k)
                .and_then(|s| s.addrs.as_ref())
                .map(|a| a.grpc);
            let into = LinkId::into(Server::DataNode(k));
            self.net.link(into, up).await?.to_string()
        } else {
            String::new()
        };
        let mut config = DataNodeConfig {
            id: k,
            listen: "127.0.0.1:0".into(),
            advertise,
            control_plane: control_plane.join(","),
            data_dir: self.dir.path().join(format!("dn-{k}")),
            admin_listen: String::new(),
            ingest_secrets: vec![INGEST_SECRET.into()],
            cluster_secret: CLUSTER_SECRET.into(),
            heartbeat_interval_ms: 200,
            ditto_stats_interval_ms: 1_000,
            ..Default::default()
        };
        (self.tune_data_node)(&mut config);
        Ok(config)
    }

    async fn start_data_node(&mut self, k: u64) -> Result<()> {
        let slot = self
            .data_nodes
            .get(&k)
            .ok_or_else(|| anyhow!("no data node {k}"))?;
        if slot.handle.is_some() {
            bail!("data node {k} is running");
        }
        let run = slot.run;
        let mut config = self.data_node_config(k).await?;
        let (handle, addrs) = match run {
            Run::InProcess => {
                let l = TcpListener::bind("127.0.0.1:0").await?;
                config.listen = l.local_addr()?.to_string();
                let n = tributary_data_node::start_on(config, l).await?;
                let addrs = BoundAddrs {
                    grpc: n.addr,
                    admin: n.admin_addr,
                    tls: None,
                };
                (Handle::InProcess(n), addrs)
            }
            Run::Process => {
                let p = process::spawn(
                    "tributary-data-node",
                    &config,
                    self.dir.path(),
                    &format!("dn-{k}"),
                )
                .await?;
                let addrs = p.addrs.clone();
                (Handle::Process(p), addrs)
            }
        };
        self.net.set_upstream(Server::DataNode(k), Some(addrs.grpc));
        if let Some(slot) = self.data_nodes.get_mut(&k) {
            slot.handle = Some(handle);
            slot.addrs = Some(addrs);
        }
        Ok(())
    }

    /// Starts a stopped server again from its storage (on a new port; its links follow).
    pub async fn start(&mut self, s: Server) -> Result<()> {
        match s {
            Server::Member(id) => self.start_member(id, None).await,
            Server::DataNode(k) => self.start_data_node(k).await,
        }
    }

    /// Stops a server: SIGKILL for a process, an in-process shutdown otherwise (its Raft
    /// thread, servers and tasks stop; nothing is flushed that a crash would not). Its
    /// storage stays; links into it close new connections until it starts again.
    pub async fn kill(&mut self, s: Server) -> Result<()> {
        self.net.set_upstream(s, None);
        match s {
            Server::Member(id) => {
                let slot = self
                    .members
                    .get_mut(&id)
                    .ok_or_else(|| anyhow!("no member {id}"))?;
                match slot.handle.take() {
                    Some(Handle::InProcess(m)) => m.shutdown().await,
                    Some(Handle::Process(p)) => drop(p),
                    None => {}
                }
            }
            Server::DataNode(k) => {
                let slot = self
                    .data_nodes
                    .get_mut(&k)
                    .ok_or_else(|| anyhow!("no data node {k}"))?;
                match slot.handle.take() {
                    Some(Handle::InProcess(n)) => n.shutdown().await,
                    Some(Handle::Process(p)) => drop(p),
                    None => {}
                }
            }
        }
        Ok(())
    }

    pub async fn restart(&mut self, s: Server) -> Result<()> {
        self.kill(s).await?;
        self.start(s).await
    }

    /// Starts member `id`, new and empty, knowing the voters but not one itself; returns the
    /// address to give `Cluster.AddMember` (the link every member then reaches it through).
    pub async fn start_joiner(&mut self, id: u64) -> Result<String> {
        if self.members.contains_key(&id) {
            bail!("member {id} exists");
        }
        let run = self
            .members
            .values()
            .next()
            .map_or(Run::InProcess, |s| s.run);
        self.members.insert(id, Slot::new(run));
        if !self.direct {
            for j in self.voters.clone() {
                let up = self.members[&j].addrs.as_ref().map(|a| a.grpc);
                self.net.link(LinkId::raft(id, j), up).await?;
            }
        }
        self.start_member(id, None).await?;
        let grpc = self.last_addrs(Server::Member(id))?.grpc;
        if self.direct {
            return Ok(grpc.to_string());
        }
        let into = LinkId::into(Server::Member(id));
        Ok(self.net.link(into, Some(grpc)).await?.to_string())
    }

    /// Stops every server.
    pub async fn shutdown(mut self) {
        let servers: Vec<Server> = self
            .data_nodes
            .keys()
            .map(|k| Server::DataNode(*k))
            .chain(self.members.keys().map(|m| Server::Member(*m)))
            .collect();
        for s in servers {
            let _ = self.kill(s).await;
        }
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
