//! The data node's configuration: defaults run one standalone node on loopback with no file.
//! Every key is a TOML key and a `TRIBUTARY_<KEY>` environment variable.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tributary_common::limits::ListenerLimits;
use tributary_common::throttle::ThrottlingConfig;
use tributary_common::tls::TlsFiles;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct DataNodeConfig {
    /// This node's id (1, 2, …), as the catalogue's `owner_node`.
    pub id: u64,
    /// gRPC address serving Ingest, Wells and Streams.
    pub listen: String,
    /// Address registered with the control plane; empty = the bound listen address.
    pub advertise: String,
    /// Control-plane members, `HOST:PORT,HOST:PORT`; empty = standalone (tags are
    /// allocated locally and the catalogue view is only what was saved or set in-process).
    pub control_plane: String,
    pub data_dir: PathBuf,
    /// Admin HTTP (`/metrics`, `/health`, `/ready`, `/devops/…` for this node); empty disables it.
    pub admin_listen: String,
    /// Accepted ingest secrets (`--ingest-secret`, repeatable); empty: `Ingest.Write` takes
    /// only callers with other credentials (a token, a certificate) and WRITE on the wells.
    pub ingest_secrets: Vec<String>,
    /// More ingest secrets from a file, one per line (kept out of `ps` and the environment).
    pub ingest_secrets_file: String,
    /// Accepted stream secrets (`--stream-secret`, repeatable): when any is set, every
    /// `Streams` call must carry one in `x-tributary-stream-secret`. A cluster's data nodes
    /// share them: a mirror worker sends the first to the other nodes of its cluster.
    pub stream_secrets: Vec<String>,
    /// More stream secrets from a file, one per line.
    pub stream_secrets_file: String,
    /// Capacity advertised at registration (bytes; 0 = unknown), used for placement.
    pub capacity: u64,
    /// Placement tags advertised at registration (`az:eu-1`, `ssd`): a stream's
    /// `placement.tags` and `unique_tag` choose its replicas' nodes by them.
    pub tags: Vec<String>,
    /// The Raft groups of replicated streams on this node (`[replication]`).
    pub replication: ReplicationConfig,
    /// fsync the WAL on every write (power-loss durability). Off, an acked write is in the
    /// WAL in the page cache: it survives a process crash (`kill -9`), not a power cut.
    pub sync_writes: bool,
    /// Largest entry (data plus enumerated values) an ingest accepts.
    pub max_entry_bytes: u64,
    /// Largest gRPC message the node accepts (an ingest batch or a publish).
    pub max_message_bytes: u64,
    /// How long an ingest `batch_id` is remembered to drop a resend.
    pub batch_id_window_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Ageout, stream age limits and dedupe expiry run this often.
    pub maintenance_interval_ms: u64,
    /// Must equal the control plane's `cluster_secret`: with it the catalogue returns target
    /// ingest secrets unredacted, which ditto workers need to reach their targets.
    pub cluster_secret: String,
    /// `cluster_secret` from a file.
    pub cluster_secret_file: String,
    /// This cluster's name in ditto batch ids (source cluster, well, target, seq), so two
    /// source clusters mirroring into one target never share ids. Empty = a random id kept
    /// in the node's storage.
    pub cluster_name: String,
    /// How many wells this node mirrors at once (Gravwell's `Ditto-Max-Workers`).
    pub ditto_max_workers: u64,
    /// How often ditto stats go into the `tributary` tag and the metrics.
    pub ditto_stats_interval_ms: u64,
    /// Cleartext on the listener and every link (the demo and `tribctl dev`): nothing is
    /// encrypted and nobody proves who they are by certificate.
    pub insecure: bool,
    /// This node's certificate (`data-node-ID`, its identity towards the control plane and
    /// the other data nodes, and the listener's server certificate) and the cluster CA.
    pub tls: TlsFiles,
    /// How clients authenticate (OIDC providers, pre-authentication): the same top-level keys
    /// as the members' (`[oidc.NAME]`, `enable_pre_authentication`, …).
    #[serde(flatten)]
    pub auth: tributary_common::auth::AuthConfig,
    /// Subjects with READ, WRITE and ADMIN on everything (as on the members).
    pub admin_subjects: Vec<String>,
    /// What a caller with no credentials is taken for; empty (the default): refused.
    pub anonymous_subjects: Vec<String>,
    /// Secrets at rest (`[encryption]`, the same section as the control plane's): the
    /// catalogue sends target secrets and origin credentials sealed, and the node opens them
    /// where its workers need them. Give every member and data node the same keys.
    pub encryption: tributary_common::crypto::EncryptionConfig,
    /// The gRPC listener's limits (`[grpc]`, as on the members): connections, streams per
    /// connection, keepalive, idle and handler timeouts, metadata size.
    pub grpc: ListenerLimits,
    /// What a published message may carry (`[limits]`); see [`Limits`].
    pub limits: Limits,
    /// Per-connection rate limits on `Ingest.Write`, `Streams.Publish`/`PublishStream`,
    /// `Streams.Subscribe` and `Wells.Query` (`[throttling]`), off by default. The cluster's own
    /// nodes are never throttled.
    pub throttling: ThrottlingConfig,
    /// stdout, log files and levels (`[logging]`, `TRIBUTARY_LOGGING_*`).
    pub logging: tributary_common::logging::LoggingConfig,
    /// Spans out by OTLP (`[tracing]`, `TRIBUTARY_TRACING_*`, `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub tracing: tributary_common::logging::TracingConfig,
    /// Background cleanup with Eclipse Ditto's knobs (`[cleanup]`, `TRIBUTARY_CLEANUP__*`):
    /// progress of removed ditto targets and mirror/source origins.
    pub cleanup: tributary_common::cleanup::CleanupConfig,
}

