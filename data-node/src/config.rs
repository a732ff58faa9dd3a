//! The data node's configuration: defaults run one standalone node on loopback with no file.
//! Every key is a TOML key and a `TRIBUTARY_<KEY>` environment variable.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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
    /// Accepted ingest secrets (`--ingest-secret`, repeatable); empty = ingest is open.
    pub ingest_secrets: Vec<String>,
    /// Accepted stream secrets (`--stream-secret`, repeatable): when any is set, every
    /// `Streams` call must carry one in `x-tributary-stream-secret`. A cluster's data nodes
    /// share them: a mirror worker sends the first to the other nodes of its cluster.
    pub stream_secrets: Vec<String>,
    /// Capacity advertised at registration (bytes; 0 = unknown), used for placement.
    pub capacity: u64,
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
    /// stdout, log files and levels (`[logging]`, `TRIBUTARY_LOGGING_*`).
    pub logging: tributary_common::logging::LoggingConfig,
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
            stream_secrets: Vec::new(),
            capacity: 0,
            sync_writes: false,
            max_entry_bytes: 1 << 20,
            max_message_bytes: 64 << 20,
            batch_id_window_ms: 3_600_000,
            heartbeat_interval_ms: 1_000,
            maintenance_interval_ms: 1_000,
            cluster_secret: String::new(),
            cluster_name: String::new(),
            ditto_max_workers: 1,
            ditto_stats_interval_ms: 10_000,
            insecure: false,
            tls: TlsFiles::default(),
            auth: Default::default(),
            admin_subjects: Vec::new(),
            anonymous_subjects: Vec::new(),
            encryption: Default::default(),
            logging: Default::default(),
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
        self.control_plane_addrs().map(|_| ())
    }
}

#[cfg(test)]
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
    }
}
