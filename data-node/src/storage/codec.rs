//! Value encodings: length-prefixed fields, hand-rolled because they sit on the ingest hot
//! path and must stay stable on disk. Decoding never panics: bad bytes are `Corrupt`.

use super::error::StorageError;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A well entry as stored (the key holds well, shard, timestamp and seq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryValue {
    pub tag: u32,
    pub source: Option<IpAddr>,
    pub data: Bytes,
    pub values: BTreeMap<String, String>,
}

/// A stream message as stored (the key holds the seq).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageValue {
    pub subject: String,
    pub headers: BTreeMap<String, String>,
    pub data: Bytes,
    pub timestamp_ns: i64,
}

const VERSION: u8 = 1;

#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer(Vec::with_capacity(n))
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Bytes with a u32 length; callers bound sizes well below 4 GiB at validation.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    pub fn map(&mut self, m: &BTreeMap<String, String>) -> &mut Self {
        self.u32(m.len() as u32);
        for (k, v) in m {
            self.bytes(k.as_bytes()).bytes(v.as_bytes());
        }
        self
    }
}

pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], StorageError> {
        if self.buf.len() < n {
            return Err(StorageError::Corrupt(format!("{} is truncated", self.what)));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    /// What is left unread.
    pub fn rest(self) -> &'a [u8] {
        self.buf
    }
    /// Every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn u8(&mut self) -> Result<u8, StorageError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, StorageError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    pub fn u64(&mut self) -> Result<u64, StorageError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    pub fn i64(&mut self) -> Result<i64, StorageError> {
        Ok(self.u64()? as i64)
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], StorageError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> Result<String, StorageError> {
        self.str().map(str::to_string)
    }
    /// A string borrowed from the buffer (no copy).
    pub fn str(&mut self) -> Result<&'a str, StorageError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map_err(|_| StorageError::Corrupt(format!("{} holds a non-UTF-8 string", self.what)))
    }
    pub fn map(&mut self) -> Result<BTreeMap<String, String>, StorageError> {
        let n = self.u32()?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            m.insert(k, self.string()?);
        }
        Ok(m)
    }
    fn version(&mut self) -> Result<(), StorageError> {
        match self.u8()? {
            VERSION => Ok(()),
            v => Err(StorageError::Corrupt(format!(
                "{} has unknown version {v}",
                self.what
            ))),
        }
    }
}

impl EntryValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + self.data.len());
        w.u8(VERSION).u32(self.tag);
        match self.source {
            None => w.u8(0),
            Some(IpAddr::V4(a)) => w.u8(4).bytes(&a.octets()),
            Some(IpAddr::V6(a)) => w.u8(6).bytes(&a.octets()),
        };
        w.bytes(&self.data).map(&self.values);
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Self, StorageError> {
        let mut r = Reader::new(buf, "well entry");
        r.version()?;
        let tag = r.u32()?;
        let source = match r.u8()? {
            0 => None,
            4 => {
                let b: [u8; 4] = r
                    .bytes()?
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("well entry IPv4 source".into()))?;
                Some(IpAddr::from(b))
            }
            6 => {
                let b: [u8; 16] = r
                    .bytes()?
                    .try_into()
                    .map_err(|_| StorageError::Corrupt("well entry IPv6 source".into()))?;
                Some(IpAddr::from(b))
            }
            k => return Err(StorageError::Corrupt(format!("well entry source kind {k}"))),
        };
        let data = Bytes::copy_from_slice(r.bytes()?);
        let values = r.map()?;
        Ok(EntryValue {
            tag,
            source,
            data,
            values,
        })
    }

    /// Bytes this entry counts for in shard stats (key + value).
    pub fn stored_size(encoded_len: usize) -> u64 {
        (super::keys::ENTRY_KEY_LEN + encoded_len) as u64
    }
}