/// The `[replication]` section: timing of the Raft groups of replicated streams. A follower
/// that hears nothing from its leader for `election_ticks` ticks (randomised up to twice
/// that) campaigns: 50 ms × 10 puts a new leader in place 0.5–1 s after the old one dies
/// (NATS waits 4–9 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplicationConfig {
    pub tick_ms: u64,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Entries of a stream's group log kept below what the stream holds, for a replica that
    /// is behind; one further behind catches up by snapshot (`TRIBUTARY_REPLICATION__LOG_TAIL`).
    pub log_tail: u64,
    /// A group idle for two election timeouts, every replica holding everything, stops
    /// ticking and heartbeating; one "alive" message per node pair stands for them.
    pub hibernate: bool,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            tick_ms: 50,
            election_ticks: 10,
            heartbeat_ticks: 2,
            log_tail: 100_000,
            hibernate: true,
        }
    }
}

impl ReplicationConfig {
    fn validate(&self) -> Result<(), String> {
        if self.tick_ms == 0 {
            return Err("key `replication.tick_ms`: must be 1 or more".into());
        }
        if self.heartbeat_ticks == 0 || self.election_ticks <= self.heartbeat_ticks {
            return Err("key `replication.election_ticks`: must be more than \
                        `replication.heartbeat_ticks`, which must be 1 or more"
                .into());
        }
        Ok(())
    }
}

/// The `[limits]` section: what one published message may carry. Over a limit the publish is
/// `INVALID_ARGUMENT` naming `limits.<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Bytes of a subject published to, or filtered by (subscribe, purge); as the members'
    /// `limits.max_subject_bytes` for a stream's subjects.
    pub max_subject_bytes: usize,
    /// Headers of one published message.
    pub max_headers: usize,
    /// Bytes of one published message's headers, names and values together.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_subject_bytes: 256,
            max_headers: 64,
            max_header_bytes: 64 << 10,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("max_subject_bytes", self.max_subject_bytes),
            ("max_headers", self.max_headers),
            ("max_header_bytes", self.max_header_bytes),
        ] {
            if v == 0 {
                return Err(format!("key `limits.{key}`: must be 1 or more"));
            }
        }
        Ok(())
    }
}

