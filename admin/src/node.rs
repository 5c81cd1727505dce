//! Talking to one shard: a connection that sends a command and reads its reply, and the
//! shard's `FJORD STATUS` as the controller reads it.

use anyhow::{anyhow, bail, Result};
use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a call failed: the controller counts a refused or reset connection as a dead shard at
/// once, and silence only after several probes.
#[derive(Debug)]
pub enum CallError {
    /// Connection refused, reset or closed: nothing listens, or the process died.
    Gone(String),
    /// No answer in time: maybe stopped, maybe slow.
    Silent,
    /// The shard answered with an error.
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Gone(why) => write!(f, "unreachable ({why})"),
            CallError::Silent => write!(f, "no answer in time"),
            CallError::Refused(e) => write!(f, "refused: {e}"),
        }
    }
}

impl std::error::Error for CallError {}

/// A connection to a shard, opened on first use and dropped after any failure (a late reply
/// must never be read as the answer to a later command).
pub struct Node {
    pub addr: String,
    password: Option<String>,
    /// The leadership term of the elected controller this connection speaks for.
    leader: Option<u64>,
    conn: Option<(TcpStream, BytesMut)>,
}

impl Node {
    pub fn new(addr: &str, password: Option<String>) -> Self {
        Self {
            addr: addr.to_string(),
            password,
            leader: None,
            conn: None,
        }
    }

    /// Each connection starts with `FJORD LEADER leader`, so that the shard refuses this
    /// controller's commands once it has seen a newer leader ([`None`]: not elected).
    pub fn speaking_for(mut self, leader: Option<u64>) -> Self {
        self.leader = leader;
        self
    }

    /// Sends `args` and waits up to `timeout` for the reply.
    pub async fn call(
        &mut self,
        args: &[&str],
        timeout: Duration,
    ) -> Result<BytesFrame, CallError> {
        let result = tokio::time::timeout(timeout, self.call_inner(args)).await;
        match result {
            Ok(Ok(BytesFrame::Error(e))) => Err(CallError::Refused(e.to_string())),
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(CallError::Silent)
            }
        }
    }

    async fn call_inner(&mut self, args: &[&str]) -> Result<BytesFrame, CallError> {
        // A connection kept idle since the last call may belong to a process that restarted
        // meanwhile: a shard never speaks unasked, so anything readable (its close) says so.
        if let Some((stream, _)) = &self.conn {
            match stream.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                _ => self.conn = None,
            }
        }
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr)
                .await
                .map_err(|e| CallError::Gone(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            self.conn = Some((stream, BytesMut::with_capacity(4096)));
            if let Some(pass) = self.password.clone() {
                if let BytesFrame::Error(e) = self.exchange(&["AUTH", &pass]).await? {
                    return Err(CallError::Refused(format!("AUTH: {e}")));
                }
            }
            if let Some(leader) = self.leader {
                let leader = leader.to_string();
                if let BytesFrame::Error(e) = self.exchange(&["FJORD", "LEADER", &leader]).await? {
                    return Err(CallError::Refused(format!("FJORD LEADER: {e}")));
                }
            }
        }
        self.exchange(args).await
    }

    async fn exchange(&mut self, args: &[&str]) -> Result<BytesFrame, CallError> {
        let (stream, buf) = self.conn.as_mut().expect("connected above");
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let mut out = BytesMut::new();
        fjord_common::resp::encode_request(&args, &mut out);
        let gone = |e: std::io::Error| CallError::Gone(e.to_string());
        stream.write_all(&out).await.map_err(gone)?;
        loop {
            match decode_bytes_mut(buf) {
                Ok(Some((frame, ..))) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(CallError::Gone(format!("undecodable reply: {e:?}"))),
            }
            if stream.read_buf(buf).await.map_err(gone)? == 0 {
                return Err(CallError::Gone("connection closed".into()));
            }
        }
    }
}

