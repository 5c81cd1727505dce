//! Collections on disk: a write into a big collection costs what it costs in a small one,
//! DEL of a big one is one write whose members (and their space) a background sweep reclaims, and nothing
//! acknowledged is lost (and nothing deleted comes back) across kill -9 and restarts.

use fjord_tests::metrics::Scrape;
use fjord_tests::{RawClient, Shard, ShardOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Members of the big collections (the issue asks for 200k in the suite).
const BIG: usize = 200_000;

fn shard_on(dir: &std::path::Path, fsync: &'static str) -> Shard {
    Shard::start_with(ShardOptions {
        fsync,
        data_dir: Some(dir.to_path_buf()),
        admin: true,
        ..ShardOptions::default()
    })
    .unwrap()
}

fn counter(shard: &Shard, name: &str) -> f64 {
    Scrape::of(shard.admin.as_ref().unwrap())
        .unwrap()
        .sum(name, &[])
}

fn entries_written(shard: &Shard) -> f64 {
    counter(shard, "fjord_shard_entries_written_total")
}

fn int(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("not an integer: {text:?}"))
}

/// Fills `key` with members `0..n` by `command`, 1000 per command, pipelined; `member(i)`
/// gives the arguments of member `i`. Returns the sum of the replies (members added, for
/// all but the pushes).
fn fill(
    c: &mut RawClient,
    command: &str,
    key: &str,
    n: usize,
    member: impl Fn(usize) -> Vec<String>,
) -> i64 {
    let chunks: Vec<Vec<String>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(1000)
        .map(|chunk| {
            let mut args = vec![command.to_string(), key.to_string()];
            args.extend(chunk.iter().flat_map(|&i| member(i)));
            args
        })
        .collect();
    for args in &chunks {
        c.send(args).unwrap();
    }
    chunks.iter().map(|_| int(&c.read_reply().unwrap())).sum()
}

/// Fills `key` with `n` fields (`field:i` = `value:i`).
fn fill_hash(c: &mut RawClient, key: &str, n: usize) {
    fill(c, "HSET", key, n, |i| {
        vec![format!("field:{i}"), format!("value:{i}")]
    });
}

