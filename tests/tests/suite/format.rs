//! Data written by an older storage format opens in today's shard, with every key, value
//! and TTL it held. `tests/fixtures/format-N.tar.gz` is a data directory that format
//! version N wrote from `format-N.commands` (`tests/fixtures/make-format-fixture.sh` says
//! how); a change of the format must keep these tests green, by reading the old format or
//! converting it on open.

use fjord_tests::{RawClient, Shard, ShardOptions};
use std::path::Path;
use std::process::Command;

/// A copy of the fixture, unpacked into a temporary folder (the shard writes to it).
fn unpack(fixture: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let archive = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("running tar");
    assert!(status.success(), "unpacking {}", archive.display());
    let data = dir.path().join(fixture.trim_end_matches(".tar.gz"));
    (dir, data)
}

fn call(c: &mut RawClient, line: &[&str]) -> String {
    c.call_str(line).unwrap()
}

#[test]
fn a_data_directory_of_format_1_opens_with_its_keys_values_and_ttls() {
    opens_format_1(&[]);
}

/// The same without the row cache, which otherwise loads the whole small store at start:
/// here every read goes to fjall and the key filter.
#[test]
fn a_data_directory_of_format_1_reads_from_fjall_without_the_row_cache() {
    opens_format_1(&["--row-cache-mb", "0"]);
}

fn opens_format_1(shard_args: &[&str]) {
    let (_dir, data) = unpack("format-1.tar.gz");
    let shard = Shard::start_with(ShardOptions {
        data_dir: Some(data),
        extra_args: shard_args.iter().map(|a| a.to_string()).collect(),
        ..ShardOptions::default()
    })
    .unwrap();
    let mut c = shard.client().unwrap();
    assert_eq!(call(&mut c, &["GET", "plain"]), "$5\r\nvalue\r\n");
    assert_eq!(
        call(&mut c, &["MGET", "{t}a", "{t}b", "k1", "k2", "k3", "gone"]),
        "*6\r\n$1\r\n1\r\n$1\r\n2\r\n$3\r\none\r\n$3\r\ntwo\r\n$5\r\nthree\r\n$-1\r\n"
    );
    assert_eq!(call(&mut c, &["PEXPIRETIME", "ttl"]), ":4102444800000\r\n");
    assert_eq!(call(&mut c, &["TTL", "plain"]), ":-1\r\n");
    assert_eq!(call(&mut c, &["GET", "counter"]), "$2\r\n42\r\n");
    assert_eq!(call(&mut c, &["GETBIT", "bitmap", "100"]), ":1\r\n");
    assert_eq!(call(&mut c, &["STRLEN", "big"]), ":70000\r\n");
    // The per-slot counts came with the data: DBSIZE is exact without a scan.
    assert_eq!(call(&mut c, &["DBSIZE"]), ":10\r\n");
    assert_eq!(call(&mut c, &["EXISTS", "gone"]), ":0\r\n");
    // And the store takes writes on top of it.
    assert_eq!(call(&mut c, &["INCR", "counter"]), ":43\r\n");
    assert_eq!(call(&mut c, &["SET", "new", "v"]), "+OK\r\n");
    assert_eq!(call(&mut c, &["DBSIZE"]), ":11\r\n");
}

/// Format 2 (collections, before the oplog): every type, with a TTL, a deleted collection
/// whose members may still wait for the sweep, and a renamed one.
#[test]
fn a_data_directory_of_format_2_opens_with_its_collections() {
    let (_dir, data) = unpack("format-2.tar.gz");
    let shard = Shard::start_with(ShardOptions {
        data_dir: Some(data),
        ..ShardOptions::default()
    })
    .unwrap();
    let mut c = shard.client().unwrap();
    assert_eq!(call(&mut c, &["GET", "plain"]), "$5\r\nvalue\r\n");
    assert_eq!(call(&mut c, &["GET", "counter"]), "$2\r\n42\r\n");
    assert_eq!(call(&mut c, &["PEXPIRETIME", "ttl"]), ":4102444800000\r\n");
    assert_eq!(
        call(&mut c, &["HGETALL", "hash"]),
        "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf3\r\n$2\r\nv3\r\n"
    );
    assert_eq!(call(&mut c, &["SCARD", "set"]), ":3\r\n");
    assert_eq!(call(&mut c, &["SISMEMBER", "set", "c"]), ":1\r\n");
    assert_eq!(
        call(&mut c, &["ZRANGE", "zset", "0", "-1", "WITHSCORES"]),
        "*8\r\n$3\r\nlow\r\n$4\r\n-inf\r\n$3\r\none\r\n$1\r\n1\r\n\
         $3\r\ntwo\r\n$1\r\n2\r\n$5\r\nthree\r\n$3\r\n3.5\r\n"
    );
    assert_eq!(
        call(&mut c, &["PEXPIRETIME", "hashttl"]),
        ":4102444800000\r\n"
    );
    assert_eq!(call(&mut c, &["EXISTS", "doomed", "before"]), ":0\r\n");
    assert_eq!(call(&mut c, &["HGET", "after", "f"]), "$1\r\nv\r\n");
    assert_eq!(call(&mut c, &["DBSIZE"]), ":11\r\n");
    // Versions handed out before go on counting: a new collection does not meet old members.
    assert_eq!(call(&mut c, &["SADD", "doomed", "new"]), ":1\r\n");
    assert_eq!(call(&mut c, &["SMEMBERS", "doomed"]), "*1\r\n$3\r\nnew\r\n");
    assert_eq!(call(&mut c, &["ZADD", "zset", "4", "four"]), ":1\r\n");
    assert_eq!(call(&mut c, &["ZCARD", "zset"]), ":5\r\n");
    // Pops from a sorted set written before index bounds existed.
    assert_eq!(
        call(&mut c, &["ZPOPMIN", "zset"]),
        "*2\r\n$3\r\nlow\r\n$4\r\n-inf\r\n"
    );
    assert_eq!(call(&mut c, &["ZADD", "zset", "-5", "lower"]), ":1\r\n");
    assert_eq!(
        call(&mut c, &["ZPOPMIN", "zset"]),
        "*2\r\n$5\r\nlower\r\n$2\r\n-5\r\n"
    );
    // A set written before sets kept positions: drawn from, written and popped as it is.
    let draw = call(&mut c, &["SRANDMEMBER", "set", "-5"]);
    assert!(draw.starts_with("*5\r\n"), "{draw}");
    assert_eq!(
        call(&mut c, &["SRANDMEMBER", "set", "5"]).len(),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n".len()
    );
    assert_eq!(call(&mut c, &["SADD", "set", "e"]), ":1\r\n");
    assert_eq!(call(&mut c, &["SREM", "set", "a"]), ":1\r\n");
    let mut popped: Vec<String> = (0..3).map(|_| call(&mut c, &["SPOP", "set"])).collect();
    popped.sort();
    assert_eq!(popped, ["$1\r\nb\r\n", "$1\r\nc\r\n", "$1\r\ne\r\n"]);
    assert_eq!(call(&mut c, &["EXISTS", "set"]), ":0\r\n");
}
