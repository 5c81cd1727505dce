//! A client connection's state, and the commands whose answer depends only on it.
//!
//! PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT, COMMAND, CONFIG, TIME, READONLY/READWRITE/
//! ASKING read nothing from the store and mean the same on a shard and on the proxy. They live
//! here once; each server supplies what differs through [`Host`] (its password, its clients,
//! its CONFIG parameters, whether it speaks cluster mode) and answers the rest itself.

use crate::command::{self, flags, CommandSpec, Resolved};
use crate::glob::glob_match;
use crate::number::parse_i64;
use crate::{error, tunables, CommandId, Proto, Reply};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The Redis version fjord reports: clients pick features by it.
pub const REDIS_VERSION: &str = "7.0.15";

/// What the connection commands need from the server that runs them.
pub trait Host {
    /// The password clients must give (`requirepass`), if any.
    fn requirepass(&self) -> Option<&str>;
    /// Open connections, for CLIENT LIST.
    fn clients(&self) -> &ClientRegistry;
    /// Whether CLUSTER, READONLY, READWRITE and ASKING are served (the proxy) or refused with
    /// Redis's "cluster support disabled" (a shard, like a non-cluster redis-server).
    fn cluster_support(&self) -> bool;
    /// CONFIG GET's parameters with their current values.
    fn config_params(&self) -> Vec<(&'static str, String)>;
    /// CONFIG RESETSTAT.
    fn reset_stats(&self);
    /// Whether COMMAND lists `spec` (the proxy hides shard-internal commands).
    fn lists_command(&self, _spec: &CommandSpec) -> bool {
        true
    }
}

/// State of one client connection.
pub struct ClientState {
    pub proto: Proto,
    pub authenticated: bool,
    /// Reached through a cluster listener: HELLO says `mode: cluster`, SELECT is refused.
    pub cluster_mode: bool,
    pub info: Arc<ClientInfo>,
    /// Sent READONLY (and no READWRITE since): on a replica listener of the proxy, its reads
    /// may be served by a shard replica.
    pub readonly: bool,
    /// On a shard that is a replica: reads are refused once its data may be older than this
    /// (`FJORD READLAG`, which the proxy sends on its connections to replicas).
    pub replica_max_lag_ms: Option<u64>,
    /// On a shard: the leadership term of the elected controller this connection speaks for
    /// (`FJORD LEADER`); its controller commands are refused once the shard has seen a newer.
    pub leader_term: Option<u64>,
}

impl ClientState {
    pub fn new(host: &impl Host, info: Arc<ClientInfo>, cluster_mode: bool) -> Self {
        Self {
            proto: Proto::Resp2,
            authenticated: host.requirepass().is_none(),
            cluster_mode,
            info,
            readonly: false,
            replica_max_lag_ms: None,
            leader_term: None,
        }
    }
}

/// What a connection command asks of the connection.
pub enum Handled {
    Reply(Reply),
    /// Send the reply, then close (QUIT).
    Close(Reply),
}

/// Refusals that come before a command runs: authentication, and commands that need a
/// connection pinned to one client (transactions, pub/sub, blocking), which fjord lacks.
pub fn refuse(state: &ClientState, r: &Resolved) -> Option<Reply> {
    if !state.authenticated && !r.spec.has_flag(flags::NO_AUTH) {
        return Some(Reply::error(error::NOAUTH));
    }
    if r.spec.id == CommandId::Unsupported {
        return Some(Reply::error(error::not_supported(
            r.spec.name,
            "transactions, pub/sub and blocking commands need a connection pinned to one \
             client, which fjord does not offer yet",
        )));
    }
    None
}

/// Answers a connection command; `None` when `r` is not one (the server runs it itself).
pub fn execute(
    host: &impl Host,
    state: &mut ClientState,
    r: Resolved,
    args: &[Bytes],
) -> Option<Handled> {
    use CommandId as C;
    let reply = match r.spec.id {
        C::Ping => ping(args),
        C::Echo => Reply::Bulk(args[1].clone()),
        C::Quit => return Some(Handled::Close(Reply::ok())),
        C::Select => select(state, args),
        C::Hello => hello(host, state, args),
        C::Auth => auth(host, state, args),
        C::Client => client(host, state, r, args),
        C::Command => command(host, r, args),
        C::Config => config(host, r, args),
        C::Time => time(),
        C::Function => function(r, args),
        C::Pfselftest => {
            let seed = rand::random();
            match crate::hll::self_test(seed, crate::hll::sparse_max_bytes()) {
                Ok(()) => Reply::ok(),
                Err(e) => Reply::error(e),
            }
        }
        C::Debug => Reply::error(error::not_supported(
            "debug",
            "it inspects one Redis process's internals, and a fjord cluster is several processes",
        )),
        C::Readonly | C::Readwrite if host.cluster_support() => {
            state.readonly = r.spec.id == C::Readonly;
            Reply::ok()
        }
        C::Asking if host.cluster_support() => Reply::ok(),
        C::Readonly | C::Readwrite | C::Asking => Reply::error(error::CLUSTER_DISABLED),
        _ => return None,
    };
    Some(Handled::Reply(reply))
}

fn ping(args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => Reply::error(error::wrong_arity("ping")),
    }
}

