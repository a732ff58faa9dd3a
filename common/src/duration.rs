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

/// Serde for config durations as operators write them (`"30s"`, `"1m 30s"`, `"500ms"`), or a
/// number of seconds (an environment value like `TRIBUTARY_THROTTLING__INTERVAL=2` arrives as a
/// number). Written back in humantime's form. Use with `#[serde(with = "...::human")]`.
pub mod human {
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(HumanVisitor)
    }

    struct HumanVisitor;

    impl Visitor<'_> for HumanVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"30s\" or \"500ms\", or a number of seconds")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::custom(format!("{v} seconds is negative")))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v).map_err(|e| E::custom(format!("{v} seconds: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct D {
        #[serde(with = "human")]
        d: Duration,
    }

    #[test]
    fn config_durations_take_text_or_seconds_and_round_trip() {
        let from =
            |v: serde_json::Value| serde_json::from_value::<D>(serde_json::json!({ "d": v }));
        assert_eq!(from("1m 30s".into()).unwrap().d, Duration::from_secs(90));
        assert_eq!(from("250ms".into()).unwrap().d, Duration::from_millis(250));
        assert_eq!(from(2.into()).unwrap().d, Duration::from_secs(2));
        assert_eq!(from(0.5.into()).unwrap().d, Duration::from_millis(500));
        assert!(from((-1).into()).is_err());
        assert!(from("soon".into())
            .unwrap_err()
            .to_string()
            .contains("soon"));
        let d = D {
            d: Duration::from_millis(1500),
        };
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(text, r#"{"d":"1s 500ms"}"#);
        assert_eq!(serde_json::from_str::<D>(&text).unwrap(), d);
    }

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
