//! Redis's own Tcl test suite against fjord: what one unit file's run printed, the list of
//! failures we expect, and the verdict that compares the two.
//!
//! The suite itself is never committed: `tests/redis-suite/fetch.sh` unpacks it from Debian's
//! source package. `fjord-redis-suite` (the binary) runs each unit file in its own `tclsh`
//! against a fresh cluster and hands the output to [`parse_run`]; [`Expectations::judge`] then
//! says which results are regressions. A green run has no unexpected failure, no unexpected
//! abort, and no listed failure that now passes, so the list only ever shrinks.

use anyhow::{bail, Context, Result};
use fjord_common::glob::glob_match;
use std::collections::BTreeMap;
use std::fmt;

/// Tags the suite is run without, each with why fjord's standalone listener cannot offer it.
/// Passed as `--tags "-tag …"`; nothing else is excluded.
pub const DENIED_TAGS: &[(&str, &str)] = &[
    (
        "needs:debug",
        "DEBUG (RELOAD, OBJECT, SLEEP, SET-ACTIVE-EXPIRE, …) pokes at one Redis process's \
         internals; fjord's data lives in several shard processes behind the proxy",
    ),
    (
        "needs:repl",
        "the tests use the listener as a replication master (SYNC, REPLCONF, WAIT)",
    ),
    (
        "needs:save",
        "SAVE/BGSAVE/DEBUG RELOAD write and load an RDB file; fjord persists through fjall",
    ),
    (
        "needs:config-maxmemory",
        "maxmemory eviction policies: fjord keeps data on disk and does not evict",
    ),
    (
        "needs:config-resetstat",
        "the tests read counters right after CONFIG RESETSTAT across processes",
    ),
    (
        "needs:reset",
        "RESET of a connection's state (MULTI, pub/sub, tracking) fjord does not keep",
    ),
];

/// Tests left out by name: (unit, Tcl regexp over its test names, why), passed as `--skiptest
/// /regexp` to that file only. Only tests of the blocking commands are here: they need a
/// connection pinned to one client, which fjord does not offer yet (the data-types issue
/// leaves them to a later one). Most of them wait 5 s for a client to block before they
/// fail, about three minutes for the list file alone, and one that fails between `HELLO 3`
/// and `HELLO 2` leaves the next tests on RESP3. Each regexp matches exactly the tests that
/// fail for want of a blocking command (checked against a run without it) and no test that
/// passes; the run prints how many each file skipped.
pub const SKIPPED_TESTS: &[(&str, &str, &str)] = &[
    (
        "unit/type/list",
        "^(BLPOP|BRPOP|BLMPOP_LEFT|BLMPOP_RIGHT|BLMOVE|BRPOPLPUSH)|of view of B|blocked client|\
         client unblock|^Linked LMOVEs$|^(Circular|Self-referential) BRPOPLPUSH$|\
         ^PUSH resulting from BRPOPLPUSH|NON-BLOCK or BLOCK",
        BLOCKING,
    ),
    (
        "unit/type/zset",
        "^(BZPOPMIN|BZPOPMAX|BZMPOP|BZPOP/BZMPOP)|of view of BZ",
        BLOCKING,
    ),
];

const BLOCKING: &str = "blocking commands (BLPOP, BRPOP, BLMOVE, BLMPOP, BRPOPLPUSH, BZPOPMIN, \
                        BZPOPMAX, BZMPOP) need a connection pinned to one client: a later issue";

/// The `--skiptest` arguments for `unit` ([`SKIPPED_TESTS`]).
pub fn skip_arguments(unit: &str) -> Vec<String> {
    SKIPPED_TESTS
        .iter()
        .filter(|(u, ..)| *u == unit)
        .flat_map(|(_, regexp, _)| ["--skiptest".to_string(), format!("/{regexp}")])
        .collect()
}

/// Files that run longer than the default limit for a known reason: (unit, seconds, why). The
/// limit exists to stop a file that hangs; these do not hang, they wait.
pub const SLOW_FILES: &[(&str, u64, &str)] = &[];

/// How long `unit` may run: its [`SLOW_FILES`] limit, or `default` seconds.
pub fn time_limit(unit: &str, default: u64) -> u64 {
    SLOW_FILES
        .iter()
        .find(|(u, ..)| *u == unit)
        .map_or(default, |(_, limit, _)| *limit)
}

