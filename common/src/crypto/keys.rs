//! Keys and sealed values: AES-256-GCM, each value naming the key that sealed it, so keys can
//! rotate while old values still open.
//!
//! A sealed value is `enc:1:<kid>:<base64url(nonce ‖ ciphertext ‖ tag)>`: a 12-byte nonce from
//! the OS RNG, a 16-byte tag, the header `enc:1:<kid>` bound in as associated data (so the
//! version and key id cannot be swapped). The key id is derived from the key (8 characters of
//! URL-safe base64 of a SHA-256), so every process given the same key agrees on it with no
//! extra setting.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// What every sealed value starts with (format version 1).
pub const SEALED_PREFIX: &str = "enc:1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Bytes of the key's SHA-256 in its id (8 characters of base64url).
const KID_BYTES: usize = 6;
const KID_LEN: usize = 8;
/// Domain separation: the id is a hash of this and the key, never of the key alone.
const KID_LABEL: &[u8] = b"tributary encryption key id\0";

/// Why a value does not open (or cannot be sealed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error(
        "sealed under key id {kid}, which is not configured (encryption.key or encryption.old_keys)"
    )]
    UnknownKey { kid: String },
    #[error("sealed under key id {kid} but does not open: it was altered")]
    Tampered { kid: String },
    #[error("not a well-formed sealed value: {0}")]
    Malformed(&'static str),
    #[error("opens to bytes that are not UTF-8")]
    NotUtf8,
    #[error("the OS random number generator failed: {0}")]
    Rng(String),
    #[error("the entity's JSON form: {0}")]
    Form(String),
}

/// One AES-256 key and its id.
#[derive(Clone)]
pub struct Key {
    kid: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.kid)
    }
}

impl Key {
    /// A key given as 32 bytes in URL-safe base64, padded or not (`openssl rand 32 | basenc
    /// --base64url`). The error never repeats the text: it may be a real key, mistyped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty".into());
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|e| format!("is not URL-safe base64 (A-Z a-z 0-9 - _): {e}"))?;
        if bytes.len() != KEY_LEN {
            return Err(format!(
                "is {} bytes; a key is {KEY_LEN} bytes (256 bits) in URL-safe base64, e.g. `openssl rand 32 | basenc --base64url`",
                bytes.len()
            ));
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(KID_LABEL)
            .chain_update(bytes)
            .finalize();
        Key {
            kid: URL_SAFE_NO_PAD.encode(&digest[..KID_BYTES]),
            cipher: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(bytes)),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Seals `plaintext` under this key with a fresh nonce from the OS RNG.
    pub fn seal(&self, plaintext: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| CryptoError::Rng(e.to_string()))?;
        let header = header(&self.kid);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: header.as_bytes(),
                },
            )
            // Only an over-long input fails (64 GiB); a secret never is.
            .map_err(|_| CryptoError::Malformed("too long to seal"))?;
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
        Ok(format!("{header}:{}", URL_SAFE_NO_PAD.encode(body)))
    }

    fn open(&self, sealed: &Sealed<'_>) -> Result<String, CryptoError> {
        let body = URL_SAFE_NO_PAD
            .decode(sealed.body)
            .map_err(|_| CryptoError::Malformed("the body is not URL-safe base64"))?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("the body is too short"));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let header = header(&self.kid);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: header.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Tampered {
                kid: self.kid.clone(),
            })?;
        String::from_utf8(plain).map_err(|_| CryptoError::NotUtf8)
    }
}

fn header(kid: &str) -> String {
    format!("{SEALED_PREFIX}{kid}")
}

/// A value split into its key id and body; a value not starting with [`SEALED_PREFIX`] is
/// plaintext (stored before a key was configured).
struct Sealed<'a> {
    kid: &'a str,
    body: &'a str,
}

fn parse(value: &str) -> Result<Option<Sealed<'_>>, CryptoError> {
    let Some(rest) = value.strip_prefix(SEALED_PREFIX) else {
        return Ok(None);
    };
    let (kid, body) = rest
        .split_once(':')
        .ok_or(CryptoError::Malformed("no key id"))?;
    let kid_ok = kid.len() == KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !kid_ok {
        return Err(CryptoError::Malformed(
            "the key id is not 8 base64url characters",
        ));
    }
    Ok(Some(Sealed { kid, body }))
}