fn select(state: &ClientState, args: &[Bytes]) -> Reply {
    if state.cluster_mode {
        return Reply::error("ERR SELECT is not allowed in cluster mode");
    }
    match parse_i64(&args[1]) {
        Some(0) => Reply::ok(),
        Some(_) => Reply::error(error::DB_INDEX_OUT_OF_RANGE),
        None => Reply::error(error::NOT_INTEGER),
    }
}

fn check_password(host: &impl Host, user: Option<&[u8]>, password: &[u8]) -> Result<(), Reply> {
    let user_ok = user.is_none_or(|u| u == b"default");
    match host.requirepass() {
        // Like Redis's default user with `nopass`: any password works for "default".
        None if user.is_some() && user_ok => Ok(()),
        None if user.is_none() => Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )),
        Some(expected) if user_ok && password == expected.as_bytes() => Ok(()),
        _ => Err(Reply::error(error::WRONGPASS)),
    }
}

/// `AUTH [user] password`
fn auth(host: &impl Host, state: &mut ClientState, args: &[Bytes]) -> Reply {
    let result = match args.len() {
        2 => check_password(host, None, &args[1]),
        3 => check_password(host, Some(&args[1]), &args[2]),
        _ => Err(Reply::error(error::SYNTAX)),
    };
    match result {
        Ok(()) => {
            state.authenticated = true;
            Reply::ok()
        }
        Err(e) => e,
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`
fn hello(host: &impl Host, state: &mut ClientState, args: &[Bytes]) -> Reply {
    let mut proto = state.proto;
    if args.len() >= 2 {
        proto = match parse_i64(&args[1]) {
            Some(2) => Proto::Resp2,
            Some(3) => Proto::Resp3,
            Some(_) => return Reply::error(error::NOPROTO),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        };
    }
    let mut name = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        match args[i].to_ascii_uppercase().as_slice() {
            b"AUTH" if more >= 2 => {
                if let Err(e) = check_password(host, Some(&args[i + 1]), &args[i + 2]) {
                    return e;
                }
                state.authenticated = true;
                i += 3;
            }
            b"SETNAME" if more >= 1 => {
                if let Err(e) = valid_client_name(&args[i + 1]) {
                    return e;
                }
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => {
                return Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                ))
            }
        }
    }
    if !state.authenticated {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    if let Some(name) = name {
        state.info.set_name(name);
    }
    state.proto = proto;
    state.info.set_resp(proto);
    let mode = if state.cluster_mode {
        "cluster"
    } else {
        "standalone"
    };
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (Reply::text("version"), Reply::text(REDIS_VERSION)),
        (Reply::text("proto"), Reply::Int(proto.number())),
        (Reply::text("id"), Reply::Int(state.info.id as i64)),
        (Reply::text("mode"), Reply::text(mode)),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(vec![])),
    ])
}

fn valid_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// `CLIENT <sub>`
fn client(host: &impl Host, state: &mut ClientState, r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("client"));
    };
    let info = &state.info;
    match sub.name {
        "setname" => match valid_client_name(&args[2]) {
            Ok(()) => {
                info.set_name(args[2].clone());
                Reply::ok()
            }
            Err(e) => e,
        },
        "getname" => info.name().map(Reply::Bulk).unwrap_or(Reply::Nil),
        "id" => Reply::Int(info.id as i64),
        "setinfo" => {
            let value = args[3].clone();
            if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return Reply::error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    String::from_utf8_lossy(&args[2])
                ));
            }
            match args[2].to_ascii_lowercase().as_slice() {
                b"lib-name" => info.set_lib(Some(value), None),
                b"lib-ver" => info.set_lib(None, Some(value)),
                _ => {
                    return Reply::error(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(&args[2])
                    ))
                }
            }
            Reply::ok()
        }
        "list" => client_list(host.clients(), &args[2..]),
        "info" => Reply::Verbatim(Bytes::from(format!("{}\n", info.describe()))),
        "no-evict" | "no-touch" => match args[2].to_ascii_lowercase().as_slice() {
            b"on" | b"off" => Reply::ok(),
            _ => Reply::error(error::SYNTAX),
        },
        "help" => help(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
            "    Return information about client connections.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <LIB-NAME|LIB-VER> <value>",
            "    Set client meta attributes.",
            "HELP",
            "    Print this help.",
        ]),
        other => Reply::error(error::unknown_subcommand("client", other.as_bytes())),
    }
}

fn client_list(clients: &ClientRegistry, filters: &[Bytes]) -> Reply {
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 0;
    while i < filters.len() {
        match filters[i].to_ascii_uppercase().as_slice() {
            b"TYPE" if i + 1 < filters.len() => {
                match filters[i + 1].to_ascii_lowercase().as_slice() {
                    b"normal" => {}
                    b"master" | b"replica" | b"slave" | b"pubsub" => {
                        ids = Some(Vec::new());
                    }
                    other => {
                        return Reply::error(format!(
                            "ERR Unknown client type '{}'",
                            String::from_utf8_lossy(other)
                        ))
                    }
                }
                i += 2;
            }
            b"ID" if i + 1 < filters.len() => {
                let mut list = Vec::new();
                i += 1;
                while i < filters.len() {
                    match parse_i64(&filters[i]).filter(|&n| n > 0) {
                        Some(n) => list.push(n as u64),
                        None => return Reply::error("ERR Invalid client ID"),
                    }
                    i += 1;
                }
                ids = Some(list);
            }
            _ => return Reply::error(error::SYNTAX),
        }
    }
    let mut text = String::new();
    for c in clients.snapshot() {
        if ids.as_ref().is_none_or(|ids| ids.contains(&c.id)) {
            text.push_str(&c.describe());
            text.push('\n');
        }
    }
    Reply::Verbatim(Bytes::from(text))
}

/// A HELP reply: one status line per entry.
pub fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::status(*l)).collect())
}

/// The ACL categories of a command (`@write`, `@string`, …), from its flags and its group,
/// as COMMAND INFO shows them and COMMAND LIST FILTERBY ACLCAT selects by them.
fn acl_categories(spec: &CommandSpec, group: &str) -> impl Iterator<Item = &'static str> {
    let by_flag = [
        (flags::WRITE, "write"),
        (flags::READONLY, "read"),
        (flags::ADMIN, "admin"),
        (flags::ADMIN, "dangerous"),
        (flags::PUBSUB, "pubsub"),
        (flags::BLOCKING, "blocking"),
        (flags::FAST, "fast"),
    ];
    let speed = (!spec.has_flag(flags::FAST)).then_some("slow");
    let by_group = match group {
        "string" => Some("string"),
        "bitmap" => Some("bitmap"),
        "generic" => Some("keyspace"),
        "connection" => Some("connection"),
        "scripting" => Some("scripting"),
        "transactions" => Some("transaction"),
        "list" => Some("list"),
        "hash" => Some("hash"),
        "set" => Some("set"),
        "sorted-set" => Some("sortedset"),
        _ => None,
    };
    let flags = spec.flags;
    by_flag
        .into_iter()
        .filter(move |(bit, _)| flags & bit != 0)
        .map(|(_, name)| name)
        .chain(speed)
        .chain(by_group)
}

/// `COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]`: commands and their
/// subcommands (`client|list`), as Redis 7 lists them. fjord has no modules.
fn command_list(listed: &[&CommandSpec], filter: &[Bytes]) -> Reply {
    enum Filter<'a> {
        All,
        Module,
        AclCat(String),
        Pattern(&'a [u8]),
    }
    let filter = match filter {
        [] => Filter::All,
        [by, kind, value] if by.eq_ignore_ascii_case(b"FILTERBY") => {
            match kind.to_ascii_uppercase().as_slice() {
                b"MODULE" => Filter::Module,
                b"ACLCAT" => Filter::AclCat(String::from_utf8_lossy(value).to_ascii_lowercase()),
                b"PATTERN" => Filter::Pattern(value),
                _ => return Reply::error(error::SYNTAX),
            }
        }
        _ => return Reply::error(error::SYNTAX),
    };
    let mut names = Vec::new();
    for &c in listed {
        let entries = std::iter::once((c, c.name.to_string()))
            .chain(c.subcommands.iter().map(|s| (s, s.full_name(Some(c)))));
        for (spec, name) in entries {
            let keep = match &filter {
                Filter::All => true,
                Filter::Module => false,
                Filter::AclCat(cat) => acl_categories(spec, c.group).any(|a| a == cat),
                Filter::Pattern(p) => glob_match(p, name.as_bytes(), true),
            };
            if keep {
                names.push(Reply::text(name));
            }
        }
    }
    Reply::Array(names)
}

/// One `COMMAND INFO` entry, in Redis 7's ten-field shape.
fn command_entry(spec: &CommandSpec, parent: Option<&CommandSpec>) -> Reply {
    let flag_names = flags::NAMES
        .iter()
        .filter(|(bit, _)| spec.flags & bit != 0)
        .map(|(_, name)| Reply::status(*name))
        .collect();
    let (first, last, step) = match parent {
        Some(_) => (0, 0, 0),
        None => (spec.first_key, spec.last_key, spec.step),
    };
    let categories = acl_categories(spec, parent.map_or(spec.group, |p| p.group))
        .map(|c| Reply::status(format!("@{c}")))
        .collect();
    Reply::Array(vec![
        Reply::text(spec.full_name(parent)),
        Reply::Int(i64::from(spec.arity)),
        Reply::Set(flag_names),
        Reply::Int(i64::from(first)),
        Reply::Int(i64::from(last)),
        Reply::Int(i64::from(step)),
        Reply::Set(categories),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(
            spec.subcommands
                .iter()
                .map(|s| command_entry(s, Some(spec)))
                .collect(),
        ),
    ])
}

fn command_docs(spec: &CommandSpec, parent: Option<&CommandSpec>) -> Reply {
    let group = parent.map_or(spec.group, |p| p.group);
    let mut fields = vec![
        (Reply::text("summary"), Reply::text(spec.summary)),
        (Reply::text("since"), Reply::text(spec.since)),
        (Reply::text("group"), Reply::text(group)),
    ];
    if !spec.subcommands.is_empty() {
        fields.push((
            Reply::text("subcommands"),
            Reply::Map(
                spec.subcommands
                    .iter()
                    .map(|s| {
                        (
                            Reply::text(s.full_name(Some(spec))),
                            command_docs(s, Some(spec)),
                        )
                    })
                    .collect(),
            ),
        ));
    }
    Reply::Map(fields)
}

/// `COMMAND [COUNT | INFO … | DOCS … | LIST | GETKEYS …]`
fn command(host: &impl Host, r: Resolved, args: &[Bytes]) -> Reply {
    let listed: Vec<&CommandSpec> = command::all()
        .iter()
        .filter(|c| host.lists_command(c))
        .collect();
    let find = |name: &[u8]| command::lookup(name).filter(|c| host.lists_command(c));
    let Some(sub) = r.sub else {
        return Reply::Array(listed.iter().map(|c| command_entry(c, None)).collect());
    };
    match sub.name {
        "count" => Reply::Int(listed.len() as i64),
        "list" => command_list(&listed, &args[2..]),
        "info" if args.len() == 2 => {
            Reply::Array(listed.iter().map(|c| command_entry(c, None)).collect())
        }
        "info" => Reply::Array(
            args[2..]
                .iter()
                .map(|name| match find(name) {
                    Some(c) => command_entry(c, None),
                    None => Reply::NilArray,
                })
                .collect(),
        ),
        "docs" => {
            let selected: Vec<&CommandSpec> = if args.len() == 2 {
                listed
            } else {
                args[2..].iter().filter_map(|n| find(n)).collect()
            };
            Reply::Map(
                selected
                    .into_iter()
                    .map(|c| (Reply::text(c.name), command_docs(c, None)))
                    .collect(),
            )
        }
        "getkeys" => {
            let target = &args[2..];
            let Some(spec) = find(&target[0]) else {
                return Reply::error("ERR Invalid command specified");
            };
            if !spec.arity_ok(target.len()) {
                return Reply::error("ERR Invalid number of arguments specified for command");
            }
            let keys: Vec<Reply> = spec
                .key_indexes(target)
                .map(|i| Reply::Bulk(target[i].clone()))
                .collect();
            if keys.is_empty() {
                return Reply::error("ERR The command has no key arguments");
            }
            Reply::Array(keys)
        }
        "help" => help(&[
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "HELP",
            "    Print this help.",
        ]),
        other => Reply::error(error::unknown_subcommand("command", other.as_bytes())),
    }
}

/// `CONFIG GET|SET|RESETSTAT|HELP`
fn config(host: &impl Host, r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("config"));
    };
    match sub.name {
        "get" => {
            let mut pairs = Vec::new();
            for (name, value) in host.config_params().into_iter().chain(tunables::params()) {
                let wanted = args[2..]
                    .iter()
                    .any(|p| glob_match(p, name.as_bytes(), true));
                if wanted {
                    pairs.push((Reply::text(name), Reply::text(value)));
                }
            }
            Reply::Map(pairs)
        }
        "set" => config_set(host, &args[2..]),
        "resetstat" => {
            host.reset_stats();
            Reply::ok()
        }
        "help" => help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "HELP",
            "    Print this help.",
        ]),
        other => Reply::error(error::unknown_subcommand("config", other.as_bytes())),
    }
}

/// `FUNCTION <sub>`: fjord has no scripting, so there are never any libraries. What reads
/// or clears them answers as Redis does with none loaded (test suites and tools run `FUNCTION
/// FLUSH` to reset a server); what would create one is refused.
fn function(r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("function"));
    };
    match sub.name {
        // The same options as FLUSHALL's, after the subcommand.
        "flush" if command::flush_options_ok(&args[1..]) => Reply::ok(),
        "flush" => Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"),
        "list" => Reply::Array(vec![]),
        "delete" => Reply::error("ERR Library not found"),
        "kill" => Reply::error("NOTBUSY No scripts in execution right now."),
        "stats" => Reply::Map(vec![
            (Reply::text("running_script"), Reply::Nil),
            (Reply::text("engines"), Reply::Map(vec![])),
        ]),
        "help" => help(&[
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LIST [LIBRARYNAME <library_name_pattern>] [WITHCODE]",
            "    Return general information on all the libraries (none in fjord).",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries (there are none in fjord).",
            "STATS",
            "    Return information about the current function running.",
            "KILL",
            "    Kill the current running function.",
            "HELP",
            "    Print this help.",
        ]),
        name => Reply::error(error::not_supported(
            &format!("function|{name}"),
            "scripting (functions and EVAL) is not implemented",
        )),
    }
}

