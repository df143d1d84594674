//! The `Retry-After` response header (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a `Retry-After` header value asks us to wait, as of `now`.
///
/// Accepted: delta-seconds (`120`; also a decimal such as `0.2`, which some servers send)
/// and an HTTP-date in any of RFC 9110's three forms (`Sun, 06 Nov 1994 08:49:37 GMT`,
/// `Sunday, 06-Nov-94 08:49:37 GMT`, `Sun Nov  6 08:49:37 1994`), which gives the time
/// from `now` to that date, or `Duration::ZERO` for a date already past. Anything else
/// (empty, negative, `NaN`, `inf`, garbage) is `None`.
///
/// Huge numbers saturate at `Duration::MAX` rather than panic: the value is returned as
/// the server asked, and capping it (before adding it to an `Instant`) is the caller's job.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.starts_with(|c: char| c.is_ascii_digit()) {
        return parse_seconds(value);
    }
    let date = parse_http_date(value, now)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_seconds(value: &str) -> Option<Duration> {
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Only too many digits for a u64 can fail here.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    // Starts with a digit, so neither a sign nor `inf`/`NaN` spelled out; `1e999` parses
    // as infinity and saturates like any other huge value.
    let seconds: f64 = value.parse().ok()?;
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The three HTTP-date forms. Names are matched without regard to case and runs of spaces
/// count as one; the day name must be a day name but is not checked against the date.
fn parse_http_date(value: &str, now: SystemTime) -> Option<SystemTime> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let is_one_of = |names: &[&str], text: &str| names.iter().any(|n| n.eq_ignore_ascii_case(text));
    let gmt = |text: &str| text.eq_ignore_ascii_case("GMT");
    let (year, month, day, time) = match tokens.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [weekday, day, month, year, time, zone]
            if gmt(zone)
                && weekday
                    .strip_suffix(',')
                    .is_some_and(|w| is_one_of(&SHORT_DAYS, w)) =>
        {
            (four_digits(year)?, month_number(month)?, *day, *time)
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [weekday, date, time, zone]
            if gmt(zone)
                && weekday
                    .strip_suffix(',')
                    .is_some_and(|w| is_one_of(&LONG_DAYS, w)) =>
        {
            let mut parts = date.split('-');
            let (Some(day), Some(month), Some(year), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            let year = match year.len() {
                2 => two_digit_year(digits(year)?, now),
                _ => four_digits(year)?,
            };
            (year, month_number(month)?, day, *time)
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [weekday, month, day, time, year] if is_one_of(&SHORT_DAYS, weekday) => {
            (four_digits(year)?, month_number(month)?, *day, *time)
        }
        _ => return None,
    };
    if day.is_empty() || day.len() > 2 {
        return None;
    }
    let day = digits(day)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut hms = time.split(':');
    let (Some(h), Some(m), Some(s), None) = (hms.next(), hms.next(), hms.next(), hms.next()) else {
        return None;
    };
    let two = |t: &str| if t.len() == 2 { digits(t) } else { None };
    let (h, m, s) = (two(h)?, two(m)?, two(s)?);
    // 60: a leap second.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    let offset = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn four_digits(text: &str) -> Option<i64> {
    if text.len() == 4 { digits(text) } else { None }
}

fn month_number(text: &str) -> Option<i64> {
    let index = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(text))?;
    // At most 12.
    Some(index as i64 + 1)
}

/// RFC 9110: a two-digit year is the next year with those last two digits, unless that is
/// more than 50 years in the future; then it is the most recent past one.
fn two_digit_year(yy: i64, now: SystemTime) -> i64 {
    let now_seconds = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    let this_year = year_from_days(now_seconds.div_euclid(86_400));
    let mut year = this_year - this_year.rem_euclid(100) + yy;
    if year < this_year {
        year += 100;
    }
    if year > this_year + 50 {
        year -= 100;
    }
    year
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of a day counted from 1970-01-01 (the inverse of `days_from_civil`).
fn year_from_days(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400;
    // Months from March: January and February belong to the next civil year.
    if mp >= 10 { year + 1 } else { year }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT.
    fn rfc_example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn parse(value: &str) -> Option<Duration> {
        parse_retry_after(value, rfc_example())
    }

    #[test]
    fn delta_seconds_integer_and_decimal() {
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse("0.2"), Some(Duration::from_millis(200)));
        assert_eq!(parse("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("007"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn huge_values_saturate_instead_of_panicking() {
        assert_eq!(parse("99999999999999999999"), Some(Duration::MAX));
        assert_eq!(
            parse("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse("1e20"), Some(Duration::MAX));
        assert_eq!(parse("100000000000000000000.5"), Some(Duration::MAX));
        assert_eq!(parse("1e999"), Some(Duration::MAX));
        assert_eq!(parse("1e3"), Some(Duration::from_secs(1000)));
    }

    #[test]
    fn nonsense_is_none() {
        for value in [
            "",
            "   ",
            "-1",
            "-0.5",
            "+5",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "soon",
            "5 seconds",
            "1.2.3",
            "0x10",
            ".5",
            "Sun, 06 Nov 1994",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 29 Feb 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-94-1 08:49:37 GMT",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37",
        ] {
            assert_eq!(parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn imf_fixdate() {
        assert_eq!(
            parse("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(
            parse("Mon, 07 Nov 1994 08:49:37 GMT"),
            Some(Duration::from_secs(86_400))
        );
        // In the past: wait no longer.
        assert_eq!(parse("Sat, 05 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("Wed, 31 Dec 1969 23:59:59 GMT"), Some(Duration::ZERO));
        // Leap day, year end, sub-second `now`.
        let now = UNIX_EPOCH + Duration::from_millis(951_782_399_500);
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", now),
            Some(Duration::from_millis(500))
        );
        let new_year = UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        assert_eq!(
            parse_retry_after("Wed, 01 Jan 2025 00:01:00 GMT", new_year),
            Some(Duration::from_secs(60))
        );
        // Case and spacing are forgiven.
        assert_eq!(
            parse("sun,  06 nov 1994 08:49:47 gmt"),
            Some(Duration::from_secs(10))
        );
        // A date far ahead is an honest, large wait.
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(Duration::from_secs(253_402_300_799 - 784_111_777))
        );
    }

    #[test]
    fn rfc_850_date() {
        assert_eq!(
            parse("Sunday, 06-Nov-94 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse("Monday, 07-Nov-1994 08:49:37 GMT"),
            Some(Duration::from_secs(86_400))
        );
        // Two-digit years: within 50 years ahead of now, else the past century.
        let now = UNIX_EPOCH + Duration::from_secs(1_735_689_600); // 2025-01-01
        assert_eq!(
            parse_retry_after("Thursday, 01-Jan-26 00:00:00 GMT", now),
            Some(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(
            parse_retry_after("Friday, 01-Jan-99 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse("Sunday, 06-Nov-44 08:49:37 GMT"),
            Some(Duration::from_secs(
                u64::try_from(days_from_civil(2044, 11, 6) - days_from_civil(1994, 11, 6))
                    .unwrap_or_default()
                    * 86_400
            ))
        );
        assert_eq!(
            parse("Sunday, 06-Nov-45 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn asctime_date() {
        assert_eq!(
            parse("Sun Nov  6 08:49:47 1994"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse("Sun Nov 6 08:49:47 1994"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse("Wed Nov 16 08:49:37 1994"),
            Some(Duration::from_secs(10 * 86_400))
        );
        assert_eq!(parse("Sat Nov  5 08:49:37 1994"), Some(Duration::ZERO));
    }

    #[test]
    fn calendar_arithmetic_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1994, 11, 6), 784_111_777 / 86_400);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in [
            -800_000, -1, 0, 59, 60, 365, 10_956, 11_016, 20_000, 2_932_896,
        ] {
            let year = year_from_days(days);
            assert!(days_from_civil(year, 1, 1) <= days, "{days}");
            assert!(days < days_from_civil(year + 1, 1, 1), "{days}");
        }
    }
}