/// The key id a value is sealed under; `None` for plaintext (or a value not well formed).
pub fn kid_of(value: &str) -> Option<&str> {
    parse(value).ok().flatten().map(|s| s.kid)
}

/// The current key (seals) and the old ones (only open).
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    current: Option<Key>,
    old: Vec<Key>,
}

impl KeyRing {
    /// Fails naming the position of a key given twice (an old key equal to the current one, or
    /// two of the same): the ids would not tell them apart.
    pub fn new(current: Option<Key>, old: Vec<Key>) -> Result<Self, usize> {
        for (i, k) in old.iter().enumerate() {
            let before = current.iter().chain(old[..i].iter());
            if before.into_iter().any(|o| o.kid == k.kid) {
                return Err(i);
            }
        }
        Ok(KeyRing { current, old })
    }

    /// The id of the key that seals, if one is configured.
    pub fn current_kid(&self) -> Option<&str> {
        self.current.as_ref().map(Key::kid)
    }

    /// The ids of the keys that only open.
    pub fn old_kids(&self) -> Vec<&str> {
        self.old.iter().map(Key::kid).collect()
    }

    /// Seals `plaintext` under the current key; with none configured it stays plaintext.
    pub fn seal(&self, plaintext: &str) -> Result<String, CryptoError> {
        match &self.current {
            Some(k) => k.seal(plaintext),
            None => Ok(plaintext.to_string()),
        }
    }

    /// The plaintext of `value`: opened with the key its id names, or `value` itself when it is
    /// plaintext.
    pub fn open(&self, value: &str) -> Result<String, CryptoError> {
        let Some(sealed) = parse(value)? else {
            return Ok(value.to_string());
        };
        self.current
            .iter()
            .chain(self.old.iter())
            .find(|k| k.kid == sealed.kid)
            .ok_or_else(|| CryptoError::UnknownKey {
                kid: sealed.kid.to_string(),
            })?
            .open(&sealed)
    }

    /// Whether `value` is as a migration leaves it: sealed under the current key, or plaintext
    /// when no key is current (encryption being turned off).
    pub fn is_settled(&self, value: &str) -> bool {
        match (&self.current, parse(value)) {
            (Some(k), Ok(Some(s))) => s.kid == k.kid,
            (None, Ok(None)) => true,
            _ => false,
        }
    }

