//! Applying writes that would move an entity or redirect a secret (issue 11): an update keeps
//! the stored owner; a create names a registered owner or none; a target's stored ingest
//! secret stays with the endpoints and CA it was given for.

use super::tests::{apply, open};
use super::Catalogue;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, DataNode, Entity, EntityKind, Stream, Target};

fn cmd(op: Op) -> Command {
    Command {
        op: Some(op),
        live_nodes: vec![],
        erasure: false,
    }
}

fn register(cat: &Catalogue, index: u64, id: u64) {
    let node = DataNode {
        id,
        addr: format!("h:{id}"),
        capacity: 1,
        tags: vec![],
    };
    apply(cat, index, &cmd(Op::RegisterNode(node))).expect("register");
}

fn stream(owner: u64) -> Entity {
    Entity {
        kind: Some(Kind::Stream(Stream {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            owner_node: owner,
            ..Default::default()
        })),
    }
}

fn owner(cat: &Catalogue) -> u64 {
    match cat.get(EntityKind::Stream, "default:S").expect("get") {
        Some(Entity {
            kind: Some(Kind::Stream(s)),
        }) => s.owner_node,
        other => panic!("{other:?}"),
    }
}

#[test]
fn only_placement_and_moves_choose_the_owner() {
    let (_d, cat) = open();
    register(&cat, 1, 1);
    register(&cat, 2, 2);
    // A fake node nobody registered cannot be named.
    let err = apply(&cat, 3, &cmd(Op::Create(stream(4242)))).expect_err("unregistered");
    assert!(err.to_string().contains("owner_node"), "{err}");
    apply(&cat, 4, &cmd(Op::Create(stream(2)))).expect("a registered owner");
    assert_eq!(owner(&cat), 2);
    // An update, echoing another owner or none, keeps where the stream lives.
    for (i, given) in [1, 0, 4242].into_iter().enumerate() {
        apply(&cat, 5 + i as u64, &cmd(Op::Update(stream(given)))).expect("update");
        assert_eq!(owner(&cat), 2, "after an update naming {given}");
    }
}

fn target(endpoints: &[&str], secret: &str, ca: &str) -> Command {
    cmd(Op::Update(Entity {
        kind: Some(Kind::Target(Target {
            name: "t".into(),
            encrypted_endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            ingest_secret: secret.into(),
            ca_pem: ca.into(),
            ..Default::default()
        })),
    }))
}

fn stored_secret(cat: &Catalogue) -> String {
    match cat.get(EntityKind::Target, "default:t").expect("get") {
        Some(Entity {
            kind: Some(Kind::Target(t)),
        }) => t.ingest_secret,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stored_ingest_secret_stays_with_its_destination() {
    use super::entity::REDACTED;
    let (_d, cat) = open();
    let mut create = target(&["a:1", "b:1"], "hush", "CA1");
    if let Some(Op::Update(e)) = create.op.take() {
        create.op = Some(Op::Create(e));
    }
    apply(&cat, 1, &create).expect("create");
    // The same destination (endpoints in another order): the redacted echo keeps the secret.
    apply(&cat, 2, &target(&["b:1", "a:1"], REDACTED, "CA1")).expect("echo");
    apply(&cat, 3, &target(&["a:1", "b:1"], "", "CA1")).expect("absent");
    assert_eq!(stored_secret(&cat), "hush");
    // Another endpoint, one more, or another CA: the secret must be given again.
    for (i, (eps, ca)) in [
        (vec!["evil:1"], "CA1"),
        (vec!["a:1", "b:1", "evil:1"], "CA1"),
        (vec!["a:1", "b:1"], "attacker's CA"),
    ]
    .into_iter()
    .enumerate()
    {
        for secret in [REDACTED, ""] {
            let err = apply(&cat, 4 + i as u64, &target(&eps, secret, ca))
                .expect_err("redirected secret");
            assert!(
                err.to_string().contains("ingest_secret")
                    && err.to_string().contains("give the ingest secret again"),
                "{err}"
            );
        }
    }
    assert_eq!(stored_secret(&cat), "hush");
    // Given again, it goes.
    apply(&cat, 10, &target(&["new:1"], "fresh", "CA1")).expect("new destination");
    assert_eq!(stored_secret(&cat), "fresh");
}

#[test]
fn stored_origin_credentials_stay_with_the_ca_they_were_given_for() {
    use super::entity::REDACTED;
    use tributary_proto::v1::StreamSource;
    let (_d, cat) = open();
    let mirror = |creds: &str, ca: &str| Entity {
        kind: Some(Kind::Stream(Stream {
            name: "MX".into(),
            mirror: Some(StreamSource {
                stream: "EXT".into(),
                external: "https://b:7100".into(),
                external_ca_pem: ca.into(),
                external_credentials: creds.into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    };
    let ca1 = "-----BEGIN CERTIFICATE-----one";
    let ca2 = "-----BEGIN CERTIFICATE-----attacker";
    apply(&cat, 1, &cmd(Op::Create(mirror("hush", ca1)))).expect("create");
    apply(&cat, 2, &cmd(Op::Update(mirror(REDACTED, ca1)))).expect("echo");
    let err = apply(&cat, 3, &cmd(Op::Update(mirror(REDACTED, ca2)))).expect_err("new CA");
    assert!(
        err.to_string().contains("mirror.external_credentials"),
        "{err}"
    );
    apply(&cat, 4, &cmd(Op::Update(mirror("again", ca2)))).expect("given again");
}