/// The member cache is the writer's view of members: whatever it has evicted (1 MiB), or
/// never held (off), or holds (the default), a write must find every member that is there
/// and none that is not, after overwrites, removals, pops, DEL and FLUSHALL alike.
#[test]
fn writes_find_members_whatever_the_member_cache_holds() {
    const N: usize = 5_000;
    for mb in ["1", "0", "32"] {
        let dir = tempfile::tempdir().unwrap();
        let shard = Shard::start_with(ShardOptions {
            data_dir: Some(dir.path().to_path_buf()),
            extra_args: vec!["--member-cache-mb".into(), mb.into()],
            ..ShardOptions::default()
        })
        .unwrap();
        let mut c = shard.client().unwrap();
        let n = N as i64;
        let call = |c: &mut RawClient, args: &[&str]| int(&c.call(args).unwrap());
        let hset = |c: &mut RawClient, value: &dyn Fn(usize) -> String| {
            fill(c, "HSET", "h", N, |i| vec![format!("f{i}"), value(i)])
        };
        assert_eq!(hset(&mut c, &|i| format!("v{i}")), n, "cache {mb} MiB");
        // Big values make a 1 MiB cache evict what it holds of the others.
        let big = "x".repeat(20_000);
        assert_eq!(
            fill(&mut c, "HSET", "h", 100, |i| vec![
                format!("f{i}"),
                big.clone()
            ]),
            0
        );
        assert_eq!(hset(&mut c, &|i| (10 * i).to_string()), 0, "cache {mb} MiB");
        assert_eq!(call(&mut c, &["HLEN", "h"]), n);
        assert_eq!(call(&mut c, &["HINCRBY", "h", "f7", "1"]), 71);
        assert_eq!(
            c.call_str(&["HGET", "h", "f4999"]).unwrap(),
            "$5\r\n49990\r\n"
        );

        assert_eq!(fill(&mut c, "SADD", "s", N, |i| vec![format!("m{i}")]), n);
        let removed = fill(&mut c, "SREM", "s", N, |i| match i % 2 {
            0 => vec![format!("m{i}")],
            _ => vec![format!("absent{i}")],
        });
        assert_eq!(removed, n / 2, "cache {mb} MiB");
        assert_eq!(
            fill(&mut c, "SADD", "s", N, |i| vec![format!("m{i}")]),
            n / 2
        );
        assert_eq!(call(&mut c, &["SCARD", "s"]), n);
        // SPOP moves the last position's member into the hole: both must be found.
        for _ in 0..100 {
            let popped = c.call_str(&["SPOP", "s"]).unwrap();
            assert!(
                popped.starts_with("$") && popped.contains("\r\nm"),
                "{popped:?}"
            );
        }
        assert_eq!(fill(&mut c, "SADD", "s", N, |i| vec![format!("m{i}")]), 100);
        assert_eq!(call(&mut c, &["SCARD", "s"]), n);

        assert_eq!(
            fill(&mut c, "ZADD", "z", N, |i| vec![
                i.to_string(),
                format!("m{i}")
            ]),
            n
        );
        // New scores: each old one must be found, or its index entry would stay behind.
        let moved = fill(&mut c, "ZADD", "z", N, |i| {
            vec![(2 * N - i).to_string(), format!("m{i}")]
        });
        assert_eq!(moved, 0, "cache {mb} MiB");
        assert_eq!(call(&mut c, &["ZCARD", "z"]), n);
        assert_eq!(call(&mut c, &["ZCOUNT", "z", "-inf", "+inf"]), n);
        let lowest = c
            .call_str(&["ZRANGE", "z", "0", "0", "WITHSCORES"])
            .unwrap();
        assert_eq!(
            lowest,
            format!("*2\r\n$5\r\nm{}\r\n$4\r\n{}\r\n", N - 1, N + 1)
        );

        fill(&mut c, "RPUSH", "l", N, |i| vec![format!("e{i}")]);
        for i in 0..200 {
            let popped = c.call_str(&["LPOP", "l"]).unwrap();
            let e = format!("e{i}");
            assert_eq!(popped, format!("${}\r\n{e}\r\n", e.len()), "cache {mb} MiB");
        }
        fill(&mut c, "LPUSH", "l", 200, |i| vec![format!("again{i}")]);
        assert_eq!(call(&mut c, &["LLEN", "l"]), n);
        assert_eq!(c.call_str(&["LPOP", "l"]).unwrap(), "$8\r\nagain199\r\n");

        // A new collection under the same name, then an emptied store: nothing is there.
        assert_eq!(call(&mut c, &["DEL", "h"]), 1);
        assert_eq!(hset(&mut c, &|i| format!("v{i}")), n, "cache {mb} MiB");
        assert_eq!(c.call_str(&["FLUSHALL"]).unwrap(), "+OK\r\n");
        assert_eq!(fill(&mut c, "SADD", "s", N, |i| vec![format!("m{i}")]), n);
        assert_eq!(hset(&mut c, &|i| format!("v{i}")), n, "cache {mb} MiB");
    }
}

/// Entries the store wrote for one command.
fn cost_of(shard: &Shard, c: &mut RawClient, args: &[&str]) -> f64 {
    let before = entries_written(shard);
    c.call(args).unwrap();
    entries_written(shard) - before
}

#[test]
fn a_field_written_into_a_big_hash_costs_what_it_costs_in_a_small_one() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_on(dir.path(), "everysec");
    let mut c = shard.client().unwrap();
    fill_hash(&mut c, "small", 3);
    fill_hash(&mut c, "big", BIG);
    assert_eq!(int(&c.call(&["HLEN", "big"]).unwrap()), BIG as i64);
    for (cmd, field) in [("HSET", "new"), ("HSET", "field:7"), ("HINCRBY", "n")] {
        let value = if cmd == "HINCRBY" { "1" } else { "x" };
        let small = cost_of(&shard, &mut c, &[cmd, "small", field, value]);
        let big = cost_of(&shard, &mut c, &[cmd, "big", field, value]);
        println!(
            "{cmd} {field}: {small} entries into a 3-field hash, {big} into a {BIG}-field one"
        );
        assert_eq!(small, big, "{cmd} {field}");
        assert!(big <= 2.0, "{cmd} wrote {big} entries");
    }
    // A read of one field reads one member, whatever the size.
    let before = counter(&shard, "fjord_shard_members_read_total");
    c.call(&["HGET", "big", "field:99999"]).unwrap();
    assert_eq!(
        counter(&shard, "fjord_shard_members_read_total") - before,
        1.0
    );
}

/// Fills the list `key` with `n` elements (`e0`, `e1`, …).
fn fill_list(c: &mut RawClient, key: &str, n: usize) {
    fill(c, "RPUSH", key, n, |i| vec![format!("e{i}")]);
}

