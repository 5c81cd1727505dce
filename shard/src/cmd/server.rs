//! Server commands: INFO, COMMAND, CONFIG, TIME, LASTSAVE, FLUSHALL/FLUSHDB, CLUSTER.

use super::connection::help;
use super::{slots, Ctx, Outcome};
use crate::server::Server;
use crate::store::Store;
use bytes::Bytes;
use fjord_common::command::{self, flags, CommandSpec, Resolved};
use fjord_common::glob::glob_match;
use fjord_common::slotset::SlotSet;
use fjord_common::{error, Reply};
use std::sync::atomic::Ordering;

/// `INFO [section ...]`
pub fn info(ctx: &Ctx<'_>, args: &[Bytes]) -> Reply {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    Reply::Verbatim(Bytes::from(ctx.server.info_text(&wanted)))
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
    let category = format!("@{}", parent.map_or(spec.group, |p| p.group));
    Reply::Array(vec![
        Reply::text(spec.full_name(parent)),
        Reply::Int(i64::from(spec.arity)),
        Reply::Set(flag_names),
        Reply::Int(i64::from(first)),
        Reply::Int(i64::from(last)),
        Reply::Int(i64::from(step)),
        Reply::Set(vec![Reply::status(category)]),
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
pub fn command(r: Resolved, args: &[Bytes]) -> Reply {
    let all = command::all();
    let Some(sub) = r.sub else {
        return Reply::Array(all.iter().map(|c| command_entry(c, None)).collect());
    };
    match sub.name {
        "count" => Reply::Int(all.len() as i64),
        "list" => Reply::Array(all.iter().map(|c| Reply::text(c.name)).collect()),
        "info" if args.len() == 2 => {
            Reply::Array(all.iter().map(|c| command_entry(c, None)).collect())
        }
        "info" => Reply::Array(
            args[2..]
                .iter()
                .map(|name| match command::lookup(name) {
                    Some(c) => command_entry(c, None),
                    None => Reply::NilArray,
                })
                .collect(),
        ),
        "docs" => {
            let selected: Vec<&CommandSpec> = if args.len() == 2 {
                all.iter().collect()
            } else {
                args[2..]
                    .iter()
                    .filter_map(|n| command::lookup(n))
                    .collect()
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
            let Some(spec) = command::lookup(&target[0]) else {
                return Reply::error("ERR Invalid command specified");
            };
            if !spec.arity_ok(target.len()) {
                return Reply::error("ERR Invalid number of arguments specified for command");
            }
            let keys: Vec<Reply> = spec
                .key_indexes(target.len())
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
            "LIST",
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
pub fn config(ctx: &Ctx<'_>, r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("config"));
    };
    match sub.name {
        "get" => {
            let params = ctx.server.config_params();
            let mut pairs = Vec::new();
            for (name, value) in &params {
                let wanted = args[2..]
                    .iter()
                    .any(|p| glob_match(p, name.as_bytes(), true));
                if wanted {
                    pairs.push((Reply::text(*name), Reply::text(value.clone())));
                }
            }
            Reply::Map(pairs)
        }
        "set" => Reply::error(format!(
            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
            String::from_utf8_lossy(&args[2])
        )),
        "resetstat" => {
            ctx.server.reset_stats();
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

pub fn time() -> Reply {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Reply::Array(vec![
        Reply::text(now.as_secs().to_string()),
        Reply::text(now.subsec_micros().to_string()),
    ])
}

/// `LASTSAVE`: the last time the journal was synced to disk.
pub fn lastsave(store: &Store) -> Reply {
    let last = store.stats.last_fsync_unix.load(Ordering::Relaxed);
    Reply::Int(last as i64)
}

/// `FLUSHALL|FLUSHDB [ASYNC|SYNC]`
pub fn flush(args: &[Bytes]) -> Outcome {
    match args.get(1).map(|a| a.to_ascii_uppercase()) {
        None => {}
        Some(opt) if args.len() == 2 && (opt == b"ASYNC" || opt == b"SYNC") => {}
        Some(_) => return Reply::error(error::SYNTAX).into(),
    }
    Outcome::Flush(SlotSet::all())
}

/// `CLUSTER <sub>` on a shard: slot figures work; everything about nodes belongs to the proxy.
pub fn cluster(server: &Server, r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("cluster"));
    };
    match sub.name {
        "keyslot" => slots::keyslot(&args[2]),
        "countkeysinslot" => slots::keys_in_slot(server, &args[2], None),
        "getkeysinslot" => slots::keys_in_slot(server, &args[2], Some(&args[3])),
        _ => Reply::error(error::CLUSTER_DISABLED),
    }
}
