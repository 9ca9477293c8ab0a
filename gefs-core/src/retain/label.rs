//! Names of automatic snapshot labels and the UTC calendar arithmetic
//! behind them.
//!
//! A label is `<base>@<minute|hour|day>.<YYYY.MM.DD_hh:mm:ss>` (UTC, the
//! year at least four digits). [`parse_label`] accepts exactly the strings
//! [`label_name`] produces, so a label's text and its time determine each
//! other (a property test checks both directions).

use super::Unit;

const SECS_PER_DAY: u64 = 86400;

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) in the proleptic
/// Gregorian calendar (H. Hinnant's `civil_from_days`). Any `u64` seconds
/// value gives at most ~2.1e14 days, far inside `i64`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // The ranges noted above make these conversions lossless.
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// (year, month 1–12, day 1–31) → days since 1970-01-01; the inverse of
/// [`civil_from_days`] for valid dates. `None` on overflow.
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = i64::from((month + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era.checked_mul(146_097)?.checked_add(doe - 719_468)
}

/// The label of an automatic snapshot of `base` for slot `unit`, taken at
/// `unix_secs` seconds after the Unix epoch:
/// `<base>@<minute|hour|day>.<YYYY.MM.DD_hh:mm:ss>` in UTC.
pub fn label_name(base: &str, unit: Unit, unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / SECS_PER_DAY).unwrap_or(i64::MAX);
    let (y, mo, d) = civil_from_days(days);
    let s = unix_secs % SECS_PER_DAY;
    let (h, mi, se) = (s / 3600, s / 60 % 60, s % 60);
    format!(
        "{base}@{}.{y:04}.{mo:02}.{d:02}_{h:02}:{mi:02}:{se:02}",
        unit.name()
    )
}

/// The slot and time (Unix seconds) of `label` if it is an automatic label
/// of `base` exactly as [`label_name`] writes it; `None` otherwise
/// (another base, an unknown unit, a malformed or non-canonical time, a
/// time before 1970).
pub fn parse_label(base: &str, label: &str) -> Option<(Unit, u64)> {
    let rest = label.strip_prefix(base)?.strip_prefix('@')?;
    let (unit, stamp) = rest.split_once('.')?;
    let unit = Unit::from_name(unit)?;
    Some((unit, parse_stamp(stamp)?))
}