/// The name, value pairs of Redis's encoding [`tunables`] in a `CONFIG SET` request (none
/// for any other request): the proxy sets them on the shards as well.
pub fn tunables_set(r: Resolved, args: &[Bytes]) -> Vec<Bytes> {
    let is_set = r.spec.id == CommandId::Config && r.sub.is_some_and(|s| s.name == "set");
    if !is_set || !args.len().is_multiple_of(2) {
        return Vec::new();
    }
    args[2..]
        .chunks_exact(2)
        .filter(|p| tunables::is_tunable(&p[0]))
        .flatten()
        .cloned()
        .collect()
}

/// `CONFIG SET name value [name value ...]`: fjord's settings come from its files, so every
/// parameter it has is immutable here, except Redis's encoding [`tunables`]; setting one to
/// the value it has already changes nothing and is accepted (test suites and tools send
/// `CONFIG SET save ""`, which fjord, never saving a snapshot, already is). The errors are
/// Redis's, in its order: an odd number of arguments, then the first unknown name, then the
/// first known one that would change.
fn config_set(host: &impl Host, pairs: &[Bytes]) -> Reply {
    if !pairs.len().is_multiple_of(2) {
        return Reply::error(error::SYNTAX);
    }
    let known = host.config_params();
    let is_known = |name: &[u8]| {
        tunables::is_tunable(name)
            || known
                .iter()
                .any(|(k, _)| k.as_bytes().eq_ignore_ascii_case(name))
    };
    let unchanged = |name: &[u8], value: &[u8]| {
        known
            .iter()
            .any(|(k, v)| k.as_bytes().eq_ignore_ascii_case(name) && v.as_bytes() == value)
    };
    let settable = |p: &[Bytes]| tunables::is_tunable(&p[0]) || unchanged(&p[0], &p[1]);
    if pairs.chunks_exact(2).all(settable) {
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .chunks_exact(2)
            .filter(|p| tunables::is_tunable(&p[0]))
            .map(|p| (&p[0][..], &p[1][..]))
            .collect();
        return match tunables::set(&pairs) {
            Ok(()) => Reply::ok(),
            Err(e) => Reply::error(e),
        };
    }
    let mut names = pairs
        .chunks_exact(2)
        .filter(|p| !settable(p))
        .map(|p| &p[0]);
    if let Some(unknown) = names.clone().find(|n| !is_known(n)) {
        return Reply::error(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(unknown)
        ));
    }
    let first = names
        .next()
        .map(|n| String::from_utf8_lossy(n).into_owned());
    Reply::error(format!(
        "ERR CONFIG SET failed (possibly related to argument '{}') - can't set immutable config",
        first.unwrap_or_default()
    ))
}

