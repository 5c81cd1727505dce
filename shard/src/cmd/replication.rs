//! Replication commands a client sends: ROLE, REPLICAOF (SLAVEOF), WAIT.

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
