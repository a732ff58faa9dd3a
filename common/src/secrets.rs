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

/// The `KEY_file` form of secret `key`: the file's content (less its trailing newline) into
/// `value`, and `file` cleared so a second call changes nothing. Both forms set, an unreadable
/// or an empty file: an error naming the key and the path. Secrets given as flags show in
/// `ps`; in files they do not.
pub fn take_file(value: &mut String, file: &mut String, key: &str) -> Result<(), String> {
    if file.is_empty() {
        return Ok(());
    }
    if !value.is_empty() {
        return Err(format!(
            "keys `{key}` and `{key}_file` are both set: keep one"
        ));
    }
    let read =
        std::fs::read_to_string(&*file).map_err(|e| format!("key `{key}_file`: {file}: {e}"))?;
    // A trailing newline is how editors and `echo` end a file, never part of the secret.
    let secret = read.trim_end_matches(['\n', '\r']);
    if secret.is_empty() {
        return Err(format!("key `{key}_file`: {file} is empty"));
    }
    *value = secret.to_string();
    file.clear();
    Ok(())
}

/// The `KEY_file` form of a list of secrets: one per line (blank lines and `#` comments
/// skipped), added to `values`; `file` cleared. An unreadable file or one with no secret: an
/// error naming the key and the path.
pub fn take_list_file(
    values: &mut Vec<String>,
    file: &mut String,
    key: &str,
) -> Result<(), String> {
    if file.is_empty() {
        return Ok(());
    }
    let read =
        std::fs::read_to_string(&*file).map_err(|e| format!("key `{key}_file`: {file}: {e}"))?;
    let before = values.len();
    values.extend(
        read.lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(str::to_string),
    );
    if values.len() == before {
        return Err(format!("key `{key}_file`: {file} holds no secret"));
    }
    file.clear();
    Ok(())
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
    #[test]
    fn secrets_come_from_files_without_their_newline_and_lists_one_per_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = dir.path().join("one");
        std::fs::write(&one, "s3cret\n").expect("write");
        let (mut v, mut f) = (String::new(), one.display().to_string());
        super::take_file(&mut v, &mut f, "cluster_secret").expect("read");
        assert_eq!((v.as_str(), f.as_str()), ("s3cret", ""));
        let (mut v, mut f) = ("given".to_string(), one.display().to_string());
        let e = super::take_file(&mut v, &mut f, "cluster_secret").unwrap_err();
        assert!(e.contains("cluster_secret_file"), "{e}");
        let many = dir.path().join("many");
        std::fs::write(&many, "# rotation\nold\n\nnew\n").expect("write");
        let (mut v, mut f) = (vec!["flag".to_string()], many.display().to_string());
        super::take_list_file(&mut v, &mut f, "ingest_secrets").expect("read");
        assert_eq!(v, ["flag", "old", "new"]);
        std::fs::write(&many, "# none\n").expect("write");
        let mut f = many.display().to_string();
        let e = super::take_list_file(&mut Vec::new(), &mut f, "ingest_secrets").unwrap_err();
        assert!(
            e.contains("ingest_secrets_file") && e.contains("no secret"),
            "{e}"
        );
    }

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