/// A shard's `FJORD STATUS`.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub master: bool,
    pub serving: bool,
    /// The highest controller term it has seen.
    pub term: u64,
    /// The term of its oplog (its own terms included, from before any controller).
    pub oplog_term: u64,
    pub last_term: u64,
    pub last_id: u64,
    pub promotable: bool,
    /// The primary it follows (empty on a primary).
    pub primary: String,
    /// Its link to that primary (`connecting`, `sync`, `up`, …).
    pub link: String,
    /// Replicas streaming from it: `(ip:port, membership, acked)`.
    pub replicas: Vec<(String, String, u64)>,
    /// The replicas its writes wait for.
    pub required: Vec<String>,
    /// How its replies wait for replicas: `sync` or `async`, and the in-sync replicas client
    /// writes need.
    pub acks: String,
    pub min_insync: u64,
}

impl Status {
    pub fn parse(frame: BytesFrame) -> Result<Self> {
        let BytesFrame::Array(items) = frame else {
            bail!("FJORD STATUS: not an array");
        };
        let mut s = Status::default();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let key = text(&k)?;
            match key.as_str() {
                "replicas" => {
                    for r in array(v)? {
                        let parts = array(r)?;
                        if parts.len() != 3 {
                            bail!("FJORD STATUS: a replica entry of {} parts", parts.len());
                        }
                        s.replicas
                            .push((text(&parts[0])?, text(&parts[1])?, number(&parts[2])?));
                    }
                }
                "required" => {
                    s.required = array(v)?.iter().map(text).collect::<Result<_>>()?;
                }
                _ => {
                    let value = text(&v)?;
                    let n = || {
                        value
                            .parse::<u64>()
                            .map_err(|_| anyhow!("FJORD STATUS: {key} = {value}"))
                    };
                    match key.as_str() {
                        "role" => s.master = value == "master",
                        "serving" => s.serving = n()? == 1,
                        "term" => s.term = n()?,
                        "oplog_term" => s.oplog_term = n()?,
                        "last_term" => s.last_term = n()?,
                        "last_id" => s.last_id = n()?,
                        "promotable" => s.promotable = n()? == 1,
                        "primary" => s.primary = value,
                        "link" => s.link = value,
                        "acks" => s.acks = value,
                        "min_insync" => s.min_insync = n()?,
                        _ => {}
                    }
                }
            }
        }
        Ok(s)
    }

    /// The membership a replica has on this primary, if it streams from it.
    pub fn membership(&self, addr: &str) -> Option<&str> {
        self.replicas
            .iter()
            .find(|(a, ..)| a == addr)
            .map(|(_, m, _)| m.as_str())
    }
}

pub fn text(frame: &BytesFrame) -> Result<String> {
    match frame {
        BytesFrame::BulkString(b) | BytesFrame::SimpleString(b) => {
            Ok(String::from_utf8_lossy(b).into_owned())
        }
        BytesFrame::Integer(i) => Ok(i.to_string()),
        other => bail!("expected a string, got {other:?}"),
    }
}

pub fn number(frame: &BytesFrame) -> Result<u64> {
    match frame {
        BytesFrame::Integer(i) => u64::try_from(*i).map_err(|_| anyhow!("negative: {i}")),
        other => text(other)?
            .parse()
            .map_err(|_| anyhow!("not a number: {other:?}")),
    }
}

pub fn array(frame: BytesFrame) -> Result<Vec<BytesFrame>> {
    match frame {
        BytesFrame::Array(items) => Ok(items),
        other => bail!("expected an array, got {other:?}"),
    }
}

/// One run of `FJORD SLOTS`, `[start, end, state, epoch, owner]`: its slots, state and epoch.
pub fn slot_run(run: BytesFrame) -> Result<(fjord_common::slotset::SlotSet, String, u64)> {
    let [start, end, state, epoch, _owner] = <[_; 5]>::try_from(array(run)?)
        .map_err(|_| anyhow!("a FJORD SLOTS run is not 5 fields"))?;
    let range = fjord_common::slotset::SlotRange {
        start: number(&start)? as u16,
        end: number(&end)? as u16,
    };
    Ok((
        fjord_common::slotset::SlotSet::from_ranges([range]),
        text(&state)?,
        number(&epoch)?,
    ))
}
