//! The one command table.
//!
//! Every command fjord knows has one entry here: its name, Redis arity, flags, key positions
//! (first, last, step), how the proxy routes it, and what `COMMAND DOCS` says about it. The
//! shard dispatches on [`CommandId`] (an exhaustive `match`, so a new entry without a handler
//! does not compile); the proxy routes on [`Route`]; `COMMAND` and arity errors read the same
//! entries. Adding a command touches this table and the one file that implements it.

use crate::error;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Identity of a top-level command, for exhaustive dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum CommandId {
    // connection and server
    Ping,
    Echo,
    Quit,
    Select,
    Hello,
    Auth,
    Client,
    Info,
    Command,
    Config,
    Time,
    Dbsize,
    Flushdb,
    Flushall,
    Lastsave,
    Shutdown,
    Readonly,
    Readwrite,
    Asking,
    Cluster,
    Function,
    Debug,
    Role,
    Replicaof,
    Wait,
    // strings
    Get,
    Set,
    Setnx,
    Setex,
    Psetex,
    Getset,
    Getdel,
    Getex,
    Mget,
    Mset,
    Msetnx,
    Append,
    Strlen,
    Getrange,
    Substr,
    Setrange,
    Incr,
    Decr,
    Incrby,
    Decrby,
    Incrbyfloat,
    Lcs,
    // bitmaps (on strings)
    Setbit,
    Getbit,
    Bitcount,
    Bitpos,
    Bitop,
    Bitfield,
    BitfieldRo,
    // hashes
    Hset,
    Hsetnx,
    Hmset,
    Hget,
    Hmget,
    Hdel,
    Hlen,
    Hstrlen,
    Hexists,
    Hkeys,
    Hvals,
    Hgetall,
    Hincrby,
    Hincrbyfloat,
    Hrandfield,
    Hscan,
    // lists
    Lpush,
    Rpush,
    Lpushx,
    Rpushx,
    Lpop,
    Rpop,
    Lmpop,
    Llen,
    Lindex,
    Lrange,
    Lset,
    Ltrim,
    Lrem,
    Linsert,
    Lpos,
    Lmove,
    Rpoplpush,
    // sets
    Sadd,
    Srem,
    Smembers,
    Sismember,
    Smismember,
    Scard,
    Spop,
    Srandmember,
    Smove,
    Sinter,
    Sintercard,
    Sinterstore,
    Sunion,
    Sunionstore,
    Sdiff,
    Sdiffstore,
    Sscan,
    // sorted sets
    Zadd,
    Zincrby,
    Zrem,
    Zcard,
    Zscore,
    Zmscore,
    Zrank,
    Zrevrank,
    Zcount,
    Zlexcount,
    Zrange,
    Zrangebyscore,
    Zrevrangebyscore,
    Zrevrange,
    Zrangebylex,
    Zrevrangebylex,
    Zrangestore,
    Zremrangebyrank,
    Zremrangebyscore,
    Zremrangebylex,
    Zpopmin,
    Zpopmax,
    Zmpop,
    Zrandmember,
    Zscan,
    Zunion,
    Zinter,
    Zdiff,
    Zunionstore,
    Zinterstore,
    Zdiffstore,
    Zintercard,
    // generic keyspace
    Del,
    Unlink,
    Exists,
    Touch,
    Type,
    Expire,
    Pexpire,
    Expireat,
    Pexpireat,
    Ttl,
    Pttl,
    Expiretime,
    Pexpiretime,
    Persist,
    Rename,
    Renamenx,
    Copy,
    Memory,
    Object,
    Dump,
    Restore,
    Scan,
    Keys,
    Randomkey,
    Sort,
    SortRo,
    Pfadd,
    Pfcount,
    Pfmerge,
    Pfdebug,
    Pfselftest,
    // geo (on sorted sets)
    Geoadd,
    Geodist,
    Geohash,
    Geopos,
    Georadius,
    GeoradiusRo,
    Georadiusbymember,
    GeoradiusbymemberRo,
    Geosearch,
    Geosearchstore,
    // refused until pinned connections exist
    Unsupported,
    // shard-internal slot commands
    Fjord,
}

/// Command flags, as `COMMAND` reports them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    pub const NO_AUTH: u32 = 1 << 10;
    pub const MOVABLEKEYS: u32 = 1 << 11;
    pub const ALLOW_BUSY: u32 = 1 << 12;
    /// A read that may still change its key and replicate the change (PFCOUNT updating the
    /// cached count it keeps in the value).
    pub const MAY_REPLICATE: u32 = 1 << 13;

    /// Flag names in the order Redis prints them.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (ALLOW_BUSY, "allow_busy"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}
use flags::*;

/// How a proxy merges the per-shard parts of a split command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Values in request order (MGET).
    Values,
    /// `+OK` when every part succeeded (MSET).
    Ok,
    /// Integer replies summed (DEL, UNLINK, EXISTS, TOUCH).
    SumInts,
}

/// How the proxy routes a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Answered by whichever process receives it (PING, HELLO, CLIENT, CLUSTER, …).
    Local,
    /// Every key must hash to one slot (else CROSSSLOT); sent as is to that slot's shard.
    SingleSlot,
    /// Keys are split per shard and the replies merged.
    Split(Merge),
    /// Keyless, covering the slots a node serves (DBSIZE, SCAN, KEYS, RANDOMKEY, FLUSH*).
    NodeScoped,
    /// Needs a connection pinned to one client; refused with a clear error for now.
    Unsupported,
    /// Spoken between proxy and shard only; never accepted from clients by the proxy.
    Internal,
    /// Read-only commands over several keys (PFCOUNT, the set and sorted-set algebra without
    /// STORE: SINTER, ZUNION, …): single-slot on the cluster listeners,
    /// as in Redis Cluster; on the standalone listener, keys in several slots are read from
    /// their shards and the proxy computes the answer, as one Redis would.
    Gather,
    /// SORT and SORT_RO: single-slot (the key and a STORE destination), unless a BY or GET
    /// pattern names other keys, which may be on any shard: the proxy resolves those itself.
    Sort,
}

/// Where a key named by an option is in a command's arguments, if it is given.
pub type KeyFinder = fn(&[Bytes]) -> Option<usize>;

/// One entry of the command table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Lower-case name (`"get"`, or the subcommand's name, e.g. `"setname"`).
    pub name: &'static str,
    pub id: CommandId,
    /// Redis arity: `n` means exactly n arguments including the name, `-n` at least n.
    pub arity: i32,
    pub flags: u32,
    /// 1-based position of the first key, 0 for keyless commands.
    pub first_key: i32,
    /// Position of the last key; negative counts from the end (-1 = last argument).
    pub last_key: i32,
    pub step: i32,
    /// For commands whose keys follow a count (`SINTERCARD numkeys key …`): the position of
    /// that count; 0 otherwise. The keys are then the `numkeys` arguments after it.
    pub numkeys_at: usize,
    /// For commands whose destination follows an option (SORT … STORE d, GEORADIUS …
    /// STOREDIST d): where that key is in the arguments, if it is given.
    pub store_key: Option<KeyFinder>,
    pub route: Route,
    /// `COMMAND DOCS` group, e.g. `"string"`.
    pub group: &'static str,
    /// Redis version that introduced the command.
    pub since: &'static str,
    pub summary: &'static str,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    pub fn has_flag(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// Whether `argc` arguments (including the name) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Indexes into `args` of this command's keys, following first/last/step (or the count
    /// at `numkeys_at`; a count that is not a number gives no key).
    pub fn key_indexes(&self, args: &[Bytes]) -> impl Iterator<Item = usize> {
        let argc = args.len();
        // The keys at fixed positions (all of them, or ZUNIONSTORE's destination).
        let (first, step) = (self.first_key.max(0) as usize, self.step.max(1) as usize);
        let last = if self.first_key <= 0 || argc == 0 {
            0
        } else if self.last_key < 0 {
            (argc as i64 + i64::from(self.last_key)).max(0) as usize
        } else {
            (self.last_key as usize).min(argc - 1)
        };
        // A keyless command's positions are the empty range past every argument.
        let fixed = match first {
            0 => argc + 1..=argc,
            f => f..=last,
        };
        // The keys a count names.
        let counted = match self.numkeys_at {
            0 => 0..0,
            at => {
                let count = args
                    .get(at)
                    .and_then(|a| std::str::from_utf8(a).ok()?.parse::<usize>().ok())
                    .unwrap_or(0);
                (at + 1).min(argc)..(at + 1).saturating_add(count).min(argc)
            }
        };
        fixed
            .step_by(step)
            .chain(counted)
            .chain(self.store_key.and_then(|find| find(args)))
    }

    /// The subcommand named `name` (any case).
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        self.subcommands
            .iter()
            .find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Name as Redis prints it in errors: `get`, or `client|setname` for a subcommand.
    pub fn full_name(&self, parent: Option<&CommandSpec>) -> String {
        match parent {
            Some(p) => format!("{}|{}", p.name, self.name),
            None => self.name.to_string(),
        }
    }
}

