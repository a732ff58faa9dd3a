//! TLS for the harness's clusters, as an operator sets it up with `tribctl certs`: a CA per
//! cluster, certificates for its members (`member-ID`), data nodes (`data-node-ID`) and the
//! test's own client (`client-admin`), and the channels tests open — each address a cluster
//! serves (or proxies) is registered with the files a client needs to reach it, so a test
//! calling `channel(addr)` gets TLS where the server speaks it.

use anyhow::{anyhow, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use tonic::transport::Channel;
use tributary_common::certs::{self, Ca};
use tributary_common::sync::lock;
use tributary_common::tls::TlsFiles;

/// The name in the test client's certificate (its subject: `tls:client-admin`).
pub const CLIENT_NAME: &str = "client-admin";

/// One cluster's CA and the certificates it signed, under `dir`.
pub struct ClusterTls {
    dir: PathBuf,
    ca: Ca,
}

fn files(dir: &Path, name: &str) -> TlsFiles {
    TlsFiles {
        cert_file: dir.join(format!("{name}.pem")),
        key_file: dir.join(format!("{name}-key.pem")),
        ca_file: dir.join("ca.pem"),
    }
}

impl ClusterTls {
    pub fn new(dir: &Path, cluster: &str) -> Result<Self> {
        let ca = Ca::new(&format!("Tributary test CA {cluster}"))?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("ca.pem"), &ca.pem.cert)?;
        let t = ClusterTls {
            dir: dir.to_path_buf(),
            ca,
        };
        t.issue(CLIENT_NAME)?;
        Ok(t)
    }

    /// The certificate files of `name`, signed now if they are new.
    fn issue(&self, name: &str) -> Result<TlsFiles> {
        let f = files(&self.dir, name);
        if !f.cert_file.exists() {
            let pem = self
                .ca
                .sign(name, &["127.0.0.1".into(), "localhost".into()])?;
            certs::write(&self.dir, name, &pem)?;
        }
        Ok(f)
    }

    pub fn member(&self, id: u64) -> Result<TlsFiles> {
        self.issue(&certs::member_name(id))
    }

    pub fn data_node(&self, k: u64) -> Result<TlsFiles> {
        self.issue(&certs::data_node_name(k))
    }

    /// What the test itself shows servers.
    pub fn client(&self) -> TlsFiles {
        files(&self.dir, CLIENT_NAME)
    }

    /// The CA as PEM (what another cluster's targets and external origins trust).
    pub fn ca_pem(&self) -> &str {
        &self.ca.pem.cert
    }

    /// Another certificate signed by this CA (e.g. an intruder's "member" for a test).
    pub fn sign(&self, name: &str) -> Result<TlsFiles> {
        self.issue(name)
    }

    /// A new certificate for `name`, written over its files as a renewal would be.
    pub fn renew(&self, name: &str) -> Result<certs::Pem> {
        let pem = self
            .ca
            .sign(name, &["127.0.0.1".into(), "localhost".into()])?;
        certs::write(&self.dir, name, &pem)?;
        Ok(pem)
    }
}

fn registry() -> &'static Mutex<HashMap<String, TlsFiles>> {
    static R: OnceLock<Mutex<HashMap<String, TlsFiles>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

/// Clients of `addr` use `files` (TLS trusting its CA, showing its certificate).
pub fn register(addr: impl ToString, files: &TlsFiles) {
    lock(registry()).insert(addr.to_string(), files.clone());
}

/// The client TLS files registered for `addr`, if it speaks TLS.
pub fn files_for(addr: &str) -> Option<TlsFiles> {
    let hostport = addr
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    lock(registry()).get(hostport).cloned()
}

/// A lazily connecting channel to `addr`: TLS when a cluster registered it, else cleartext.
pub fn channel(addr: &str) -> Result<Channel> {
    let files = files_for(addr);
    tributary_common::tls::endpoint(addr, files.as_ref(), None)
        .map(|e| e.connect_lazy())
        .map_err(|e| anyhow!("{addr}: {e}"))
}

/// A channel to `addr` as a stranger: TLS trusting the cluster's CA when it speaks TLS, but
/// showing no certificate (a client with no credentials of its own).
pub fn anonymous_channel(addr: &str) -> Result<Channel> {
    let files = files_for(addr).map(|f| TlsFiles {
        cert_file: Default::default(),
        key_file: Default::default(),
        ca_file: f.ca_file,
    });
    tributary_common::tls::endpoint(addr, files.as_ref(), None)
        .map(|e| e.connect_lazy())
        .map_err(|e| anyhow!("{addr}: {e}"))
}
