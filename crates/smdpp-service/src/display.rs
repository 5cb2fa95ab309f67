//! How the command-line tools show stored values: times as RFC 3339 in UTC (the store keeps
//! epoch milliseconds).

use time::OffsetDateTime;

/// `ms` (milliseconds since the Unix epoch) as RFC 3339 UTC with milliseconds, e.g.
/// `2026-12-07T03:21:14.123Z`. Values outside the calendar range print as the raw number.
pub fn rfc3339(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_796_613_674_123), "2026-12-07T03:21:14.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_out_of_range_by_printing_the_number() {
        assert_eq!(rfc3339(i64::MAX), i64::MAX.to_string());
    }
}