    /// `value` opened and sealed again under the current key (or left plaintext without one).
    pub fn reseal(&self, value: &str) -> Result<String, CryptoError> {
        self.seal(&self.open(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key from a fixed byte, as base64url (no padding) and padded.
    fn key_text(fill: u8) -> (String, String) {
        let raw = [fill; KEY_LEN];
        let plain = URL_SAFE_NO_PAD.encode(raw);
        let padded = base64::engine::general_purpose::URL_SAFE.encode(raw);
        (plain, padded)
    }

    fn key(fill: u8) -> Key {
        Key::parse(&key_text(fill).0).expect("valid key")
    }

    fn ring(current: Option<u8>, old: &[u8]) -> KeyRing {
        KeyRing::new(current.map(key), old.iter().map(|b| key(*b)).collect()).expect("ring")
    }

    #[test]
    fn a_value_round_trips_and_names_its_key() {
        let r = ring(Some(1), &[]);
        for plain in ["hush", "", "ünïcödé ✓", &"x".repeat(5000)] {
            let sealed = r.seal(plain).expect("seal");
            assert!(sealed.starts_with(SEALED_PREFIX), "{sealed}");
            assert!(!sealed.contains(plain) || plain.is_empty());
            assert_eq!(kid_of(&sealed), r.current_kid());
            assert_eq!(r.open(&sealed).expect("open"), plain);
            assert!(r.is_settled(&sealed));
        }
    }

    #[test]
    fn padded_and_unpadded_keys_are_the_same_key() {
        let (plain, padded) = key_text(7);
        assert!(padded.ends_with('='), "{padded}");
        let (a, b) = (Key::parse(&plain).unwrap(), Key::parse(&padded).unwrap());
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.kid().len(), KID_LEN);
        let sealed = a.seal("s").unwrap();
        let r = KeyRing::new(Some(b), vec![]).unwrap();
        assert_eq!(r.open(&sealed).unwrap(), "s");
        assert_ne!(key(1).kid(), key(2).kid());
    }

    #[test]
    fn bad_keys_say_what_is_wrong_without_repeating_the_key() {
        let short = URL_SAFE_NO_PAD.encode([9u8; 16]);
        let err = Key::parse(&short).unwrap_err();
        assert!(
            err.contains("is 16 bytes") && !err.contains(&short),
            "{err}"
        );
        let std_b64 = "a+b/".repeat(11);
        let err = Key::parse(&std_b64).unwrap_err();
        assert!(
            err.contains("URL-safe base64") && !err.contains(&std_b64),
            "{err}"
        );
        assert!(Key::parse("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn nonces_differ_so_equal_secrets_seal_differently() {
        let r = ring(Some(1), &[]);
        let a = r.seal("same").unwrap();
        let b = r.seal("same").unwrap();
        assert_ne!(a, b);
        let nonce = |v: &str| {
            let body = v.rsplit(':').next().unwrap();
            URL_SAFE_NO_PAD.decode(body).unwrap()[..NONCE_LEN].to_vec()
        };
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn a_wrong_key_does_not_open() {
        let sealed = ring(Some(1), &[]).seal("hush").unwrap();
        let err = ring(Some(2), &[]).open(&sealed).unwrap_err();
        assert!(matches!(err, CryptoError::UnknownKey { .. }), "{err}");
        assert!(err.to_string().contains("encryption.old_keys"));
        let err = KeyRing::default().open(&sealed).unwrap_err();
        assert!(matches!(err, CryptoError::UnknownKey { .. }), "{err}");
    }

    #[test]
    fn an_old_key_still_opens_and_reseal_moves_to_the_current_one() {
        let before = ring(Some(1), &[]).seal("hush").unwrap();
        let rotated = ring(Some(2), &[1]);
        assert_eq!(rotated.open(&before).unwrap(), "hush");
        assert!(!rotated.is_settled(&before));
        let after = rotated.reseal(&before).unwrap();
        assert_eq!(kid_of(&after), rotated.current_kid());
        assert!(rotated.is_settled(&after));
        // Once moved, the old key can go.
        assert_eq!(ring(Some(2), &[]).open(&after).unwrap(), "hush");
        // Plaintext from before encryption moves too; turning encryption off opens values.
        assert!(!rotated.is_settled("legacy"));
        assert_eq!(
            rotated.open(&rotated.reseal("legacy").unwrap()).unwrap(),
            "legacy"
        );
        let off = ring(None, &[2]);
        assert!(!off.is_settled(&after));
        assert_eq!(off.reseal(&after).unwrap(), "hush");
        assert!(off.is_settled("hush"));
    }

    #[test]
    fn a_tampered_value_does_not_open() {
        let r = ring(Some(1), &[]);
        let sealed = r.seal("hush").unwrap();
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in [0, NONCE_LEN, raw.len() - 1] {
            raw[i] ^= 1;
            let bad = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&raw));
            let err = r.open(&bad).unwrap_err();
            assert!(
                matches!(err, CryptoError::Tampered { .. }),
                "byte {i}: {err}"
            );
            raw[i] ^= 1;
        }
        let cut = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&raw[..NONCE_LEN + 3]));
        assert_eq!(
            r.open(&cut).unwrap_err(),
            CryptoError::Malformed("the body is too short")
        );
        // The key id is bound in: a value moved under another id of the ring does not open.
        let two = ring(Some(1), &[2]);
        let moved = sealed.replacen(key(1).kid(), key(2).kid(), 1);
        assert!(matches!(
            two.open(&moved),
            Err(CryptoError::Tampered { .. })
        ));
        for bad in ["enc:1:", "enc:1:short:AAAA", "enc:1:toolong!!:AAAA"] {
            assert!(
                matches!(r.open(bad), Err(CryptoError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn plaintext_passes_through_and_no_key_seals_nothing() {
        let r = ring(Some(1), &[]);
        assert_eq!(r.open("legacy secret").unwrap(), "legacy secret");
        assert_eq!(kid_of("legacy secret"), None);
        let none = KeyRing::default();
        assert_eq!(none.seal("hush").unwrap(), "hush");
        assert!(none.is_settled("hush"));
    }

    #[test]
    fn a_key_given_twice_is_refused() {
        assert_eq!(
            KeyRing::new(Some(key(1)), vec![key(2), key(1)]).unwrap_err(),
            1
        );
        assert_eq!(KeyRing::new(None, vec![key(2), key(2)]).unwrap_err(), 1);
        assert!(KeyRing::new(Some(key(1)), vec![key(2)]).is_ok());
    }
}
