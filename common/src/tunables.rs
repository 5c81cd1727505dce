//! Redis's encoding tunables (`hash-max-listpack-entries`, `set-max-intset-entries`, …):
//! CONFIG SET accepts them with Redis's value checks and CONFIG GET shows what was set, so
//! tools and test suites that tune them work. fjord's encoding does not depend on them: every
//! collection is stored the same way, one entry per member (see the shard's store module).
//! Values are per process, like any CONFIG SET.

use std::sync::atomic::{AtomicI64, Ordering};

/// One tunable: its names (Redis 7's, then the alias older clients use) and its values: an
/// integer in `min..=max`, or, when `choices` is not empty, an index into them.
struct Tunable {
    name: &'static str,
    alias: Option<&'static str>,
    default: i64,
    min: i64,
    max: i64,
    choices: &'static [&'static str],
}

const fn int(
    name: &'static str,
    alias: Option<&'static str>,
    default: i64,
    min: i64,
    max: i64,
) -> Tunable {
    Tunable {
        name,
        alias,
        default,
        min,
        max,
        choices: &[],
    }
}

const INT_MAX: i64 = i32::MAX as i64;
const INT_MIN: i64 = i32::MIN as i64;

static TUNABLES: &[Tunable] = &[
    int(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        128,
        0,
        i64::MAX,
    ),
    int(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        64,
        0,
        i64::MAX,
    ),
    int(
        "list-max-listpack-size",
        Some("list-max-ziplist-size"),
        -2,
        INT_MIN,
        INT_MAX,
    ),
    int("list-compress-depth", None, 0, 0, INT_MAX),
    int("set-max-intset-entries", None, 512, 0, i64::MAX),
    int(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        128,
        0,
        i64::MAX,
    ),
    int(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        64,
        0,
        i64::MAX,
    ),
    int("hll-sparse-max-bytes", None, 3000, 0, i64::MAX),
    // fjord checks every RESTORE payload in full, whatever this says.
    Tunable {
        name: "sanitize-dump-payload",
        alias: None,
        default: 0,
        min: 0,
        max: 2,
        choices: &["no", "yes", "clients"],
    },
];

/// Current values, by position in [`TUNABLES`]; `i64::MIN` means "not set: the default".
static VALUES: [AtomicI64; 9] = [const { AtomicI64::new(i64::MIN) }; 9];

fn position(name: &[u8]) -> Option<usize> {
    TUNABLES.iter().position(|t| {
        t.name.as_bytes().eq_ignore_ascii_case(name)
            || t.alias
                .is_some_and(|a| a.as_bytes().eq_ignore_ascii_case(name))
    })
}

fn raw(i: usize) -> i64 {
    match VALUES[i].load(Ordering::Relaxed) {
        i64::MIN => TUNABLES[i].default,
        v => v,
    }
}

fn value(i: usize) -> String {
    let v = raw(i);
    match TUNABLES[i].choices.get(v as usize) {
        Some(choice) => choice.to_string(),
        None => v.to_string(),
    }
}

/// A tunable's current value (an index into its choices for a named one).
pub fn get(name: &str) -> i64 {
    raw(position(name.as_bytes()).expect("a tunable's name"))
}

/// Whether `name` is a tunable (under either name).
pub fn is_tunable(name: &[u8]) -> bool {
    position(name).is_some()
}

/// Every tunable under both its names, with its value, for CONFIG GET.
pub fn params() -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (i, t) in TUNABLES.iter().enumerate() {
        out.push((t.name, value(i)));
        if let Some(alias) = t.alias {
            out.push((alias, value(i)));
        }
    }
    out
}

/// Checks every `(name, value)` pair, then applies them all, or none: Redis's CONFIG SET is
/// atomic. The error is Redis's text for the first bad value.
pub fn set(pairs: &[(&[u8], &[u8])]) -> Result<(), String> {
    let mut parsed = Vec::with_capacity(pairs.len());
    for (name, raw) in pairs {
        let i = position(name).ok_or_else(|| "unknown tunable".to_string())?;
        let t = &TUNABLES[i];
        let fail = |why: String| {
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                String::from_utf8_lossy(name)
            )
        };
        if !t.choices.is_empty() {
            let choice = t
                .choices
                .iter()
                .position(|c| c.as_bytes().eq_ignore_ascii_case(raw));
            let Some(v) = choice else {
                return Err(fail(format!(
                    "argument(s) must be one of the following: {}",
                    t.choices.join(", ")
                )));
            };
            parsed.push((i, v as i64));
            continue;
        }
        let v = crate::number::parse_i64(raw)
            .ok_or_else(|| fail("argument couldn't be parsed into an integer".into()))?;
        if v < t.min || v > t.max {
            return Err(fail(format!(
                "argument must be between {} and {} inclusive",
                t.min, t.max
            )));
        }
        parsed.push((i, v));
    }
    for (i, v) in parsed {
        VALUES[i].store(v, Ordering::Relaxed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_as_redis_does_and_set_under_either_name() {
        let err = set(&[(b"hash-max-ziplist-value", b"x")]).unwrap_err();
        assert_eq!(err, "ERR CONFIG SET failed (possibly related to argument 'hash-max-ziplist-value') - argument couldn't be parsed into an integer");
        let err = set(&[(b"set-max-intset-entries", b"-1")]).unwrap_err();
        assert!(err.ends_with("argument must be between 0 and 9223372036854775807 inclusive"));
        set(&[(b"zset-max-ziplist-entries", b"7")]).unwrap();
        let p = params();
        assert!(p.contains(&("zset-max-listpack-entries", "7".into())));
        assert!(p.contains(&("zset-max-ziplist-entries", "7".into())));
    }

    #[test]
    fn choices_are_names() {
        let err = set(&[(b"sanitize-dump-payload", b"maybe")]).unwrap_err();
        assert!(err.ends_with("argument(s) must be one of the following: no, yes, clients"));
        set(&[(b"sanitize-dump-payload", b"YES")]).unwrap();
        assert!(params().contains(&("sanitize-dump-payload", "yes".into())));
    }

    #[test]
    fn a_bad_value_applies_none_of_the_pairs() {
        let err = set(&[
            (b"list-compress-depth", b"3"),
            (b"list-max-ziplist-size", b"x"),
        ]);
        assert!(err.is_err());
        assert!(params().contains(&("list-compress-depth", "0".into())));
    }
}
