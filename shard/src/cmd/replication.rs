//! Replication commands a client sends (ROLE, REPLICAOF/SLAVEOF, WAIT), and those the
//! controller sends (`FJORD STATUS/FENCE/PROMOTE/FOLLOW/ISR/ACKS`, [`crate::repl::control`]).

use super::Outcome;
use crate::server::Server;
use bytes::Bytes;
use fjord_common::number::parse_i64;
use fjord_common::{error, Reply};
use std::sync::Arc;
use std::time::Duration;

/// `REPLICAOF host port` follows a primary; `REPLICAOF NO ONE` makes this shard a primary
/// again, starting a new term in its history (so that its old primary, should it come back
/// with ops this shard never had, cannot resume on them).
pub fn replicaof(server: &Server, args: &[Bytes]) -> Outcome {
    if server.repl.control.is_managed() {
        return Reply::error(
            "ERR this shard's role is set by its controller: use fjord-admin (failover, replicate)",
        )
        .into();
    }
    let (host, port) = (&args[1], &args[2]);
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        if server.repl.primary().is_none() {
            return Reply::ok().into();
        }
        if let Err(e) = server.repl.follow(&server.store, None) {
            return Reply::error(e).into();
        }
        let term = server.store.oplog().term() + 1;
        tracing::info!(term, "promoted to primary by REPLICAOF NO ONE");
        return Outcome::Write(crate::store::writer::begin_term(term));
    }
    let port = match parse_i64(port) {
        Some(p) if (1..=65535).contains(&p) => p,
        _ => return Reply::error("ERR Invalid master port").into(),
    };
    let primary = format!("{}:{port}", String::from_utf8_lossy(host));
    if server.repl.primary().as_deref() == Some(primary.as_str()) {
        return Reply::Status("OK Already connected to specified master".into()).into();
    }
    if let Err(e) = server.repl.follow(&server.store, Some(primary.clone())) {
        return Reply::error(e).into();
    }
    tracing::info!(%primary, "following a primary (REPLICAOF)");
    Reply::ok().into()
}

/// `WAIT numreplicas timeout`: how many replicas hold every write committed so far (so the
/// connection's own, which it committed before WAIT ran), once `numreplicas` do or the
/// timeout (ms, 0 = none) passes.
pub fn wait(server: &Server, args: &[Bytes]) -> Outcome {
    let (Some(wanted), Some(timeout)) = (parse_i64(&args[1]), parse_i64(&args[2])) else {
        return Reply::error(error::NOT_INTEGER).into();
    };
    if timeout < 0 {
        return Reply::error("ERR timeout is negative").into();
    }
    if server.store.is_replica() {
        return Reply::error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.").into();
    }
    let target = server.store.oplog().last_id();
    let repl = Arc::clone(&server.repl);
    let wanted = wanted.max(0) as usize;
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Reply::Int(repl.acked_by(target) as i64).into();
    };
    let timeout = (timeout > 0).then(|| Duration::from_millis(timeout as u64));
    Outcome::Later(
        runtime
            .spawn(async move { Reply::Int(repl.wait_for(target, wanted, timeout).await as i64) }),
    )
}

/// The controller's commands: `sub` is the FJORD subcommand, `args` the whole request.
pub fn control(server: &Server, sub: &str, args: &[Bytes]) -> Outcome {
    if sub == "status" {
        return status(server).into();
    }
    let Some(term) = parse_i64(&args[2]).and_then(|t| u64::try_from(t).ok()) else {
        return Reply::error(error::NOT_INTEGER).into();
    };
    let names = |from: usize| -> Vec<String> {
        args[from..]
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return Reply::error("ERR controller commands need the shard's runtime").into();
    };
    let task = match sub {
        "fence" => runtime.spawn(fence(
            Arc::clone(&server.repl),
            Arc::clone(&server.store),
            term,
        )),
        "promote" => {
            let (repl, store) = (Arc::clone(&server.repl), Arc::clone(&server.store));
            runtime.spawn(promote(repl, store, server.writer.clone(), term, names(3)))
        }
        "follow" => {
            let primary = String::from_utf8_lossy(&args[3]).into_owned();
            return follow(server, term, primary).into();
        }
        "isr" => {
            if let Err(e) = server.repl.control.check_current(term) {
                return Reply::error(e).into();
            }
            let required = names(3);
            tracing::info!(term, ?required, "the controller set the in-sync replicas");
            server.repl.control.set_required(required);
            server.repl.release_ready();
            return Reply::ok().into();
        }
        "acks" => {
            if let Err(e) = server.repl.control.check_current(term) {
                return Reply::error(e).into();
            }
            let acks = match std::str::from_utf8(&args[3])
                .map(|s| s.to_ascii_lowercase())
                .map(|s| s.parse::<fjord_common::topology::ReplicaAcks>())
            {
                Ok(Ok(acks)) => acks,
                _ => return Reply::error("ERR FJORD ACKS takes sync or async").into(),
            };
            let Some(min) = parse_i64(&args[4]).and_then(|m| usize::try_from(m).ok()) else {
                return Reply::error(error::NOT_INTEGER).into();
            };
            tracing::info!(
                term,
                acks = acks.name(),
                min_insync = min,
                "the controller set how replies wait for replicas"
            );
            server.repl.set_ack_policy(acks, min);
            return Reply::ok().into();
        }
        other => unreachable!("FJORD {other} is not a controller command"),
    };
    Outcome::Later(task)
}