fn time() -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::text(now.as_secs().to_string()),
        Reply::text(now.subsec_micros().to_string()),
    ])
}

/// What CLIENT LIST shows about a connection.
pub struct ClientInfo {
    pub id: u64,
    addr: SocketAddr,
    laddr: SocketAddr,
    created: Instant,
    last_active_ms: AtomicU64,
    resp: AtomicU8,
    details: Mutex<ClientDetails>,
}

#[derive(Default)]
struct ClientDetails {
    name: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
    last_command: Option<Resolved>,
}

impl ClientInfo {
    pub fn set_name(&self, name: Bytes) {
        if let Ok(mut d) = self.details.lock() {
            d.name = (!name.is_empty()).then_some(name);
        }
    }

    pub fn name(&self) -> Option<Bytes> {
        self.details.lock().ok().and_then(|d| d.name.clone())
    }

    pub fn set_lib(&self, name: Option<Bytes>, ver: Option<Bytes>) {
        if let Ok(mut d) = self.details.lock() {
            if name.is_some() {
                d.lib_name = name;
            }
            if ver.is_some() {
                d.lib_ver = ver;
            }
        }
    }

    pub fn set_resp(&self, proto: Proto) {
        self.resp.store(proto.number() as u8, Ordering::Relaxed);
    }

