//! Key layouts. Every integer is big-endian so byte order is numeric order, which makes one
//! well shard a contiguous range, a time-range query a range scan, and a stream's messages a
//! seq-ordered range.

/// Bytes in a well entry key: well id, shard, timestamp, seq.
pub const ENTRY_KEY_LEN: usize = 4 + 8 + 8 + 8;

/// `[well u32][shard u64][timestamp u64][seq u64]`. Timestamps are validated non-negative
/// before they get here, so they encode as plain u64. The seq is per well and monotonic, only
/// to keep two entries with the same timestamp apart.
pub fn entry_key(well: u32, shard: u64, ts_ns: u64, seq: u64) -> [u8; ENTRY_KEY_LEN] {
    let mut k = [0u8; ENTRY_KEY_LEN];
    k[..4].copy_from_slice(&well.to_be_bytes());
    k[4..12].copy_from_slice(&shard.to_be_bytes());
    k[12..20].copy_from_slice(&ts_ns.to_be_bytes());
    k[20..28].copy_from_slice(&seq.to_be_bytes());
    k
}

/// (well, shard, timestamp, seq) back from an entry key.
pub fn parse_entry_key(k: &[u8]) -> Option<(u32, u64, u64, u64)> {
    if k.len() != ENTRY_KEY_LEN {
        return None;
    }
    let u64_at = |i: usize| k.get(i..i + 8)?.try_into().ok().map(u64::from_be_bytes);
    Some((
        u32::from_be_bytes(k.get(..4)?.try_into().ok()?),
        u64_at(4)?,
        u64_at(12)?,
        u64_at(20)?,
    ))
}

/// Start of shard `shard` of `well` (inclusive).
pub fn shard_start(well: u32, shard: u64) -> Vec<u8> {
    let mut k = well.to_be_bytes().to_vec();
    k.extend_from_slice(&shard.to_be_bytes());
    k
}

/// End of shard `shard` of `well` (exclusive).
pub fn shard_end(well: u32, shard: u64) -> Vec<u8> {
    match shard.checked_add(1) {
        Some(next) => shard_start(well, next),
        None => well_end(well),
    }
}

/// The first key of entries of `well` at or after `ts_ns` given its shard width.
pub fn time_start(well: u32, shard_ns: u64, ts_ns: u64) -> Vec<u8> {
    entry_key(well, ts_ns / shard_ns, ts_ns, 0).to_vec()
}

pub fn well_start(well: u32) -> Vec<u8> {
    well.to_be_bytes().to_vec()
}

pub fn well_end(well: u32) -> Vec<u8> {
    prefix_end(&well.to_be_bytes())
}

/// Kinds of record in a stream's key range.
pub const STREAM_MSG: u8 = b'm';
pub const STREAM_MSG_ID: u8 = b'd';
pub const STREAM_STATE: u8 = b's';

/// `[stream u32][kind u8][rest]`.
pub fn stream_key(stream: u32, kind: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + rest.len());
    k.extend_from_slice(&stream.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(rest);
    k
}

pub fn msg_key(stream: u32, seq: u64) -> Vec<u8> {
    stream_key(stream, STREAM_MSG, &seq.to_be_bytes())
}

/// The seq of a message key.
pub fn parse_msg_key(k: &[u8]) -> Option<u64> {
    k.get(5..13)?.try_into().ok().map(u64::from_be_bytes)
}

pub fn msg_end(stream: u32) -> Vec<u8> {
    stream_key(stream, STREAM_MSG + 1, &[])
}

pub fn stream_end(stream: u32) -> Vec<u8> {
    prefix_end(&stream.to_be_bytes())
}

/// Meta keys: node bookkeeping in the `meta` space.
pub mod meta {
    pub const NEXT_LOCAL_ID: &[u8] = b"next-local-id";
    pub const CATALOG: &[u8] = b"catalog";