/// The `--tags` argument for [`DENIED_TAGS`].
pub fn tags_argument() -> String {
    DENIED_TAGS
        .iter()
        .map(|(tag, _)| format!("-{tag}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How one test of a unit file ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Failed, with the first line of its error.
    Failed(String),
}

/// What running one unit file printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnitRun {
    /// Every test that ran, in order (a name can repeat: tests run in loops).
    pub tests: Vec<(String, Outcome)>,
    /// Tests left out by tag (`[ignore]`) or by the external mode (`external:skip`).
    pub ignored: usize,
    /// Tests left out by name ([`SKIPPED_TESTS`], `[skip]`).
    pub skipped: usize,
    /// Why the file stopped before its end, if it did.
    pub aborted: Option<String>,
}

/// Removes terminal colour sequences (the suite colours its output on an xterm).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ … letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses the output of `tclsh tests/test_helper.tcl --single UNIT …`. `finished` says whether
/// the process exited by itself with a status (false when it was killed on a timeout).
pub fn parse_run(output: &str, exit: Option<i32>) -> UnitRun {
    let lines: Vec<String> = output.lines().map(strip_ansi).collect();
    let mut run = UnitRun::default();
    let mut done = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].as_str();
        if let Some(rest) = line.strip_prefix("[ok]: ") {
            run.tests
                .push((strip_elapsed(rest).to_string(), Outcome::Passed));
        } else if let Some(rest) = line.strip_prefix("[err]: ") {
            // "[err]: NAME in tests/unit/x.tcl", then the error on the next line. An error
            // outside any test (in a server block's own code) has no name: the error itself
            // is on this line, and the rest of that block did not run.
            let (name, error) = match rest.rsplit_once(" in tests/") {
                Some((name, _)) => (name, error_line(&lines, i + 1)),
                None => (OUTSIDE_TESTS, error_line(&lines, i)),
            };
            run.tests.push((name.to_string(), Outcome::Failed(error)));
        } else if let Some(rest) = line.strip_prefix("[exception]: ") {
            let why = rest.strip_prefix("Executing test client: ").unwrap_or(rest);
            run.aborted = Some(why.trim().to_string());
        } else if line.starts_with("[ignore]: ") {
            run.ignored += 1;
        } else if line.starts_with("[skip]: ") {
            run.skipped += 1;
        } else if line.starts_with('[') && line.contains(" done]: ") {
            done = true;
        }
        i += 1;
    }
    if run.aborted.is_none() && !done {
        let last = lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or("", |l| l.trim());
        run.aborted = Some(match exit {
            Some(code) => format!("tclsh exited with status {code} before the file's end: {last}"),
            None => format!("killed on the time limit; its last line: {last}"),
        });
    }
    run
}

/// The name under which an error outside any test is listed.
pub const OUTSIDE_TESTS: &str = "(outside a test)";

/// The error of an `[err]` report whose message is on line `at`. With `--durable`, the suite
/// prints a non-assertion error cut by ten characters (it strips an `assertion:` prefix that
/// is not there) and follows it with Tcl's error info, whose first line is the whole error:
/// that line is used when it ends with the cut one.
fn error_line(lines: &[String], at: usize) -> String {
    let strip = |l: &str| l.strip_prefix("[err]: ").unwrap_or(l).trim().to_string();
    let cut = lines.get(at).map(|l| strip(l)).unwrap_or_default();
    match lines.get(at + 1).map(|l| l.trim()) {
        Some(full) if !cut.is_empty() && full.len() > cut.len() && full.ends_with(&cut) => {
            full.to_string()
        }
        _ => cut,
    }
}

/// `NAME (12 ms)` → `NAME`.
fn strip_elapsed(s: &str) -> &str {
    match s.rsplit_once(" (") {
        Some((name, tail)) if tail.ends_with(" ms)") => name,
        _ => s,
    }
}

/// The name an expectation uses for "the whole file aborts".
pub const WHOLE_FILE: &str = "(file aborts)";

/// One line of the expectations file: `unit | test name | error glob | reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub unit: String,
    pub test: String,
    pub error_glob: String,
    pub reason: String,
    /// 1-based line in the file, for messages.
    pub line: usize,
}

/// How a reason starts for a test whose outcome does not depend on fjord's code (it reads the
/// process's RSS, which falls only when the allocator happens to give memory back): it may
/// pass, and a pass is not a problem. A failure must still match the glob.
pub const MAY_PASS: &str = "may pass:";

impl Expected {
    pub fn may_pass(&self) -> bool {
        self.reason.starts_with(MAY_PASS)
    }
}

/// The expected failures, by unit and test name. A test that runs more than once (in a loop)
/// and fails differently each time has a line per error.
#[derive(Debug, Default)]
pub struct Expectations {
    by_unit: BTreeMap<String, BTreeMap<String, Vec<Expected>>>,
}

