//! Starting and stopping a cluster's servers: their configs (the one tuning convention: the
//! harness's defaults, then the test's hook, on every start), in-process or as processes, and
//! pointing the links into a server at wherever it bound this time.

use super::{
    process, Cluster, Handle, Run, Slot, CLUSTER_SECRET, HARNESS_ANONYMOUS, INGEST_SECRET,
};
use crate::net::{LinkId, Server};
use anyhow::{anyhow, bail, Result};
use tokio::net::TcpListener;
use tributary_common::addr_file::BoundAddrs;
use tributary_control_plane::ControlPlaneConfig;
use tributary_data_node::DataNodeConfig;

impl Cluster {
    /// Member `id`'s config: each initial voter named by the link in front of its client
    /// port (what leader hints give out), and reached for Raft through the link from `id` to
    /// its peer port (or directly, its peer port learned from it); itself at `listen`.
    pub(super) fn member_config(&self, id: u64, listen: &str) -> Result<ControlPlaneConfig> {
        let solo = self.voters.len() <= 1 && self.voters.contains(&id);
        let mut peers = Vec::new();
        for j in self.voters.iter().filter(|_| !solo) {
            let a = if *j == id {
                listen.to_string()
            } else if self.direct {
                self.last_addrs(Server::Member(*j))?.grpc.to_string()
            } else {
                let client = self.net.addr(LinkId::into(Server::Member(*j)))?;
                let peer = self.net.addr(LinkId::raft(id, *j))?;
                format!("{client}/{peer}")
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
            insecure: self.tls.is_none(),
            peer_listen: "127.0.0.1:0".into(),
            ..Default::default()
        };
        match &self.tls {
            // The test's client certificate administers the cluster.
            Some(t) => {
                config.tls = t.member(id)?;
                config.admin_subjects = vec![format!("tls:{}", crate::tls::CLIENT_NAME)];
            }
            // Cleartext, as `tribctl dev`: whoever reaches the port is the admin.
            None => {
                config.anonymous_subjects = vec![HARNESS_ANONYMOUS.into()];
                config.admin_subjects = vec![HARNESS_ANONYMOUS.into()];
            }
        }
        (self.tune_member)(&mut config);
        Ok(config)
    }

    /// Starts member `id` from its data dir: on `listener` if given, else on a new port.
    pub(super) async fn start_member(
        &mut self,
        id: u64,
        listener: Option<TcpListener>,
    ) -> Result<()> {
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
                let m = tributary_control_plane::start_on(config, l).await?;
                let addrs = BoundAddrs {
                    grpc: m.addr,
                    admin: m.admin_addr,
                    peer: Some(m.peer_addr),
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
        self.net.set_upstream(Server::Member(id), Some(&addrs));
        self.register_client(&addrs.grpc.to_string());
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
            insecure: self.tls.is_none(),
            ..Default::default()
        };
        match &self.tls {
            Some(t) => {
                config.tls = t.data_node(k)?;
                config.admin_subjects = vec![format!("tls:{}", crate::tls::CLIENT_NAME)];
            }
            None => {
                config.anonymous_subjects = vec![HARNESS_ANONYMOUS.into()];
                config.admin_subjects = vec![HARNESS_ANONYMOUS.into()];
            }
        }
        if !config.advertise.is_empty() {
            self.register_client(&config.advertise);
        }
        (self.tune_data_node)(&mut config);
        Ok(config)
    }

    pub(super) async fn start_data_node(&mut self, k: u64) -> Result<()> {
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
                    peer: None,
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
        self.net.set_upstream(Server::DataNode(k), Some(&addrs));
        self.register_client(&addrs.grpc.to_string());
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

    /// Stops a server: SIGKILL for a process (a crash), an orderly shutdown in-process (its
    /// Raft thread, servers and tasks stop). Its storage stays; the links into it close new
    /// connections until it starts again.
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
                let peer = self.members[&j].addrs.as_ref().and_then(|a| a.peer);
                self.net.link(LinkId::raft(id, j), peer).await?;
            }
        }
        self.start_member(id, None).await?;
        let grpc = self.last_addrs(Server::Member(id))?.grpc;
        if self.direct {
            return Ok(grpc.to_string());
        }
        let into = LinkId::into(Server::Member(id));
        let a = self.net.link(into, Some(grpc)).await?.to_string();
        self.register_client(&a);
        Ok(a)
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
}
