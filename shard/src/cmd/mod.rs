//! Command execution: one file per family, one small type per command.
//!
//! A command type parses its arguments ([`Parse`]) and then either reads the store
//! ([`Read`], run on the connection's task) or is handed to the writer ([`WriteOp`], applied in
//! the writer's group). [`execute`] maps a resolved table entry to its type; the `match` over
//! [`CommandId`] is exhaustive, so every entry of the shared table has a handler here.

mod algebra;
mod bitmaps;
mod dump;
mod geo;
mod hashes;
mod hyperloglog;
mod keys;
mod lists;
mod replication;
mod server;
mod sets;
pub(crate) mod slots;
pub(crate) mod sort;
mod strings;
mod zsets;

use crate::server::Server;
use crate::store::encoding::ValueType;
use crate::store::writer::WriteOp;
use crate::store::Store;
use bytes::Bytes;
use fjord_common::client::{self, ClientState, Handled};
use fjord_common::command::Resolved;
use fjord_common::slotset::SlotSet;
use fjord_common::{error, CommandId, Reply};
use std::time::Duration;

/// What the connection must do with a command.
pub enum Outcome {
    Reply(Reply),
    /// Hand to the writer; the reply comes when the write is committed.
    Write(Box<dyn WriteOp>),
    /// Delete every key in these slots (through the writer, outside any group), at most
    /// `max_rate` keys/s when the slots were given away.
    Flush {
        slots: SlotSet,
        max_rate: Option<u64>,
    },
    /// A long read (KEYS): run off the async workers.
    Blocking(Box<dyn FnOnce() -> Reply + Send>),
    /// A reply that comes later from a task of its own (WAIT).
    Later(tokio::task::JoinHandle<Reply>),
    /// The connection becomes a link to a replica (`FJORD SYNC`, [`crate::repl::primary`])
    /// or to a shard importing slots (`FJORD SLOTSYNC`, [`crate::migrate::source`]).
    Sync(crate::repl::LinkRequest),
    /// Reply, then close the connection (QUIT).
    Close(Reply),
    /// Stop the shard (SHUTDOWN), flushing its memtables when `save`; the connection is
    /// closed without a reply, as Redis does.
    Shutdown {
        save: bool,
    },
}

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Self {
        Outcome::Reply(r)
    }
}

/// Builds a command from its arguments (`args[0]` is the command name).
pub trait Parse: Sized {
    fn parse(args: &[Bytes]) -> Result<Self, Reply>;
}

/// A command that only reads the store.
pub trait Read {
    fn execute(self, store: &Store) -> Reply;
}

/// What a command may touch besides its arguments: the server and the connection.
pub struct Ctx<'a> {
    pub server: &'a Server,
    pub conn: &'a mut ClientState,
}

fn read<T: Parse + Read>(args: &[Bytes], store: &Store) -> Outcome {
    match T::parse(args) {
        Ok(cmd) => Outcome::Reply(cmd.execute(store)),
        Err(e) => Outcome::Reply(e),
    }
}

fn write<T: Parse + WriteOp>(args: &[Bytes]) -> Outcome {
    match T::parse(args) {
        Ok(cmd) => Outcome::Write(Box::new(cmd)),
        Err(e) => Outcome::Reply(e),
    }
}

