//! Entities sealed, opened, counted and re-sealed through the configured fields.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use tributary_proto::v1::{entity::Kind, Stream, StreamSource, Target, Well};

fn key_text(fill: u8) -> String {
    URL_SAFE_NO_PAD.encode([fill; 32])
}

fn with_keys(current: Option<u8>, old: &[u8]) -> Encryption {
    Encryption::from_config(&EncryptionConfig {
        key: current.map(key_text).unwrap_or_default(),
        old_keys: old.iter().map(|b| key_text(*b)).collect(),
        ..Default::default()
    })
    .expect("config")
}

fn target(secret: &str) -> Entity {
    Entity {
        kind: Some(Kind::Target(Target {
            name: "default:t".into(),
            cleartext_endpoints: vec!["b:1".into()],
            ingest_secret: secret.into(),
            ..Default::default()
        })),
    }
}

fn secret_of(e: &Entity) -> &str {
    match &e.kind {
        Some(Kind::Target(t)) => &t.ingest_secret,
        _ => "",
    }
}

fn mirrored(creds: &str) -> Entity {
    Entity {
        kind: Some(Kind::Stream(Stream {
            name: "default:m".into(),
            mirror: Some(StreamSource {
                stream: "O".into(),
                external: "b:1".into(),
                external_credentials: creds.into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    }
}

fn creds_of(e: &Entity) -> &str {
    match &e.kind {
        Some(Kind::Stream(s)) => s
            .mirror
            .as_ref()
            .map_or("", |m| m.external_credentials.as_str()),
        _ => "",
    }
}

#[test]
fn sealed_entities_hold_no_plaintext_and_open_to_what_was_written() {
    let enc = with_keys(Some(1), &[]);
    for (mut e, plain) in [
        (target("t-secret"), "t-secret"),
        (mirrored("m-creds"), "m-creds"),
    ] {
        let before = e.clone();
        assert_eq!(enc.seal_entity(&mut e).unwrap(), 1);
        let sealed = format!("{}{}", secret_of(&e), creds_of(&e));
        assert!(sealed.starts_with(SEALED_PREFIX), "{sealed}");
        assert!(!format!("{e:?}").contains(plain));
        assert_eq!(enc.unsettled(&e), 0);
        assert_eq!(enc.open_entity(&mut e).unwrap(), 1);
        assert_eq!(e, before);
    }
}

#[test]
fn the_redacted_marker_and_empty_values_are_not_sealed() {
    let enc = with_keys(Some(1), &[]);
    for v in [REDACTED, ""] {
        let mut e = target(v);
        assert_eq!(enc.seal_entity(&mut e).unwrap(), 0);
        assert_eq!(secret_of(&e), v);
    }
    // Wells have no configured field: untouched.
    let mut w = Entity {
        kind: Some(Kind::Well(Well {
            name: "w".into(),
            ..Default::default()
        })),
    };
    assert_eq!(enc.seal_entity(&mut w).unwrap(), 0);
}

#[test]
fn without_a_key_nothing_is_sealed_and_plaintext_reads_as_is() {
    let enc = Encryption::default();
    let mut e = target("plain");
    assert_eq!(enc.seal_entity(&mut e).unwrap(), 0);
    assert_eq!(secret_of(&e), "plain");
    assert_eq!(enc.open_entity(&mut e).unwrap(), 0);
    // A value sealed elsewhere cannot be opened here, and the error names the field.
    let mut sealed = target("s");
    with_keys(Some(1), &[]).seal_entity(&mut sealed).unwrap();
    let err = enc.open_entity(&mut sealed).unwrap_err();
    assert_eq!(err.pointer, "/target/ingest_secret");
    assert!(
        matches!(err.source, CryptoError::UnknownKey { .. }),
        "{err}"
    );
}

#[test]
fn rotation_counts_and_reseals_what_is_under_an_old_key() {
    let old = with_keys(Some(1), &[]);
    let new = with_keys(Some(2), &[1]);
    let mut t = target("t-secret");
    let mut m = mirrored("m-creds");
    old.seal_entity(&mut t).unwrap();
    old.seal_entity(&mut m).unwrap();
    let legacy = target("from-before-encryption");

    let mut uses = BTreeMap::new();
    for e in [&t, &m, &legacy] {
        new.count_key_uses(e, &mut uses);
    }
    let old_kid = old.keys().current_kid().unwrap().to_string();
    assert_eq!(uses.get(&old_kid), Some(&2));
    assert_eq!(uses.get(PLAINTEXT), Some(&1));

    for (mut e, plain) in [
        (t, "t-secret"),
        (m, "m-creds"),
        (legacy, "from-before-encryption"),
    ] {
        assert_eq!(new.unsettled(&e), 1);
        assert_eq!(new.reseal_entity(&mut e).unwrap(), 1);
        assert_eq!(new.unsettled(&e), 0);
        assert_eq!(new.reseal_entity(&mut e).unwrap(), 0, "settled values stay");
        let v = format!("{}{}", secret_of(&e), creds_of(&e));
        assert_eq!(kid_of(&v), new.keys().current_kid());
        // The old key is no longer needed.
        with_keys(Some(2), &[]).open_entity(&mut e).unwrap();
        assert_eq!(format!("{}{}", secret_of(&e), creds_of(&e)), plain);
    }
}

#[test]
fn a_value_that_does_not_open_fails_the_reseal_and_changes_nothing() {
    let mut e = target("s");
    with_keys(Some(3), &[]).seal_entity(&mut e).unwrap();
    let before = e.clone();
    let err = with_keys(Some(2), &[1]).reseal_entity(&mut e).unwrap_err();
    assert!(
        matches!(err.source, CryptoError::UnknownKey { .. }),
        "{err}"
    );
    assert_eq!(e, before);
}
