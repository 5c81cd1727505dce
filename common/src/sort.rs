//! SORT and SORT_RO, as Redis 7.0's `sort.c` defines them: the options, the keys a `BY` or
//! `GET` pattern names for an element, and the order and window of the result.
//!
//! Where the values behind the patterns come from is the caller's: a shard reads them from
//! its own store, the proxy from every shard that holds them. So both answer with the same
//! code, and a pattern resolved across shards orders exactly as one Redis would.

use crate::error;
use crate::number::parse_i64;
use bytes::Bytes;
use std::cmp::Ordering;

/// The options of one SORT or SORT_RO.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SortSpec {
    /// `BY` a pattern with a `*`: the weights are the values it names.
    pub by: Option<Bytes>,
    /// `BY` a pattern without `*` (`BY nosort`): keep the collection's own order.
    pub dont_sort: bool,
    /// `LIMIT offset count`.
    pub limit: Option<(i64, i64)>,
    /// `GET` patterns, in order (`#` is the element itself).
    pub gets: Vec<Bytes>,
    pub desc: bool,
    pub alpha: bool,
    /// `STORE destination` (SORT only).
    pub store: Option<Bytes>,
}

/// What a pattern names for one element.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lookup {
    /// `#`: the element itself.
    Element,
    /// The string value of a key.
    Key(Vec<u8>),
    /// A field of the hash under a key (`pattern->field`).
    Field(Vec<u8>, Vec<u8>),
    /// Nothing: a pattern without `*` names no key.
    Nothing,
}

/// The type of the collection sorted, which decides what "don't sort" keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    List,
    Set,
    /// Elements come in score order.
    ZSet,
}

impl SortSpec {
    /// Parses `args` (`args[0]` the command, `args[1]` the key) with Redis's checks, in its
    /// order; `readonly` for SORT_RO, which knows no STORE.
    pub fn parse(args: &[Bytes], readonly: bool) -> Result<SortSpec, String> {
        let mut spec = SortSpec::default();
        let mut j = 2;
        while j < args.len() {
            let left = args.len() - j - 1;
            let word = args[j].to_ascii_lowercase();
            match word.as_slice() {
                b"asc" => spec.desc = false,
                b"desc" => spec.desc = true,
                b"alpha" => spec.alpha = true,
                b"limit" if left >= 2 => {
                    let n = |a: &Bytes| parse_i64(a).ok_or_else(|| error::NOT_INTEGER.to_string());
                    spec.limit = Some((n(&args[j + 1])?, n(&args[j + 2])?));
                    j += 2;
                }
                b"store" if !readonly && left >= 1 => {
                    spec.store = Some(args[j + 1].clone());
                    j += 1;
                }
                b"by" if left >= 1 => {
                    let pattern = &args[j + 1];
                    spec.dont_sort = !pattern.contains(&b'*');
                    spec.by = (!spec.dont_sort).then(|| pattern.clone());
                    j += 1;
                }
                b"get" if left >= 1 => {
                    spec.gets.push(args[j + 1].clone());
                    j += 1;
                }
                _ => return Err(error::SYNTAX.to_string()),
            }
            j += 1;
        }
        Ok(spec)
    }

    /// Whether some pattern names other keys (what a shard can only resolve for keys it holds).
    pub fn reads_other_keys(&self) -> bool {
        let names_keys = |p: &Bytes| p.contains(&b'*') && &p[..] != b"#";
        self.by.iter().chain(&self.gets).any(names_keys)
    }

    /// The first and last index (inclusive) of a result of `n` elements that LIMIT keeps,
    /// clamped as Redis clamps them; `None` when it keeps nothing.
    fn window(&self, n: usize) -> Option<(usize, usize)> {
        let n = n as i64;
        let (offset, count) = self.limit.unwrap_or((0, -1));
        let start = offset.max(0).min(n);
        let count = count.max(-1).min(n);
        let mut end = if count < 0 { n - 1 } else { start + count - 1 };
        if start >= n {
            return None;
        }
        end = end.min(n - 1);
        (end >= start).then_some((start as usize, end as usize))
    }

