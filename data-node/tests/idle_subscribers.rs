//! `probe_subscribers.py`: six subscribers asking for batches of 4096 on a stream of large
//! messages, never reading, grew a data node from 163 MB to 1.4 GB (each held its whole
//! backlog). Each now holds at most a few reads of `REPLY_BYTES` (one message when bigger):
//! the bytes held for readers stay under a stated bound the whole time they idle, the
//! process's memory grows by far less than the backlog they asked for, and all of it goes
//! when they disconnect. Figures print with `-- --nocapture`.

use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio_stream::StreamExt;
use tributary_data_node::storage::streams::tail::held_bytes;
use tributary_data_node::{CatalogView, DataNodeConfig};
use tributary_proto::v1::{
    entity::Kind, streams_client::StreamsClient, Entity, PublishRequest, Stream, StreamInfoRequest,
    SubscribeRequest,
};

const ME: &str = "test:anonymous";
const MSG: usize = 1 << 20;
const BACKLOG: usize = 96;
const READERS: usize = 6;
const MIB: usize = 1 << 20;

fn rss_mib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("VmRSS")
        / 1024
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let check = || std::future::ready(f().then_some(()));
    if let Err(e) = tributary_common::wait::until(what, Duration::from_secs(30), check).await {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscribers_hold_a_bounded_number_of_bytes() {
    let dir = TempDir::new().expect("tempdir");
    let config = DataNodeConfig {
        insecure: true,
        listen: "127.0.0.1:0".into(),
        admin_listen: String::new(),
        data_dir: dir.path().to_path_buf(),
        anonymous_subjects: vec![ME.into()],
        admin_subjects: vec![ME.into()],
        ..Default::default()
    };
    let n = tributary_data_node::start(config).await.expect("start");
    let view = CatalogView::from_entities(
        1,
        [Entity {
            kind: Some(Kind::Stream(Stream {
                name: "BIG".into(),
                subjects: vec!["big.>".into()],
                owner_node: 1,
                ..Default::default()
            })),
        }],
    );
    n.node.set_catalog(view).expect("catalogue");
    let url = format!("http://{}", n.addr);
    let mut client = StreamsClient::connect(url.clone()).await.expect("connect");
    for i in 0..BACKLOG {
        let data: Vec<u8> = (0..MSG).map(|b| (b ^ i) as u8).collect();
        client
            .publish(PublishRequest {
                subject: "big.a".into(),
                data: data.into(),
                ..Default::default()
            })
            .await
            .expect("publish");
    }
    let before = rss_mib();

    // Each reader on its own connection, as the probe's; none reads a thing.
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut c = StreamsClient::connect(url.clone()).await.expect("connect");
        let stream = c
            .subscribe(SubscribeRequest {
                stream: "BIG".into(),
                start_seq: 1,
                batch: 4096,
                ..Default::default()
            })
            .await
            .expect("subscribe")
            .into_inner();
        readers.push((c, stream));
    }
    let subscribers = || async {
        StreamsClient::connect(url.clone())
            .await
            .expect("connect")
            .info(StreamInfoRequest {
                stream: "BIG".into(),
            })
            .await
            .expect("info")
            .into_inner()
            .state
            .map_or(0, |s| s.subscribers)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while subscribers().await < READERS as u64 {
        assert!(Instant::now() < deadline, "the readers never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every reader's loop has read something and is parked behind its full channel.
    until("every reader to hold a read", || {
        held_bytes() >= READERS * MSG
    })
    .await;

    // Per reader: the channel's two events and the read in hand, each at most REPLY_BYTES
    // (messages here are below it).
    let bound = READERS * 3 * tributary_common::grpc::REPLY_BYTES;
    let mut peak = 0;
    let watch_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < watch_until {
        peak = peak.max(held_bytes());
        assert!(
            held_bytes() <= bound,
            "idle readers hold {} MiB (bound {} MiB)",
            held_bytes() / MIB,
            bound / MIB
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grown = rss_mib().saturating_sub(before);
    println!(
        "{READERS} idle readers of a {} MiB backlog asking for batches of 4096: held {} MiB at \
         peak (bound {} MiB); process memory +{grown} MiB (bound 192 MiB)",
        BACKLOG * MSG / MIB,
        peak / MIB,
        bound / MIB
    );
    assert!(
        grown <= 192,
        "memory grew by {grown} MiB under {READERS} idle readers (before: each read {} MiB)",
        BACKLOG * MSG / MIB
    );

    // One reader reads everything: nothing is lost by the bound.
    let (_, first) = &mut readers[0];
    let mut got = 0;
    while got < BACKLOG {
        let ev = first
            .next()
            .await
            .expect("the stream goes on")
            .expect("an event");
        got += ev.messages.len();
    }
    drop(readers);
    until("the readers' bytes to be let go", || held_bytes() == 0).await;
    n.shutdown().await;
}
