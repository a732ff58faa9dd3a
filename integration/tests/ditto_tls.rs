//! Ditto to a target whose data node speaks TLS: the target names its CA, the entries arrive;
//! a cleartext client gets nowhere.

use tributary_integration::{wait, Cluster, INGEST_SECRET};
use tributary_proto::v1::{
    entity::Kind, wells_client::WellsClient, Entity, QueryRequest, Target, Well, WellEntry,
};

fn well(name: &str, targets: &[&str]) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            tags: vec!["t".into()],
            ditto_targets: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ditto_reaches_an_encrypted_endpoint_with_the_targets_ca() -> anyhow::Result<()> {
    // Both clusters speak TLS (the harness's default), each with its own CA.
    let dst = Cluster::builder("dst").start().await?;
    let cert_pem = dst.ca_pem();
    dst.create(well("dst", &[])).await?;
    let src = Cluster::builder("src").start().await?;
    src.create(well("src", &[])).await?;
    src.wait_well_served("src", 1).await?;
    let entries: Vec<WellEntry> = (0..50)
        .map(|i| WellEntry {
            timestamp_ns: 1_700_000_000_000_000_000 + i,
            tag: "t".into(),
            data: format!("e{i}").into_bytes().into(),
            ..Default::default()
        })
        .collect();
    src.ingest(1, entries, 10).await?;
    let target = Target {
        name: "secure".into(),
        // TLS end to end through the link in front of the node: the proxy only moves bytes.
        encrypted_endpoints: vec![dst.endpoint(1)?],
        ingest_secret: INGEST_SECRET.into(),
        ca_pem: cert_pem.clone(),
        ..Default::default()
    };
    src.create(Entity {
        kind: Some(Kind::Target(target)),
    })
    .await?;
    src.update(well("src", &["secure"])).await?;

    // Read the target over TLS too, as its admin (the harness's client certificate): its
    // listener speaks nothing else.
    let channel = tributary_integration::tls::channel(&dst.data_addr(1)?)?;
    let got = wait::until("50 entries over TLS", wait::WAIT, || {
        let mut wells = WellsClient::new(channel.clone());
        async move {
            let mut s = wells
                .query(QueryRequest {
                    well: "default:dst".into(),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner();
            let mut n = 0;
            while let Ok(Some(r)) = s.message().await {
                n += r.entries.len();
            }
            (n >= 50).then_some(n)
        }
    })
    .await?;
    assert_eq!(got, 50);
    // A plaintext client is refused by the TLS listener.
    let plain = tributary_common::grpc::channel(&dst.data_addr(1)?)?;
    assert!(WellsClient::new(plain)
        .query(QueryRequest {
            well: "default:dst".into(),
            ..Default::default()
        })
        .await
        .is_err());
    src.shutdown().await;
    dst.shutdown().await;
    Ok(())
}