/// A request matched against the table: the command, and its subcommand for containers.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    pub spec: &'static CommandSpec,
    pub sub: Option<&'static CommandSpec>,
}

impl Resolved {
    /// The entry whose arity and flags apply: the subcommand's if there is one.
    pub fn effective(&self) -> &'static CommandSpec {
        self.sub.unwrap_or(self.spec)
    }
}

/// Where SORT's STORE destination is, as Redis's `sortGetKeys` finds it: options are
/// skipped with their arguments (so a GET pattern spelled `store` is not one), and the last
/// STORE wins.
fn sort_store_index(args: &[Bytes]) -> Option<usize> {
    let mut found = None;
    let mut j = 2;
    while j < args.len() {
        let skip = match args[j].to_ascii_lowercase().as_slice() {
            b"limit" => 2,
            b"get" | b"by" => 1,
            b"store" => {
                found = (j + 1 < args.len()).then_some(j + 1).or(found);
                1
            }
            _ => 0,
        };
        j += skip + 1;
    }
    found
}

/// Where the destination of GEORADIUS or GEORADIUSBYMEMBER is, as Redis's
/// `georadiusGetKeys` finds it: after the last STORE or STOREDIST from the sixth argument on.
fn georadius_store_index(args: &[Bytes]) -> Option<usize> {
    let mut found = None;
    let mut i = 5;
    while i < args.len() {
        let word = &args[i];
        if (word.eq_ignore_ascii_case(b"store") || word.eq_ignore_ascii_case(b"storedist"))
            && i + 1 < args.len()
        {
            found = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    found
}

/// Looks up `args[0]` (and `args[1]` for containers), checking arity.
///
/// Errors carry Redis's exact texts: unknown command, unknown subcommand, wrong arity.
pub fn resolve(args: &[Bytes]) -> Result<Resolved, String> {
    let name = args.first().map(|a| &a[..]).unwrap_or_default();
    let Some(spec) = lookup(name) else {
        return Err(error::unknown_command(name, &args[1.min(args.len())..]));
    };
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        let Some(sub) = spec.subcommand(&args[1]) else {
            return Err(error::unknown_subcommand(spec.name, &args[1]));
        };
        if !sub.arity_ok(args.len()) {
            return Err(error::wrong_arity(&sub.full_name(Some(spec))));
        }
        return Ok(Resolved {
            spec,
            sub: Some(sub),
        });
    }
    if !spec.arity_ok(args.len()) {
        return Err(error::wrong_arity(spec.name));
    }
    Ok(Resolved { spec, sub: None })
}

/// Whether FLUSHALL/FLUSHDB's arguments are valid: none, or one of ASYNC and SYNC (fjord
/// flushes the same way for both).
pub fn flush_options_ok(args: &[Bytes]) -> bool {
    match args {
        [_] => true,
        [_, opt] => opt.eq_ignore_ascii_case(b"ASYNC") || opt.eq_ignore_ascii_case(b"SYNC"),
        _ => false,
    }
}

/// The command named `name`, in any case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    static INDEX: OnceLock<HashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    let index = INDEX.get_or_init(|| COMMANDS.iter().map(|c| (c.name, c)).collect());
    if name.len() > 32 {
        return None;
    }
    let mut lower = [0u8; 32];
    let lower = &mut lower[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    std::str::from_utf8(lower)
        .ok()
        .and_then(|n| index.get(n).copied())
}

/// Every command, in the order `COMMAND` lists them.
pub fn all() -> &'static [CommandSpec] {
    COMMANDS
}

/// Where a top-level command sits in [`all`], in constant time (per-command metrics are kept
/// in a table indexed by it); `None` for a subcommand's entry.
pub fn position(spec: &'static CommandSpec) -> Option<usize> {
    let offset = (spec as *const CommandSpec as usize).wrapping_sub(COMMANDS.as_ptr() as usize);
    let i = offset / std::mem::size_of::<CommandSpec>();
    COMMANDS
        .get(i)
        .filter(|c| std::ptr::eq(*c, spec))
        .map(|_| i)
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    id: CommandId,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    route: Route,
    group: &'static str,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    CommandSpec {
        name,
        id,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        numkeys_at: 0,
        store_key: None,
        route,
        group,
        since,
        summary,
        subcommands: &[],
    }
}

/// A command whose destination follows an option, found by `find` (movable: COMMAND
/// reports only the source key).
const fn store_key(mut spec: CommandSpec, find: KeyFinder) -> CommandSpec {
    spec.store_key = Some(find);
    spec
}

/// A command whose keys follow a count at position `at` (movable keys: COMMAND reports 0 0 0).
const fn numkeys(mut spec: CommandSpec, at: usize) -> CommandSpec {
    spec.numkeys_at = at;
    spec
}

const fn container(mut parent: CommandSpec, subs: &'static [CommandSpec]) -> CommandSpec {
    parent.subcommands = subs;
    parent
}

/// A subcommand entry; it shares the container's id and route.
const fn sub(
    name: &'static str,
    parent: CommandId,
    arity: i32,
    flags: u32,
    route: Route,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    spec(
        name, parent, arity, flags, NO_KEYS, route, "", since, summary,
    )
}

/// A subcommand about one key (`MEMORY USAGE key`): routed to the key's shard.
const fn keyed_sub(
    name: &'static str,
    parent: CommandId,
    arity: i32,
    flags: u32,
    since: &'static str,
    summary: &'static str,
) -> CommandSpec {
    spec(
        name,
        parent,
        arity,
        flags,
        (2, 2, 1),
        SingleSlot,
        "",
        since,
        summary,
    )
}

const NO_KEYS: (i32, i32, i32) = (0, 0, 0);
const ONE_KEY: (i32, i32, i32) = (1, 1, 1);
const ALL_KEYS: (i32, i32, i32) = (1, -1, 1);
const KEY_VALUE_PAIRS: (i32, i32, i32) = (1, -1, 2);
const TWO_KEYS: (i32, i32, i32) = (1, 2, 1);

use CommandId as C;
use Route::{Gather, Internal, Local, NodeScoped, SingleSlot, Sort, Split, Unsupported};

const CONN: u32 = NOSCRIPT | LOADING | STALE | FAST;
const W: u32 = WRITE | DENYOOM;
const WF: u32 = WRITE | DENYOOM | FAST;
const RF: u32 = READONLY | FAST;

