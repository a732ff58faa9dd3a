//! Secrets on the wire, the same for every service: the marker that stands in for a secret in
//! what clients read, and the check of a secret a request carries in its metadata.

use tonic::metadata::MetadataMap;
use tonic::Status;
use tributary_proto::v1::Stream;

/// What a write-only secret reads as.
pub const REDACTED: &str = "<redacted>";

/// Constant-time equality: the time depends only on the lengths, never on where `a` and `b`
/// differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xff);
    }
    diff == 0
}

/// A fresh random secret, `prefix-` and 32 hex digits from the OS RNG: what a local cluster
/// (`tribctl dev`, the demo) shares between its members and data nodes. It reads as a string
/// wherever config is parsed (never a number or boolean).
pub fn random_token(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

/// Whether `given` is one of `accepted`, compared with every one without stopping early so
/// the timing tells nothing.
pub fn matches_any(accepted: &[String], given: &[u8]) -> bool {
    accepted
        .iter()
        .fold(false, |ok, s| ok | ct_eq(s.as_bytes(), given))
}

/// Checks the secret a request carries in `header` against `accepted` (empty: anyone may
/// call). `what` names the secret in the `UNAUTHENTICATED` error, which also names the header
/// and says whether the secret was missing or wrong.
pub fn check(
    accepted: &[String],
    metadata: &MetadataMap,
    header: &str,
    what: &str,
) -> Result<(), Status> {
    if accepted.is_empty() {
        return Ok(());
    }
    match metadata.get(header) {
        // An empty value is no secret at all: say so, rather than "bad".
        Some(v) if v.is_empty() => Err(Status::unauthenticated(format!(
            "missing {what} (metadata {header} is empty)"
        ))),
        None => Err(Status::unauthenticated(format!(
            "missing {what} (metadata {header})"
        ))),
        Some(v) if matches_any(accepted, v.as_bytes()) => Ok(()),
        Some(_) => Err(Status::unauthenticated(format!(
            "bad {what} (metadata {header})"
        ))),
    }
}

/// Replaces the external credentials of a stream's origins with [`REDACTED`].
pub fn redact_stream(s: &mut Stream) {
    for o in s.mirror.iter_mut().chain(s.sources.iter_mut()) {
        if !o.external_credentials.is_empty() {
            o.external_credentials = REDACTED.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;
    use tributary_proto::v1::StreamSource;

    fn with(header: &'static str, v: &'static str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert(header, MetadataValue::from_static(v));
        m
    }

    #[test]
    fn a_secret_is_missing_bad_or_good() {
        const H: &str = "x-tributary-stream-secret";
        let s = vec!["alpha".to_string(), "beta".to_string()];
        let err = check(&s, &MetadataMap::new(), H, "stream secret").unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("missing") && err.message().contains(H));
        let err = check(&s, &with(H, ""), H, "stream secret").unwrap_err();
        assert!(err.message().contains("missing"), "{}", err.message());
        for wrong in ["bet", "betaa"] {
            let err = check(&s, &with(H, wrong), H, "stream secret").unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
            assert!(err.message().contains("bad") && err.message().contains(H));
        }
        assert!(check(&s, &with(H, "beta"), H, "stream secret").is_ok());
        assert!(check(&s, &with("other", "beta"), H, "x").is_err());
        assert!(check(&[], &MetadataMap::new(), H, "x").is_ok());
        assert!(ct_eq(b"", b""));
        assert!(!ct_eq(b"", b"\xff"));
    }

    #[test]
    fn stream_credentials_are_redacted() {
        let origin = |creds: &str| StreamSource {
            stream: "O".into(),
            external: "https://b:7100".into(),
            external_ca_pem: "PEM".into(),
            external_credentials: creds.into(),
            ..Default::default()
        };
        let mut s = Stream {
            mirror: Some(origin("hush")),
            sources: vec![origin("also"), origin("")],
            ..Default::default()
        };
        redact_stream(&mut s);
        let m = s.mirror.as_ref().map(|m| m.external_credentials.as_str());
        assert_eq!(m, Some(REDACTED));
        assert_eq!(s.sources[0].external_credentials, REDACTED);
        assert_eq!(s.sources[1].external_credentials, "", "nothing to hide");
        assert_eq!(s.sources[0].external_ca_pem, "PEM", "a CA is no secret");
    }
}