impl Expectations {
    /// Parses the expectations file. Lines are `unit | test name | error glob | reason`;
    /// blank lines and lines starting with `#` are ignored. A test name may itself contain
    /// ` | `: the unit is the first field, the reason and glob the last two.
    pub fn parse(text: &str) -> Result<Self> {
        let mut by_unit: BTreeMap<String, BTreeMap<String, Vec<Expected>>> = BTreeMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(" | ").collect();
            if fields.len() < 4 {
                bail!(
                    "line {}: expected `unit | test name | error glob | reason`, got {line:?}",
                    n + 1
                );
            }
            let unit = fields[0].trim().to_string();
            let reason = fields[fields.len() - 1].trim().to_string();
            let error_glob = fields[fields.len() - 2].trim().to_string();
            let test = fields[1..fields.len() - 2].join(" | ");
            if reason.is_empty() || error_glob.is_empty() || test.is_empty() {
                bail!("line {}: every field needs a value", n + 1);
            }
            let entry = Expected {
                unit: unit.clone(),
                test: test.clone(),
                error_glob,
                reason,
                line: n + 1,
            };
            let same_test = by_unit.entry(unit).or_default().entry(test).or_default();
            if let Some(old) = same_test.iter().find(|e| e.error_glob == entry.error_glob) {
                bail!(
                    "line {}: {:?} is listed already on line {}",
                    n + 1,
                    entry.test,
                    old.line
                );
            }
            same_test.push(entry);
        }
        Ok(Self { by_unit })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The units that have entries.
    pub fn units(&self) -> impl Iterator<Item = &str> {
        self.by_unit.keys().map(String::as_str)
    }

    /// Compares one unit's run with what is listed for it.
    pub fn judge(&self, unit: &str, run: &UnitRun) -> Verdict {
        let empty = BTreeMap::new();
        let listed = self.by_unit.get(unit).unwrap_or(&empty);
        let mut v = Verdict {
            unit: unit.to_string(),
            ..Verdict::default()
        };
        let whole = listed.get(WHOLE_FILE).and_then(|e| e.first());
        match (&run.aborted, whole) {
            (Some(why), Some(e)) if glob_match(e.error_glob.as_bytes(), why.as_bytes(), false) => {
                v.expected_abort = true;
            }
            (Some(why), Some(e)) => v.problems.push(Problem::AbortedDifferently {
                why: why.clone(),
                expected: e.clone(),
            }),
            (Some(why), None) => v.problems.push(Problem::Aborted(why.clone())),
            (None, Some(e)) => v.problems.push(Problem::NoLongerAborts(e.clone())),
            (None, None) => {}
        }
        let mut seen: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (name, outcome) in &run.tests {
            let counts = seen.entry(name.as_str()).or_default();
            let expected = listed
                .get(name.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            match outcome {
                Outcome::Passed => {
                    v.passed += 1;
                    counts.0 += 1;
                }
                Outcome::Failed(line) => {
                    counts.1 += 1;
                    let matching = expected
                        .iter()
                        .any(|e| glob_match(e.error_glob.as_bytes(), line.as_bytes(), false));
                    match expected.first() {
                        _ if matching => v.expected_failures += 1,
                        Some(e) => v.problems.push(Problem::FailedDifferently {
                            test: name.clone(),
                            line: line.clone(),
                            expected: e.clone(),
                        }),
                        None => v.problems.push(Problem::Failed {
                            test: name.clone(),
                            line: line.clone(),
                        }),
                    }
                }
            }
        }
        for (name, entries) in listed {
            let Some(e) = entries.first().filter(|_| name != WHOLE_FILE) else {
                continue;
            };
            match seen.get(name.as_str()) {
                Some(&(passed, 0)) if passed > 0 && !e.may_pass() => {
                    v.problems.push(Problem::NowPasses(e.clone()))
                }
                Some(_) => {}
                // Tests after an abort never ran; the abort is the problem to report.
                None if run.aborted.is_some() => {}
                None => v.problems.push(Problem::NotRun(e.clone())),
            }
        }
        v
    }
}

/// What is wrong with a unit's run, measured against the expectations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A test failed that is not listed: a regression (or a new test to list).
    Failed { test: String, line: String },
    /// A listed test failed with an error its glob does not match.
    FailedDifferently {
        test: String,
        line: String,
        expected: Expected,
    },
    /// A listed test passes now: take it off the list.
    NowPasses(Expected),
    /// A listed test did not run at all (renamed, or a stale entry).
    NotRun(Expected),
    /// The file stopped before its end, and that is not listed.
    Aborted(String),
    /// The file stopped, but not with the listed error.
    AbortedDifferently { why: String, expected: Expected },
    /// The file is listed as aborting but ran to its end.
    NoLongerAborts(Expected),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Failed { test, line } => {
                write!(f, "unexpected failure: {test:?}: {line}")
            }
            Problem::FailedDifferently {
                test,
                line,
                expected,
            } => write!(
                f,
                "{test:?} failed with {line:?}, but line {} expects {:?}",
                expected.line, expected.error_glob
            ),
            Problem::NowPasses(e) => write!(
                f,
                "{:?} passes now: remove line {} of the expectations",
                e.test, e.line
            ),
            Problem::NotRun(e) => write!(
                f,
                "{:?} (line {} of the expectations) did not run",
                e.test, e.line
            ),
            Problem::Aborted(why) => write!(f, "the file aborted: {why}"),
            Problem::AbortedDifferently { why, expected } => write!(
                f,
                "the file aborted with {why:?}, but line {} expects {:?}",
                expected.line, expected.error_glob
            ),
            Problem::NoLongerAborts(e) => write!(
                f,
                "the file runs to its end now: remove line {} of the expectations",
                e.line
            ),
        }
    }
}

