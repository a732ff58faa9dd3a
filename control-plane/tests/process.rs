//! Real member processes on 127.0.0.1: `kill -9` the leader, keep writing, restart it, and
//! check that no acknowledged write was lost.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tributary_proto::v1::{
    catalog_client::CatalogClient, cluster_client::ClusterClient, entity::Kind, Entity, EntityKind,
    ListRequest, PeerAddressRequest, StatusRequest, Stream,
};

struct Member {
    id: u64,
    addr: String,
    child: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn(id: u64, addr: &str, peers: &str, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tributary-control-plane"))
        .args(["--id", &id.to_string(), "--listen", addr, "--peers", peers])
        .arg("--data-dir")
        .arg(dir.join(format!("m{id}")))
        .args(["--admin-listen", "", "--insecure"])
        .args([
            "--anonymous-subject",
            "test:anonymous",
            "--admin-subject",
            "test:anonymous",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tributary-control-plane")
}

async fn leader(members: &[Member], deadline: Instant) -> u64 {
    loop {
        for m in members.iter().filter(|m| m.child.is_some()) {
            if let Ok(ch) = tributary_common::grpc::channel(&m.addr) {
                // Raft is not served on the client port: ask for the cluster's status.
                if let Ok(r) = ClusterClient::new(ch).status(StatusRequest {}).await {
                    let r = r.into_inner();
                    // A follower may still name a leader that just died: trust only one that
                    // answers as leader itself.
                    let live = r
                        .members
                        .iter()
                        .any(|x| x.id == r.leader && x.role == "leader" && x.reachable);
                    if r.leader != 0 && live {
                        return r.leader;
                    }
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader elected in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create(addr: &str, name: &str) -> Result<(), tonic::Status> {
    let ch = tributary_common::grpc::channel(addr)
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let e = Entity {
        kind: Some(Kind::Stream(Stream {
            name: name.into(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })),
    };
    CatalogClient::new(ch).create(e).await.map(|_| ())
}

async fn names(addr: &str) -> Vec<String> {
    let Ok(ch) = tributary_common::grpc::channel(addr) else {
        return vec![];
    };
    match CatalogClient::new(ch)
        .list(ListRequest {
            kind: EntityKind::Stream as i32,
            namespace: String::new(),
        })
        .await
    {
        Ok(r) => {
            let mut n: Vec<String> = r
                .into_inner()
                .entities
                .into_iter()
                .filter_map(|e| match e.kind {
                    Some(Kind::Stream(s)) => Some(s.name),
                    _ => None,
                })
                .collect();
            n.sort();
            n
        }
        Err(_) => vec![],
    }
}

/// Whether every member runs and answers. A member whose port was taken between
/// `free_port` and its start exits: `Err` then.
async fn all_up(members: &mut [Member]) -> Result<bool, String> {
    let mut up = true;
    for m in members.iter_mut() {
        if let Some(c) = m.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(format!("member {} exited: {status}", m.id));
            }
        }
        let answered = match tributary_common::grpc::channel(&m.addr) {
            Ok(ch) => ClusterClient::new(ch)
                .peer_address(PeerAddressRequest {})
                .await
                .is_ok(),
            Err(_) => false,
        };
        up &= answered;
    }
    Ok(up)
}

/// Three members on fresh ports, every one of them answering; returns them, the peer list and
/// their data dir.
async fn start_members(dir: &std::path::Path) -> (Vec<Member>, String, std::path::PathBuf) {
    for attempt in 1..=5 {
        let mut members: Vec<Member> = (1..=3)
            .map(|id| Member {
                id,
                addr: format!("127.0.0.1:{}", free_port()),
                child: None,
            })
            .collect();
        let peers = members
            .iter()
            .map(|m| format!("{}={}", m.id, m.addr))
            .collect::<Vec<_>>()
            .join(",");
        let run = dir.join(format!("try{attempt}"));
        for m in &mut members {
            m.child = Some(spawn(m.id, &m.addr, &peers, &run));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match all_up(&mut members).await {
                Ok(true) => return (members, peers, run),
                Ok(false) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(false) => panic!("members did not start within 20 s"),
                Err(e) => {
                    eprintln!("attempt {attempt}: {e}; starting again on other ports");
                    for m in &mut members {
                        if let Some(mut c) = m.child.take() {
                            let _ = c.kill();
                            let _ = c.wait();
                        }
                    }
                    break;
                }
            }
        }
    }
    panic!("no three free ports in five attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_the_leader_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut members, peers, dir) = start_members(tmp.path()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = leader(&members, deadline).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let via = &members[i % 3].addr;
        let name = format!("P{i}");
        if create(via, &name).await.is_ok() {
            acked.push(format!("default:{name}"));
        }
    }
    assert_eq!(acked.len(), 20, "writes through a healthy cluster failed");

    let victim = members
        .iter_mut()
        .find(|m| m.id == first)
        .expect("leader is a member");
    if let Some(mut c) = victim.child.take() {
        c.kill().expect("kill -9");
        let _ = c.wait();
    }
    let second = leader(&members, Instant::now() + Duration::from_secs(30)).await;
    assert_ne!(first, second);
    let survivor = members
        .iter()
        .find(|m| m.id == second)
        .expect("leader")
        .addr
        .clone();
    for i in 20..30 {
        let name = format!("P{i}");
        create(&survivor, &name)
            .await
            .expect("write after failover");
        acked.push(format!("default:{name}"));
    }
    acked.sort();

    let peers2 = peers.clone();
    let victim = members.iter_mut().find(|m| m.id == first).expect("member");
    victim.child = Some(spawn(first, &victim.addr.clone(), &peers2, &dir));
    let restarted = victim.addr.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if names(&restarted).await == acked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted member did not catch up: {:?}",
            names(&restarted).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for m in &mut members {
        if let Some(mut c) = m.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