static CLIENT_SUBS: &[CommandSpec] = &[
    sub(
        "setname",
        C::Client,
        3,
        CONN,
        Local,
        "2.6.9",
        "Sets the connection name.",
    ),
    sub(
        "getname",
        C::Client,
        2,
        CONN,
        Local,
        "2.6.9",
        "Returns the name of the connection.",
    ),
    sub(
        "id",
        C::Client,
        2,
        CONN,
        Local,
        "5.0.0",
        "Returns the unique client ID of the connection.",
    ),
    sub(
        "setinfo",
        C::Client,
        4,
        CONN,
        Local,
        "7.2.0",
        "Sets information specific to the client or connection.",
    ),
    sub(
        "list",
        C::Client,
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Local,
        "2.4.0",
        "Lists open connections.",
    ),
    sub(
        "info",
        C::Client,
        2,
        CONN,
        Local,
        "6.2.0",
        "Returns information about the connection.",
    ),
    sub(
        "no-evict",
        C::Client,
        3,
        CONN,
        Local,
        "7.0.0",
        "Sets the client eviction mode of the connection.",
    ),
    sub(
        "no-touch",
        C::Client,
        3,
        CONN,
        Local,
        "7.2.0",
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
    ),
    sub(
        "help",
        C::Client,
        2,
        CONN,
        Local,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static COMMAND_SUBS: &[CommandSpec] = &[
    sub(
        "count",
        C::Command,
        2,
        LOADING | STALE,
        Local,
        "2.8.13",
        "Returns a count of commands.",
    ),
    sub(
        "info",
        C::Command,
        -2,
        LOADING | STALE,
        Local,
        "2.8.13",
        "Returns information about one, multiple or all commands.",
    ),
    sub(
        "docs",
        C::Command,
        -2,
        LOADING | STALE,
        Local,
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
    ),
    sub(
        "list",
        C::Command,
        -2,
        LOADING | STALE,
        Local,
        "7.0.0",
        "Returns a list of command names.",
    ),
    sub(
        "getkeys",
        C::Command,
        -4,
        LOADING | STALE,
        Local,
        "2.8.13",
        "Extracts the key names from an arbitrary command.",
    ),
    sub(
        "help",
        C::Command,
        2,
        LOADING | STALE,
        Local,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static CONFIG_SUBS: &[CommandSpec] = &[
    sub(
        "get",
        C::Config,
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Local,
        "2.0.0",
        "Returns the effective values of configuration parameters.",
    ),
    sub(
        "set",
        C::Config,
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Local,
        "2.0.0",
        "Sets configuration parameters in-flight.",
    ),
    sub(
        "resetstat",
        C::Config,
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        Local,
        "2.0.0",
        "Resets the server's statistics.",
    ),
    sub(
        "help",
        C::Config,
        2,
        LOADING | STALE,
        Local,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static CLUSTER_SUBS: &[CommandSpec] = &[
    sub(
        "slots",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns the mapping of cluster slots to nodes.",
    ),
    sub(
        "shards",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "7.0.0",
        "Returns the mapping of cluster slots to shards.",
    ),
    sub(
        "nodes",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns the cluster configuration for a node.",
    ),
    sub(
        "info",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns information about the state of a node.",
    ),
    sub(
        "myid",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns the ID of a node.",
    ),
    sub(
        "keyslot",
        C::Cluster,
        3,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns the hash slot for a key.",
    ),
    sub(
        "countkeysinslot",
        C::Cluster,
        3,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns the number of keys in a hash slot.",
    ),
    sub(
        "getkeysinslot",
        C::Cluster,
        4,
        LOADING | STALE,
        Local,
        "3.0.0",
        "Returns the key names in a hash slot.",
    ),
    sub(
        "help",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
    sub(
        "links",
        C::Cluster,
        2,
        LOADING | STALE,
        Local,
        "7.0.0",
        "Returns a list of all TCP links to and from peer nodes.",
    ),
    sub(
        "replicas",
        C::Cluster,
        3,
        ADMIN | STALE,
        Local,
        "5.0.0",
        "Lists the replica nodes of a master node.",
    ),
    sub(
        "slaves",
        C::Cluster,
        3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Lists the replica nodes of a master node.",
    ),
    sub(
        "meet",
        C::Cluster,
        -4,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Forces a node to handshake with another node.",
    ),
    sub(
        "addslots",
        C::Cluster,
        -3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Assigns new hash slots to a node.",
    ),
    sub(
        "addslotsrange",
        C::Cluster,
        -4,
        ADMIN | STALE,
        Local,
        "7.0.0",
        "Assigns new hash slot ranges to a node.",
    ),
    sub(
        "delslots",
        C::Cluster,
        -3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Sets hash slots as unbound for a node.",
    ),
    sub(
        "delslotsrange",
        C::Cluster,
        -4,
        ADMIN | STALE,
        Local,
        "7.0.0",
        "Sets hash slot ranges as unbound for a node.",
    ),
    sub(
        "flushslots",
        C::Cluster,
        2,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Deletes all slots information from a node.",
    ),
    sub(
        "setslot",
        C::Cluster,
        -4,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Binds a hash slot to a node.",
    ),
    sub(
        "forget",
        C::Cluster,
        3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Removes a node from the nodes table.",
    ),
    sub(
        "replicate",
        C::Cluster,
        3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Configure a node as replica of a master node.",
    ),
    sub(
        "failover",
        C::Cluster,
        -2,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Forces a replica to perform a manual failover of its master.",
    ),
    sub(
        "reset",
        C::Cluster,
        -2,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Resets a node.",
    ),
    sub(
        "saveconfig",
        C::Cluster,
        2,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Forces a node to save the cluster configuration to disk.",
    ),
    sub(
        "bumpepoch",
        C::Cluster,
        2,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Advances the cluster config epoch.",
    ),
    sub(
        "set-config-epoch",
        C::Cluster,
        3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Sets the configuration epoch for a new node.",
    ),
    sub(
        "count-failure-reports",
        C::Cluster,
        3,
        ADMIN | STALE,
        Local,
        "3.0.0",
        "Returns the number of active failure reports active for a node.",
    ),
];

static FUNCTION_SUBS: &[CommandSpec] = &[
    sub(
        "flush",
        C::Function,
        -2,
        WRITE | NOSCRIPT,
        Local,
        "7.0.0",
        "Deletes all libraries and functions.",
    ),
    sub(
        "list",
        C::Function,
        -2,
        NOSCRIPT,
        Local,
        "7.0.0",
        "Returns information about all libraries.",
    ),
    sub(
        "delete",
        C::Function,
        3,
        WRITE | NOSCRIPT,
        Local,
        "7.0.0",
        "Deletes a library and its functions.",
    ),
    sub(
        "load",
        C::Function,
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        Local,
        "7.0.0",
        "Creates a library.",
    ),
    sub(
        "dump",
        C::Function,
        2,
        NOSCRIPT,
        Local,
        "7.0.0",
        "Dumps all libraries into a serialized binary payload.",
    ),
    sub(
        "restore",
        C::Function,
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        Local,
        "7.0.0",
        "Restores all libraries from a payload.",
    ),
    sub(
        "kill",
        C::Function,
        2,
        NOSCRIPT | ALLOW_BUSY,
        Local,
        "7.0.0",
        "Terminates a function during execution.",
    ),
    sub(
        "stats",
        C::Function,
        2,
        NOSCRIPT | ALLOW_BUSY,
        Local,
        "7.0.0",
        "Returns information about a function during execution.",
    ),
    sub(
        "help",
        C::Function,
        2,
        LOADING | STALE,
        Local,
        "7.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static MEMORY_SUBS: &[CommandSpec] = &[keyed_sub(
    "usage",
    C::Memory,
    -3,
    READONLY,
    "4.0.0",
    "Estimates the memory usage of a key.",
)];

static OBJECT_SUBS: &[CommandSpec] = &[
    keyed_sub(
        "encoding",
        C::Object,
        3,
        READONLY,
        "2.2.3",
        "Returns the internal encoding of a Redis object.",
    ),
    keyed_sub(
        "freq",
        C::Object,
        3,
        READONLY,
        "4.0.0",
        "Returns the logarithmic access frequency counter of a Redis object.",
    ),
    keyed_sub(
        "idletime",
        C::Object,
        3,
        READONLY,
        "2.2.3",
        "Returns the time since the last access to a Redis object.",
    ),
    keyed_sub(
        "refcount",
        C::Object,
        3,
        READONLY,
        "2.2.3",
        "Returns the reference count of a value of a key.",
    ),
];

/// Shard-internal commands behind `FJORD <sub>`: node-scoped keyspace commands limited to a
/// set of slots, and the slot primitives that moving slots will use.
static FJORD_SUBS: &[CommandSpec] = &[
    sub("dbsize", C::Fjord, 3, READONLY | FAST, Internal, "0.1.0", "FJORD DBSIZE <slots>: exact number of keys in the slots."),
    sub("scan", C::Fjord, -4, READONLY, Internal, "0.1.0", "FJORD SCAN <slots> <cursor> [MATCH p] [COUNT n] [TYPE t]: SCAN limited to the slots."),
    sub("keys", C::Fjord, 4, READONLY, Internal, "0.1.0", "FJORD KEYS <slots> <pattern>: KEYS limited to the slots."),
    sub("randomkey", C::Fjord, 3, READONLY, Internal, "0.1.0", "FJORD RANDOMKEY <slots>: a random key from the slots."),
    sub("flush", C::Fjord, -3, WRITE, Internal, "0.1.0", "FJORD FLUSH <slots> [MAXRATE <keys/s>]: deletes every key in the slots (slots given away: a turn at a time, at most MAXRATE keys/s)."),
    sub("dumpslot", C::Fjord, 5, READONLY, Internal, "0.1.0", "FJORD DUMPSLOT <slot> <cursor> <count>: streams a slot's entries as [cursor, [key, pexpireat, value]...]."),
    sub("restore", C::Fjord, -5, WRITE | DENYOOM, Internal, "0.1.0", "FJORD RESTORE <key> <pexpireat> <value> [...]: writes entries produced by DUMPSLOT."),
    sub("sync", C::Fjord, 7, ADMIN | NOSCRIPT | STALE, Internal, "0.1.0", "FJORD SYNC <protocol> <history> <next-op-id> <last-term> <port>: turns the connection into a replication link (fjord_common::repl)."),
    sub("status", C::Fjord, 2, ADMIN | STALE | FAST, Internal, "0.1.0", "FJORD STATUS: the shard's role, terms, last op and replicas, for the controller."),
    sub("fence", C::Fjord, 3, ADMIN | STALE, Internal, "0.1.0", "FJORD FENCE <term>: stops serving and acknowledging an older primary; answers [last-term, last-op-id, promotable, ms since its last acknowledgement to its primary or -1]."),
    sub("promote", C::Fjord, -3, ADMIN | STALE, Internal, "0.1.0", "FJORD PROMOTE <term> [replica ...]: serves as the primary of the term, waiting for the replicas named."),
    sub("follow", C::Fjord, 4, ADMIN | STALE, Internal, "0.1.0", "FJORD FOLLOW <term> <host:port>: serves as a replica of that primary."),
    sub("readlag", C::Fjord, 3, CONN, Internal, "0.1.0", "FJORD READLAG <ms>: on a replica, this connection's reads are refused with TRYAGAIN once its data may be more than <ms> behind its primary."),
    sub("acks", C::Fjord, 5, ADMIN | STALE, Internal, "0.1.0", "FJORD ACKS <term> sync|async <min-insync-replicas>: how this primary's replies wait for its replicas (the cluster file's replication section, applied by the controller)."),
    sub("leader", C::Fjord, 3, ADMIN | STALE | FAST, Internal, "0.1.0", "FJORD LEADER <term>: this connection speaks for the elected controller of that leadership term (the create revision of its etcd leadership key); refused, as are the connection's FENCE, PROMOTE, FOLLOW, ISR and ACKS, once the shard has seen a newer term."),
    sub("isr", C::Fjord, -3, ADMIN | STALE, Internal, "0.1.0", "FJORD ISR <term> [replica ...]: the replicas every write waits for (the controller's record)."),
    sub("slots", C::Fjord, 2, ADMIN | STALE | FAST, Internal, "0.1.0", "FJORD SLOTS: the shard's slot states as runs [start, end, state, epoch, owner]."),
    sub("setslots", C::Fjord, -6, WRITE | ADMIN, Internal, "0.1.0", "FJORD SETSLOTS <epoch> owned|importing|frozen|gone <owner|-> <slots> [TERM <term>]: changes slot states through the writer and the oplog; refused for a slot at a newer epoch, and if the shard's term is not <term>."),
    sub("slotsync", C::Fjord, 5, ADMIN | NOSCRIPT | STALE, Internal, "0.1.0", "FJORD SLOTSYNC <protocol> <epoch> <slots>: turns the connection into a stream of the slots' entries, for a shard importing them (fjord_common::repl)."),
    sub("import", C::Fjord, -5, ADMIN, Internal, "0.1.0", "FJORD IMPORT <epoch> <source host:port> <slots> [MAXRATE <keys/s>]: marks the slots importing and pulls them from the source (a snapshot, then its oplog) until they are owned here or given back; again, it starts over."),
    sub("imports", C::Fjord, 2, ADMIN | STALE | FAST, Internal, "0.1.0", "FJORD IMPORTS: the import under way or last run, as field-value pairs (empty if none)."),
    keyed_sub("storelist", C::Fjord, -3, WRITE | DENYOOM, "0.1.0", "FJORD STORELIST <key> [element ...]: replaces the key with a list of the elements, or deletes it for none (the STORE of a SORT whose patterns the proxy resolved across shards)."),
];

static COMMANDS: &[CommandSpec] = &[
    // connection and server
    spec("ping", C::Ping, -1, FAST | STALE, NO_KEYS, Local, "connection", "1.0.0", "Returns the server's liveliness response."),
    spec("echo", C::Echo, 2, FAST | LOADING | STALE, NO_KEYS, Local, "connection", "1.0.0", "Returns the given string."),
    spec("quit", C::Quit, -1, CONN | NO_AUTH, NO_KEYS, Local, "connection", "1.0.0", "Closes the connection."),
    spec("select", C::Select, 2, CONN, NO_KEYS, Local, "connection", "2.0.0", "Changes the selected database."),
    spec("hello", C::Hello, -1, CONN | NO_AUTH, NO_KEYS, Local, "connection", "6.0.0", "Handshakes with the Redis server."),
    spec("auth", C::Auth, -2, CONN | NO_AUTH, NO_KEYS, Local, "connection", "1.0.0", "Authenticates the connection."),
    container(spec("client", C::Client, -2, NOSCRIPT | LOADING | STALE, NO_KEYS, Local, "connection", "2.4.0", "A container for client connection commands."), CLIENT_SUBS),
    spec("info", C::Info, -1, LOADING | STALE, NO_KEYS, Local, "server", "1.0.0", "Returns information and statistics about the server."),
    container(spec("command", C::Command, -1, LOADING | STALE, NO_KEYS, Local, "server", "2.8.13", "Returns detailed information about all commands."), COMMAND_SUBS),
    container(spec("config", C::Config, -2, NOSCRIPT | LOADING | STALE, NO_KEYS, Local, "server", "2.0.0", "A container for server configuration commands."), CONFIG_SUBS),
    spec("time", C::Time, 1, LOADING | STALE | FAST, NO_KEYS, Local, "server", "2.6.0", "Returns the server time."),
    spec("dbsize", C::Dbsize, 1, READONLY | FAST, NO_KEYS, NodeScoped, "server", "1.0.0", "Returns the number of keys in the database."),
    spec("flushdb", C::Flushdb, -1, WRITE, NO_KEYS, NodeScoped, "server", "1.0.0", "Removes all keys from the current database."),
    spec("flushall", C::Flushall, -1, WRITE, NO_KEYS, NodeScoped, "server", "1.0.0", "Removes all keys from all databases."),
    spec("lastsave", C::Lastsave, 1, LOADING | STALE | FAST, NO_KEYS, Local, "server", "1.0.0", "Returns the Unix timestamp of the last successful save to disk."),
    spec("shutdown", C::Shutdown, -1, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server."),
    spec("role", C::Role, 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Unsupported, "server", "2.8.12", "Returns the replication role."),
    spec("replicaof", C::Replicaof, 3, ADMIN | NOSCRIPT | STALE, NO_KEYS, Unsupported, "server", "5.0.0", "Configures a server as replica of another, or promotes it to a master."),
    spec("slaveof", C::Replicaof, 3, ADMIN | NOSCRIPT | STALE, NO_KEYS, Unsupported, "server", "1.0.0", "Sets a Redis server as a replica of another, or promotes it to being a master."),
    spec("wait", C::Wait, 3, NOSCRIPT, NO_KEYS, Unsupported, "generic", "3.0.0", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed."),
    spec("readonly", C::Readonly, 1, LOADING | STALE | FAST, NO_KEYS, Local, "cluster", "3.0.0", "Enables read-only queries for a connection to a Redis Cluster replica node."),
    spec("readwrite", C::Readwrite, 1, LOADING | STALE | FAST, NO_KEYS, Local, "cluster", "3.0.0", "Enables read-write queries for a connection to a Reids Cluster replica node."),
    spec("asking", C::Asking, 1, FAST, NO_KEYS, Local, "cluster", "3.0.0", "Signals that a cluster client is following an -ASK redirect."),
    container(spec("function", C::Function, -2, 0, NO_KEYS, Local, "scripting", "7.0.0", "A container for function commands."), FUNCTION_SUBS),
    spec("debug", C::Debug, -2, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, Local, "server", "1.0.0", "A container for debugging commands."),
    container(spec("cluster", C::Cluster, -2, 0, NO_KEYS, Local, "cluster", "3.0.0", "A container for Redis Cluster commands."), CLUSTER_SUBS),
    // strings
    spec("get", C::Get, 2, RF, ONE_KEY, SingleSlot, "string", "1.0.0", "Returns the string value of a key."),
    spec("set", C::Set, -3, W, ONE_KEY, SingleSlot, "string", "1.0.0", "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."),
    spec("setnx", C::Setnx, 3, WF, ONE_KEY, SingleSlot, "string", "1.0.0", "Set the string value of a key only when the key doesn't exist."),
    spec("setex", C::Setex, 4, W, ONE_KEY, SingleSlot, "string", "2.0.0", "Sets the string value and expiration time of a key. Creates the key if it doesn't exist."),
    spec("psetex", C::Psetex, 4, W, ONE_KEY, SingleSlot, "string", "2.6.0", "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist."),
    spec("getset", C::Getset, 3, WF, ONE_KEY, SingleSlot, "string", "1.0.0", "Returns the previous string value of a key after setting it to a new value."),
    spec("getdel", C::Getdel, 2, WRITE | FAST, ONE_KEY, SingleSlot, "string", "6.2.0", "Returns the string value of a key after deleting the key."),
    spec("getex", C::Getex, -2, WRITE | FAST, ONE_KEY, SingleSlot, "string", "6.2.0", "Returns the string value of a key after setting its expiration time."),
    spec("mget", C::Mget, -2, RF, ALL_KEYS, Split(Merge::Values), "string", "1.0.0", "Atomically returns the string values of one or more keys."),
    spec("mset", C::Mset, -3, W, KEY_VALUE_PAIRS, Split(Merge::Ok), "string", "1.0.1", "Atomically creates or modifies the string values of one or more keys."),
    spec("msetnx", C::Msetnx, -3, W, KEY_VALUE_PAIRS, SingleSlot, "string", "1.0.1", "Atomically modifies the string values of one or more keys only when all keys don't exist."),
    spec("append", C::Append, 3, WF, ONE_KEY, SingleSlot, "string", "2.0.0", "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    spec("strlen", C::Strlen, 2, RF, ONE_KEY, SingleSlot, "string", "2.2.0", "Returns the length of a string value."),
    spec("getrange", C::Getrange, 4, READONLY, ONE_KEY, SingleSlot, "string", "2.4.0", "Returns a substring of the string stored at a key."),
    spec("substr", C::Substr, 4, READONLY, ONE_KEY, SingleSlot, "string", "1.0.0", "Returns a substring from a string value."),
    spec("setrange", C::Setrange, 4, W, ONE_KEY, SingleSlot, "string", "2.2.0", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."),
    spec("incr", C::Incr, 2, WF, ONE_KEY, SingleSlot, "string", "1.0.0", "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec("decr", C::Decr, 2, WF, ONE_KEY, SingleSlot, "string", "1.0.0", "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec("incrby", C::Incrby, 3, WF, ONE_KEY, SingleSlot, "string", "1.0.0", "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec("decrby", C::Decrby, 3, WF, ONE_KEY, SingleSlot, "string", "1.0.0", "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    spec("incrbyfloat", C::Incrbyfloat, 3, WF, ONE_KEY, SingleSlot, "string", "2.6.0", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec("lcs", C::Lcs, -3, READONLY, TWO_KEYS, SingleSlot, "string", "7.0.0", "Finds the longest common substring."),
    // bitmaps
    spec("setbit", C::Setbit, 4, W, ONE_KEY, SingleSlot, "bitmap", "2.2.0", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist."),
    spec("getbit", C::Getbit, 3, RF, ONE_KEY, SingleSlot, "bitmap", "2.2.0", "Returns a bit value by offset."),
    spec("bitcount", C::Bitcount, -2, READONLY, ONE_KEY, SingleSlot, "bitmap", "2.6.0", "Counts the number of set bits (population counting) in a string."),
    spec("bitpos", C::Bitpos, -3, READONLY, ONE_KEY, SingleSlot, "bitmap", "2.8.7", "Finds the first set (1) or clear (0) bit in a string."),
    spec("bitop", C::Bitop, -4, W, (2, -1, 1), SingleSlot, "bitmap", "2.6.0", "Performs bitwise operations on multiple strings, and stores the result."),
    spec("bitfield", C::Bitfield, -2, W, ONE_KEY, SingleSlot, "bitmap", "3.2.0", "Performs arbitrary bitfield integer operations on strings."),
    spec("bitfield_ro", C::BitfieldRo, -2, RF, ONE_KEY, SingleSlot, "bitmap", "6.0.0", "Performs arbitrary read-only bitfield integer operations on strings."),
    // hashes
    spec("hset", C::Hset, -4, WF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Creates or modifies the value of a field in a hash."),
    spec("hsetnx", C::Hsetnx, 4, WF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Sets the value of a field in a hash only when the field doesn't exist."),
    spec("hmset", C::Hmset, -4, WF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Sets the values of multiple fields."),
    spec("hget", C::Hget, 3, RF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Returns the value of a field in a hash."),
    spec("hmget", C::Hmget, -3, RF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Returns the values of all fields in a hash."),
    spec("hdel", C::Hdel, -3, WRITE | FAST, ONE_KEY, SingleSlot, "hash", "2.0.0", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain."),
    spec("hlen", C::Hlen, 2, RF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Returns the number of fields in a hash."),
    spec("hstrlen", C::Hstrlen, 3, RF, ONE_KEY, SingleSlot, "hash", "3.2.0", "Returns the length of the value of a field."),
    spec("hexists", C::Hexists, 3, RF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Determines whether a field exists in a hash."),
    spec("hkeys", C::Hkeys, 2, READONLY, ONE_KEY, SingleSlot, "hash", "2.0.0", "Returns all fields in a hash."),
    spec("hvals", C::Hvals, 2, READONLY, ONE_KEY, SingleSlot, "hash", "2.0.0", "Returns all values in a hash."),
    spec("hgetall", C::Hgetall, 2, READONLY, ONE_KEY, SingleSlot, "hash", "2.0.0", "Returns all fields and values in a hash."),
    spec("hincrby", C::Hincrby, 4, WF, ONE_KEY, SingleSlot, "hash", "2.0.0", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    spec("hincrbyfloat", C::Hincrbyfloat, 4, WF, ONE_KEY, SingleSlot, "hash", "2.6.0", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    spec("hrandfield", C::Hrandfield, -2, READONLY, ONE_KEY, SingleSlot, "hash", "6.2.0", "Returns one or more random fields from a hash."),
    spec("hscan", C::Hscan, -3, READONLY, ONE_KEY, SingleSlot, "hash", "2.8.0", "Iterates over fields and values of a hash."),
    // lists
    spec("lpush", C::Lpush, -3, WF, ONE_KEY, SingleSlot, "list", "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist."),
    spec("rpush", C::Rpush, -3, WF, ONE_KEY, SingleSlot, "list", "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist."),
    spec("lpushx", C::Lpushx, -3, WF, ONE_KEY, SingleSlot, "list", "2.2.0", "Prepends one or more elements to a list only when the list exists."),
    spec("rpushx", C::Rpushx, -3, WF, ONE_KEY, SingleSlot, "list", "2.2.0", "Appends an element to a list only when the list exists."),
    spec("lpop", C::Lpop, -2, WRITE | FAST, ONE_KEY, SingleSlot, "list", "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped."),
    spec("rpop", C::Rpop, -2, WRITE | FAST, ONE_KEY, SingleSlot, "list", "1.0.0", "Returns and removes the last elements of a list. Deletes the list if the last element was popped."),
    numkeys(spec("lmpop", C::Lmpop, -4, WRITE | MOVABLEKEYS, NO_KEYS, SingleSlot, "list", "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped."), 1),
    spec("llen", C::Llen, 2, RF, ONE_KEY, SingleSlot, "list", "1.0.0", "Returns the length of a list."),
    spec("lindex", C::Lindex, 3, READONLY, ONE_KEY, SingleSlot, "list", "1.0.0", "Returns an element from a list by its index."),
    spec("lrange", C::Lrange, 4, READONLY, ONE_KEY, SingleSlot, "list", "1.0.0", "Returns a range of elements from a list."),
    spec("lset", C::Lset, 4, W, ONE_KEY, SingleSlot, "list", "1.0.0", "Sets the value of an element in a list by its index."),
    spec("ltrim", C::Ltrim, 4, WRITE, ONE_KEY, SingleSlot, "list", "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed."),
    spec("lrem", C::Lrem, 4, WRITE, ONE_KEY, SingleSlot, "list", "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed."),
    spec("linsert", C::Linsert, 5, W, ONE_KEY, SingleSlot, "list", "2.2.0", "Inserts an element before or after another element in a list."),
    spec("lpos", C::Lpos, -3, READONLY, ONE_KEY, SingleSlot, "list", "6.0.6", "Returns the index of matching elements in a list."),
    spec("lmove", C::Lmove, 5, W, TWO_KEYS, SingleSlot, "list", "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved."),
    spec("rpoplpush", C::Rpoplpush, 3, W, TWO_KEYS, SingleSlot, "list", "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped."),
    // sets
    spec("sadd", C::Sadd, -3, WF, ONE_KEY, SingleSlot, "set", "1.0.0", "Adds one or more members to a set. Creates the key if it doesn't exist."),
    spec("srem", C::Srem, -3, WRITE | FAST, ONE_KEY, SingleSlot, "set", "1.0.0", "Removes one or more members from a set. Deletes the set if the last member was removed."),
    spec("smembers", C::Smembers, 2, READONLY, ONE_KEY, SingleSlot, "set", "1.0.0", "Returns all members of a set."),
    spec("sismember", C::Sismember, 3, RF, ONE_KEY, SingleSlot, "set", "1.0.0", "Determines whether a member belongs to a set."),
    spec("smismember", C::Smismember, -3, RF, ONE_KEY, SingleSlot, "set", "6.2.0", "Determines whether multiple members belong to a set."),
    spec("scard", C::Scard, 2, RF, ONE_KEY, SingleSlot, "set", "1.0.0", "Returns the number of members in a set."),
    spec("spop", C::Spop, -2, WRITE | FAST, ONE_KEY, SingleSlot, "set", "1.0.0", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped."),
    spec("srandmember", C::Srandmember, -2, READONLY, ONE_KEY, SingleSlot, "set", "1.0.0", "Get one or multiple random members from a set"),
    spec("smove", C::Smove, 4, WRITE | FAST, TWO_KEYS, SingleSlot, "set", "1.0.0", "Moves a member from one set to another."),
    spec("sinter", C::Sinter, -2, READONLY, ALL_KEYS, Gather, "set", "1.0.0", "Returns the intersect of multiple sets."),
    numkeys(spec("sintercard", C::Sintercard, -3, READONLY | MOVABLEKEYS, NO_KEYS, Gather, "set", "7.0.0", "Returns the number of members of the intersect of multiple sets."), 1),
    spec("sinterstore", C::Sinterstore, -3, W, ALL_KEYS, SingleSlot, "set", "1.0.0", "Stores the intersect of multiple sets in a key."),
    spec("sunion", C::Sunion, -2, READONLY, ALL_KEYS, Gather, "set", "1.0.0", "Returns the union of multiple sets."),
    spec("sunionstore", C::Sunionstore, -3, W, ALL_KEYS, SingleSlot, "set", "1.0.0", "Stores the union of multiple sets in a key."),
    spec("sdiff", C::Sdiff, -2, READONLY, ALL_KEYS, Gather, "set", "1.0.0", "Returns the difference of multiple sets."),
    spec("sdiffstore", C::Sdiffstore, -3, W, ALL_KEYS, SingleSlot, "set", "1.0.0", "Stores the difference of multiple sets in a key."),
    spec("sscan", C::Sscan, -3, READONLY, ONE_KEY, SingleSlot, "set", "2.8.0", "Iterates over members of a set."),
    // sorted sets
    spec("zadd", C::Zadd, -4, WF, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist."),
    spec("zincrby", C::Zincrby, 4, WF, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Increments the score of a member in a sorted set."),
    spec("zrem", C::Zrem, -3, WRITE | FAST, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed."),
    spec("zcard", C::Zcard, 2, RF, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Returns the number of members in a sorted set."),
    spec("zscore", C::Zscore, 3, RF, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Returns the score of a member in a sorted set."),
    spec("zmscore", C::Zmscore, -3, RF, ONE_KEY, SingleSlot, "sorted-set", "6.2.0", "Returns the score of one or more members in a sorted set."),
    spec("zrank", C::Zrank, 3, RF, ONE_KEY, SingleSlot, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by ascending scores."),
    spec("zrevrank", C::Zrevrank, 3, RF, ONE_KEY, SingleSlot, "sorted-set", "2.0.0", "Returns the index of a member in a sorted set ordered by descending scores."),
    spec("zcount", C::Zcount, 4, RF, ONE_KEY, SingleSlot, "sorted-set", "2.0.0", "Returns the count of members in a sorted set that have scores within a range."),
    spec("zlexcount", C::Zlexcount, 4, RF, ONE_KEY, SingleSlot, "sorted-set", "2.8.9", "Returns the number of members in a sorted set within a lexicographical range."),
    spec("zrange", C::Zrange, -4, READONLY, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes."),
    spec("zrangebyscore", C::Zrangebyscore, -4, READONLY, ONE_KEY, SingleSlot, "sorted-set", "1.0.5", "Returns members in a sorted set within a range of scores."),
    spec("zrevrangebyscore", C::Zrevrangebyscore, -4, READONLY, ONE_KEY, SingleSlot, "sorted-set", "2.2.0", "Returns members in a sorted set within a range of scores in reverse order."),
    spec("zrevrange", C::Zrevrange, -4, READONLY, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Returns members in a sorted set within a range of indexes in reverse order."),
    spec("zrangebylex", C::Zrangebylex, -4, READONLY, ONE_KEY, SingleSlot, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range."),
    spec("zrevrangebylex", C::Zrevrangebylex, -4, READONLY, ONE_KEY, SingleSlot, "sorted-set", "2.8.9", "Returns members in a sorted set within a lexicographical range in reverse order."),
    spec("zrangestore", C::Zrangestore, -5, W, TWO_KEYS, SingleSlot, "sorted-set", "6.2.0", "Stores a range of members from sorted set in a key."),
    spec("zremrangebyrank", C::Zremrangebyrank, 4, WRITE, ONE_KEY, SingleSlot, "sorted-set", "2.0.0", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed."),
    spec("zremrangebyscore", C::Zremrangebyscore, 4, WRITE, ONE_KEY, SingleSlot, "sorted-set", "1.2.0", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed."),
    spec("zremrangebylex", C::Zremrangebylex, 4, WRITE, ONE_KEY, SingleSlot, "sorted-set", "2.8.9", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed."),
    spec("zpopmin", C::Zpopmin, -2, WRITE | FAST, ONE_KEY, SingleSlot, "sorted-set", "5.0.0", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    spec("zpopmax", C::Zpopmax, -2, WRITE | FAST, ONE_KEY, SingleSlot, "sorted-set", "5.0.0", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    numkeys(spec("zmpop", C::Zmpop, -4, WRITE | MOVABLEKEYS, NO_KEYS, SingleSlot, "sorted-set", "7.0.0", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped."), 1),
    spec("zrandmember", C::Zrandmember, -2, READONLY, ONE_KEY, SingleSlot, "sorted-set", "6.2.0", "Returns one or more random members from a sorted set."),
    spec("zscan", C::Zscan, -3, READONLY, ONE_KEY, SingleSlot, "sorted-set", "2.8.0", "Iterates over members and scores of a sorted set."),
    numkeys(spec("zunion", C::Zunion, -3, READONLY | MOVABLEKEYS, NO_KEYS, Gather, "sorted-set", "6.2.0", "Returns the union of multiple sorted sets."), 1),
    numkeys(spec("zinter", C::Zinter, -3, READONLY | MOVABLEKEYS, NO_KEYS, Gather, "sorted-set", "6.2.0", "Returns the intersect of multiple sorted sets."), 1),
    numkeys(spec("zdiff", C::Zdiff, -3, READONLY | MOVABLEKEYS, NO_KEYS, Gather, "sorted-set", "6.2.0", "Returns the difference between multiple sorted sets."), 1),
    numkeys(spec("zunionstore", C::Zunionstore, -4, W | MOVABLEKEYS, (1, 1, 1), SingleSlot, "sorted-set", "2.0.0", "Stores the union of multiple sorted sets in a key."), 2),
    numkeys(spec("zinterstore", C::Zinterstore, -4, W | MOVABLEKEYS, (1, 1, 1), SingleSlot, "sorted-set", "2.0.0", "Stores the intersect of multiple sorted sets in a key."), 2),
    numkeys(spec("zdiffstore", C::Zdiffstore, -4, W | MOVABLEKEYS, (1, 1, 1), SingleSlot, "sorted-set", "6.2.0", "Stores the difference of multiple sorted sets in a key."), 2),
    numkeys(spec("zintercard", C::Zintercard, -3, READONLY | MOVABLEKEYS, NO_KEYS, Gather, "sorted-set", "7.0.0", "Returns the number of members of the intersect of multiple sorted sets."), 1),
    // generic keyspace
    spec("del", C::Del, -2, WRITE, ALL_KEYS, Split(Merge::SumInts), "generic", "1.0.0", "Deletes one or more keys."),
    spec("unlink", C::Unlink, -2, WRITE | FAST, ALL_KEYS, Split(Merge::SumInts), "generic", "4.0.0", "Asynchronously deletes one or more keys."),
    spec("exists", C::Exists, -2, RF, ALL_KEYS, Split(Merge::SumInts), "generic", "1.0.0", "Determines whether one or more keys exist."),
    spec("touch", C::Touch, -2, RF, ALL_KEYS, Split(Merge::SumInts), "generic", "3.2.1", "Returns the number of existing keys out of those specified after updating the time they were last accessed."),
    spec("type", C::Type, 2, RF, ONE_KEY, SingleSlot, "generic", "1.0.0", "Determines the type of value stored at a key."),
    spec("expire", C::Expire, -3, WF, ONE_KEY, SingleSlot, "generic", "1.0.0", "Sets the expiration time of a key in seconds."),
    spec("pexpire", C::Pexpire, -3, WF, ONE_KEY, SingleSlot, "generic", "2.6.0", "Sets the expiration time of a key in milliseconds."),
    spec("expireat", C::Expireat, -3, WF, ONE_KEY, SingleSlot, "generic", "1.2.0", "Sets the expiration time of a key to a Unix timestamp."),
    spec("pexpireat", C::Pexpireat, -3, WF, ONE_KEY, SingleSlot, "generic", "2.6.0", "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    spec("ttl", C::Ttl, 2, RF, ONE_KEY, SingleSlot, "generic", "1.0.0", "Returns the expiration time in seconds of a key."),
    spec("pttl", C::Pttl, 2, RF, ONE_KEY, SingleSlot, "generic", "2.6.0", "Returns the expiration time in milliseconds of a key."),
    spec("expiretime", C::Expiretime, 2, RF, ONE_KEY, SingleSlot, "generic", "7.0.0", "Returns the expiration time of a key as a Unix timestamp."),
    spec("pexpiretime", C::Pexpiretime, 2, RF, ONE_KEY, SingleSlot, "generic", "7.0.0", "Returns the expiration time of a key as a Unix milliseconds timestamp."),
    spec("persist", C::Persist, 2, WF, ONE_KEY, SingleSlot, "generic", "2.2.0", "Removes the expiration time of a key."),
    spec("rename", C::Rename, 3, WRITE, TWO_KEYS, SingleSlot, "generic", "1.0.0", "Renames a key and overwrites the destination."),
    spec("renamenx", C::Renamenx, 3, WF, TWO_KEYS, SingleSlot, "generic", "1.0.0", "Renames a key only when the target key name doesn't exist."),
    spec("dump", C::Dump, 2, READONLY, ONE_KEY, SingleSlot, "generic", "2.6.0", "Returns a serialized representation of the value stored at a key."),
    spec("restore", C::Restore, -4, W, ONE_KEY, SingleSlot, "generic", "2.6.0", "Creates a key from the serialized representation of a value."),
    spec("copy", C::Copy, -3, W, TWO_KEYS, SingleSlot, "generic", "6.2.0", "Copies the value of a key to a new key."),
    container(spec("memory", C::Memory, -2, 0, NO_KEYS, SingleSlot, "server", "4.0.0", "A container for memory diagnostics commands."), MEMORY_SUBS),
    container(spec("object", C::Object, -2, 0, NO_KEYS, SingleSlot, "generic", "2.2.3", "A container for object introspection commands."), OBJECT_SUBS),
    spec("scan", C::Scan, -2, READONLY, NO_KEYS, NodeScoped, "generic", "2.8.0", "Iterates over the key names in the database."),
    spec("keys", C::Keys, 2, READONLY, NO_KEYS, NodeScoped, "generic", "1.0.0", "Returns all key names that match a pattern."),
    store_key(spec("sort", C::Sort, -2, W | MOVABLEKEYS, ONE_KEY, Sort, "generic", "1.0.0", "Sorts the elements in a list, a set, or a sorted set, optionally storing the result."), sort_store_index),
    spec("sort_ro", C::SortRo, -2, READONLY | MOVABLEKEYS, ONE_KEY, Sort, "generic", "7.0.0", "Returns the sorted elements of a list, a set, or a sorted set."),
    spec("randomkey", C::Randomkey, 1, READONLY, NO_KEYS, NodeScoped, "generic", "1.0.0", "Returns a random key name from the database."),
    // Refused until connections pinned to one client exist (transactions, pub/sub, blocking).
    spec("pfadd", C::Pfadd, -2, WF, ONE_KEY, SingleSlot, "hyperloglog", "2.8.9", "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist."),
    spec("pfcount", C::Pfcount, -2, READONLY | MAY_REPLICATE, ALL_KEYS, Gather, "hyperloglog", "2.8.9", "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s)."),
    spec("pfmerge", C::Pfmerge, -2, W, ALL_KEYS, SingleSlot, "hyperloglog", "2.8.9", "Merges one or more HyperLogLog values into a single key."),
    spec("pfdebug", C::Pfdebug, 3, W | ADMIN, (2, 2, 1), SingleSlot, "hyperloglog", "2.8.9", "Internal commands for debugging HyperLogLog values."),
    spec("pfselftest", C::Pfselftest, 1, ADMIN, NO_KEYS, Local, "hyperloglog", "2.8.9", "An internal command for testing HyperLogLog values."),
    // geo: points in sorted sets (`fjord_common::geo`)
    spec("geoadd", C::Geoadd, -5, W, ONE_KEY, SingleSlot, "geo", "3.2.0", "Add one or more geospatial items in the geospatial index represented using a sorted set"),
    spec("geodist", C::Geodist, -4, READONLY, ONE_KEY, SingleSlot, "geo", "3.2.0", "Returns the distance between two members of a geospatial index"),
    spec("geohash", C::Geohash, -2, READONLY, ONE_KEY, SingleSlot, "geo", "3.2.0", "Returns members of a geospatial index as standard geohash strings"),
    spec("geopos", C::Geopos, -2, READONLY, ONE_KEY, SingleSlot, "geo", "3.2.0", "Returns longitude and latitude of members of a geospatial index"),
    store_key(spec("georadius", C::Georadius, -6, W | MOVABLEKEYS, ONE_KEY, SingleSlot, "geo", "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point"), georadius_store_index),
    spec("georadius_ro", C::GeoradiusRo, -6, READONLY, ONE_KEY, SingleSlot, "geo", "3.2.10", "A read-only variant for GEORADIUS"),
    store_key(spec("georadiusbymember", C::Georadiusbymember, -5, W | MOVABLEKEYS, ONE_KEY, SingleSlot, "geo", "3.2.0", "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member"), georadius_store_index),
    spec("georadiusbymember_ro", C::GeoradiusbymemberRo, -5, READONLY, ONE_KEY, SingleSlot, "geo", "3.2.10", "A read-only variant for GEORADIUSBYMEMBER"),
    spec("geosearch", C::Geosearch, -7, READONLY, ONE_KEY, SingleSlot, "geo", "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle."),
    spec("geosearchstore", C::Geosearchstore, -8, W, TWO_KEYS, SingleSlot, "geo", "6.2.0", "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key."),
    spec("multi", C::Unsupported, 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Unsupported, "transactions", "1.2.0", "Starts a transaction."),
    spec("exec", C::Unsupported, 1, NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "transactions", "1.2.0", "Executes all commands in a transaction."),
    spec("discard", C::Unsupported, 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Unsupported, "transactions", "2.0.0", "Discards a transaction."),
    spec("watch", C::Unsupported, -2, NOSCRIPT | LOADING | STALE | FAST, ALL_KEYS, Unsupported, "transactions", "2.2.0", "Monitors changes to keys to determine the execution of a transaction."),
    spec("unwatch", C::Unsupported, 1, NOSCRIPT | LOADING | STALE | FAST, NO_KEYS, Unsupported, "transactions", "2.2.0", "Forgets about watched keys of a transaction."),
    spec("subscribe", C::Unsupported, -2, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "pubsub", "2.0.0", "Listens for messages published to channels."),
    spec("psubscribe", C::Unsupported, -2, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "pubsub", "2.0.0", "Listens for messages published to channels that match one or more patterns."),
    spec("ssubscribe", C::Unsupported, -2, PUBSUB | NOSCRIPT | LOADING | STALE, ALL_KEYS, Unsupported, "pubsub", "7.0.0", "Listens for messages published to shard channels."),
    spec("unsubscribe", C::Unsupported, -1, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "pubsub", "2.0.0", "Stops listening to messages posted to channels."),
    spec("punsubscribe", C::Unsupported, -1, PUBSUB | NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "pubsub", "2.0.0", "Stops listening to messages published to channels that match one or more patterns."),
    spec("publish", C::Unsupported, 3, PUBSUB | LOADING | STALE | FAST, NO_KEYS, Unsupported, "pubsub", "2.0.0", "Posts a message to a channel."),
    spec("blpop", C::Unsupported, -3, WRITE | BLOCKING, (1, -2, 1), Unsupported, "list", "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise."),
    spec("brpop", C::Unsupported, -3, WRITE | BLOCKING, (1, -2, 1), Unsupported, "list", "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise."),
    spec("brpoplpush", C::Unsupported, 4, WRITE | DENYOOM | BLOCKING, TWO_KEYS, Unsupported, "list", "2.2.0", "Pops an element from a list, pushes it to another list and returns it."),
    spec("blmove", C::Unsupported, 6, WRITE | DENYOOM | BLOCKING, TWO_KEYS, Unsupported, "list", "6.2.0", "Pops an element from a list, pushes it to another list and returns it."),
    numkeys(spec("blmpop", C::Unsupported, -5, WRITE | BLOCKING | MOVABLEKEYS, NO_KEYS, Unsupported, "list", "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise."), 2),
    spec("bzpopmin", C::Unsupported, -3, WRITE | BLOCKING | FAST, (1, -2, 1), Unsupported, "sorted-set", "5.0.0", "Removes and returns the member with the lowest score from one or more sorted sets."),
    spec("bzpopmax", C::Unsupported, -3, WRITE | BLOCKING | FAST, (1, -2, 1), Unsupported, "sorted-set", "5.0.0", "Removes and returns the member with the highest score from one or more sorted sets."),
    spec("monitor", C::Unsupported, 1, ADMIN | NOSCRIPT | LOADING | STALE, NO_KEYS, Unsupported, "server", "1.0.0", "Listens for all requests received by the server in real-time."),
    container(spec("fjord", C::Fjord, -2, 0, NO_KEYS, Internal, "fjord", "0.1.0", "Slot-level commands the proxy sends to shards."), FJORD_SUBS),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn position_finds_top_level_commands_only() {
        for (i, c) in all().iter().enumerate() {
            assert_eq!(position(c), Some(i), "{}", c.name);
            for sub in c.subcommands {
                assert_eq!(position(sub), None, "{} {}", c.name, sub.name);
            }
        }
    }

    #[test]
    fn every_name_is_lowercase_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in all() {
            assert_eq!(c.name, c.name.to_ascii_lowercase());
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            assert!(c.arity != 0);
        }
    }

    #[test]
    fn resolve_checks_arity_with_redis_texts() {
        assert_eq!(
            resolve(&args(&["GET"])).unwrap_err(),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            resolve(&args(&["client", "setname"])).unwrap_err(),
            "ERR wrong number of arguments for 'client|setname' command"
        );
        assert_eq!(
            resolve(&args(&["client", "bogus"])).unwrap_err(),
            "ERR unknown subcommand 'bogus'. Try CLIENT HELP."
        );
        assert_eq!(
            resolve(&args(&["nope", "a", "b"])).unwrap_err(),
            "ERR unknown command 'nope', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            resolve(&args(&["MsEt", "a", "1"])).unwrap().spec.id,
            CommandId::Mset
        );
    }

    #[test]
    fn key_indexes_follow_first_last_step() {
        let mset = lookup(b"mset").unwrap();
        let keys = |spec: &CommandSpec, line: &str| {
            spec.key_indexes(&args(&line.split(' ').collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(mset, "mset a 1 b 2"), vec![1, 3]);
        let blpop = lookup(b"blpop").unwrap();
        assert_eq!(keys(blpop, "blpop a b 0"), vec![1, 2]);
        let ping = lookup(b"ping").unwrap();
        assert_eq!(keys(ping, "ping x"), Vec::<usize>::new());
        let sintercard = lookup(b"sintercard").unwrap();
        assert_eq!(keys(sintercard, "sintercard 2 a b LIMIT 1"), vec![2, 3]);
        assert_eq!(keys(sintercard, "sintercard 9 a"), vec![2]);
        assert_eq!(keys(sintercard, "sintercard x a"), Vec::<usize>::new());
        let sort = lookup(b"sort").unwrap();
        assert_eq!(keys(sort, "sort a store d"), vec![1, 3]);
        assert_eq!(keys(sort, "sort a store x get store store d"), vec![1, 7]);
        assert_eq!(keys(sort, "sort a limit 0 1 get #"), vec![1]);
        assert_eq!(keys(sort, "sort a store"), vec![1]);
        let georadius = lookup(b"georadius").unwrap();
        assert_eq!(keys(georadius, "georadius a 1 2 3 km store d"), vec![1, 7]);
        assert_eq!(
            keys(georadius, "georadius a 1 2 3 km store d storedist e"),
            vec![1, 9]
        );
        assert_eq!(keys(georadius, "georadius a 1 2 3 km withdist"), vec![1]);
        let zunionstore = lookup(b"zunionstore").unwrap();
        assert_eq!(
            keys(zunionstore, "zunionstore d 2 a b WEIGHTS 1 2"),
            vec![1, 3, 4]
        );
    }
}
