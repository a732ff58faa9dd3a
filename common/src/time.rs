//! Wall-clock time as the data model stores it: nanoseconds since the Unix epoch.

/// Now, in nanoseconds since the Unix epoch (0 for a clock before 1970, saturating in 2262).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
