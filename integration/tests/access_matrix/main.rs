//! Who may call what (the README's table), tried as every kind of caller would: every RPC of
//! both servers × {no credentials, a wrong token, an expired one, one from a foreign issuer,
//! a valid one not permitted, a permitted one}, against a TLS cluster with a real OIDC issuer
//! (JWKS over HTTPS). Each answer is UNAUTHENTICATED, PERMISSION_DENIED or OK as the table
//! says, and the refused calls change nothing (the catalogue's revision, the well's entries,
//! the stream's messages and the membership are the same before and after).

#[macro_use]
mod calls;
mod data_plane;
mod setup;

use anyhow::{bail, Result};
use calls::{Outcome, Rpc, MEMBER_RPCS};
use data_plane::DATA_NODE_RPCS;

/// Every RPC of both servers.
fn rpcs() -> impl Iterator<Item = &'static Rpc> {
    MEMBER_RPCS.iter().chain(DATA_NODE_RPCS)
}
use setup::{Caller, World};

/// What a column's callers must see for a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// UNAUTHENTICATED.
    U,
    /// PERMISSION_DENIED.
    D,
    /// OK.
    O,
    /// OK, but what the caller may not read is left out (an empty list).
    Empty,
    /// Past the gate: any answer but UNAUTHENTICATED or PERMISSION_DENIED (the call itself
    /// fails for its own reason, e.g. removing a member that does not exist).
    Past,
    /// Served to members on the peer listener only: PERMISSION_DENIED, naming it.
    Peer,
}

fn matches(e: Expect, o: &Outcome) -> bool {
    match (e, o) {
        (Expect::U, Outcome::Code(tonic::Code::Unauthenticated, _)) => true,
        (Expect::D, Outcome::Code(tonic::Code::PermissionDenied, _)) => true,
        (Expect::Peer, Outcome::Code(tonic::Code::PermissionDenied, m)) => {
            m.contains("peer listener")
        }
        (Expect::O, Outcome::Ok { .. }) => true,
        (Expect::Empty, Outcome::Ok { items: 0 }) => true,
        (Expect::Past, Outcome::Ok { .. }) => true,
        (Expect::Past, Outcome::Code(c, _)) => !matches!(
            c,
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        ),
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_each_kind_of_caller_as_the_table_says() -> Result<()> {
    let w = World::start().await?;
    let before = w.counts().await?;
    let mut wrong = Vec::new();
    let refused_columns = [
        Caller::Nobody,
        Caller::WrongToken,
        Caller::Expired,
        Caller::ForeignIssuer,
        Caller::NotPermitted,
    ];
    for (col, caller) in refused_columns.iter().enumerate() {
        for rpc in rpcs() {
            let expect = rpc.expect[col];
            let got = (rpc.call)(&w, *caller).await;
            println!("{:<28} {:<14} {}", rpc.name, caller.label(), got);
            if !matches(expect, &got) {
                wrong.push(format!(
                    "{} as {}: expected {expect:?}, got {got}",
                    rpc.name,
                    caller.label()
                ));
            }
        }
    }
    let after = w.counts().await?;
    if before != after {
        wrong.push(format!(
            "refused calls changed something: before {before:?}, after {after:?}"
        ));
    }
    // The permitted callers last: their calls change things (create, publish, purge, …).
    for rpc in rpcs() {
        let got = (rpc.call)(&w, rpc.permitted).await;
        println!("{:<28} {:<14} {}", rpc.name, rpc.permitted.label(), got);
        let expect = rpc.expect[5];
        if !matches(expect, &got) {
            wrong.push(format!(
                "{} as {}: expected {expect:?}, got {got}",
                rpc.name,
                rpc.permitted.label()
            ));
        }
    }
    w.shutdown().await;
    if !wrong.is_empty() {
        bail!(
            "{} answers off the table:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
    Ok(())
}

/// A refusal says who asked, for what, on which resource; an unauthenticated caller is told
/// what credentials would do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_names_the_caller_the_permission_and_the_resource() -> Result<()> {
    let w = World::start().await?;
    let denied = calls::get_well_status(&w, Caller::NotPermitted).await;
    let m = denied.message();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    for part in ["oidc:mallory", "READ", "well:/acme:w"] {
        assert!(m.contains(part), "{part} not in {m:?}");
    }
    let anonymous = calls::get_well_status(&w, Caller::Nobody).await;
    assert_eq!(
        anonymous.code(),
        tonic::Code::Unauthenticated,
        "{anonymous:?}"
    );
    assert!(
        anonymous.message().contains("bearer token"),
        "{anonymous:?}"
    );
    let expired = calls::get_well_status(&w, Caller::Expired).await;
    assert!(
        expired.message().to_lowercase().contains("expired"),
        "{expired:?}"
    );
    w.shutdown().await;
    Ok(())
}