/// Member entries the store read for one command.
fn reads_of(shard: &Shard, c: &mut RawClient, args: &[&str]) -> (f64, Vec<u8>) {
    let before = counter(shard, "fjord_shard_members_read_total");
    let reply = c.call(args).unwrap();
    (
        counter(shard, "fjord_shard_members_read_total") - before,
        reply,
    )
}

#[test]
fn a_big_list_pushes_pops_and_reads_by_index_at_the_cost_of_a_small_one() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_on(dir.path(), "everysec");
    let mut c = shard.client().unwrap();
    fill_list(&mut c, "small", 3);
    fill_list(&mut c, "big", BIG);
    assert_eq!(int(&c.call(&["LLEN", "big"]).unwrap()), BIG as i64);
    for args in [
        ["LPUSH", "x"].as_slice(),
        &["RPUSH", "x"],
        &["LPOP"],
        &["RPOP"],
        &["LSET", "1", "y"],
    ] {
        let line = |key: &'static str| [&[args[0], key][..], &args[1..]].concat();
        let small = cost_of(&shard, &mut c, &line("small"));
        let big = cost_of(&shard, &mut c, &line("big"));
        println!(
            "{}: {small} entries into a 3-element list, {big} into a {BIG}-element one",
            args[0]
        );
        assert_eq!(small, big, "{}", args[0]);
        assert!(big <= 2.0, "{} wrote {big} entries", args[0]);
    }
    // An index or a range reads what it returns, wherever it is in the list.
    let middle = (BIG / 2).to_string();
    let (read, reply) = reads_of(&shard, &mut c, &["LINDEX", "big", &middle]);
    assert_eq!(read, 1.0);
    assert_eq!(
        reply,
        format!("${}\r\ne{middle}\r\n", middle.len() + 1).into_bytes()
    );
    let (read, _) = reads_of(&shard, &mut c, &["LRANGE", "big", "-10", "-1"]);
    assert_eq!(read, 10.0);
    // An insert shifts the shorter side: 10 elements from the head, not 200k from the tail.
    let cost = cost_of(&shard, &mut c, &["LINSERT", "big", "BEFORE", "e10", "new"]);
    assert!(cost <= 12.0, "LINSERT near the head wrote {cost} entries");
    assert_eq!(c.call(&["LINDEX", "big", "10"]).unwrap(), b"$3\r\nnew\r\n");
}

/// Fills the set `key` with `n` members (`m0`, `m1`, …).
fn fill_set(c: &mut RawClient, key: &str, n: usize) {
    fill(c, "SADD", key, n, |i| vec![format!("m{i}")]);
}

/// SPOP and SRANDMEMBER draw by position: a point read per member, whatever the set's size
/// (they used to read the whole set per call).
#[test]
fn random_members_of_a_big_set_are_point_reads() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_on(dir.path(), "everysec");
    let mut c = shard.client().unwrap();
    fill_set(&mut c, "small", 3);
    fill_set(&mut c, "big", BIG);
    for count in ["10", "-10"] {
        let (read, reply) = reads_of(&shard, &mut c, &["SRANDMEMBER", "big", count]);
        assert_eq!(read, 10.0, "SRANDMEMBER {count}");
        assert!(reply.starts_with(b"*10\r\n"));
    }
    for args in [
        ["SPOP", "{}"].as_slice(),
        &["SPOP", "{}", "2"],
        &["SREM", "{}", "m1"],
    ] {
        let line = |key: &'static str| -> Vec<&str> {
            args.iter()
                .map(|a| if *a == "{}" { key } else { a })
                .collect()
        };
        let small = cost_of(&shard, &mut c, &line("small"));
        // A pop that empties the small set deletes it, and the background sweep of its
        // members would be counted with the big set's writes.
        wait_for_the_sweep(&shard, Duration::from_secs(30));
        let written = entries_written(&shard);
        let (read, _) = reads_of(&shard, &mut c, &line("big"));
        let big = entries_written(&shard) - written;
        println!("{args:?}: {small} entries written in a small set, {big} in a {BIG}-member one, {read} read");
        assert!(read <= 12.0, "{args:?} read {read} members");
        assert!(big <= 10.0, "{args:?} wrote {big} entries");
    }
    // What is left is exactly what was not popped: sizes, members and positions agree.
    let left = int(&c.call(&["SCARD", "big"]).unwrap());
    let members = c.call(&["SMEMBERS", "big"]).unwrap();
    assert!(members.starts_with(format!("*{left}\r\n").as_bytes()));
    let (read, reply) = reads_of(&shard, &mut c, &["SPOP", "big", &(left - 1).to_string()]);
    assert!(reply.starts_with(format!("*{}\r\n", left - 1).as_bytes()));
    println!("SPOP of all but one member of {left}: {read} members read");
    assert_eq!(int(&c.call(&["SCARD", "big"]).unwrap()), 1);
    let last = c.call(&["SRANDMEMBER", "big"]).unwrap();
    assert_eq!(c.call(&["SPOP", "big"]).unwrap(), last);
    assert_eq!(c.call(&["EXISTS", "big"]).unwrap(), b":0\r\n");
}