impl Default for DataNodeConfig {
    fn default() -> Self {
        Self {
            id: 1,
            listen: "127.0.0.1:7200".into(),
            advertise: String::new(),
            control_plane: String::new(),
            data_dir: PathBuf::from("tributary-data/data-node"),
            // 9095 is the control plane's default; the next port lets both run on one host.
            admin_listen: "127.0.0.1:9096".into(),
            ingest_secrets: Vec::new(),
            ingest_secrets_file: String::new(),
            stream_secrets: Vec::new(),
            stream_secrets_file: String::new(),
            capacity: 0,
            tags: Vec::new(),
            replication: ReplicationConfig::default(),
            sync_writes: false,
            max_entry_bytes: 1 << 20,
            max_message_bytes: 64 << 20,
            batch_id_window_ms: 3_600_000,
            heartbeat_interval_ms: 1_000,
            maintenance_interval_ms: 1_000,
            cluster_secret: String::new(),
            cluster_secret_file: String::new(),
            cluster_name: String::new(),
            ditto_max_workers: 1,
            ditto_stats_interval_ms: 10_000,
            insecure: false,
            tls: TlsFiles::default(),
            auth: Default::default(),
            admin_subjects: Vec::new(),
            anonymous_subjects: Vec::new(),
            encryption: Default::default(),
            grpc: ListenerLimits::default(),
            limits: Limits::default(),
            throttling: ThrottlingConfig::default(),
            logging: Default::default(),
            tracing: Default::default(),
            cleanup: Default::default(),
        }
    }
}

impl DataNodeConfig {
    /// The control-plane addresses, checked; the error names the key.
    pub fn control_plane_addrs(&self) -> Result<Vec<String>, String> {
        let addrs: Vec<String> = self
            .control_plane
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        for a in &addrs {
            let hostport = a
                .trim_start_matches("http://")
                .trim_start_matches("https://");
            if !hostport
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            {
                return Err(format!("key `control_plane`: {a:?} is not HOST:PORT"));
            }
        }
        Ok(addrs)
    }

    /// Reads the `*_file` forms of the secrets into their keys; errors name the key.
    pub fn with_secret_files(mut self) -> Result<Self, String> {
        use tributary_common::secrets::{take_file, take_list_file};
        take_list_file(
            &mut self.ingest_secrets,
            &mut self.ingest_secrets_file,
            "ingest_secrets",
        )?;
        take_list_file(
            &mut self.stream_secrets,
            &mut self.stream_secrets_file,
            "stream_secrets",
        )?;
        take_file(
            &mut self.cluster_secret,
            &mut self.cluster_secret_file,
            "cluster_secret",
        )?;
        Ok(self)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.id == 0 {
            return Err("key `id`: must be 1 or more".into());
        }
        if self.heartbeat_interval_ms == 0 || self.maintenance_interval_ms == 0 {
            return Err(
                "key `heartbeat_interval_ms`/`maintenance_interval_ms`: must be more than 0".into(),
            );
        }
        if self.max_entry_bytes == 0 || self.max_entry_bytes > self.max_message_bytes {
            return Err("key `max_entry_bytes`: must be between 1 and max_message_bytes".into());
        }
        if self.ditto_max_workers == 0 || self.ditto_stats_interval_ms == 0 {
            return Err(
                "key `ditto_max_workers`/`ditto_stats_interval_ms`: must be more than 0".into(),
            );
        }
        if !self.insecure && !self.tls.has_identity() {
            return Err(
                "key `tls.cert_file`/`tls.key_file`: a data node speaks TLS unless \
                        `insecure = true`; give its certificate and key (`tribctl certs` makes \
                        them)"
                    .into(),
            );
        }
        if !self.insecure && !self.tls.has_ca() {
            return Err(
                "key `tls.ca_file`: the cluster CA is needed to check the control \
                        plane's and the other data nodes' certificates"
                    .into(),
            );
        }
        self.grpc.validate("grpc")?;
        self.limits.validate()?;
        self.replication.validate()?;
        for t in &self.tags {
            if t.is_empty() || t.len() > 255 || t.chars().any(char::is_control) {
                return Err(format!(
                    "key `tags`: {t:?} must be 1 to 255 bytes with no control characters"
                ));
            }
        }
        self.throttling.validate("throttling")?;
        self.cleanup.validate("cleanup")?;
        self.control_plane_addrs().map(|_| ())
    }
}