/// `FJORD STATUS`: a flat list of names and values (replicas and the required set as arrays),
/// what the controller decides from.
fn status(server: &Server) -> Reply {
    let store = &server.store;
    let oplog = store.oplog();
    let control = &server.repl.control;
    let link = server.repl.link_status();
    let policy = server.repl.ack_policy();
    let bulk = |s: String| Reply::Bulk(Bytes::from(s));
    let replicas = server
        .repl
        .peers()
        .iter()
        .filter(|p| p.is_online())
        .map(|p| {
            let membership = match p.membership() {
                crate::repl::acks::Membership::Out => "out",
                crate::repl::acks::Membership::Joining => "joining",
                crate::repl::acks::Membership::InSync => "insync",
            };
            Reply::Array(vec![
                bulk(p.addr()),
                bulk(membership.into()),
                bulk(p.acked().to_string()),
            ])
        })
        .collect();
    let fields = [
        (
            "role",
            if store.is_replica() {
                "slave"
            } else {
                "master"
            }
            .to_string(),
        ),
        ("serving", u8::from(control.is_serving()).to_string()),
        ("term", control.term().to_string()),
        ("leader", control.leader().to_string()),
        ("oplog_term", oplog.term().to_string()),
        ("last_term", oplog.last_term().to_string()),
        ("last_id", oplog.last_id().to_string()),
        ("history", oplog.history()),
        ("promotable", u8::from(!oplog.is_full_syncing()).to_string()),
        ("primary", server.repl.primary().unwrap_or_default()),
        ("link", link.state.to_string()),
        ("acks", policy.0.name().to_string()),
        ("min_insync", policy.1.to_string()),
    ];
    let mut out: Vec<Reply> = fields
        .into_iter()
        .flat_map(|(k, v)| [bulk(k.into()), bulk(v)])
        .collect();
    out.push(bulk("replicas".into()));
    out.push(Reply::Array(replicas));
    out.push(bulk("required".into()));
    out.push(Reply::Array(
        control.required().into_iter().map(bulk).collect(),
    ));
    Reply::Array(out)
}

/// `FJORD FENCE term`: from the reply on, this shard serves no client and acknowledges
/// nothing to a primary of an older term. Answers what it holds and when it last
/// acknowledged: `[last-term, last-op-id, promotable, ms since its last acknowledgement to
/// its primary (-1: none since it started)]`.
async fn fence(
    repl: Arc<crate::repl::Replication>,
    store: Arc<crate::store::Store>,
    term: u64,
) -> Reply {
    let _no_ack_meanwhile = repl.control.ack_lock.lock().await;
    if let Err(e) = repl.control.accept(&store, term) {
        return Reply::error(e);
    }
    repl.control.set_serving(false);
    let oplog = store.oplog();
    tracing::warn!(term, last_id = oplog.last_id(), "fenced by the controller");
    Reply::Array(vec![
        Reply::Int(oplog.last_term() as i64),
        Reply::Int(oplog.last_id() as i64),
        Reply::Int(i64::from(!oplog.is_full_syncing())),
        Reply::Int(
            repl.control
                .since_ack_sent_ms()
                .map_or(-1, |ms| ms.min(i64::MAX as u64) as i64),
        ),
    ])
}

/// `FJORD PROMOTE term [replica …]`: serves as the primary of `term`, every write waiting
/// for the replicas named. A shard already primary at that term is confirmed (after a
/// restart); one that is not starts the term in its oplog first, so that no write of the new
/// primary lands in the old term (a deposed primary's suffix could then pass for it).
async fn promote(
    repl: Arc<crate::repl::Replication>,
    store: Arc<crate::store::Store>,
    writer: crate::store::writer::Writer,
    term: u64,
    required: Vec<String>,
) -> Reply {
    if store.oplog().is_full_syncing() {
        return Reply::error("ERR cannot promote: a full sync into this shard is under way");
    }
    {
        let _no_ack_meanwhile = repl.control.ack_lock.lock().await;
        // Two primaries of one term could each acknowledge writes the other lacks; only the
        // controller's order prevents it, but a replica that knows better refuses.
        let shown = repl.link_status().primary_term;
        if store.is_replica() && shown >= term {
            return Reply::error(format!(
                "ERR cannot promote at term {term}: the primary this shard follows has shown term {shown}"
            ));
        }
        if let Err(e) = repl.control.accept(&store, term) {
            return Reply::error(e);
        }
        if store.is_replica() {
            if let Err(e) = repl.follow(&store, None) {
                return Reply::error(e);
            }
        }
    }
    if store.oplog().term() < term {
        let replies = writer.begin_term(term).await;
        match replies.await {
            Ok(r) if !r.iter().any(|r| matches!(r, Reply::Error(_))) => {}
            Ok(r) => {
                return r
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| Reply::error("ERR no reply"))
            }
            Err(_) => return Reply::error("ERR the shard is shutting down"),
        }
    }
    repl.control.set_required(required.clone());
    repl.control.set_serving(true);
    tracing::warn!(
        term,
        ?required,
        last_id = store.oplog().last_id(),
        "serving as the primary (controller)"
    );
    Reply::ok()
}

/// `FJORD FOLLOW term host:port`: serves as a replica of `primary` (reads only; its link
/// refuses a primary of an older term).
fn follow(server: &Server, term: u64, primary: String) -> Reply {
    let control = &server.repl.control;
    if let Err(e) = control.accept(&server.store, term) {
        return Reply::error(e);
    }
    if server.repl.primary().as_deref() != Some(primary.as_str()) {
        if let Err(e) = server.repl.follow(&server.store, Some(primary.clone())) {
            return Reply::error(e);
        }
        tracing::warn!(term, %primary, "following a primary (controller)");
    }
    control.set_required(Vec::new());
    server.repl.abandon_held();
    control.set_serving(true);
    Reply::ok()
}
