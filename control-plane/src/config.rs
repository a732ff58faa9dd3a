//! The control plane's configuration: defaults run one member on loopback with no file.

pub use crate::catalog::Limits;
pub use crate::network::MemberAddrs;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tributary_common::tls::TlsFiles;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlPlaneConfig {
    /// This member's Raft id (1, 2, …).
    pub id: u64,
    /// gRPC address serving clients (Catalog, Cluster): TLS unless `insecure`.
    pub listen: String,
    /// gRPC address serving the other members (Raft and member-to-member calls): mutual TLS
    /// unless `insecure`, and nothing of it is served on `listen`. Empty: `listen`'s host and
    /// any free port (members learn it from each other's client port).
    pub peer_listen: String,
    /// Initial voters, `1=HOST:PORT,2=HOST:PORT,…` naming each member's client address
    /// (`ID=HOST:PORT/PEER_HOST:PEER_PORT` also names its peer address); empty means just
    /// this member. A member whose id is not listed starts empty and waits to be added
    /// (`cluster add-member`).
    pub peers: String,
    pub data_dir: PathBuf,
    /// Admin HTTP (`/metrics`, `/health`, `/ready`, `/devops/…`); empty disables it.
    pub admin_listen: String,
    pub raft: RaftSection,
    /// How long a request waits for a leader or for its write to apply.
    pub request_timeout_ms: u64,
    /// A data node not heard from for this long is down.
    pub heartbeat_timeout_ms: u64,
    /// Shared with the data nodes: requests carrying it (`x-tributary-cluster-token`) read
    /// target secrets unredacted, as ditto workers must. Empty: secrets are never revealed.
    pub cluster_secret: String,
    /// `cluster_secret` from a file (kept out of `ps` and the environment).
    pub cluster_secret_file: String,
    /// Cleartext on every listener and link (the demo and `tribctl dev`): nothing is
    /// encrypted and members do not prove who they are to each other.
    pub insecure: bool,
    /// This member's certificate and key (a server certificate for both listeners and the
    /// client certificate it shows its peers) and the cluster CA every peer's must come from.
    pub tls: TlsFiles,
    /// Names a connecting peer's certificate must carry (CN or DNS name; `*` and `?`
    /// wildcards), as etcd's `--peer-cert-allowed-cn`.
    pub peer_allowed_names: Vec<String>,
    /// How clients authenticate (OIDC providers, pre-authentication, devops credentials):
    /// the keys sit at the top level (`[oidc.NAME]`, `enable_pre_authentication`, …).
    #[serde(flatten)]
    pub auth: tributary_common::auth::AuthConfig,
    /// Subjects with READ, WRITE and ADMIN on `cluster:/` (on everything), whatever the
    /// stored policies say: who administers the cluster from its first start.
    pub admin_subjects: Vec<String>,
    /// Who may create what (Ditto's `entity-creation`; default: anyone authenticated).
    pub entity_creation: tributary_common::policy::EntityCreationConfig,
    /// What a caller with no credentials is taken for; empty (the default): refused. For
    /// local trials only (`tribctl dev` and the demo set it, and say so).
    pub anonymous_subjects: Vec<String>,
    /// The stream secrets the cluster's data nodes take: with one, a caller may find where a
    /// stream is served (`Catalog.Get` of the stream and of its data node), as another
    /// cluster's mirror must before it subscribes with the same secret.
    pub stream_secrets: Vec<String>,
    /// More stream secrets from a file, one per line.
    pub stream_secrets_file: String,
    /// What one client may make a member hold or do; see [`Limits`].
    pub limits: Limits,
    /// Each gRPC listener's limits (`[grpc]`, client and peer listener alike; as on the data
    /// nodes): connections, streams per connection, keepalive, idle and handler timeouts,
    /// metadata size.
    pub grpc: tributary_common::limits::ListenerLimits,
    /// Secrets at rest (`[encryption]`, the same section as the data nodes'): the member
    /// receiving a write seals them before proposing. Give every member and data node the
    /// same keys.
    pub encryption: tributary_common::crypto::EncryptionConfig,
    /// stdout, log files and levels (`[logging]`, `TRIBUTARY_LOGGING_*`).
    pub logging: tributary_common::logging::LoggingConfig,
    /// Spans out by OTLP (`[tracing]`, `TRIBUTARY_TRACING_*`, `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub tracing: tributary_common::logging::TracingConfig,
    /// Background cleanup with Eclipse Ditto's knobs (`[cleanup]`, `TRIBUTARY_CLEANUP__*`): the
    /// watch-event log's revisions older than `history_retention` (default 1 h: a watcher
    /// away longer lists again).
    pub cleanup: tributary_common::cleanup::CleanupConfig,
    /// Replicated streams' replicas on a data node gone for good (`[replicas]`,
    /// `TRIBUTARY_REPLICAS__REPLACE_AFTER`): re-placed after `replace_after`.
    pub replicas: crate::replacement::ReplicasConfig,
}