impl MessageValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + self.subject.len() + self.data.len());
        w.u8(VERSION)
            .i64(self.timestamp_ns)
            .bytes(self.subject.as_bytes())
            .map(&self.headers)
            .bytes(&self.data);
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Self, StorageError> {
        Self::decode_with(buf, Bytes::copy_from_slice)
    }

    /// As [`decode`](Self::decode), the data a slice of `buf` rather than a copy.
    pub fn decode_shared(buf: &Bytes) -> Result<Self, StorageError> {
        Self::decode_with(buf, |d| buf.slice_ref(d))
    }

    fn decode_with<'a>(
        buf: &'a [u8],
        data: impl FnOnce(&'a [u8]) -> Bytes,
    ) -> Result<Self, StorageError> {
        let mut r = Reader::new(buf, "stream message");
        r.version()?;
        let timestamp_ns = r.i64()?;
        let subject = r.string()?;
        let headers = r.map()?;
        let data = data(r.bytes()?);
        Ok(MessageValue {
            subject,
            headers,
            data,
            timestamp_ns,
        })
    }

    /// A stored message with `extra` headers set (replacing any of the same name), re-encoded
    /// from its stored bytes without decoding the payload: what a sourced copy stores.
    pub fn with_headers(raw: &[u8], extra: &[(&str, &str)]) -> Result<Vec<u8>, StorageError> {
        let mut r = Reader::new(raw, "stream message");
        r.version()?;
        let timestamp_ns = r.i64()?;
        let subject = r.bytes()?;
        let n = r.u32()?;
        let mut kept = Vec::new();
        for _ in 0..n {
            let (k, v) = (r.bytes()?, r.bytes()?);
            if !extra.iter().any(|(e, _)| e.as_bytes() == k) {
                kept.push((k, v));
            }
        }
        let data = r.bytes()?;
        let added: usize = extra.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        let mut w = Writer::with_capacity(raw.len() + added);
        w.u8(VERSION)
            .i64(timestamp_ns)
            .bytes(subject)
            .u32((kept.len() + extra.len()) as u32);
        for (k, v) in kept {
            w.bytes(k).bytes(v);
        }
        for (k, v) in extra {
            w.bytes(k.as_bytes()).bytes(v.as_bytes());
        }
        w.bytes(data);
        Ok(w.0)
    }

    /// Only the timestamp and subject (borrowed from `buf`), for scans that must not copy
    /// payloads, or subjects their filter refuses.
    pub fn decode_head(buf: &[u8]) -> Result<(i64, &str), StorageError> {
        let mut r = Reader::new(buf, "stream message");
        r.version()?;
        let ts = r.i64()?;
        Ok((ts, r.str()?))
    }

    /// Checks that `buf` is a whole stored message, as [`decode`](Self::decode) would take it
    /// and with nothing after it, without allocating: for stored values received from another
    /// node, which are stored as they are. Returns the timestamp and subject (borrowed).
    pub fn check(buf: &[u8]) -> Result<(i64, &str), StorageError> {
        let mut r = Reader::new(buf, "stream message");
        r.version()?;
        let ts = r.i64()?;
        let subject = r.str()?;
        let n = r.u32()?;
        for _ in 0..n {
            r.str()?;
            r.str()?;
        }
        r.bytes()?;
        if !r.is_empty() {
            return Err(StorageError::Corrupt(
                "stream message has bytes after its data".into(),
            ));
        }
        Ok((ts, subject))
    }

    /// Bytes a message counts for against `max_bytes` (as JetStream: subject, headers, data).
    pub fn size(&self) -> u64 {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        (self.subject.len() + headers + self.data.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_headers_sets_and_replaces_headers_and_keeps_the_rest() {
        let m = MessageValue {
            subject: "ORDERS.new".into(),
            headers: [
                ("Msg-Id".to_string(), "7".to_string()),
                ("A".into(), "old".into()),
            ]
            .into(),
            data: Bytes::from_static(b"payload"),
            timestamp_ns: 42,
        };
        let out = MessageValue::with_headers(&m.encode(), &[("A", "new"), ("B", "b")]).unwrap();
        let mut want = m.clone();
        want.headers.insert("A".into(), "new".into());
        want.headers.insert("B".into(), "b".into());
        assert_eq!(MessageValue::decode(&out).unwrap(), want);
        let enc = m.encode();
        assert!(MessageValue::with_headers(&enc[..enc.len() - 1], &[("A", "x")]).is_err());
    }

    #[test]
    fn entry_round_trips_and_truncation_is_corrupt() {
        for source in [
            None,
            Some("10.0.0.1".parse().unwrap()),
            Some("::1".parse().unwrap()),
        ] {
            let e = EntryValue {
                tag: 7,
                source,
                data: Bytes::from_static(b"hello"),
                values: [("k".to_string(), "v".to_string())].into(),
            };
            let enc = e.encode();
            assert_eq!(EntryValue::decode(&enc).unwrap(), e);
            for cut in 0..enc.len() {
                assert!(EntryValue::decode(&enc[..cut]).is_err());
            }
        }
    }

    #[test]
    fn message_round_trips() {
        let m = MessageValue {
            subject: "a.b".into(),
            headers: [("Msg-Id".to_string(), "1".to_string())].into(),
            data: Bytes::from_static(b"x"),
            timestamp_ns: 42,
        };
        let enc = m.encode();
        assert_eq!(MessageValue::decode(&enc).unwrap(), m);
        assert_eq!(MessageValue::decode_head(&enc).unwrap(), (42, "a.b"));
        assert!(MessageValue::decode(&enc[..enc.len() - 1]).is_err());
    }

    #[test]
    fn check_takes_what_decode_takes_and_nothing_else() {
        let m = MessageValue {
            subject: "a.b".into(),
            headers: [
                ("Msg-Id".to_string(), "1".to_string()),
                ("k".into(), "v".into()),
            ]
            .into(),
            data: Bytes::from_static(b"payload"),
            timestamp_ns: -7,
        };
        let enc = m.encode();
        assert_eq!(MessageValue::check(&enc).unwrap(), (-7, "a.b"));
        for cut in 0..enc.len() {
            assert!(MessageValue::check(&enc[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(MessageValue::check(&longer).is_err());
        let mut version = enc.clone();
        version[0] = 9;
        assert!(MessageValue::check(&version).is_err());
        // A header name that is not UTF-8 (`decode` refuses it too).
        let bad = MessageValue {
            headers: [("\u{e9}".to_string(), "v".to_string())].into(),
            ..m
        }
        .encode();
        let at = bad.iter().position(|&b| b == 0xc3).unwrap();
        let mut bad = bad;
        bad[at] = 0xff;
        assert!(MessageValue::decode(&bad).is_err());
        assert!(MessageValue::check(&bad).is_err());
        // A huge header count in a short value ends at the first missing byte.
        let mut w = Writer::default();
        w.u8(VERSION).i64(0).bytes(b"s").u32(u32::MAX);
        assert!(MessageValue::check(&w.0).is_err());
    }
}
