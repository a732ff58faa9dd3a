//! Defaults of the data model that the catalogue and the data nodes must agree on.

/// A well's shard duration when none is given: 2^17 s (about 1.5 days), as Gravwell.
pub const DEFAULT_SHARD_SECS: u64 = 1 << 17;