/// A member's cleanup defaults: Ditto's, keeping an hour of watch history.
pub fn member_cleanup() -> tributary_common::cleanup::CleanupConfig {
    tributary_common::cleanup::CleanupConfig {
        history_retention: std::time::Duration::from_secs(3600),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftSection {
    pub tick_ms: u64,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Compact the log past this many applied entries (laggards then get a snapshot).
    pub snapshot_entries: u64,
    /// Catalogue changes kept for `Watch`; older revisions answer "list again".
    pub max_watch_events: u64,
    /// Compact the log also past this many bytes of applied entries, so big entities
    /// updated often do not grow the data dir with `snapshot_entries` copies of themselves.
    pub snapshot_bytes: u64,
    /// The watch event log also keeps at most this many bytes (the newest revision always).
    pub max_watch_event_bytes: u64,
}

impl Default for ControlPlaneConfig {
    fn default() -> Self {
        Self {
            id: 1,
            listen: "127.0.0.1:7100".into(),
            peers: String::new(),
            data_dir: PathBuf::from("tributary-data/control-plane"),
            admin_listen: "127.0.0.1:9095".into(),
            raft: RaftSection::default(),
            request_timeout_ms: 5_000,
            heartbeat_timeout_ms: 5_000,
            cluster_secret: String::new(),
            cluster_secret_file: String::new(),
            insecure: false,
            peer_listen: String::new(),
            tls: TlsFiles::default(),
            peer_allowed_names: vec!["member-*".into()],
            auth: Default::default(),
            admin_subjects: Vec::new(),
            entity_creation: Default::default(),
            anonymous_subjects: Vec::new(),
            stream_secrets: Vec::new(),
            stream_secrets_file: String::new(),
            limits: Limits::default(),
            grpc: Default::default(),
            encryption: Default::default(),
            logging: Default::default(),
            tracing: Default::default(),
            cleanup: member_cleanup(),
            replicas: Default::default(),
        }
    }
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            tick_ms: 50,
            election_ticks: 10,
            heartbeat_ticks: 2,
            snapshot_entries: 10_000,
            max_watch_events: 100_000,
            snapshot_bytes: 64 << 20,
            max_watch_event_bytes: 64 << 20,
        }
    }
}