/// The members of the sorted set `key`, lowest first, from `ZRANGE … WITHSCORES`.
fn zrange(c: &mut RawClient, key: &str, args: &[&str]) -> Vec<(String, i64)> {
    let reply = c
        .call(&[&["ZRANGE", key][..], args, &["WITHSCORES"]].concat())
        .unwrap();
    zrange_pairs(&reply)
}

/// Removals from an end (pops, ZREM and ZREMRANGEBYRANK of the end members, an end member's
/// score change) move the set's bounds so the next scan starts past the deleted entries:
/// members added beyond that point later (a lower score than any removed, a higher one than
/// any removed from the top) must still be found, by pops, by reads, and after a restart.
#[test]
fn removals_from_both_ends_find_members_added_beyond_them_and_survive_a_restart() {
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().unwrap();
    let mut shard = shard_on(dir.path(), "always");
    let mut c = shard.client().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let mut model: BTreeSet<(i64, String)> = BTreeSet::new();
    let add = |c: &mut RawClient, model: &mut BTreeSet<(i64, String)>, score: i64, m: String| {
        model.retain(|(_, old)| *old != m);
        c.call(&["ZADD", "z", &score.to_string(), &m]).unwrap();
        model.insert((score, m));
    };
    for i in 0..3000 {
        add(
            &mut c,
            &mut model,
            rng.gen_range(-1000..1000),
            format!("m{i}"),
        );
    }
    for round in 0..600 {
        // Take from an end: a pop, a ZREM of the end members, or a ZREMRANGEBYRANK.
        let count = rng.gen_range(1..6usize);
        let max = rng.gen_bool(0.5);
        let expected: Vec<(String, i64)> = if max {
            model
                .iter()
                .rev()
                .take(count)
                .map(|(s, m)| (m.clone(), *s))
                .collect()
        } else {
            model
                .iter()
                .take(count)
                .map(|(s, m)| (m.clone(), *s))
                .collect()
        };
        let how = rng.gen_range(0..3);
        match how {
            0 => {
                let cmd = if max { "ZPOPMAX" } else { "ZPOPMIN" };
                let popped = zrange_pairs(&c.call(&[cmd, "z", &count.to_string()]).unwrap());
                assert_eq!(popped, expected, "round {round}: {cmd} {count}");
            }
            1 => {
                let mut args = vec!["ZREM".to_string(), "z".into()];
                args.extend(expected.iter().map(|(m, _)| m.clone()));
                let removed = int(&c.call(&args).unwrap());
                assert_eq!(removed, expected.len() as i64, "round {round}: {args:?}");
            }
            _ => {
                let (start, stop) = match max {
                    true => (format!("-{count}"), "-1".to_string()),
                    false => ("0".to_string(), (count - 1).to_string()),
                };
                let removed = int(&c.call(&["ZREMRANGEBYRANK", "z", &start, &stop]).unwrap());
                assert_eq!(removed, expected.len() as i64, "round {round}");
            }
        }
        for (m, s) in &expected {
            model.remove(&(*s, m.clone()));
        }
        // A new member or an old one moved beyond either end, or anywhere.
        let (lo, hi) = (
            model.first().map_or(0, |f| f.0),
            model.last().map_or(0, |l| l.0),
        );
        let score = match rng.gen_range(0..3) {
            0 => lo - rng.gen_range(0..3),
            1 => hi + rng.gen_range(0..3),
            _ => rng.gen_range(lo..=hi),
        };
        let member = match rng.gen_range(0..4) {
            0 | 1 => format!("new{round}"),
            // An end member moved: its old index entry goes as a removal from that end does.
            2 if !model.is_empty() => match rng.gen_bool(0.5) {
                true => model.first().unwrap().1.clone(),
                false => model.last().unwrap().1.clone(),
            },
            _ => format!("m{}", rng.gen_range(0..3000)),
        };
        add(&mut c, &mut model, score, member);
        let firsts: Vec<(String, i64)> =
            model.iter().take(3).map(|(s, m)| (m.clone(), *s)).collect();
        assert_eq!(zrange(&mut c, "z", &["0", "2"]), firsts, "round {round}");
        let lasts: Vec<(String, i64)> = model
            .iter()
            .rev()
            .take(3)
            .map(|(s, m)| (m.clone(), *s))
            .collect();
        assert_eq!(
            zrange(&mut c, "z", &["0", "2", "REV"]),
            lasts,
            "round {round}"
        );
    }
    let all: Vec<(String, i64)> = model.iter().map(|(s, m)| (m.clone(), *s)).collect();
    assert_eq!(zrange(&mut c, "z", &["-inf", "+inf", "BYSCORE"]), all);
    drop(c);
    shard.kill9();
    let shard = shard_on(dir.path(), "always");
    let mut c = shard.client().unwrap();
    assert_eq!(zrange(&mut c, "z", &["0", "-1"]), all);
    assert_eq!(int(&c.call(&["ZCARD", "z"]).unwrap()), all.len() as i64);
}