/// Checks that may refuse a resolved command before it runs: those every server makes
/// (authentication, refused commands), a store that no longer takes writes, oversized keys.
fn refuse(ctx: &Ctx<'_>, r: &Resolved, args: &[Bytes]) -> Option<Reply> {
    if let Some(refusal) = client::refuse(ctx.conn, r) {
        return Some(refusal);
    }
    let data = r.effective().is_write()
        || r.effective()
            .has_flag(fjord_common::command::flags::READONLY);
    if data {
        let control = &ctx.server.repl.control;
        if !control.is_serving() {
            return Some(Reply::error(crate::repl::control::FENCED));
        }
        if !ctx.server.store.is_replica() && !control.holds_lease() {
            return Some(Reply::error(crate::repl::control::NO_LEASE));
        }
        if let Some(stale) = stale_replica(ctx.server, ctx.conn) {
            return Some(stale);
        }
    }
    if r.effective().is_write() {
        if ctx.server.store.is_replica() {
            return Some(Reply::error(error::READONLY));
        }
        if ctx.server.repl.refuses_writes() {
            return Some(Reply::error(error::NOREPLICAS));
        }
        if !ctx.server.store.is_writable() {
            return Some(Reply::error(error::MISCONF));
        }
        let max = crate::store::encoding::MAX_KEY_LEN;
        if r.effective().key_indexes(args).any(|i| args[i].len() > max) {
            return Some(Reply::error(format!(
                "ERR key is too long: fjord accepts keys of up to {max} bytes"
            )));
        }
    }
    if data && !ctx.server.store.serves_every_slot() {
        let refusal = ctx
            .server
            .store
            .slot_table()
            .refusal(key_slots(r, args), r.effective().is_write());
        if let Some(refusal) = refusal {
            return Some(Reply::error(refusal.to_string()));
        }
    }
    None
}

/// The slots of a command's keys.
fn key_slots<'a>(r: &Resolved, args: &'a [Bytes]) -> impl Iterator<Item = u16> + 'a {
    r.effective()
        .key_indexes(args)
        .map(|i| fjord_common::slot_of(&args[i]))
}

/// A write checked again where it is applied, against the slot states the writer holds (they
/// change only there), so that a write is never applied to a slot that left this shard
/// after the command was parsed: the whole write is refused, as at parse time.
struct Guarded {
    slots: Vec<u16>,
    op: Box<dyn WriteOp>,
}

impl WriteOp for Guarded {
    fn apply(self: Box<Self>, txn: &mut crate::store::writer::Txn<'_>) -> Reply {
        match txn.write_refusal(&self.slots) {
            Some(refusal) => Reply::error(refusal.to_string()),
            None => self.op.apply(txn),
        }
    }
}

/// On a replica, the refusal of a read from a connection that bounded the lag it accepts
/// (`FJORD READLAG`) when this replica's data may be older than that.
fn stale_replica(server: &Server, conn: &ClientState) -> Option<Reply> {
    let max = conn.replica_max_lag_ms?;
    let lag = server.repl.staleness_ms();
    (lag > max).then(|| Reply::error(error::replica_stale((lag != u64::MAX).then_some(lag), max)))
}

/// Waits until op `id` is released so that the read may run, or refuses it. On a primary the
/// wait ends when the in-sync replicas acknowledge `id` or leave the set. On a replica only
/// connections that bound their lag (`FJORD READLAG`: the proxy's replica reads) wait, at
/// most that bound, and are refused if the replica's data is too old; a client connected to
/// the replica itself reads everything it holds, as on a Redis replica (an operator looking
/// at a replica whose primary died must not be refused).
pub async fn wait_visible(server: &Server, conn: &ClientState, id: u64) -> Result<(), Reply> {
    let visible = &server.store.visible;
    if !server.store.is_replica() {
        visible.wait(id).await;
        return Ok(());
    }
    let Some(max_lag_ms) = conn.replica_max_lag_ms else {
        return Ok(());
    };
    if let Some(stale) = stale_replica(server, conn) {
        return Err(stale);
    }
    tokio::time::timeout(Duration::from_millis(max_lag_ms), visible.wait(id))
        .await
        .map_err(|_| Reply::error(error::REPLICA_UNCONFIRMED))
}

