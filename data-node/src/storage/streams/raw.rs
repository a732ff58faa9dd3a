//! Messages as stored, moved between streams and nodes without being decoded: what a tail
//! reads, what a mirror or source copies, what a stream group's log carries.

use crate::storage::codec::MessageValue;
use crate::storage::error::StorageResult;
use bytes::{Bytes, BytesMut};

/// A message as stored, with what filters and indexes need decoded beside it: a copy
/// between streams moves the stored bytes as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub seq: u64,
    pub subject: String,
    pub timestamp_ns: i64,
    /// The stored value ([`MessageValue`] encoded), often a slice of a buffer shared with
    /// the messages read or received with it.
    pub value: Bytes,
}

impl RawMessage {
    pub fn new(seq: u64, m: &MessageValue) -> Self {
        RawMessage {
            seq,
            subject: m.subject.clone(),
            timestamp_ns: m.timestamp_ns,
            value: m.encode().into(),
        }
    }

    /// A stored value received from elsewhere (another node's reply), checked whole before
    /// anything trusts it; kept as it is, with no copy.
    pub fn checked(seq: u64, value: Bytes) -> StorageResult<Self> {
        let (timestamp_ns, subject) = MessageValue::check(&value)?;
        Ok(RawMessage {
            seq,
            subject: subject.to_string(),
            timestamp_ns,
            value,
        })
    }

    /// Decoded, its data a slice of the stored value rather than a copy.
    pub fn decode(&self) -> StorageResult<MessageValue> {
        MessageValue::decode_shared(&self.value)
    }
}

/// The first chunk of a read: a live tail reads a message or two at a time.
const FIRST_CHUNK: usize = 4 << 10;
/// The most a chunk grows to: dozens of small messages per allocation, and little memory
/// kept alive by a message held after its neighbours are gone.
const CHUNK: usize = 64 << 10;

/// Stored values copied out of the engine as a read visits them, packed into shared chunks
/// (each twice the size of the one before, up to [`CHUNK`]): one allocation per chunk rather
/// than one per message.
pub(super) struct Chunks {
    buf: BytesMut,
    next: usize,
}

impl Chunks {
    pub(super) fn new() -> Self {
        Chunks {
            buf: BytesMut::new(),
            next: FIRST_CHUNK,
        }
    }

    pub(super) fn copy(&mut self, v: &[u8]) -> Bytes {
        if self.buf.capacity() < v.len() {
            self.buf = BytesMut::with_capacity(self.next.max(v.len()));
            self.next = (self.next * 2).min(CHUNK);
        }
        self.buf.extend_from_slice(v);
        self.buf.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_copy_each_value_exactly_and_share_allocations() {
        let mut c = Chunks::new();
        let small: Vec<Bytes> = (0..100u8).map(|i| c.copy(&[i; 1000])).collect();
        for (i, b) in small.iter().enumerate() {
            assert_eq!(&b[..], &[i as u8; 1000][..]);
        }
        // Neighbours in one chunk sit side by side.
        assert_eq!(small[0].as_ptr().wrapping_add(1000), small[1].as_ptr());
        let big = c.copy(&vec![7u8; CHUNK + 1]);
        assert_eq!(big.len(), CHUNK + 1);
        assert!(big.iter().all(|&b| b == 7));
        assert_eq!(&c.copy(b"after")[..], b"after");
        assert!(c.copy(b"").is_empty());
    }

    #[test]
    fn checked_takes_valid_values_and_refuses_corrupt_ones() {
        let m = MessageValue {
            subject: "a.b".into(),
            headers: [("k".to_string(), "v".to_string())].into(),
            data: Bytes::from_static(b"payload"),
            timestamp_ns: 42,
        };
        let value = Bytes::from(m.encode());
        let raw = RawMessage::checked(3, value.clone()).unwrap();
        assert_eq!(raw, RawMessage::new(3, &m));
        assert_eq!(raw.value.as_ptr(), value.as_ptr(), "no copy");
        assert_eq!(raw.decode().unwrap(), m);
        assert!(RawMessage::checked(3, value.slice(..value.len() - 1)).is_err());
    }
}
