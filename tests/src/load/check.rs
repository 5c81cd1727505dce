//! Correctness while loading: every value names its key and a version, and every MGET reply is
//! checked against what was acknowledged before it was sent and what was sent before it came
//! back.
//!
//! Each key is written by one worker only (its owner), one write in flight at a time, so a
//! key's versions reach the store in order and the newest acknowledged version is a floor for
//! any later read. A read of key k sent after version `a` was acknowledged and answered before
//! version `s+1` was sent must see a version in `a..=s`; nil only if nothing was acknowledged.

use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of key number `i`.
pub fn key_name(i: usize) -> String {
    format!("key:{i:012}")
}

/// The value of version `version` of key `i`: `key#version#` padded with `.` to `size` bytes
/// (longer when `size` is too small to hold the header).
pub fn value(i: usize, version: u64, size: usize) -> Bytes {
    let mut v = format!("{}#{version:016x}#", key_name(i)).into_bytes();
    if v.len() < size {
        v.resize(size, b'.');
    }
    Bytes::from(v)
}

/// What a value says: `(key number, version)`, or `None` if it is not one of ours.
pub fn parse_value(v: &[u8]) -> Option<(usize, u64)> {
    let text = std::str::from_utf8(v).ok()?;
    let rest = text.strip_prefix("key:")?;
    let (index, rest) = rest.split_once('#')?;
    let (version, _) = rest.split_once('#')?;
    if index.len() != 12 || version.len() != 16 {
        return None;
    }
    Some((index.parse().ok()?, u64::from_str_radix(version, 16).ok()?))
}

/// Per key: the newest version sent and the newest acknowledged.
pub struct Versions {
    sent: Vec<AtomicU64>,
    acked: Vec<AtomicU64>,
}

impl Versions {
    /// `keys` keys, each with `version` sent and acknowledged (0: never written).
    pub fn new(keys: usize, version: u64) -> Self {
        let all = || (0..keys).map(|_| AtomicU64::new(version)).collect();
        Self {
            sent: all(),
            acked: all(),
        }
    }

    /// The version the owner of `key` writes next (recorded as sent before it leaves).
    pub fn next(&self, key: usize) -> u64 {
        self.sent[key].fetch_add(1, Ordering::SeqCst) + 1
    }

    pub fn ack(&self, key: usize, version: u64) {
        self.acked[key].fetch_max(version, Ordering::SeqCst);
    }

    pub fn acked(&self, key: usize) -> u64 {
        self.acked[key].load(Ordering::SeqCst)
    }

    pub fn sent(&self, key: usize) -> u64 {
        self.sent[key].load(Ordering::SeqCst)
    }
}

/// One wrong thing in a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The reply has another number of values than keys asked.
    Length { asked: usize, got: usize },
    /// The value at this position belongs to another key (a reordered or misrouted reply).
    WrongKey { key: usize, holds: usize },
    /// Older than what was acknowledged before the read was sent.
    Stale { key: usize, got: u64, floor: u64 },
    /// Newer than anything sent before the reply arrived.
    Future { key: usize, got: u64, ceiling: u64 },
    /// Nil for a key with an acknowledged write.
    Missing { key: usize, floor: u64 },
    /// Not a value this generator wrote.
    Garbled { key: usize, value: String },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Length { asked, got } => write!(f, "asked {asked} keys, got {got} values"),
            Violation::WrongKey { key, holds } => write!(
                f,
                "{}: the value of {} in its place",
                key_name(*key),
                key_name(*holds)
            ),
            Violation::Stale { key, got, floor } => write!(
                f,
                "{}: version {got}, but {floor} was acknowledged before the read",
                key_name(*key)
            ),
            Violation::Future { key, got, ceiling } => write!(
                f,
                "{}: version {got}, but only {ceiling} had been sent",
                key_name(*key)
            ),
            Violation::Missing { key, floor } => write!(
                f,
                "{}: nil, but version {floor} was acknowledged",
                key_name(*key)
            ),
            Violation::Garbled { key, value } => {
                write!(f, "{}: unknown value {value:?}", key_name(*key))
            }
        }
    }
}

/// Checks an MGET of `keys` (key numbers, in request order) that was sent when `floors` were
/// the acknowledged versions; `ceiling(k)` is read once the reply is in.
pub fn check_mget(
    keys: &[usize],
    floors: &[u64],
    values: &[Option<Bytes>],
    ceiling: impl Fn(usize) -> u64,
) -> Vec<Violation> {
    if values.len() != keys.len() {
        return vec![Violation::Length {
            asked: keys.len(),
            got: values.len(),
        }];
    }
    let mut found = Vec::new();
    for ((&key, &floor), value) in keys.iter().zip(floors).zip(values) {
        let Some(value) = value else {
            if floor > 0 {
                found.push(Violation::Missing { key, floor });
            }
            continue;
        };
        let Some((holds, got)) = parse_value(value) else {
            let value = String::from_utf8_lossy(&value[..value.len().min(60)]).into_owned();
            found.push(Violation::Garbled { key, value });
            continue;
        };
        if holds != key {
            found.push(Violation::WrongKey { key, holds });
        } else if got < floor {
            found.push(Violation::Stale { key, got, floor });
        } else if got > ceiling(key) {
            found.push(Violation::Future {
                key,
                got,
                ceiling: ceiling(key),
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(key: usize, version: u64) -> Option<Bytes> {
        Some(value(key, version, 64))
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(parse_value(&value(42, 7, 100)), Some((42, 7)));
        assert_eq!(value(42, 7, 100).len(), 100);
        assert_eq!(parse_value(&value(3, u64::MAX, 1)), Some((3, u64::MAX)));
        assert_eq!(parse_value(b"hello"), None);
    }

    #[test]
    fn a_correct_reply_passes() {
        let found = check_mget(&[1, 2, 3], &[1, 2, 0], &[v(1, 1), v(2, 3), None], |_| 3);
        assert_eq!(found, vec![]);
    }

    #[test]
    fn a_reordered_reply_is_caught() {
        let found = check_mget(&[1, 2], &[1, 1], &[v(2, 1), v(1, 1)], |_| 1);
        assert_eq!(
            found,
            vec![
                Violation::WrongKey { key: 1, holds: 2 },
                Violation::WrongKey { key: 2, holds: 1 }
            ]
        );
    }

    #[test]
    fn a_stale_reply_is_caught() {
        let found = check_mget(&[5], &[4], &[v(5, 3)], |_| 9);
        assert_eq!(
            found,
            vec![Violation::Stale {
                key: 5,
                got: 3,
                floor: 4
            }]
        );
    }

    #[test]
    fn a_short_reply_is_caught() {
        let found = check_mget(&[1, 2, 3], &[0, 0, 0], &[v(1, 1), v(2, 1)], |_| 1);
        assert_eq!(found, vec![Violation::Length { asked: 3, got: 2 }]);
    }

    #[test]
    fn a_version_never_sent_or_a_lost_key_is_caught() {
        let found = check_mget(&[1, 2], &[1, 2], &[v(1, 5), None], |_| 4);
        assert_eq!(
            found,
            vec![
                Violation::Future {
                    key: 1,
                    got: 5,
                    ceiling: 4
                },
                Violation::Missing { key: 2, floor: 2 }
            ]
        );
        assert!(matches!(
            check_mget(&[1], &[0], &[Some(Bytes::from("x"))], |_| 0)[0],
            Violation::Garbled { .. }
        ));
    }
}
