//! Number parsing and formatting with Redis's exact rules.
//!
//! Clients rely on Redis rejecting `"+1"`, `" 1"` or `"01"` as integers and on INCRBYFLOAT
//! printing `10.6`, not `10.59999999999999964`; these functions reproduce `string2ll`,
//! `string2ld` and `ld2string(LD_STR_HUMAN)`.

/// Parses a signed 64-bit integer the way Redis's `string2ll` does: optional `-`, no `+`,
/// no leading zeros, no spaces, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Parses a non-negative integer that must fit `usize` (counts, indexes).
pub fn parse_usize(s: &[u8]) -> Option<usize> {
    parse_i64(s).and_then(|v| usize::try_from(v).ok())
}

/// Longest float text Redis accepts (`MAX_LONG_DOUBLE_CHARS`).
const MAX_FLOAT_CHARS: usize = 5 * 1024;

/// Parses a float the way Redis's `string2ld` does: no surrounding spaces, no trailing
/// garbage, NaN refused; `inf` accepted.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() > MAX_FLOAT_CHARS || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    // Rust accepts "infinity"/"nan" spellings strtold also accepts; it refuses hex floats,
    // which no client sends.
    let v: f64 = text.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// Formats a float as Redis's INCRBYFLOAT reply does (`%.17Lf` on a long double, trailing
/// zeros removed, never `-0`).
pub fn format_f64_human(v: f64) -> String {
    format_f64_at_scale(v, v.abs())
}

/// [`format_f64_human`] for a result computed from operands as large as `scale`.
///
/// fjord computes in `f64`, which carries about 15.9 significant digits, where Redis's 80-bit
/// long double carries 19. Digits below the 15th of the largest operand are noise in `f64`
/// and zeros in Redis, so they are rounded away: `0.1 + 0.2` prints `0.3`, and `x + -x`
/// prints `0` where a rounded `x` leaves a remainder like `-0.00000000000000002`.
pub fn format_f64_at_scale(v: f64, scale: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let scale = scale.max(v.abs());
    let decimals = match scale > 0.0 && scale.is_finite() {
        true => 14 - scale.log10().floor() as i64,
        false => 17,
    };
    fixed(v, decimals.clamp(0, 17) as usize)
}

/// A double exactly as Redis prints it through a long double in `LD_STR_HUMAN` mode
/// (`%.17Lf`, trailing zeros removed, never `-0`), for values that are doubles to begin with
/// (GEOPOS's coordinates), where the long double adds no digit.
pub fn format_f64_exact(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    fixed(v, 17)
}

/// `v` with `decimals` digits after the point, trailing zeros and a bare `-0` removed.
fn fixed(v: f64, decimals: usize) -> String {
    let mut out = format!("{v:.decimals$}");
    if out.contains('.') {
        let kept = out.trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(kept);
    }
    if out == "-0" {
        out.remove(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"-",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_print_like_redis_incrbyfloat() {
        assert_eq!(format_f64_human(10.5 + 0.1), "10.6");
        assert_eq!(format_f64_human(0.1 + 0.2), "0.3");
        assert_eq!(format_f64_human(3.0), "3");
        assert_eq!(format_f64_human(-0.0), "0");
        assert_eq!(format_f64_human(5.0e3), "5000");
        assert_eq!(format_f64_human(1e-20), "0");
        assert_eq!(format_f64_human(-1.5), "-1.5");
        assert_eq!(format_f64_human(1.23e-10), "0.000000000123");
        assert_eq!(format_f64_human(1e20), "100000000000000000000");
        assert_eq!(format_f64_human(0.7 + 0.1), "0.8");
    }

    #[test]
    fn a_sum_that_cancels_leaves_no_noise_or_negative_zero() {
        // INCRBYFLOAT by 1/41 then by -1/41 (the Redis suite's "No negative zero").
        let x = 1.0f64 / 41.0;
        let stored: f64 = format_f64_at_scale(x, x).parse().unwrap();
        assert_eq!(format_f64_at_scale(stored + -x, x), "0");
        assert_eq!(format_f64_at_scale(-1e-18, 1.0), "0");
        assert_eq!(format_f64_at_scale(10.5 - 10.25, 10.5), "0.25");
    }

    #[test]
    fn floats_parse_like_string2ld() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1x"), None);
    }
}