/// The op a read must wait for before it runs, so that it sees no write the primary has not
/// acknowledged ([`crate::store::visibility`]): the last commit to its keys' slots, or to
/// any slot for a keyspace-wide read. `None` for writes, non-data commands, when every
/// commit is acknowledged, and on a replica for a connection with no lag bound (it reads all
/// the replica holds: [`wait_visible`]).
pub fn read_barrier(
    store: &crate::store::Store,
    conn: &ClientState,
    r: &Resolved,
    args: &[Bytes],
) -> Option<u64> {
    use fjord_common::command::flags::{MOVABLEKEYS, READONLY};
    let spec = r.effective();
    // Checked before any key is hashed: most reads stop here.
    if store.visible.all_released()
        || spec.is_write()
        || !spec.has_flag(READONLY)
        || (conn.replica_max_lag_ms.is_none() && store.is_replica())
    {
        return None;
    }
    let mut slots = spec
        .key_indexes(args)
        .map(|i| fjord_common::slot_of(&args[i]))
        .peekable();
    let keyspace_wide = spec.has_flag(MOVABLEKEYS) || slots.peek().is_none();
    match keyspace_wide {
        true => store.visible.wait_for(None),
        false => store.visible.wait_for(Some(&mut slots)),
    }
}

/// Runs a resolved command.
pub fn execute(ctx: &mut Ctx<'_>, r: Resolved, args: &[Bytes]) -> Outcome {
    if let Some(refusal) = refuse(ctx, &r, args) {
        return refusal.into();
    }
    match client::execute(ctx.server, ctx.conn, r, args) {
        Some(Handled::Reply(reply)) => return reply.into(),
        Some(Handled::Close(reply)) => return Outcome::Close(reply),
        None => {}
    }
    match dispatch(ctx, r, args) {
        Outcome::Write(op) if r.effective().first_key > 0 || r.effective().numkeys_at > 0 => {
            Outcome::Write(Box::new(Guarded {
                slots: key_slots(&r, args).collect(),
                op,
            }))
        }
        other => other,
    }
}

