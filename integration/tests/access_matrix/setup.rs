//! The world the matrix runs in: a TLS cluster (one member, one data node) whose servers
//! trust a local OIDC issuer as provider `oidc`, the entities of namespace `acme` governed by
//! policy `acme:access` (alice may read and write them), `oidc:root` among the admins, and a
//! token for each kind of caller.

use anyhow::{anyhow, Result};
use std::sync::Arc;
use tonic::transport::Channel;
use tributary_common::auth::test_issuer::{KeyKind, TestIssuer};
use tributary_common::policy::Policy;
use tributary_integration::entities::entity;
use tributary_integration::tls::anonymous_channel;
use tributary_integration::Cluster;
use tributary_proto::v1::{
    entity::Kind, EntityKind, EntityRef, StatusRequest, Stream, Well, WellEntry,
};

/// Who calls: the columns of the table, and the two permitted callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No certificate, no token.
    Nobody,
    /// A token of the right issuer signed with a key its JWKS does not show.
    WrongToken,
    /// Alice's token, expired an hour ago.
    Expired,
    /// A well-formed token from an issuer the servers do not trust.
    ForeignIssuer,
    /// `oidc:mallory`: a valid token, and no policy grants it anything.
    NotPermitted,
    /// `oidc:alice`: READ and WRITE on namespace `acme` (policy `acme:access`).
    Alice,
    /// `oidc:root`: in `admin_subjects`, so ADMIN on `cluster:/`.
    Root,
}

impl Caller {
    pub fn label(self) -> &'static str {
        match self {
            Caller::Nobody => "nobody",
            Caller::WrongToken => "wrong token",
            Caller::Expired => "expired",
            Caller::ForeignIssuer => "foreign issuer",
            Caller::NotPermitted => "mallory",
            Caller::Alice => "alice",
            Caller::Root => "root",
        }
    }
}

pub struct World {
    pub cluster: Cluster,
    /// Strangers' channels: TLS trusting the cluster CA, no client certificate.
    pub cp: Channel,
    pub dn: Channel,
    tokens: Vec<(Caller, String)>,
    _issuer: TestIssuer,
    _foreign: TestIssuer,
    _dir: tempfile::TempDir,
}

/// What the refused calls must leave as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct Counts {
    revision: u64,
    well_entries: usize,
    stream_messages: u64,
    members: usize,
    data_nodes: usize,
}

fn access_policy() -> Result<Policy> {
    Ok(Policy::from_json(
        r#"{"entries": {"alice": {
            "subjects": {"oidc:alice": {"type": "the test's user"}},
            "resources": {"namespace:/acme": {"grant": ["READ", "WRITE"], "revoke": []}}}}}"#,
        Some("acme:access"),
    )?)
}

impl World {
    pub async fn start() -> Result<World> {
        let dir = tempfile::tempdir()?;
        let issuer = TestIssuer::start().await.map_err(|e| anyhow!("{e}"))?;
        let kid = issuer.add_key(KeyKind::Es256).map_err(|e| anyhow!("{e}"))?;
        let unpublished = issuer
            .add_unpublished_key(KeyKind::Es256)
            .map_err(|e| anyhow!("{e}"))?;
        let foreign = TestIssuer::start().await.map_err(|e| anyhow!("{e}"))?;
        let foreign_kid = foreign
            .add_key(KeyKind::Es256)
            .map_err(|e| anyhow!("{e}"))?;
        let provider = issuer.provider_config(&issuer.write_ca(dir.path())?);
        let (pm, pd) = (Arc::new(provider.clone()), Arc::new(provider));
        let cluster = Cluster::builder("matrix")
            .tune_members(move |c| {
                c.auth.oidc.insert("oidc".into(), (*pm).clone());
                c.admin_subjects.push("oidc:root".into());
            })
            .tune_data_nodes(move |c| {
                c.auth.oidc.insert("oidc".into(), (*pd).clone());
                c.admin_subjects.push("oidc:root".into());
            })
            .start()
            .await?;
        let sign = |i: &TestIssuer, kid: &str, sub: &str, life: i64| {
            i.sign(kid, &i.claims(sub, "tributary", life))
                .map_err(|e| anyhow!("{e}"))
        };
        let tokens = vec![
            (
                Caller::WrongToken,
                issuer
                    .sign(&unpublished, &issuer.claims("alice", "tributary", 600))
                    .map_err(|e| anyhow!("{e}"))?,
            ),
            (Caller::Expired, sign(&issuer, &kid, "alice", -3600)?),
            (
                Caller::ForeignIssuer,
                sign(&foreign, &foreign_kid, "alice", 600)?,
            ),
            (Caller::NotPermitted, sign(&issuer, &kid, "mallory", 600)?),
            (Caller::Alice, sign(&issuer, &kid, "alice", 600)?),
            (Caller::Root, sign(&issuer, &kid, "root", 600)?),
        ];
        let cp = anonymous_channel(&cluster.cp_addr(1)?)?;
        let dn = anonymous_channel(&cluster.data_addr(1)?)?;
        let w = World {
            cluster,
            cp,
            dn,
            tokens,
            _issuer: issuer,
            _foreign: foreign,
            _dir: dir,
        };
        w.populate().await?;
        Ok(w)
    }

    /// What the admin (the harness's client certificate) sets up: the policy, two wells and
    /// a stream in `acme`, a few entries and messages.
    async fn populate(&self) -> Result<()> {
        let c = &self.cluster;
        c.create(entity(Kind::Policy(access_policy()?.to_proto())))
            .await?;
        for name in ["acme:w", "acme:gone"] {
            c.create(entity(Kind::Well(Well {
                name: name.into(),
                tags: if name == "acme:w" {
                    vec!["mx".into()]
                } else {
                    vec![]
                },
                policy: "acme:access".into(),
                ..Default::default()
            })))
            .await?;
        }
        c.create(entity(Kind::Stream(Stream {
            name: "acme:S".into(),
            subjects: vec!["acme.>".into()],
            policy: "acme:access".into(),
            ..Default::default()
        })))
        .await?;
        c.wait_well_served("acme:w", 1).await?;
        c.wait_stream_served("acme:S", 1).await?;
        let entries = (0..3)
            .map(|i| WellEntry {
                timestamp_ns: tributary_common::time::now_ns() + i,
                tag: "mx".into(),
                data: b"e".to_vec().into(),
                ..Default::default()
            })
            .collect();
        c.ingest(1, entries, 3).await?;
        c.publish_n(1, "acme.in", "m", 3).await?;
        Ok(())
    }

    /// `msg` as `caller` sends it (its bearer token, if it has one).
    pub fn request<T>(&self, caller: Caller, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        if let Some((_, t)) = self.tokens.iter().find(|(c, _)| *c == caller) {
            if let Ok(v) = format!("Bearer {t}").parse() {
                req.metadata_mut().insert("authorization", v);
            }
        }
        req
    }

    pub async fn counts(&self) -> Result<Counts> {
        let c = &self.cluster;
        let revision = c
            .catalog(1)?
            .get(EntityRef {
                kind: EntityKind::Well as i32,
                name: "acme:w".into(),
            })
            .await?
            .into_inner()
            .revision;
        let status = c.cluster(1)?.status(StatusRequest {}).await?.into_inner();
        Ok(Counts {
            revision,
            well_entries: c.query(1, "acme:w").await?.len(),
            stream_messages: c.info(1, "acme:S").await?.state.map_or(0, |s| s.messages),
            members: status.members.len(),
            data_nodes: status.data_nodes.len(),
        })
    }

    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}