/// The (member, score) pairs of a flat RESP2 `[member, score, …]` reply (ZRANGE WITHSCORES,
/// ZPOPMIN with a count), scores being integers.
fn zrange_pairs(reply: &[u8]) -> Vec<(String, i64)> {
    let text = String::from_utf8_lossy(reply).into_owned();
    let bulks: Vec<&str> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .collect();
    bulks
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].parse().unwrap()))
        .collect()
}

#[test]
fn del_of_a_big_hash_is_one_write_and_the_sweep_reclaims_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_on(dir.path(), "everysec");
    let mut c = shard.client().unwrap();
    fill_hash(&mut c, "big", BIG);
    let cost = cost_of(&shard, &mut c, &["DEL", "big"]);
    assert_eq!(cost, 1.0, "DEL wrote {cost} entries");
    // The name is free at once, and a new hash under it shows none of the old fields.
    assert_eq!(int(&c.call(&["HLEN", "big"]).unwrap()), 0);
    c.call(&["HSET", "big", "fresh", "1"]).unwrap();
    assert_eq!(int(&c.call(&["HLEN", "big"]).unwrap()), 1);
    assert_eq!(c.call(&["HGET", "big", "field:1"]).unwrap(), b"$-1\r\n");
    let started = Instant::now();
    wait_for_the_sweep(&shard, Duration::from_secs(120));
    // Members in tables holding nothing else go with their tables; the rest one by one.
    let swept = counter(&shard, "fjord_shard_members_swept_total");
    println!(
        "swept in {:.1} s, {swept} members deleted one by one",
        started.elapsed().as_secs_f64()
    );
    assert!(swept <= BIG as f64, "{swept} deletes for {BIG} fields");
    assert_eq!(
        c.call(&["HGETALL", "big"]).unwrap(),
        b"*2\r\n$5\r\nfresh\r\n$1\r\n1\r\n"
    );
}

#[test]
fn del_of_a_hash_bigger_than_the_memtable_gives_the_space_of_its_tables_back() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_on(dir.path(), "everysec");
    let mut c = shard.client().unwrap();
    // Small hashes in the slots either side of the big one's ("b" 3300, "big" 6392, "small"
    // 7222): the tables at the edges of the big one's range hold their fields too.
    c.call(&["HSET", "b", "f", "v"]).unwrap();
    c.call(&["HSET", "small", "f", "v"]).unwrap();
    // 120k fields of 1 KiB: several times the 16 MiB memtable, so most of it is in tables.
    const FIELDS: usize = 120_000;
    let value = "v".repeat(1024);
    fill(&mut c, "HSET", "big", FIELDS, |i| {
        vec![format!("field:{i}"), value.clone()]
    });
    let members_tables = || {
        Scrape::of(shard.admin.as_ref().unwrap())
            .unwrap()
            .sum("fjord_shard_table_bytes", &[("keyspace", "members")])
    };
    let started = Instant::now();
    while counter(&shard, "fjord_shard_flushes_pending") > 0.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "flushes hang");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = members_tables();
    println!("{FIELDS} fields of 1 KiB: {before} bytes of member tables");
    assert!(
        before > 32.0 * 1024.0 * 1024.0,
        "the fields are not in tables"
    );
    assert_eq!(c.call(&["DEL", "big"]).unwrap(), b":1\r\n");
    assert_eq!(int(&c.call(&["HLEN", "big"]).unwrap()), 0);
    wait_for_the_sweep(&shard, Duration::from_secs(120));
    let after = members_tables();
    let swept = counter(&shard, "fjord_shard_members_swept_total");
    println!("after the sweep: {after} bytes of member tables; {swept} members deleted one by one");
    // The tables that held only its fields were dropped whole: their space is back, and
    // only the fields in tables shared with the small hashes needed a delete each.
    assert!(after < before / 2.0, "{after} of {before} bytes remain");
    assert!(
        swept < FIELDS as f64 / 2.0,
        "{swept} deletes of {FIELDS} fields"
    );
    for small in ["b", "small"] {
        assert_eq!(c.call(&["HGET", small, "f"]).unwrap(), b"$1\r\nv\r\n");
    }
    assert_eq!(c.call(&["HGET", "big", "field:1"]).unwrap(), b"$-1\r\n");
}