#[cfg(test)]
// figment's `Jail` fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_tls_or_insecure_and_bad_keys_are_named() {
        let e = DataNodeConfig::default().validate().unwrap_err();
        assert!(e.contains("tls.cert_file"), "{e}");
        let insecure = || DataNodeConfig {
            insecure: true,
            ..Default::default()
        };
        assert!(insecure().validate().is_ok());
        let c = DataNodeConfig {
            control_plane: "a:1, b:2".into(),
            ..insecure()
        };
        assert_eq!(c.control_plane_addrs().unwrap(), vec!["a:1", "b:2"]);
        let c = DataNodeConfig {
            control_plane: "nope".into(),
            ..insecure()
        };
        assert!(c.validate().unwrap_err().contains("control_plane"));
        let c = DataNodeConfig {
            id: 0,
            ..insecure()
        };
        assert!(c.validate().unwrap_err().contains("`id`"));
        let mut c = insecure();
        c.limits.max_headers = 0;
        assert!(c.validate().unwrap_err().contains("`limits.max_headers`"));
        let mut c = insecure();
        c.grpc.max_connections = 0;
        assert!(c.validate().unwrap_err().contains("`grpc.max_connections`"));
        let mut c = insecure();
        c.throttling.enabled = true;
        c.throttling.messages = 0;
        c.throttling.bytes = 0;
        assert!(c.validate().unwrap_err().contains("`throttling.messages`"));
        let mut c = insecure();
        c.replication.election_ticks = c.replication.heartbeat_ticks;
        assert!(c
            .validate()
            .unwrap_err()
            .contains("`replication.election_ticks`"));
        let mut c = insecure();
        c.tags = vec!["az:\n1".into()];
        assert!(c.validate().unwrap_err().contains("`tags`"));
    }

    #[derive(Serialize)]
    struct NoFlags {}

    #[test]
    fn the_example_config_loads_and_names_every_limit_with_its_default() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/data-node.toml");
        // In a jail: another test sets TRIBUTARY_* variables meanwhile.
        let mut loaded = None;
        figment::Jail::expect_with(|_| {
            loaded = Some(tributary_common::config::load(Some(&path), &NoFlags {}));
            Ok(())
        });
        let c: DataNodeConfig = loaded.expect("ran").expect("example config");
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.grpc, ListenerLimits::default());
        assert_eq!(c.throttling, ThrottlingConfig::default());
        assert_eq!(
            c.cleanup,
            tributary_common::cleanup::CleanupConfig::default()
        );
        assert_eq!(c.replication, ReplicationConfig::default());
        let text = std::fs::read_to_string(&path).expect("read");
        let sections = [
            ("[grpc]", serde_json::to_value(ListenerLimits::default())),
            ("[limits]", serde_json::to_value(Limits::default())),
            (
                "[throttling]",
                serde_json::to_value(ThrottlingConfig::default()),
            ),
            (
                "[cleanup]",
                serde_json::to_value(tributary_common::cleanup::CleanupConfig::default()),
            ),
        ];
        for (section, keys) in sections {
            let body = text
                .split_once(section)
                .map(|(_, rest)| rest.split("\n[").next().unwrap_or(rest))
                .unwrap_or_else(|| panic!("{section} is not in the example"));
            for key in keys.expect("json").as_object().expect("a table").keys() {
                assert!(
                    body.contains(&format!("\n{key} = ")),
                    "{section} {key} is not in the example"
                );
            }
        }
    }

    #[test]
    fn limits_and_throttling_come_from_the_environment_with_the_key_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_THROTTLING__ENABLED", "true");
            jail.set_env("TRIBUTARY_THROTTLING__INTERVAL", "250ms");
            jail.set_env("TRIBUTARY_GRPC__MAX_CONCURRENT_STREAMS", "8");
            jail.set_env("TRIBUTARY_GRPC__KEEPALIVE_INTERVAL", "10");
            jail.set_env("TRIBUTARY_LIMITS__MAX_HEADERS", "3");
            let c: DataNodeConfig =
                tributary_common::config::load(None, &NoFlags {}).map_err(|e| e.to_string())?;
            assert!(c.throttling.enabled);
            assert_eq!(c.throttling.interval, std::time::Duration::from_millis(250));
            assert_eq!(c.grpc.max_concurrent_streams, 8);
            assert_eq!(
                c.grpc.keepalive_interval,
                std::time::Duration::from_secs(10)
            );
            assert_eq!(c.limits.max_headers, 3);
            jail.set_env("TRIBUTARY_GRPC__IDLE_TIMEOUT", "soon");
            let e = tributary_common::config::load::<DataNodeConfig, _>(None, &NoFlags {})
                .expect_err("bad duration taken");
            assert!(e.to_string().contains("`grpc.idle_timeout`"), "{e}");
            Ok(())
        });
    }
}