    pub fn well_id(name: &str) -> Vec<u8> {
        [b"well-id/".as_slice(), name.as_bytes()].concat()
    }
    pub fn stream_id(name: &str) -> Vec<u8> {
        [b"stream-id/".as_slice(), name.as_bytes()].concat()
    }
    pub fn well_seq(well: u32) -> Vec<u8> {
        [b"well-seq/".as_slice(), &well.to_be_bytes()].concat()
    }
    pub const STAT_PREFIX: &[u8] = b"stat/";
    /// `stat/[well][shard][tier]` → entries, bytes.
    pub fn shard_stat(well: u32, shard: u64, tier: u8) -> Vec<u8> {
        let mut k = STAT_PREFIX.to_vec();
        k.extend_from_slice(&well.to_be_bytes());
        k.extend_from_slice(&shard.to_be_bytes());
        k.push(tier);
        k
    }
    pub fn shard_stat_prefix(well: u32) -> Vec<u8> {
        [STAT_PREFIX, &well.to_be_bytes()].concat()
    }
    /// This cluster's id in ditto batch ids, when none is configured.
    pub const DITTO_SOURCE_ID: &[u8] = b"ditto/source-id";
    /// `ditto/progress/[well]\0[target]` → a ditto worker's progress.
    pub fn ditto_progress(well: &str, target: &str) -> Vec<u8> {
        [
            b"ditto/progress/".as_slice(),
            well.as_bytes(),
            b"\0",
            target.as_bytes(),
        ]
        .concat()
    }
    pub const COMPACT_PREFIX: &[u8] = b"compact/";
    /// `compact/[space]/[start]` → end: a range deleted with its data, for background cleanup
    /// to compact.
    pub fn compaction(space: &str, start: &[u8]) -> Vec<u8> {
        [COMPACT_PREFIX, space.as_bytes(), b"/", start].concat()
    }
    pub const BATCH_PREFIX: &[u8] = b"batch/";
    pub fn batch_id(id: &str) -> Vec<u8> {
        [BATCH_PREFIX, id.as_bytes()].concat()
    }
}

/// The smallest key greater than every key that starts with `prefix` (None: no such key).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff: nothing sorts after the prefix within a bounded key; use a long 0xff key.
    vec![0xff; prefix.len() + 64]
}

/// The smallest key strictly greater than `key`.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHARD_NS: u64 = (1 << 17) * 1_000_000_000;

    proptest! {
        #[test]
        fn key_order_is_shard_time_seq_order(
            a in (0u64..u64::MAX / 2, any::<u64>()),
            b in (0u64..u64::MAX / 2, any::<u64>()),
            well in any::<u32>(),
        ) {
            let ka = entry_key(well, a.0 / SHARD_NS, a.0, a.1);
            let kb = entry_key(well, b.0 / SHARD_NS, b.0, b.1);
            let ta = (a.0 / SHARD_NS, a.0, a.1);
            let tb = (b.0 / SHARD_NS, b.0, b.1);
            prop_assert_eq!(ka.cmp(&kb), ta.cmp(&tb));
            prop_assert_eq!(parse_entry_key(&ka), Some((well, ta.0, ta.1, ta.2)));
        }

        #[test]
        fn a_shard_is_a_contiguous_range(ts in 0u64..u64::MAX / 2, seq in any::<u64>(), well in 0u32..u32::MAX) {
            let shard = ts / SHARD_NS;
            let k = entry_key(well, shard, ts, seq).to_vec();
            prop_assert!(shard_start(well, shard) <= k && k < shard_end(well, shard));
            prop_assert!(k >= time_start(well, SHARD_NS, ts));
            // Another well's keys never fall inside this well's range.
            let other = entry_key(well + 1, shard, ts, seq).to_vec();
            prop_assert!(other >= well_end(well));
        }

        #[test]
        fn message_keys_sort_by_seq(a in any::<u64>(), b in any::<u64>(), s in any::<u32>()) {
            prop_assert_eq!(msg_key(s, a).cmp(&msg_key(s, b)), a.cmp(&b));
            prop_assert_eq!(parse_msg_key(&msg_key(s, a)), Some(a));
            prop_assert!(msg_key(s, a) < msg_end(s));
        }
    }
}
