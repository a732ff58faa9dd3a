//! Durations as operators write them: `90s`, `36h`, `1d 12h`, or plain seconds.

use std::time::Duration;

/// Parses a human duration (`humantime` syntax) or a plain number of seconds.
pub fn parse(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw).map_err(|e| format!("malformed duration {raw:?}: {e}"))
}

/// Parses an RFC 3339 time or unix nanoseconds into unix nanoseconds.
pub fn parse_time_ns(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if let Ok(ns) = raw.parse::<i64>() {
        return Ok(ns);
    }
    let t = humantime::parse_rfc3339_weak(raw)
        .map_err(|e| format!("malformed time {raw:?} (want RFC 3339 or unix ns): {e}"))?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("time {raw:?} is before 1970"))?;
    i64::try_from(d.as_nanos()).map_err(|_| format!("time {raw:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_plain_seconds() {
        assert_eq!(parse("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("36h").unwrap(), Duration::from_secs(36 * 3600));
        assert_eq!(parse("1d 12h").unwrap(), Duration::from_secs(36 * 3600));
        assert!(parse("12 parsecs").unwrap_err().contains("12 parsecs"));
    }

    #[test]
    fn parses_rfc3339_and_ns() {
        assert_eq!(
            parse_time_ns("1970-01-01T00:00:01Z").unwrap(),
            1_000_000_000
        );
        assert_eq!(parse_time_ns("42").unwrap(), 42);
        assert!(parse_time_ns("yesterday").is_err());
    }
}