impl Problem {
    /// The expectations line that would accept this result, for a newly failing test or
    /// abort (with a reason still to write).
    pub fn suggested_line(&self, unit: &str) -> Option<String> {
        match self {
            Problem::Failed { test, line } => Some(format!(
                "{unit} | {test} | {} | TODO reason",
                glob_escape(line)
            )),
            Problem::Aborted(why) => Some(format!(
                "{unit} | {WHOLE_FILE} | {} | TODO reason",
                glob_escape(why.lines().next().unwrap_or(""))
            )),
            _ => None,
        }
    }
}

/// A glob that matches `text` literally (Redis glob metacharacters escaped).
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The result of one unit, judged.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    pub unit: String,
    pub passed: usize,
    pub expected_failures: usize,
    pub expected_abort: bool,
    pub problems: Vec<Problem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "\
Cleanup: may take some time... OK
[ready]: 1234
[ok]: SET and GET an item (1 ms)
[err]: SETBIT fuzzing in tests/unit/type/string.tcl
Expected 'x' to equal or match 'y'
[err]: GETBIT against non-existing key in tests/unit/type/string.tcl
n command 'getbit', with args beginning with: 'mykey' '0' 
ERR unknown command 'getbit', with args beginning with: 'mykey' '0' 
    while executing
[ignore]: Extended SET can detect syntax errors: Tag: needs:debug denied
[skip]: BLPOP: timeout
[ok]: SETBIT fuzzing (3 ms)
[err]: n subcommand 'unpause'. Try CLIENT HELP.
ERR unknown subcommand 'unpause'. Try CLIENT HELP.
    while executing