#[test]
fn a_sweep_cut_short_by_kill_9_finishes_after_restart_and_no_old_field_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut shard = shard_on(dir.path(), "always");
    let mut c = shard.client().unwrap();
    fill_hash(&mut c, "h", 50_000);
    c.call(&["DEL", "h"]).unwrap();
    c.call(&["HSET", "h", "after", "1"]).unwrap();
    let dead = counter(&shard, "fjord_shard_dead_collections");
    shard.kill9();
    println!("killed with {dead} dead collections still to sweep");
    let shard = shard_on(dir.path(), "always");
    let mut c = shard.client().unwrap();
    assert_eq!(
        c.call(&["HGETALL", "h"]).unwrap(),
        b"*2\r\n$5\r\nafter\r\n$1\r\n1\r\n"
    );
    // A restart starts from the markers on disk, so the sweep carries on where it stopped.
    wait_for_the_sweep(&shard, Duration::from_secs(60));
    assert_eq!(
        c.call(&["HGETALL", "h"]).unwrap(),
        b"*2\r\n$5\r\nafter\r\n$1\r\n1\r\n"
    );
    assert_eq!(int(&c.call(&["HLEN", "h"]).unwrap()), 1);
}

/// Waits until no deleted collection is left to sweep, printing the progress.
fn wait_for_the_sweep(shard: &Shard, limit: Duration) {
    let started = Instant::now();
    loop {
        let dead = counter(shard, "fjord_shard_dead_collections");
        let swept = counter(shard, "fjord_shard_members_swept_total");
        println!(
            "{:>5.1} s: {dead} dead collections, {swept} members swept, {} bytes on disk",
            started.elapsed().as_secs_f64(),
            counter(shard, "fjord_shard_disk_bytes"),
        );
        if dead == 0.0 {
            return;
        }
        assert!(started.elapsed() < limit, "the sweep did not finish");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn rename_within_a_slot_moves_no_member_and_across_slots_copies_them() {
    let dir = tempfile::tempdir().unwrap();
    let shard = shard_on(dir.path(), "everysec");
    let mut c = shard.client().unwrap();
    fill_hash(&mut c, "{t}a", 5_000);
    let within = cost_of(&shard, &mut c, &["RENAME", "{t}a", "{t}b"]);
    assert_eq!(within, 2.0, "RENAME within a slot wrote {within} entries");
    assert_eq!(int(&c.call(&["HLEN", "{t}b"]).unwrap()), 5_000);
    // The shard itself serves any key: a rename across slots copies the members.
    let across = cost_of(&shard, &mut c, &["RENAME", "{t}b", "other"]);
    assert!(
        across >= 5_000.0,
        "RENAME across slots wrote {across} entries"
    );
    assert_eq!(
        c.call(&["HGET", "other", "field:4999"]).unwrap(),
        b"$10\r\nvalue:4999\r\n"
    );
    assert_eq!(c.call(&["EXISTS", "{t}b"]).unwrap(), b":0\r\n");
    // COPY gives the copy its own members: changing one leaves the other alone.
    c.call(&["COPY", "other", "copy"]).unwrap();
    c.call(&["HDEL", "copy", "field:1"]).unwrap();
    c.call(&["HSET", "other", "only-in-other", "1"]).unwrap();
    assert_eq!(int(&c.call(&["HLEN", "copy"]).unwrap()), 4_999);
    assert_eq!(int(&c.call(&["HLEN", "other"]).unwrap()), 5_001);
    assert_eq!(
        c.call(&["HEXISTS", "copy", "only-in-other"]).unwrap(),
        b":0\r\n"
    );
}

/// What one writer saw acknowledged, per hash: field → value, and the hashes it deleted.
#[derive(Default)]
struct Acked {
    fields: HashMap<String, HashMap<String, String>>,
    /// Hash → fields that may or may not have landed (the connection broke before a reply).
    unknown: HashMap<String, Vec<String>>,
}

#[test]
fn kill_9_in_fsync_always_loses_no_acknowledged_field_and_revives_no_deleted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (shard, acked) = writers_then_kill_9(dir.path(), writer);
    let mut c = shard.client().unwrap();
    let mut checked = 0;
    for acked in &acked {
        let acked = acked.lock().unwrap();
        for (key, fields) in &acked.fields {
            let unknown = acked.unknown.get(key).cloned().unwrap_or_default();
            let got = hgetall(&mut c, key);
            for (f, v) in fields {
                if unknown.contains(f) {
                    continue;
                }
                assert_eq!(got.get(f), Some(v), "{key} {f} was acknowledged");
                checked += 1;
            }
            for f in got.keys() {
                assert!(
                    fields.contains_key(f) || unknown.contains(f),
                    "{key} has {f}, which was never acknowledged (a field of a deleted version?)"
                );
            }
            assert_eq!(int(&c.call(&["HLEN", key]).unwrap()) as usize, got.len());
        }
    }
    println!("{checked} acknowledged fields checked after kill -9");
    assert!(checked > 0, "no write was acknowledged before the kill");
}

/// Runs 4 `write(w, addr, stop, log)` threads against a shard in fsync always for 1.5 s,
/// kills the shard with kill -9, stops the writers, and starts it again on its data: the
/// restarted shard, and each writer's log of what was acknowledged.
fn writers_then_kill_9<L: Default + Send + 'static>(
    dir: &std::path::Path,
    write: fn(usize, &str, &AtomicBool, &Mutex<L>),
) -> (Shard, Vec<Arc<Mutex<L>>>) {
    let mut shard = shard_on(dir, "always");
    let stop = Arc::new(AtomicBool::new(false));
    let logs: Vec<Arc<Mutex<L>>> = (0..4).map(|_| Arc::default()).collect();
    let writers: Vec<_> = logs
        .iter()
        .enumerate()
        .map(|(w, log)| {
            let (addr, stop, log) = (shard.addr.clone(), Arc::clone(&stop), Arc::clone(log));
            std::thread::spawn(move || write(w, &addr, &stop, &log))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    shard.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    (shard_on(dir, "always"), logs)
}

/// HSETs fields into a few hashes and now and then DELs one, logging what was acknowledged.
fn writer(w: usize, addr: &str, stop: &AtomicBool, acked: &Mutex<Acked>) {
    let Ok(mut c) = RawClient::tcp(addr) else {
        return;
    };
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let key = format!("w{w}:h{}", i % 5);
        let field = format!("f{}", i % 37);
        let value = format!("v{i}");
        if i.is_multiple_of(50) {
            match c.call(&["DEL", &key]) {
                Ok(_) => {
                    let mut a = acked.lock().unwrap();
                    a.fields.insert(key.clone(), HashMap::new());
                    a.unknown.remove(&key);
                }
                Err(_) => {
                    // The DEL may have landed: every field of the hash is now unknown.
                    let mut a = acked.lock().unwrap();
                    let fields: Vec<String> = a
                        .fields
                        .get(&key)
                        .map(|f| f.keys().cloned().collect())
                        .unwrap_or_default();
                    a.unknown.entry(key).or_default().extend(fields);
                    return;
                }
            }
            continue;
        }
        match c.call(&["HSET", &key, &field, &value]) {
            Ok(_) => {
                let mut a = acked.lock().unwrap();
                a.fields
                    .entry(key.clone())
                    .or_default()
                    .insert(field.clone(), value);
                if let Some(u) = a.unknown.get_mut(&key) {
                    u.retain(|f| f != &field);
                }
            }
            Err(_) => {
                acked
                    .lock()
                    .unwrap()
                    .unknown
                    .entry(key)
                    .or_default()
                    .push(field);
                return;
            }
        }
    }
}

fn hgetall(c: &mut RawClient, key: &str) -> HashMap<String, String> {
    let reply = String::from_utf8(c.call(&["HGETALL", key]).unwrap()).unwrap();
    let items: Vec<&str> = reply
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .collect();
    items
        .chunks(2)
        .map(|p| (p[0].to_string(), p[1].to_string()))
        .collect()
}

/// What one list writer had acknowledged when the shard died. Its list holds, in order, the
/// numbers `popped + 1 ..= pushed`, and a `marker` that an LINSERT put in its middle
/// until an LREM takes it out again. Only a writer's last command can be unknown: it stops
/// at its first error.
#[derive(Default)]
struct ListLog {
    pushed: u64,
    popped: u64,
    markers: u64,
    /// The last command, sent but not answered: it may or may not have been applied.
    unknown: Option<ListOp>,
}

#[derive(Clone, Copy, Debug)]
enum ListOp {
    Push,
    Pop,
    Insert,
    Remove,
}

#[test]
fn kill_9_in_fsync_always_keeps_every_acknowledged_list_change() {
    let dir = tempfile::tempdir().unwrap();
    let (shard, logs) = writers_then_kill_9(dir.path(), list_writer);
    let mut c = shard.client().unwrap();
    let mut checked = 0;
    for (w, log) in logs.iter().enumerate() {
        let log = log.lock().unwrap();
        let reply = String::from_utf8(c.call(&["LRANGE", &format!("q{w}"), "0", "-1"]).unwrap());
        let items: Vec<String> = reply
            .unwrap()
            .split("\r\n")
            .skip(1)
            .filter(|l| !l.starts_with('$') && !l.is_empty())
            .map(String::from)
            .collect();
        let markers = items.iter().filter(|i| *i == "marker").count() as u64;
        let numbers: Vec<u64> = items.iter().filter_map(|i| i.parse().ok()).collect();
        assert_eq!(
            numbers.len() as u64 + markers,
            items.len() as u64,
            "q{w}: {items:?}"
        );
        // What the unknown last command may have done to each end and to the markers.
        let (mut first, mut last, mut marks) =
            (vec![log.popped + 1], vec![log.pushed], vec![log.markers]);
        match log.unknown {
            Some(ListOp::Push) => last.push(log.pushed + 1),
            Some(ListOp::Pop) => first.push(log.popped + 2),
            Some(ListOp::Insert) => marks.push(log.markers + 1),
            Some(ListOp::Remove) => marks.push(log.markers.saturating_sub(1)),
            None => {}
        }
        assert!(
            marks.contains(&markers),
            "q{w}: {markers} markers, {log_markers} acknowledged",
            log_markers = log.markers
        );
        let expected_first = numbers.first().copied().unwrap_or(log.popped + 1);
        assert!(
            first.contains(&expected_first),
            "q{w} starts at {expected_first}, {} popped",
            log.popped
        );
        let end = numbers.last().copied().unwrap_or(expected_first - 1);
        assert!(
            last.contains(&end),
            "q{w} ends at {end}, {} pushed",
            log.pushed
        );
        assert!(
            numbers.windows(2).all(|p| p[1] == p[0] + 1),
            "q{w} lost or repeated an element: {numbers:?}"
        );
        assert_eq!(
            int(&c.call(&["LLEN", &format!("q{w}")]).unwrap()) as usize,
            items.len()
        );
        checked += log.pushed;
    }
    println!("{checked} acknowledged pushes checked after kill -9");
    assert!(checked > 0, "no write was acknowledged before the kill");
}

/// Pushes the next number onto its own list; every 7th command pops the head, and now and
/// then an LINSERT puts a marker in the middle (shifting one side) that a later LREM takes
/// out (shifting again), logging what was acknowledged.
fn list_writer(w: usize, addr: &str, stop: &AtomicBool, log: &Mutex<ListLog>) {
    let key = &format!("q{w}");
    let Ok(mut c) = RawClient::tcp(addr) else {
        return;
    };
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let (op, args): (ListOp, Vec<String>) = {
            let l = log.lock().unwrap();
            let middle = (l.popped + l.pushed) / 2 + 1;
            if i.is_multiple_of(7) && l.pushed > l.popped + 1 {
                (ListOp::Pop, vec!["LPOP".into(), key.into()])
            } else if i.is_multiple_of(13)
                && l.markers == 0
                && middle <= l.pushed
                && middle > l.popped
            {
                let at = middle.to_string();
                (
                    ListOp::Insert,
                    vec![
                        "LINSERT".into(),
                        key.into(),
                        "BEFORE".into(),
                        at,
                        "marker".into(),
                    ],
                )
            } else if i % 13 == 6 && l.markers == 1 {
                (
                    ListOp::Remove,
                    vec!["LREM".into(), key.into(), "1".into(), "marker".into()],
                )
            } else {
                (
                    ListOp::Push,
                    vec!["RPUSH".into(), key.into(), (l.pushed + 1).to_string()],
                )
            }
        };
        let reply = c.call(&args);
        let mut l = log.lock().unwrap();
        match reply {
            Ok(r) if !r.starts_with(b"-") => match op {
                ListOp::Push => l.pushed += 1,
                ListOp::Pop => l.popped += 1,
                ListOp::Insert => l.markers += 1,
                ListOp::Remove => l.markers -= 1,
            },
            _ => {
                l.unknown = Some(op);
                return;
            }
        }
    }
}
