//! Human-sized numbers: the one size grammar of every gefs-rs tool, and
//! printing sizes.
//!
//! A size is a decimal number (a fraction allowed: `1.5G`) followed by a
//! unit, `K`, `M`, `G` or `T` (powers of 1024, either case, an optional
//! trailing `B` or `iB`), or `B` for bytes. A bare number is refused: `-s 64`
//! meant 64 bytes to one tool and 64 MiB to another, so the unit must be
//! said. Where a share of something makes sense (the cache, of RAM),
//! [`parse_size_or_percent`] also takes `N%`.

/// Parse a size such as `512M`, `1.5G`, `64KiB` or `4096B` into bytes
/// (rounded down). The error says what was wrong and how to write it.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix("ib"))
        .unwrap_or(t);
    let (num, shift) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 40),
        Some('b' | 'B') => match t[..t.len() - 1].chars().last() {
            Some('k' | 'K' | 'm' | 'M' | 'g' | 'G' | 't' | 'T') => {
                return parse_size(&t[..t.len() - 1])
            }
            _ => (&t[..t.len() - 1], 0),
        },
        _ => {
            return Err(if t.parse::<f64>().is_ok() {
                format!("size {s:?} has no unit: write {t}K, {t}M, {t}G or {t}T ({t}B for bytes)")
            } else {
                format!("size {s:?}: expected a number and a unit, as in 512M, 1.5G or 2T")
            });
        }
    };
    let bad = || format!("size {s:?}: expected a number and a unit, as in 512M, 1.5G or 2T");
    let num = num.trim();
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    scale(num, 1u128 << shift).ok_or_else(|| format!("size {s:?} is too large"))
}

/// `n` (decimal digits with at most one point) times `unit`, rounded down;
/// `None` if it does not fit in a `u64` or does not parse.
fn scale(n: &str, unit: u128) -> Option<u64> {
    let (int, frac) = n.split_once('.').unwrap_or((n, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 12 {
        return None;
    }
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut v = whole.checked_mul(unit)?;
    if !frac.is_empty() {
        let f: u128 = frac.parse().ok()?;
        v = v.checked_add(f.checked_mul(unit)? / 10u128.pow(frac.len() as u32))?;
    }
    u64::try_from(v).ok()
}

/// [`parse_size`], or `N%` of `total` (what the percentage is of, `None`
/// when it cannot be known: then a percentage is refused with `why`).
pub fn parse_size_or_percent(s: &str, total: Option<u64>, why: &str) -> Result<u64, String> {
    let Some(p) = s.trim().strip_suffix('%') else {
        return parse_size(s);
    };
    let p = p.trim();
    if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("{s:?}: expected a percentage such as 25%"));
    }
    let total = total.ok_or_else(|| format!("{s:?}: {why}"))?;
    // Hundredths of a percent: N% = total * N / 100.
    let hundredths = scale(p, 100).ok_or_else(|| format!("{s:?}: expected a percentage"))?;
    u64::try_from(u128::from(total) * u128::from(hundredths) / 10_000)
        .map_err(|_| format!("{s:?} is too large"))
}

/// Format a byte count for people: `1.5 GiB`, `16 KiB`, `100 B`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("64KB"), Ok(64 << 10));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(".5M"), Ok(512 << 10));
        assert_eq!(parse_size("0.1K"), Ok(102));
        for bad in [
            "",
            "-1G",
            "1..5G",
            "G",
            "1.5.G",
            "x",
            "1e3M",
            "99999999999T",
            "1 2M",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let e = parse_size("64").expect_err("bare");
        assert!(e.contains("no unit") && e.contains("64M"), "{e}");
        assert_eq!(
            parse_size_or_percent("25%", Some(8 << 30), "?"),
            Ok(2 << 30)
        );
        assert_eq!(
            parse_size_or_percent("12.5%", Some(8 << 30), "?"),
            Ok(1 << 30)
        );
        assert_eq!(parse_size_or_percent("64M", None, "?"), Ok(64 << 20));
        assert!(parse_size_or_percent("25%", None, "no RAM size").is_err());
        assert!(parse_size_or_percent("%", Some(1), "?").is_err());
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(100), "100 B");
        assert_eq!(human(16384), "16 KiB");
    }
}
