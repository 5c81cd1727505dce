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
/// zeros removed).
///
/// fjord computes in `f64`, which carries about 15.9 significant digits; rounding to 15 first
/// makes `0.1 + 0.2` print as `0.3`, which is what Redis's 80-bit long double prints.
pub fn format_f64_human(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{:.14e}", v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect();
    // The value is 0.d1d2d3... × 10^(exp+1); lay it out with 17 fractional digits.
    let int_len = exp + 1;
    let mut int_part = String::new();
    let mut frac: Vec<u8> = Vec::with_capacity(18);
    if int_len > 0 {
        for i in 0..int_len as usize {
            int_part.push(char::from(b'0' + digits.get(i).copied().unwrap_or(0)));
        }
        frac.extend(digits.iter().skip(int_len as usize));
    } else {
        int_part.push('0');
        frac.extend(std::iter::repeat_n(0, (-int_len) as usize));
        frac.extend(&digits);
    }
    // Round half up at the 17th fractional digit.
    if frac.len() > 17 {
        let round_up = frac[17] >= 5;
        frac.truncate(17);
        if round_up {
            let mut carry = true;
            for d in frac.iter_mut().rev() {
                if !carry {
                    break;
                }
                *d += 1;
                carry = *d == 10;
                if carry {
                    *d = 0;
                }
            }
            if carry {
                int_part = increment_decimal(&int_part);
            }
        }
    }
    while frac.last() == Some(&0) {
        frac.pop();
    }
    let mut out = String::new();
    if negative && !(int_part == "0" && frac.is_empty()) {
        out.push('-');
    }
    out.push_str(&int_part);
    if !frac.is_empty() {
        out.push('.');
        out.extend(frac.iter().map(|&d| char::from(b'0' + d)));
    }
    out
}

fn increment_decimal(s: &str) -> String {
    let mut digits: Vec<u8> = s.bytes().collect();
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8(digits).unwrap_or_default();
        }
    }
    let mut out = String::from("1");
    out.push_str(std::str::from_utf8(&digits).unwrap_or_default());
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
