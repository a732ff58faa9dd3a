//! Start times as operators write them, for `target create --start-time` and Gravwell's
//! `Start-Time` alike. Gravwell recommends unix epoch seconds or RFC 3339; the catalogue keeps
//! nanoseconds, so a bare number must say which unit it is by its length, and a number that
//! could be either (or milli-/microseconds) is refused rather than guessed.

const NS: i64 = 1_000_000_000;
/// Unix seconds up to year 5138; more digits would be milliseconds or worse.
const MAX_SECONDS_DIGITS: usize = 11;
/// Unix nanoseconds between 2001-09-09 and 2286-11-20 have exactly this many digits.
const NANOS_DIGITS: usize = 19;
const WANT: &str = "want unix seconds (1704067200), unix nanoseconds (19 digits) or RFC 3339 \
                    in UTC (2024-01-01T00:00:00Z; no zone means UTC)";

/// Unix nanoseconds of `raw`: unix seconds (up to 11 digits), unix nanoseconds (19 digits),
/// or RFC 3339 in UTC, with or without the `Z`.
pub fn parse(raw: &str) -> Result<i64, String> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(format!("empty start time: {WANT}"));
    }
    let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        if unsigned.len() != v.len() {
            return Err(format!("start time {v:?} has a sign: {WANT}"));
        }
        return from_digits(v);
    }
    let parsed = humantime::parse_rfc3339_weak(v)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{v}Z")))
        .map_err(|e| format!("malformed start time {v:?} ({e}): {WANT}"))?;
    let d = parsed
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("start time {v:?} is before 1970"))?;
    i64::try_from(d.as_nanos()).map_err(|_| format!("start time {v:?} is out of range"))
}

fn from_digits(v: &str) -> Result<i64, String> {
    let n: i64 = v
        .parse()
        .map_err(|_| format!("start time {v:?} is out of range: {WANT}"))?;
    match v.len() {
        l if l <= MAX_SECONDS_DIGITS => Ok(n * NS),
        NANOS_DIGITS => Ok(n),
        l => Err(format!(
            "start time {v} is ambiguous: {l} digits are neither unix seconds (up to \
             {MAX_SECONDS_DIGITS}) nor unix nanoseconds ({NANOS_DIGITS}); {WANT}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn epoch_seconds_are_seconds() {
        // Gravwell's recommended form: 2024-01-01T02:10:00Z, not 1.7 s after 1970.
        assert_eq!(parse("1704075000"), Ok(1_704_075_000_000_000_000));
        assert_eq!(parse(" 0 "), Ok(0));
    }

    #[test]
    fn nanoseconds_and_rfc3339_are_accepted() {
        assert_eq!(parse("1704075000000000000"), Ok(1_704_075_000_000_000_000));
        assert_eq!(parse("2024-01-01T00:00:00Z"), Ok(1_704_067_200_000_000_000));
        assert_eq!(parse("2024-01-01T00:00:00"), Ok(1_704_067_200_000_000_000));
        assert_eq!(
            parse("2024-01-01T00:00:00.5Z"),
            Ok(1_704_067_200_500_000_000)
        );
    }

    #[test]
    fn ambiguous_and_malformed_values_are_refused_with_the_reason() {
        let ms = parse("1704075000000").unwrap_err();
        assert!(ms.contains("ambiguous") && ms.contains("13 digits"), "{ms}");
        assert!(parse("1704075000000000").unwrap_err().contains("ambiguous"));
        assert!(parse("-5").unwrap_err().contains("sign"));
        assert!(parse("").unwrap_err().contains("empty"));
        let bad = parse("yesterday").unwrap_err();
        assert!(
            bad.contains("yesterday") && bad.contains("unix seconds"),
            "{bad}"
        );
        assert!(parse("99999999999999999999").is_err());
    }
}