    /// The elements of the result, in order: `elements` come in the collection's own order
    /// (a list's, a sorted set's by score, any for a set), `by_value` gives the value the BY
    /// pattern names for an element (asked only when sorting by a pattern). Errors with
    /// Redis's text when a weight is not a number.
    pub fn order(
        &self,
        source: Source,
        mut elements: Vec<Bytes>,
        mut by_value: impl FnMut(&Lookup) -> Option<Bytes>,
    ) -> Result<Vec<Bytes>, String> {
        let mut spec = self.clone();
        // Redis sorts a set it stores even when asked not to, so that replicas agree.
        if spec.dont_sort && source == Source::Set && spec.store.is_some() {
            spec.dont_sort = false;
            spec.alpha = true;
            spec.by = None;
        }
        if spec.dont_sort {
            if spec.desc && source != Source::Set {
                elements.reverse();
            }
            return Ok(spec.take_window(elements));
        }
        // The weight of each element, and its position in `elements`.
        let mut keyed: Vec<(Weight, Bytes)> = Vec::with_capacity(elements.len());
        for e in elements {
            let value = match &spec.by {
                Some(pattern) => by_value(&lookup(pattern, &e)),
                None => Some(e.clone()),
            };
            let weight = match (spec.alpha, value) {
                (true, v) => Weight::Text(v),
                (false, None) => Weight::Score(0.0),
                (false, Some(v)) => Weight::Score(sort_score(&v).ok_or_else(|| {
                    "ERR One or more scores can't be converted into double".to_string()
                })?),
            };
            keyed.push((weight, e));
        }
        let by_pattern = spec.by.is_some();
        keyed.sort_by(|(wa, a), (wb, b)| {
            let cmp = match (wa, wb) {
                (Weight::Score(x), Weight::Score(y)) => x
                    .partial_cmp(y)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| a.cmp(b)),
                // A missing value sorts first; equal text is a tie.
                (Weight::Text(x), Weight::Text(y)) if by_pattern => x.cmp(y),
                _ => a.cmp(b),
            };
            if spec.desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
        Ok(spec.take_window(keyed.into_iter().map(|(_, e)| e).collect()))
    }

    fn take_window(&self, elements: Vec<Bytes>) -> Vec<Bytes> {
        match self.window(elements.len()) {
            Some((start, end)) => elements
                .into_iter()
                .skip(start)
                .take(end - start + 1)
                .collect(),
            None => Vec::new(),
        }
    }

    /// What the result holds for the `ordered` elements: each element, or with GET patterns
    /// the value each names for it (`None` where it names nothing), from `value`.
    pub fn output(
        &self,
        ordered: &[Bytes],
        mut value: impl FnMut(&Lookup) -> Option<Bytes>,
    ) -> Vec<Option<Bytes>> {
        if self.gets.is_empty() {
            return ordered.iter().cloned().map(Some).collect();
        }
        let mut out = Vec::with_capacity(ordered.len() * self.gets.len());
        for e in ordered {
            for pattern in &self.gets {
                out.push(match lookup(pattern, e) {
                    Lookup::Element => Some(e.clone()),
                    other => value(&other),
                });
            }
        }
        out
    }
}

/// How one element compares.
enum Weight {
    Score(f64),
    /// ALPHA: the value BY names (`None`: none), or the element itself.
    Text(Option<Bytes>),
}

/// What `pattern` names for `element`, as Redis's `lookupKeyByPattern`: `#` is the element;
/// the first `*` is replaced by the element; a `->` after it, with a name after that, reads
/// that field of a hash.
pub fn lookup(pattern: &[u8], element: &[u8]) -> Lookup {
    if pattern == b"#" {
        return Lookup::Element;
    }
    let Some(star) = pattern.iter().position(|&c| c == b'*') else {
        return Lookup::Nothing;
    };
    let after = &pattern[star + 1..];
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&i| i + 2 < after.len());
    let (suffix, field) = match arrow {
        Some(i) => (&after[..i], Some(after[i + 2..].to_vec())),
        None => (after, None),
    };
    let key = [&pattern[..star], element, suffix].concat();
    match field {
        Some(f) => Lookup::Field(key, f),
        None => Lookup::Key(key),
    }
}