[1/1 done]: unit/type/string (8 seconds)
";

    #[test]
    fn a_run_lists_each_test_with_its_error_line() {
        let run = parse_run(OUTPUT, Some(1));
        assert_eq!(run.aborted, None);
        assert_eq!(run.ignored, 1);
        assert_eq!(run.skipped, 1);
        assert_eq!(run.tests.len(), 5);
        assert_eq!(
            run.tests[4],
            (
                OUTSIDE_TESTS.into(),
                Outcome::Failed("ERR unknown subcommand 'unpause'. Try CLIENT HELP.".into())
            )
        );
        assert_eq!(
            run.tests[0],
            ("SET and GET an item".into(), Outcome::Passed)
        );
        assert_eq!(
            run.tests[2],
            (
                "GETBIT against non-existing key".into(),
                Outcome::Failed(
                    "ERR unknown command 'getbit', with args beginning with: 'mykey' '0'".into()
                )
            )
        );
    }

    #[test]
    fn an_exception_or_a_missing_end_is_an_abort() {
        let out =
            "[ok]: a (1 ms)\n[exception]: Executing test client: ERR unknown command 'function'.\n";
        let run = parse_run(out, Some(1));
        assert_eq!(
            run.aborted.as_deref(),
            Some("ERR unknown command 'function'.")
        );
        let run = parse_run("[ok]: a (1 ms)\n", None);
        assert!(run.aborted.unwrap().starts_with("killed on the time limit"));
        let run = parse_run(
            "\u{1b}[0;32;49mok\u{1b}[0m\n[2/9 done]: x (1 seconds)",
            Some(0),
        );
        assert_eq!(run.aborted, None);
    }

    fn expectations() -> Expectations {
        Expectations::parse(
            "# comment\n\
             unit/type/string | GETBIT against non-existing key | *unknown command 'getbit'* | bitmaps missing\n\
             unit/type/string | SETBIT fuzzing | Expected * | flaky | not really\n\
             unit/type/hash | (file aborts) | *unknown command 'hset'* | hashes missing\n",
        )
        .unwrap()
    }

    #[test]
    fn expectations_take_the_last_two_fields_as_glob_and_reason() {
        let e = expectations();
        let listed = &e.by_unit["unit/type/string"];
        assert_eq!(
            listed["SETBIT fuzzing | Expected *"][0].reason,
            "not really"
        );
        assert_eq!(listed["SETBIT fuzzing | Expected *"][0].error_glob, "flaky");
        assert!(Expectations::parse("unit/x | only three | fields\n").is_err());
        assert!(Expectations::parse("u | t | * | r\nu | t | * | again\n").is_err());
        let twice = Expectations::parse("u | t | a* | r\nu | t | b* | r\n").unwrap();
        let run = UnitRun {
            tests: vec![
                ("t".into(), Outcome::Failed("a1".into())),
                ("t".into(), Outcome::Failed("b2".into())),
            ],
            ..Default::default()
        };
        let v = twice.judge("u", &run);
        assert_eq!((v.expected_failures, v.problems.len()), (2, 0));
    }

    #[test]
    fn listed_failures_are_expected_and_others_are_problems() {
        let e = expectations();
        let v = e.judge("unit/type/string", &parse_run(OUTPUT, Some(1)));
        assert_eq!(v.passed, 2);
        assert_eq!(v.expected_failures, 1);
        // "SETBIT fuzzing" failed once, unlisted under that name, as did the block outside
        // the tests; the odd entry never ran.
        assert_eq!(v.problems.len(), 3, "{:?}", v.problems);
        assert!(matches!(&v.problems[0], Problem::Failed { test, .. } if test == "SETBIT fuzzing"));
        assert!(matches!(&v.problems[1], Problem::Failed { test, .. } if test == OUTSIDE_TESTS));
        assert!(matches!(&v.problems[2], Problem::NotRun(_)));
    }

    #[test]
    fn a_listed_test_that_passes_or_fails_differently_is_a_problem() {
        let e = expectations();
        let run = UnitRun {
            tests: vec![("GETBIT against non-existing key".into(), Outcome::Passed)],
            ..Default::default()
        };
        let v = e.judge("unit/type/string", &run);
        assert!(matches!(&v.problems[0], Problem::NowPasses(_)));
        let run = UnitRun {
            tests: vec![(
                "GETBIT against non-existing key".into(),
                Outcome::Failed("Expected '0' to equal '1'".into()),
            )],
            ..Default::default()
        };
        let v = e.judge("unit/type/string", &run);
        assert!(matches!(&v.problems[0], Problem::FailedDifferently { .. }));
        // A test listed as one that may pass is no problem when it does.
        let e = Expectations::parse(
            "unit/lazyfree | UNLINK reclaims | Memory is not* | may pass: reads the RSS\n",
        )
        .unwrap();
        let run = UnitRun {
            tests: vec![("UNLINK reclaims".into(), Outcome::Passed)],
            ..Default::default()
        };
        assert!(e.judge("unit/lazyfree", &run).problems.is_empty());
    }

    #[test]
    fn aborts_must_be_listed_with_their_error() {
        let e = expectations();
        let aborted = |why: &str| UnitRun {
            aborted: Some(why.into()),
            ..Default::default()
        };
        let v = e.judge(
            "unit/type/hash",
            &aborted("ERR unknown command 'hset', with args"),
        );
        assert!(v.expected_abort && v.problems.is_empty());
        let v = e.judge("unit/type/hash", &aborted("ERR syntax error"));
        assert!(matches!(&v.problems[0], Problem::AbortedDifferently { .. }));
        let v = e.judge("unit/type/hash", &UnitRun::default());
        assert!(matches!(&v.problems[0], Problem::NoLongerAborts(_)));
        let v = e.judge("unit/type/list", &aborted("boom"));
        assert!(matches!(&v.problems[0], Problem::Aborted(_)));
    }

    #[test]
    fn suggested_lines_parse_back_and_match_literally() {
        let p = Problem::Failed {
            test: "KEYS with pattern".into(),
            line: "Expected 'a*' to equal [x]".into(),
        };
        let line = p.suggested_line("unit/keyspace").unwrap();
        let e = Expectations::parse(&line).unwrap();
        let run = UnitRun {
            tests: vec![(
                "KEYS with pattern".into(),
                Outcome::Failed("Expected 'a*' to equal [x]".into()),
            )],
            ..Default::default()
        };
        let v = e.judge("unit/keyspace", &run);
        assert_eq!((v.expected_failures, v.problems.len()), (1, 0));
    }
}