/// The command's own handler.
fn dispatch(ctx: &mut Ctx<'_>, r: Resolved, args: &[Bytes]) -> Outcome {
    let store = &*ctx.server.store;
    use CommandId as C;
    match r.spec.id {
        C::Ping
        | C::Echo
        | C::Quit
        | C::Select
        | C::Hello
        | C::Auth
        | C::Client
        | C::Command
        | C::Config
        | C::Time
        | C::Function
        | C::Debug
        | C::Pfselftest
        | C::Readonly
        | C::Readwrite
        | C::Asking => {
            unreachable!("answered by client::execute")
        }
        C::Info => server::info(ctx, args).into(),
        C::Lastsave => server::lastsave(store).into(),
        C::Shutdown => server::shutdown(args),
        C::Dbsize => Reply::Int(store.count_in(&SlotSet::all()) as i64).into(),
        C::Flushdb | C::Flushall => server::flush(args),
        C::Cluster => server::cluster(ctx.server, r, args).into(),
        C::Role => ctx.server.repl.role_reply(store).into(),
        C::Replicaof => replication::replicaof(ctx.server, args),
        C::Wait => replication::wait(ctx.server, args),
        C::Get => read::<strings::Get>(args, store),
        C::Set => write::<strings::Set>(args),
        C::Setnx => write::<strings::Set>(args),
        C::Setex | C::Psetex => write::<strings::Set>(args),
        C::Getset => write::<strings::Set>(args),
        C::Getdel => write::<strings::GetDel>(args),
        C::Getex => write::<strings::GetEx>(args),
        C::Mget => read::<strings::MGet>(args, store),
        C::Mset | C::Msetnx => write::<strings::MSet>(args),
        C::Append => write::<strings::Append>(args),
        C::Strlen => read::<strings::Strlen>(args, store),
        C::Getrange | C::Substr => read::<strings::GetRange>(args, store),
        C::Setrange => write::<strings::SetRange>(args),
        C::Incr | C::Decr | C::Incrby | C::Decrby => write::<strings::IncrBy>(args),
        C::Incrbyfloat => write::<strings::IncrByFloat>(args),
        C::Lcs => read::<strings::Lcs>(args, store),
        C::Setbit => write::<bitmaps::SetBit>(args),
        C::Getbit => read::<bitmaps::GetBit>(args, store),
        C::Bitcount => read::<bitmaps::BitCount>(args, store),
        C::Bitpos => read::<bitmaps::BitPos>(args, store),
        C::Bitop => write::<bitmaps::BitOp>(args),
        C::Bitfield => write::<bitmaps::BitField>(args),
        C::BitfieldRo => read::<bitmaps::BitField>(args, store),
        C::Hset | C::Hmset => write::<hashes::HSet>(args),
        C::Hsetnx => write::<hashes::HSetNx>(args),
        C::Hget | C::Hmget | C::Hstrlen | C::Hexists => read::<hashes::HGet>(args, store),
        C::Hdel => write::<hashes::HDel>(args),
        C::Hlen => read::<hashes::HLen>(args, store),
        C::Hkeys | C::Hvals | C::Hgetall => read::<hashes::HGetAll>(args, store),
        C::Hincrby | C::Hincrbyfloat => write::<hashes::HIncrBy>(args),
        C::Hrandfield => read::<hashes::HRandField>(args, store),
        C::Hscan => keys::scan_collection(ctx.server, ValueType::Hash, args).into(),
        C::Lpush | C::Rpush | C::Lpushx | C::Rpushx => write::<lists::Push>(args),
        C::Lpop | C::Rpop => write::<lists::Pop>(args),
        C::Lmpop => write::<lists::LMPop>(args),
        C::Llen => read::<lists::LLen>(args, store),
        C::Lindex => read::<lists::LIndex>(args, store),
        C::Lrange => read::<lists::LRange>(args, store),
        C::Lset => write::<lists::LSet>(args),
        C::Ltrim => write::<lists::LTrim>(args),
        C::Lrem => write::<lists::LRem>(args),
        C::Linsert => write::<lists::LInsert>(args),
        C::Lpos => read::<lists::LPos>(args, store),
        C::Lmove | C::Rpoplpush => write::<lists::LMove>(args),
        C::Sadd | C::Srem => write::<sets::SAddRem>(args),
        C::Sismember | C::Smismember | C::Scard => read::<sets::SIsMember>(args, store),
        C::Smembers => read::<sets::SMembers>(args, store),
        C::Srandmember => read::<sets::SRandMember>(args, store),
        C::Spop => write::<sets::SPop>(args),
        C::Smove => write::<sets::SMove>(args),
        C::Sinter | C::Sunion | C::Sdiff | C::Sintercard => {
            read::<algebra::SetCommand>(args, store)
        }
        C::Sinterstore | C::Sunionstore | C::Sdiffstore => write::<algebra::SetCommand>(args),
        C::Sscan => keys::scan_collection(ctx.server, ValueType::Set, args).into(),
        C::Zadd | C::Zincrby => write::<zsets::ZAdd>(args),
        C::Zrem => write::<zsets::ZRem>(args),
        C::Zcard | C::Zscore | C::Zmscore | C::Zrank | C::Zrevrank | C::Zcount | C::Zlexcount => {
            read::<zsets::ZLookup>(args, store)
        }
        C::Zrange
        | C::Zrangebyscore
        | C::Zrevrangebyscore
        | C::Zrevrange
        | C::Zrangebylex
        | C::Zrevrangebylex => read::<zsets::ZRange>(args, store),
        C::Zrangestore => write::<zsets::ZRangeStore>(args),
        C::Zremrangebyrank | C::Zremrangebyscore | C::Zremrangebylex => {
            write::<zsets::ZRemRange>(args)
        }
        C::Zpopmin | C::Zpopmax => write::<zsets::ZPop>(args),
        C::Zmpop => write::<zsets::ZMPop>(args),
        C::Zrandmember => read::<zsets::ZRandMember>(args, store),
        C::Zunion | C::Zinter | C::Zdiff | C::Zintercard => {
            read::<algebra::ZSetCommand>(args, store)
        }
        C::Zunionstore | C::Zinterstore | C::Zdiffstore => write::<algebra::ZSetCommand>(args),
        C::Zscan => keys::scan_collection(ctx.server, ValueType::ZSet, args).into(),
        C::Del | C::Unlink => write::<keys::Del>(args),
        C::Exists | C::Touch => read::<keys::Exists>(args, store),
        C::Type => read::<keys::Type>(args, store),
        C::Expire | C::Pexpire | C::Expireat | C::Pexpireat => write::<keys::Expire>(args),
        C::Ttl | C::Pttl | C::Expiretime | C::Pexpiretime => read::<keys::Ttl>(args, store),
        C::Persist => write::<keys::Persist>(args),
        C::Rename | C::Renamenx => write::<keys::Rename>(args),
        C::Copy => write::<keys::CopyKey>(args),
        C::Memory => read::<keys::MemoryUsage>(args, store),
        C::Object => read::<keys::Object>(args, store),
        C::Dump => read::<dump::Dump>(args, store),
        C::Restore => write::<dump::Restore>(args),
        C::Scan => keys::scan(ctx.server, &SlotSet::all(), &args[1..]).into(),
        C::Keys => keys::keys(ctx.server, SlotSet::all(), args[1].clone()),
        C::Randomkey => keys::random_key(store, &SlotSet::all()).into(),
        C::Sort | C::SortRo => match <sort::Sort as Parse>::parse(args) {
            Ok(cmd) if cmd.stores() => Outcome::Write(Box::new(cmd)),
            Ok(cmd) => cmd.execute(store).into(),
            Err(e) => e.into(),
        },
        C::Pfadd => write::<hyperloglog::PfAdd>(args),
        C::Pfcount => hyperloglog::pfcount(ctx.server, args),
        C::Pfmerge => write::<hyperloglog::PfMerge>(args),
        C::Pfdebug => write::<hyperloglog::PfDebug>(args),
        C::Geoadd => match geo::geoadd(args) {
            Ok(add) => Outcome::Write(Box::new(add)),
            Err(e) => e.into(),
        },
        C::Geodist | C::Geohash | C::Geopos => read::<geo::GeoLookup>(args, store),
        C::Georadius
        | C::GeoradiusRo
        | C::Georadiusbymember
        | C::GeoradiusbymemberRo
        | C::Geosearch
        | C::Geosearchstore => {
            if geo::GeoSearch::stores(args, r.effective()) {
                write::<geo::GeoSearch>(args)
            } else {
                read::<geo::GeoSearch>(args, store)
            }
        }
        C::Unsupported => unreachable!("refused above"),
        C::Fjord => slots::fjord(ctx, r, args),
    }
}