/// A weight as C's `strtod` reads it for SORT: leading spaces skipped, nothing after the
/// number, an empty text is 0; NaN and out-of-range values refused.
fn sort_score(text: &[u8]) -> Option<f64> {
    let start = text
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = std::str::from_utf8(&text[start..]).ok()?;
    if text.is_empty() {
        return Some(0.0);
    }
    let v: f64 = text.parse().ok()?;
    let spelled_infinite = text.trim_start_matches(['+', '-']).starts_with(['i', 'I']);
    (!v.is_nan() && (v.is_finite() || spelled_infinite)).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::split_args as args;

    fn bulks(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn options_parse_with_redis_checks() {
        let spec = SortSpec::parse(
            &args("SORT k BY w_* LIMIT 1 2 GET # GET h_*->f DESC ALPHA STORE d"),
            false,
        )
        .unwrap();
        assert_eq!(spec.by.as_deref(), Some(&b"w_*"[..]));
        assert!(!spec.dont_sort && spec.desc && spec.alpha);
        assert_eq!(spec.limit, Some((1, 2)));
        assert_eq!(spec.gets.len(), 2);
        assert_eq!(spec.store.as_deref(), Some(&b"d"[..]));
        assert!(spec.reads_other_keys());
        assert!(
            SortSpec::parse(&args("SORT k BY nosort"), false)
                .unwrap()
                .dont_sort
        );
        assert_eq!(
            SortSpec::parse(&args("SORT_RO k STORE d"), true).unwrap_err(),
            error::SYNTAX
        );
        assert_eq!(
            SortSpec::parse(&args("SORT k LIMIT 1"), false).unwrap_err(),
            error::SYNTAX
        );
        assert_eq!(
            SortSpec::parse(&args("SORT k LIMIT x 1"), false).unwrap_err(),
            error::NOT_INTEGER
        );
        assert!(!SortSpec::parse(&args("SORT k GET # BY nosort"), false)
            .unwrap()
            .reads_other_keys());
    }

    #[test]
    fn patterns_name_keys_and_hash_fields_as_redis() {
        assert_eq!(lookup(b"#", b"e"), Lookup::Element);
        assert_eq!(lookup(b"nosort", b"e"), Lookup::Nothing);
        assert_eq!(lookup(b"w_*", b"e"), Lookup::Key(b"w_e".to_vec()));
        assert_eq!(lookup(b"w_*_x*", b"e"), Lookup::Key(b"w_e_x*".to_vec()));
        assert_eq!(
            lookup(b"h_*->f", b"e"),
            Lookup::Field(b"h_e".to_vec(), b"f".to_vec())
        );
        // A `->` with nothing after it is part of the key.
        assert_eq!(lookup(b"x:*->", b"e"), Lookup::Key(b"x:e->".to_vec()));
    }

    #[test]
    fn numeric_sort_breaks_ties_by_element_and_refuses_non_numbers() {
        let spec = SortSpec::default();
        let sorted = spec
            .order(Source::List, bulks(&["3", "10", " 2", "", "1e1"]), |_| None)
            .unwrap();
        assert_eq!(sorted, bulks(&["", " 2", "3", "10", "1e1"]));
        assert!(spec
            .order(Source::Set, bulks(&["1", "x"]), |_| None)
            .is_err());
        assert!(spec
            .order(Source::Set, bulks(&["1e400"]), |_| None)
            .is_err());
        assert!(spec.order(Source::Set, bulks(&["-inf"]), |_| None).is_ok());
    }

    #[test]
    fn limits_clamp_and_nosort_keeps_the_collections_order() {
        let mut spec = SortSpec::parse(&args("SORT k BY nosort DESC LIMIT 1 2"), false).unwrap();
        let e = bulks(&["a", "b", "c", "d"]);
        assert_eq!(
            spec.order(Source::List, e.clone(), |_| None).unwrap(),
            bulks(&["c", "b"])
        );
        // A set has no order to reverse; stored, it is sorted.
        assert_eq!(
            spec.order(Source::Set, e.clone(), |_| None).unwrap(),
            bulks(&["b", "c"])
        );
        spec.store = Some(Bytes::from_static(b"d"));
        assert_eq!(
            spec.order(Source::Set, bulks(&["b", "a", "c", "d"]), |_| None)
                .unwrap(),
            bulks(&["c", "b"])
        );
        for (limit, want) in [((-5, 2), 2), ((3, -1), 1), ((9, 1), 0), ((0, 0), 0)] {
            let spec = SortSpec {
                limit: Some(limit),
                alpha: true,
                ..SortSpec::default()
            };
            let got = spec.order(Source::List, e.clone(), |_| None).unwrap();
            assert_eq!(got.len(), want, "{limit:?}");
        }
    }

    #[test]
    fn alpha_by_pattern_puts_missing_values_first() {
        let spec = SortSpec::parse(&args("SORT k BY w_* ALPHA"), false).unwrap();
        let sorted = spec
            .order(Source::List, bulks(&["a", "b", "c"]), |l| match l {
                Lookup::Key(k) if k == b"w_a" => Some(Bytes::from_static(b"z")),
                Lookup::Key(k) if k == b"w_c" => Some(Bytes::from_static(b"m")),
                _ => None,
            })
            .unwrap();
        assert_eq!(sorted, bulks(&["b", "c", "a"]));
        let spec = SortSpec::parse(&args("SORT k GET # GET v_*"), false).unwrap();
        let out = spec.output(&bulks(&["a"]), |_| None);
        assert_eq!(out, vec![Some(Bytes::from_static(b"a")), None]);
    }
}
