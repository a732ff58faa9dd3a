//! `bench -- security`: what security costs, in one run. Catalogue writes/s, publish msgs/s
//! and ingest entries/s, first on `insecure` servers with no authentication (cleartext,
//! anonymous callers taken for admins), then with TLS on every link, an OIDC bearer token on
//! every call (a real ES256 JWT checked against the provider's JWKS) and a policy deciding each
//! write (the writer is granted by the entities' own policy, the last one a check consults).

use crate::{control_plane, data_plane};
use anyhow::{anyhow, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};
use tributary_common::auth::config::OidcProviderConfig;
use tributary_common::policy::Policy as PolicyModel;
use tributary_control_plane::ControlPlaneConfig;
use tributary_data_node::DataNodeConfig;
use tributary_integration::entities::entity;
use tributary_integration::Cluster;
use tributary_proto::v1::{entity::Kind, Policy};

/// The policy every benchmarked well and stream names.
pub const POLICY: &str = "bench:access";
/// The token's issuer and provider key; the writer is `oidc:writer`.
const ISSUER: &str = "https://issuer.bench.invalid";

/// READ and WRITE on namespace `bench` and on the default namespace's `bench` and `BENCH`.
pub fn writer_policy() -> Result<Policy> {
    let p = PolicyModel::from_json(
        r#"{"entries": {"writer": {
            "subjects": {"oidc:writer": {"type": "the benchmark's client"}},
            "resources": {
                "namespace:/bench": {"grant": ["READ", "WRITE"], "revoke": []},
                "well:/default:bench": {"grant": ["READ", "WRITE"], "revoke": []},
                "stream:/default:BENCH": {"grant": ["READ", "WRITE"], "revoke": []}}}}}"#,
        Some(POLICY),
    )?;
    Ok(p.to_proto())
}

/// The secure setup's credentials: an OIDC provider known by a JWKS file, and the writer's
/// token signed with its key.
pub struct Secure {
    provider: OidcProviderConfig,
    token: MetadataValue<Ascii>,
    _dir: tempfile::TempDir,
}

impl Secure {
    pub fn new() -> Result<Secure> {
        let dir = tempfile::tempdir()?;
        let key = rcgen::KeyPair::generate()?;
        // An uncompressed P-256 point: 0x04, then x and y of 32 bytes each.
        let point = key.public_key_raw();
        let (x, y) = point
            .get(1..)
            .ok_or_else(|| anyhow!("empty public key"))?
            .split_at(32);
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "bench",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]});
        let jwks_file = dir.path().join("jwks.json");
        std::fs::write(&jwks_file, jwks.to_string())?;
        let now = tributary_common::time::now_ns() / 1_000_000_000;
        let claims = serde_json::json!({
            "iss": ISSUER, "sub": "writer", "iat": now, "nbf": now, "exp": now + 3600,
        });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("bench".into());
        let jwt = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&key.serialize_der()),
        )?;
        Ok(Secure {
            provider: OidcProviderConfig {
                issuer: ISSUER.into(),
                jwks_file: jwks_file.display().to_string(),
                ..Default::default()
            },
            token: format!("Bearer {jwt}").parse()?,
            _dir: dir,
        })
    }

    pub fn tune_member(&self) -> impl Fn(&mut ControlPlaneConfig) + Send + Sync + 'static {
        let p = Arc::new(self.provider.clone());
        move |c| {
            c.auth.oidc.insert("oidc".into(), (*p).clone());
            c.request_timeout_ms = 10_000;
        }
    }

    pub fn tune_data_node(&self) -> impl Fn(&mut DataNodeConfig) + Send + Sync + 'static {
        let p = Arc::new(self.provider.clone());
        move |c| {
            c.auth.oidc.insert("oidc".into(), (*p).clone());
        }
    }

    /// Puts the writer's token on `req`.
    pub fn authorize<T>(&self, req: &mut Request<T>) -> Result<()> {
        req.metadata_mut()
            .insert("authorization", self.token.clone());
        Ok(())
    }
}

/// Puts the writer's token on every call (none: nothing).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn of(secure: Option<&Secure>) -> Bearer {
        Bearer(secure.map(|s| s.token.clone()))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    }
}

/// A 3-member control plane with direct links and the writer's policy.
async fn control_plane(secure: Option<&Secure>) -> Result<Cluster> {
    let builder = Cluster::builder("bench").members(3).data_nodes(0).direct();
    let c = match secure {
        None => builder
            .insecure()
            .tune_members(|c| c.request_timeout_ms = 10_000),
        Some(s) => builder.tune_members(s.tune_member()),
    }
    .start()
    .await?;
    c.wait_leader().await?;
    c.create(entity(Kind::Policy(writer_policy()?))).await?;
    Ok(c)
}

pub async fn run(
    clients: usize,
    duration: Duration,
    messages: u64,
    entries: u64,
    payload: usize,
    rounds: u32,
) -> Result<()> {
    let secure = Secure::new()?;
    let modes = [
        ("insecure, no auth", None),
        ("TLS + JWT + policies", Some(&secure)),
    ];
    // The two setups alternate, `rounds` times: a slow spell of this shared machine then
    // falls on both, and the medians compare.
    let mut figures: Vec<Vec<[f64; 3]>> = vec![Vec::new(); modes.len()];
    for round in 1..=rounds.max(1) {
        for (k, (label, mode)) in modes.iter().enumerate() {
            println!("== {label}, round {round}");
            let c = control_plane(*mode).await?;
            let writes = control_plane::many_clients(&c, clients, duration, *mode).await?;
            c.shutdown().await;
            let publish = data_plane::publish_over_grpc(*mode, messages, payload).await?;
            let ingest = data_plane::ingest_over_grpc(*mode, entries, 1000, payload).await?;
            figures[k].push([writes, publish, ingest]);
        }
    }
    let median = |runs: &[[f64; 3]], i: usize| {
        let mut v: Vec<f64> = runs.iter().map(|f| f[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!();
    println!(
        "{:<22} {:>16} {:>16} {:>16}   (median of {rounds})",
        "", "catalogue w/s", "publish msgs/s", "ingest entries/s"
    );
    let medians: Vec<[f64; 3]> = figures
        .iter()
        .map(|runs| [median(runs, 0), median(runs, 1), median(runs, 2)])
        .collect();
    for ((label, _), f) in modes.iter().zip(&medians) {
        println!("{label:<22} {:>16.0} {:>16.0} {:>16.0}", f[0], f[1], f[2]);
    }
    // Each round's pair (the two setups run back to back) gives a cost; their median is the
    // figure, steadier than a cost of the two medians on this machine.
    if let [open, closed] = figures.as_slice() {
        let cost = |i: usize| {
            let mut v: Vec<f64> = open
                .iter()
                .zip(closed)
                .map(|(o, c)| (1.0 - c[i] / o[i]) * 100.0)
                .collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{:<22} {:>15.1}% {:>15.1}% {:>15.1}%   (median of the rounds' pairs)",
            "cost of security",
            cost(0),
            cost(1),
            cost(2)
        );
    }
    Ok(())
}