/// The arguments of LMPOP and ZMPOP, `numkeys key [key …] <side> [COUNT count]`, with Redis's
/// checks and texts in its order; `side` reads the side word (LEFT/RIGHT, MIN/MAX).
pub(crate) fn mpop_args<T>(
    args: &[Bytes],
    side: impl Fn(&[u8]) -> Option<T>,
) -> Result<(Vec<Bytes>, T, u64), Reply> {
    use fjord_common::number::parse_i64;
    let numkeys = parse_i64(&args[1])
        .filter(|&n| n > 0)
        .ok_or(Reply::error("ERR numkeys should be greater than 0"))? as usize;
    if numkeys > args.len().saturating_sub(3) {
        return Err(Reply::error(error::SYNTAX));
    }
    let keys = args[2..2 + numkeys].to_vec();
    let mut rest = args[2 + numkeys..].iter();
    let side = rest
        .next()
        .and_then(|w| side(w))
        .ok_or(Reply::error(error::SYNTAX))?;
    let mut count = 1;
    match (rest.next(), rest.next(), rest.next()) {
        (None, ..) => {}
        (Some(opt), Some(n), None) if opt.eq_ignore_ascii_case(b"count") => {
            count = parse_i64(n)
                .filter(|&n| n > 0)
                .ok_or(Reply::error("ERR count should be greater than 0"))?
                as u64;
        }
        _ => return Err(Reply::error(error::SYNTAX)),
    }
    Ok((keys, side, count))
}

/// A command's name as given (for error texts that quote the command).
pub(crate) fn lower_name(args: &[Bytes]) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
}
