//! Connection commands: PING, SELECT, HELLO, AUTH, CLIENT.

use super::Ctx;
use crate::server::ClientInfo;
use bytes::Bytes;
use fjord_common::command::Resolved;
use fjord_common::number::parse_i64;
use fjord_common::{error, Proto, Reply};

pub fn ping(args: &[Bytes]) -> Reply {
    match args.len() {
        1 => Reply::status("PONG"),
        2 => Reply::Bulk(args[1].clone()),
        _ => Reply::error(error::wrong_arity("ping")),
    }
}

pub fn select(args: &[Bytes]) -> Reply {
    match parse_i64(&args[1]) {
        Some(0) => Reply::ok(),
        Some(_) => Reply::error(error::DB_INDEX_OUT_OF_RANGE),
        None => Reply::error(error::NOT_INTEGER),
    }
}

fn check_password(ctx: &Ctx<'_>, user: Option<&[u8]>, password: &[u8]) -> Result<(), Reply> {
    let user_ok = user.is_none_or(|u| u == b"default");
    match ctx.server.config.requirepass.as_deref() {
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
pub fn auth(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let result = match args.len() {
        2 => check_password(ctx, None, &args[1]),
        3 => check_password(ctx, Some(&args[1]), &args[2]),
        _ => Err(Reply::error(error::SYNTAX)),
    };
    match result {
        Ok(()) => {
            ctx.conn.authenticated = true;
            Reply::ok()
        }
        Err(e) => e,
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`
pub fn hello(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let mut proto = ctx.conn.proto;
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
                if let Err(e) = check_password(ctx, Some(&args[i + 1]), &args[i + 2]) {
                    return e;
                }
                ctx.conn.authenticated = true;
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
    if !ctx.conn.authenticated {
        return Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    if let Some(name) = name {
        ctx.conn.info.set_name(name);
    }
    ctx.conn.proto = proto;
    ctx.conn.info.set_resp(proto);
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (
            Reply::text("version"),
            Reply::text(crate::server::REDIS_VERSION),
        ),
        (Reply::text("proto"), Reply::Int(proto.number())),
        (Reply::text("id"), Reply::Int(ctx.conn.info.id as i64)),
        (Reply::text("mode"), Reply::text("standalone")),
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
pub fn client(ctx: &mut Ctx<'_>, r: Resolved, args: &[Bytes]) -> Reply {
    let Some(sub) = r.sub else {
        return Reply::error(error::wrong_arity("client"));
    };
    let info = &ctx.conn.info;
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
        "list" => client_list(ctx, &args[2..]),
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

fn client_list(ctx: &Ctx<'_>, filters: &[Bytes]) -> Reply {
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
    let clients: Vec<std::sync::Arc<ClientInfo>> = ctx.server.clients.snapshot();
    let mut text = String::new();
    for c in clients {
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
