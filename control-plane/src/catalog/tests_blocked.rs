//! A blocked namespace in the state machine: a client's write of its entities is refused
//! when applied (even one proposed before the block), the erasure's own writes go through,
//! and a client cannot set the flags.

use super::tests::{apply, open};
use crate::error::CatalogError;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, Entity, EntityKind, EntityRef, Namespace, Well};

fn cmd(op: Op, erasure: bool) -> Command {
    Command {
        op: Some(op),
        live_nodes: vec![1],
        erasure,
    }
}

fn namespace(blocked: bool) -> Entity {
    Entity {
        kind: Some(Kind::Namespace(Namespace {
            name: "acme".into(),
            blocked,
            shut_down: false,
        })),
    }
}

fn well(name: &str) -> Entity {
    Entity {
        kind: Some(Kind::Well(Well {
            name: name.into(),
            ..Default::default()
        })),
    }
}

#[test]
fn a_blocked_namespace_takes_only_the_erasures_writes() {
    let (_dir, cat) = open();
    let register = Op::RegisterNode(tributary_proto::v1::DataNode {
        id: 1,
        addr: "127.0.0.1:1".into(),
        capacity: 1,
        tags: Vec::new(),
    });
    apply(&cat, 1, &cmd(register, false)).expect("node");
    apply(&cat, 2, &cmd(Op::Create(well("acme:orders")), false)).expect("well");

    // A client may not set the flags.
    let e = apply(&cat, 3, &cmd(Op::Update(namespace(true)), false)).unwrap_err();
    assert!(
        matches!(&e, CatalogError::Invalid { field, .. } if field == "blocked"),
        "{e}"
    );
    apply(&cat, 4, &cmd(Op::Update(namespace(true)), true)).expect("block");

    let blocked = |e: Result<u64, CatalogError>| matches!(e, Err(CatalogError::FailedPrecondition(m)) if m == "namespace acme is blocked");
    assert!(blocked(apply(
        &cat,
        5,
        &cmd(Op::Create(well("acme:more")), false)
    )));
    assert!(blocked(apply(
        &cat,
        6,
        &cmd(Op::Update(well("acme:orders")), false)
    )));
    let delete = Op::Delete(EntityRef {
        kind: EntityKind::Well as i32,
        name: "acme:orders".into(),
    });
    assert!(blocked(apply(&cat, 7, &cmd(delete.clone(), false))));
    assert!(blocked(apply(
        &cat,
        8,
        &cmd(Op::Update(namespace(false)), false)
    )));
    assert!(cat
        .check_not_blocked(EntityKind::Well, "acme:orders")
        .is_err());
    assert!(cat.check_not_blocked(EntityKind::Namespace, "acme").is_ok());
    // Other namespaces are untouched; the erasure deletes.
    apply(&cat, 9, &cmd(Op::Create(well("other:orders")), false)).expect("other");
    apply(&cat, 10, &cmd(delete, true)).expect("erasure's delete");
    assert!(cat.get(EntityKind::Well, "acme:orders").unwrap().is_none());
}