impl ControlPlaneConfig {
    /// The initial voters and their addresses; checks ids, addresses and this member's place.
    pub fn peer_map(&self) -> Result<HashMap<u64, MemberAddrs>, String> {
        if self.id == 0 {
            return Err("key `id`: must be 1 or more".into());
        }
        if self.peers.trim().is_empty() {
            let me = MemberAddrs {
                client: self.listen.clone(),
                peer: None,
            };
            return Ok(HashMap::from([(self.id, me)]));
        }
        let mut map = HashMap::new();
        for part in self
            .peers
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (id, addr) = part
                .split_once('=')
                .ok_or_else(|| format!("key `peers`: {part:?} is not ID=HOST:PORT"))?;
            let id: u64 = id
                .parse()
                .map_err(|_| format!("key `peers`: id {id:?} is not a number"))?;
            let addrs = MemberAddrs::parse(addr);
            for a in std::iter::once(&addrs.client).chain(addrs.peer.as_ref()) {
                crate::catalog::validate_endpoint("peers", a)
                    .map_err(|e| format!("key `peers`: {e}"))?;
            }
            if map.insert(id, addrs).is_some() {
                return Err(format!("key `peers`: id {id} appears twice"));
            }
        }
        if ![1, 3, 5].contains(&map.len()) && map.contains_key(&self.id) {
            return Err(format!(
                "key `peers`: {} voters given; use 1, 3 or 5",
                map.len()
            ));
        }
        Ok(map)
    }

    /// TLS is on unless `insecure`, and then needs this member's certificate and the CA.
    /// Reads the `*_file` forms of the secrets into their keys; errors name the key.
    pub fn with_secret_files(mut self) -> Result<Self, String> {
        use tributary_common::secrets::{take_file, take_list_file};
        take_file(
            &mut self.cluster_secret,
            &mut self.cluster_secret_file,
            "cluster_secret",
        )?;
        take_list_file(
            &mut self.stream_secrets,
            &mut self.stream_secrets_file,
            "stream_secrets",
        )?;
        Ok(self)
    }

    pub fn check_tls(&self) -> Result<(), String> {
        if self.insecure {
            return Ok(());
        }
        if !self.tls.has_identity() {
            return Err(
                "key `tls.cert_file`/`tls.key_file`: a member speaks TLS unless \
                        `insecure = true`; give its certificate and key (`tribctl certs` makes \
                        them)"
                    .into(),
            );
        }
        if !self.tls.has_ca() {
            return Err(
                "key `tls.ca_file`: the cluster CA is needed to check the peers' \
                        certificates"
                    .into(),
            );
        }
        Ok(())
    }

    /// The peer listener's address (see `peer_listen`).
    pub fn peer_listen_addr(&self) -> String {
        if !self.peer_listen.is_empty() {
            return self.peer_listen.clone();
        }
        let host = self.listen.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
        format!("{host}:0")
    }

    pub fn node_config(&self) -> crate::node::NodeConfig {
        crate::node::NodeConfig {
            id: self.id,
            tick: Duration::from_millis(self.raft.tick_ms.max(1)),
            election_ticks: self.raft.election_ticks.max(2),
            heartbeat_ticks: self.raft.heartbeat_ticks.max(1),
            snapshot_entries: self.raft.snapshot_entries,
            snapshot_bytes: self.raft.snapshot_bytes.max(1),
            max_watch_event_bytes: self.raft.max_watch_event_bytes.max(1),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            limits: self.limits.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_peers(id: u64, peers: &str) -> Result<HashMap<u64, MemberAddrs>, String> {
        ControlPlaneConfig {
            id,
            peers: peers.into(),
            ..Default::default()
        }
        .peer_map()
    }

    #[test]
    fn peers_are_checked_with_the_key_named() {
        assert_eq!(with_peers(1, "").map(|m| m.len()), Ok(1));
        assert_eq!(with_peers(2, "1=a:1,2=b:2,3=c:3").map(|m| m.len()), Ok(3));
        for (peers, needle) in [
            ("1=a:1,2=b:2", "use 1, 3 or 5"),
            ("1=a:1,x=b:2,3=c:3", "not a number"),
            ("1=a:1,1=b:2,3=c:3", "appears twice"),
            ("1=a,2=b:2,3=c:3", "HOST:PORT"),
            ("1a:1", "ID=HOST:PORT"),
        ] {
            let err = with_peers(1, peers).expect_err(peers);
            assert!(
                err.contains("`peers`") && err.contains(needle),
                "{peers}: {err}"
            );
        }
        assert!(with_peers(0, "").expect_err("id 0").contains("`id`"));
    }

    #[test]
    fn tls_is_on_unless_insecure_and_needs_a_certificate_and_the_ca() {
        let mut c = ControlPlaneConfig::default();
        assert!(c
            .check_tls()
            .expect_err("no cert")
            .contains("tls.cert_file"));
        c.tls.cert_file = "m.pem".into();
        c.tls.key_file = "m-key.pem".into();
        assert!(c.check_tls().expect_err("no ca").contains("tls.ca_file"));
        c.tls.ca_file = "ca.pem".into();
        assert!(c.check_tls().is_ok());
        let c = ControlPlaneConfig {
            insecure: true,
            ..Default::default()
        };
        assert!(c.check_tls().is_ok());
    }

    #[test]
    fn a_peer_may_name_its_peer_address() {
        let m = with_peers(1, "1=a:1/a:2,2=b:1,3=c:1").unwrap();
        assert_eq!(m[&1].peer.as_deref(), Some("a:2"));
        assert_eq!(m[&2].peer, None);
        assert!(with_peers(1, "1=a:1/nope,2=b:1,3=c:1").is_err());
    }

    #[test]
    fn the_example_config_loads_and_names_every_limit_with_its_default() {
        #[derive(Serialize)]
        struct NoFlags {}
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/control-plane.toml");
        let c: ControlPlaneConfig =
            tributary_common::config::load(Some(&path), &NoFlags {}).expect("example config");
        assert_eq!(c.limits, Limits::default());
        let text = std::fs::read_to_string(&path).expect("read");
        let keys = serde_json::to_value(Limits::default()).expect("json");
        for key in keys.as_object().expect("a table").keys() {
            assert!(
                text.contains(&format!("\n{key} = ")),
                "{key} is not in the example"
            );
        }
        assert_eq!(c.grpc, Default::default());
        assert_eq!(c.cleanup, member_cleanup());
        let cleanup = text.split_once("\n[cleanup]").expect("[cleanup]").1;
        let keys = serde_json::to_value(member_cleanup()).expect("json");
        for key in keys.as_object().expect("a table").keys() {
            assert!(
                cleanup.contains(&format!("\n{key} = ")),
                "cleanup.{key} is not in the example"
            );
        }
        let grpc = text
            .split_once("\n[grpc]")
            .expect("[grpc] in the example")
            .1;
        let keys = serde_json::to_value(c.grpc).expect("json");
        for key in keys.as_object().expect("a table").keys() {
            assert!(
                grpc.contains(&format!("\n{key} = ")),
                "grpc.{key} is not in the example"
            );
        }
        let defaults = RaftSection::default();
        assert_eq!(
            (c.raft.snapshot_bytes, c.raft.max_watch_event_bytes),
            (defaults.snapshot_bytes, defaults.max_watch_event_bytes)
        );
    }
}
