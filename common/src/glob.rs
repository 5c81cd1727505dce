//! Redis's glob matching (`stringmatchlen`), used by KEYS, SCAN MATCH and CONFIG GET.
//!
//! Supports `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes, byte-wise like Redis, so binary keys
//! match the same way they would on a real server.

/// Most `*` groups Redis follows before it gives up on a pattern (its matcher recurses once
/// per group and stops at this depth, answering "no match").
const MAX_STAR_GROUPS: usize = 1000;

/// Whether `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    if star_groups_to_follow(pattern) > MAX_STAR_GROUPS {
        return false;
    }
    // Redis bounds recursion depth for `*`; an iterative matcher with one backtrack point
    // cannot recurse at all, and still finds a match whenever one exists.
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = match_class(pattern, p, text[t], nocase) {
                        if matched {
                            p = next;
                            t += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], text[t]) {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if eq(c, text[t]) {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// The `*` groups a match has to pass: every run of stars except one that ends the pattern
/// (which matches the rest at once), skipping escaped stars and classes.
fn star_groups_to_follow(pattern: &[u8]) -> usize {
    let (mut groups, mut p) = (0, 0);
    while p < pattern.len() {
        match pattern[p] {
            b'\\' => p += 2,
            b'[' => {
                p += 1;
                while p < pattern.len() && pattern[p] != b']' {
                    p += if pattern[p] == b'\\' { 2 } else { 1 };
                }
                p += 1;
            }
            b'*' => {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                if p < pattern.len() {
                    groups += 1;
                }
            }
            _ => p += 1,
        }
    }
    groups
}

/// Matches one byte against the class starting at `pattern[start] == b'['`.
/// Returns whether it matched and the index after the class.
fn match_class(pattern: &[u8], start: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    let mut p = start + 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let lower = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = lower(c);
    let mut matched = false;
    loop {
        match pattern.get(p) {
            // Like Redis, an unterminated class ends at the end of the pattern.
            None => {
                p -= 1;
                break;
            }
            Some(b']') => break,
            Some(b'\\') if p + 1 < pattern.len() => {
                p += 1;
                if lower(pattern[p]) == c {
                    matched = true;
                }
            }
            Some(&a) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                let (mut lo, mut hi) = (lower(a), lower(pattern[p + 2]));
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                p += 2;
                if (lo..=hi).contains(&c) {
                    matched = true;
                }
            }
            Some(&a) => {
                if lower(a) == c {
                    matched = true;
                }
            }
        }
        p += 1;
    }
    Some((matched != negate, p + 1))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn matches_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hallo", false),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxbxx", false),
            ("", "", true),
            ("a", "", false),
            ("user:*", "user:1", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(
                glob_match(p.as_bytes(), t.as_bytes(), false),
                *want,
                "{p} {t}"
            );
        }
        assert!(glob_match(b"HELLO", b"hello", true));
    }

    #[test]
    fn patterns_with_too_many_star_groups_match_nothing_as_in_redis() {
        // The Redis suite's "pattern matching very long nested loops".
        let key = "a".repeat(50_000);
        assert!(!glob_match(
            "*?".repeat(50_000).as_bytes(),
            key.as_bytes(),
            false
        ));
        let many = format!("{}*", "a*".repeat(1000));
        assert!(glob_match(many.as_bytes(), key.as_bytes(), false));
        let too_many = "*a".repeat(1001);
        assert!(!glob_match(too_many.as_bytes(), key.as_bytes(), false));
        assert!(glob_match(
            "[*]\\**".repeat(600).as_bytes(),
            "**".repeat(600).as_bytes(),
            false
        ));
    }
}