/// `YYYY.MM.DD_hh:mm:ss` → Unix seconds, accepting only the canonical form
/// [`label_name`] writes (fixed-width fields, a year of four digits or
/// without leading zeros, a real calendar date).
fn parse_stamp(stamp: &str) -> Option<u64> {
    let (date, time) = stamp.split_once('_')?;
    let mut date = date.split('.');
    let (y, mo, d) = (date.next()?, date.next()?, date.next()?);
    let mut time = time.split(':');
    let (h, mi, s) = (time.next()?, time.next()?, time.next()?);
    if date.next().is_some() || time.next().is_some() || !(4..=12).contains(&y.len()) {
        return None;
    }
    let field = |f: &str, max: u32| -> Option<u32> {
        if f.len() != 2 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        f.parse().ok().filter(|&v| v <= max)
    };
    if !y.bytes().all(|b| b.is_ascii_digit()) || (y.len() > 4 && y.starts_with('0')) {
        return None;
    }
    let year: i64 = y.parse().ok()?;
    let (mo, d) = (field(mo, 12)?, field(d, 31)?);
    let (h, mi, s) = (field(h, 23)?, field(mi, 59)?, field(s, 59)?);
    if mo == 0 || d == 0 {
        return None;
    }
    let days = days_from_civil(year, mo, d)?;
    // Rejects days past the end of their month (2023.02.29 → March 1st).
    if civil_from_days(days) != (year, mo, d) {
        return None;
    }
    let days = u64::try_from(days).ok()?;
    days.checked_mul(SECS_PER_DAY)?
        .checked_add(u64::from(h) * 3600 + u64::from(mi) * 60 + u64::from(s))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn prop_label_round_trips(t in any::<u64>(), u in 0..3usize) {
            let unit = Unit::ALL[u];
            prop_assert_eq!(parse_label("b", &label_name("b", unit, t)), Some((unit, t)));
        }

        #[test]
        fn prop_parse_accepts_only_canonical(
            stamp in "[0-9]{3,5}\\.[01][0-9]{1,2}\\.[0-3][0-9]?_[0-2][0-9]:[0-6][0-9]:[0-6][0-9]",
        ) {
            let label = format!("b@hour.{stamp}");
            if let Some((unit, t)) = parse_label("b", &label) {
                prop_assert_eq!(label_name("b", unit, t), label);
            }
        }
    }

    #[test]
    fn label_names_across_dates() {
        let cases = [
            (0, "1970.01.01_00:00:00"),
            (59, "1970.01.01_00:00:59"),
            (86_399, "1970.01.01_23:59:59"),
            (951_825_600, "2000.02.29_12:00:00"),
            (1_704_067_199, "2023.12.31_23:59:59"),
            (1_704_067_200, "2024.01.01_00:00:00"),
            (1_709_251_199, "2024.02.29_23:59:59"),
            (1_709_251_200, "2024.03.01_00:00:00"),
            (1_795_996_800, "2026.11.30_00:00:00"),
            (4_107_542_399, "2100.02.28_23:59:59"),
            (4_107_542_400, "2100.03.01_00:00:00"),
            (253_402_300_799, "9999.12.31_23:59:59"),
            (253_402_300_800, "10000.01.01_00:00:00"),
        ];
        for (t, stamp) in cases {
            for unit in Unit::ALL {
                let name = label_name("main", unit, t);
                assert_eq!(name, format!("main@{}.{stamp}", unit.name()));
                assert_eq!(parse_label("main", &name), Some((unit, t)), "{name}");
            }
        }
    }

    #[test]
    fn calendar_is_consistent_day_by_day() {
        // 1970 to ~2517: every day follows the previous one.
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..200_000i64 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), Some(days));
            let (py, pm, pd) = prev;
            let next_day = (y, m, d) == (py, pm, pd + 1);
            let next_month = d == 1 && ((y, m) == (py, pm + 1) || (y, m, pm) == (py + 1, 1, 12));
            assert!(next_day || next_month, "{prev:?} -> {:?}", (y, m, d));
            if next_month {
                let leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
                let len = match pm {
                    2 if leap => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                assert_eq!(pd, len, "length of {py}-{pm}");
            }
            prev = (y, m, d);
        }
    }

    #[test]
    fn extreme_times_do_not_panic() {
        let name = label_name("x", Unit::Day, u64::MAX);
        assert_eq!(parse_label("x", &name), Some((Unit::Day, u64::MAX)));
        assert_eq!(parse_label("x", "x@day.999999999999.12.31_23:59:59"), None);
    }

    #[test]
    fn parse_label_rejects_others() {
        let rejects = [
            "main",
            "main@",
            "main@minute",
            "main@minute.",
            "main2@minute.2024.01.01_00:00:00",
            "mai@minute.2024.01.01_00:00:00",
            "other@minute.2024.01.01_00:00:00",
            "main@week.2024.01.01_00:00:00",
            "main@Minute.2024.01.01_00:00:00",
            "main@minute.2024.1.01_00:00:00",
            "main@minute.02024.01.01_00:00:00",
            "main@minute.024.01.01_00:00:00",
            "main@minute.2023.02.29_00:00:00",
            "main@minute.2024.02.30_00:00:00",
            "main@minute.2024.04.31_00:00:00",
            "main@minute.2024.13.01_00:00:00",
            "main@minute.2024.00.01_00:00:00",
            "main@minute.2024.01.00_00:00:00",
            "main@minute.2024.01.01_24:00:00",
            "main@minute.2024.01.01_00:60:00",
            "main@minute.2024.01.01_00:00:60",
            "main@minute.2024.01.01_00:00:00x",
            "main@minute.2024.01.01_00:00:00:00",
            "main@minute.2024.01.01.01_00:00:00",
            "main@minute.2024.01.01 00:00:00",
            "main@minute.+024.01.01_00:00:00",
            "main@minute.1969.12.31_23:59:59",
            "main@minute.2024.01.01_+0:00:00",
        ];
        for label in rejects {
            assert_eq!(parse_label("main", label), None, "{label}");
        }
        assert_eq!(
            parse_label("main", "main@hour.2024.02.29_23:00:00"),
            Some((Unit::Hour, 1_709_247_600))
        );
        // A base containing '@' still parses its own labels.
        let odd = label_name("a@b", Unit::Minute, 60);
        assert_eq!(parse_label("a@b", &odd), Some((Unit::Minute, 60)));
        assert_eq!(parse_label("a", &odd), None);
    }
}
