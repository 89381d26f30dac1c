//! DSL durations as wall-clock time: ISO 8601 literals (`PT0.1S`, `P1DT2H`) and inline
//! components (`{ seconds: 1, milliseconds: 500 }`).

use std::time::Duration;

use super::{self as dsl, DurationInline};

/// The length of an inline duration; saturates instead of overflowing.
pub fn inline(duration: &DurationInline) -> Duration {
    let component = |value: Option<u64>, millis: u64| value.unwrap_or(0).saturating_mul(millis);
    let millis = component(duration.days, 86_400_000)
        .saturating_add(component(duration.hours, 3_600_000))
        .saturating_add(component(duration.minutes, 60_000))
        .saturating_add(component(duration.seconds, 1000))
        .saturating_add(component(duration.milliseconds, 1));
    Duration::from_millis(millis)
}

/// Parses an ISO 8601 duration. Years and months are measured from now (in UTC), since their
/// length depends on the calendar.
///
/// # Errors
/// Why the text is not a usable duration.
pub fn iso8601(text: &str) -> Result<Duration, String> {
    let span: jiff::Span =
        text.trim().parse().map_err(|error| format!("\"{text}\" is not an ISO 8601 duration: {error}"))?;
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let signed = span.to_duration(&now).map_err(|error| format!("\"{text}\" is not a usable duration: {error}"))?;
    Duration::try_from(signed).map_err(|_| format!("\"{text}\" is a negative duration"))
}

/// A duration that is not a runtime expression (those are evaluated by the caller first).
///
/// # Errors
/// Why an ISO 8601 string is not a usable duration.
pub fn literal(duration: &dsl::Duration) -> Result<Duration, String> {
    match duration {
        dsl::Duration::Inline(components) => Ok(inline(components)),
        dsl::Duration::Iso8601(text) => iso8601(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_and_inline_durations() {
        assert_eq!(iso8601("PT0.1S").unwrap(), Duration::from_millis(100));
        assert_eq!(iso8601("P1DT1H1M1S").unwrap(), Duration::from_secs(86_400 + 3600 + 61));
        assert_eq!(iso8601("PT1.5M").unwrap(), Duration::from_secs(90));
        assert!(iso8601("P1Y").unwrap() >= Duration::from_hours(365 * 24));
        assert!(iso8601("soon").unwrap_err().contains("\"soon\" is not an ISO 8601 duration"));
        let components = DurationInline { seconds: Some(1), milliseconds: Some(250), ..DurationInline::default() };
        assert_eq!(inline(&components), Duration::from_millis(1250));
        let huge = DurationInline { days: Some(u64::MAX), hours: Some(u64::MAX), ..DurationInline::default() };
        assert_eq!(inline(&huge), Duration::from_millis(u64::MAX));
    }
}