    /// Records the command being run; its name is only formatted when CLIENT LIST asks.
    pub fn touch(&self, command: Resolved) {
        let ms = self.created.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, Ordering::Relaxed);
        if let Ok(mut d) = self.details.lock() {
            d.last_command = Some(command);
        }
    }

    /// One CLIENT LIST line.
    pub fn describe(&self) -> String {
        let d = self.details.lock().map(|d| {
            let s = |b: &Option<Bytes>| {
                b.as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default()
            };
            let cmd = d.last_command.map_or_else(
                || "NULL".to_string(),
                |r| r.effective().full_name(r.sub.map(|_| r.spec)),
            );
            (s(&d.name), s(&d.lib_name), s(&d.lib_ver), cmd)
        });
        let (name, lib_name, lib_ver, cmd) = d.unwrap_or_default();
        let age = self.created.elapsed();
        let idle = age.as_millis() as u64
            - self
                .last_active_ms
                .load(Ordering::Relaxed)
                .min(age.as_millis() as u64);
        format!(
            "id={} addr={} laddr={} fd=0 name={name} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 \
             multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 \
             tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={lib_name} lib-ver={lib_ver}",
            self.id,
            self.addr,
            self.laddr,
            age.as_secs(),
            idle / 1000,
            cmd,
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// Open connections, for CLIENT LIST and INFO clients.
#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
}

impl ClientRegistry {
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            resp: AtomicU8::new(2),
            details: Mutex::new(ClientDetails::default()),
        });
        if let Ok(mut map) = self.clients.lock() {
            map.insert(id, Arc::clone(&info));
        }
        info
    }

    pub fn unregister(&self, id: u64) {
        if let Ok(mut map) = self.clients.lock() {
            map.remove(&id);
        }
    }

    pub fn len(&self) -> usize {
        self.clients.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn snapshot(&self) -> Vec<Arc<ClientInfo>> {
        let mut v: Vec<_> = self
            .clients
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|c| c.id);
        v
    }
}
