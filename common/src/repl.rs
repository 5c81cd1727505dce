//! The replication link's wire contract: what a replica asks its primary and the frames the
//! two then exchange on that connection, all as RESP arrays of bulk strings.
//!
//! A replica opens a connection to its primary (AUTH first when the shard has a password)
//! and sends `FJORD SYNC <protocol> <history> <next op id> <last term> <listening port>`:
//! the history it holds, the op it wants next, the term of the last op it holds, and the
//! port it serves clients on (what INFO and ROLE show for it). The primary answers with
//! [`Frame::Continue`] (it holds that op, under that history and term: the stream goes on
//! from there) or [`Frame::FullSync`] (then [`Frame::Snap`] chunks of a consistent snapshot
//! in key order, [`Frame::SnapEnd`], and the stream from the snapshot's op id), or with an
//! error (another protocol version, a shard that is itself a replica). From then on the
//! primary sends [`Frame::Ops`] and, at least every 100 ms and whenever it released replies
//! with nothing else to send, [`Frame::Ping`] with a stamp of its own clock. Both carry the
//! last op whose replies the primary released: a replica shows a write to reads only once
//! its primary has acknowledged it (AFTER_SYNC, as on the primary); the replica sends [`Frame::Ack`] of the last op it has committed and the
//! last stamp it has seen. An acknowledged stamp proves the replica still followed this
//! primary (was not fenced) after the primary's clock read it: the primary's lease
//! ([`LEASE`]) runs from there.

use crate::Reply;
use bytes::Bytes;

/// The version of this protocol; both ends must speak the same. 4: snapshot chunks may
/// carry a big value in pieces.
pub const PROTOCOL_VERSION: u64 = 4;

/// How long a managed primary with in-sync replicas may serve after the send of the last
/// stamp all of them acknowledged. A controller that fences those replicas waits this out,
/// plus a margin for clock rates, before it promotes one, so that a frozen old primary that
/// wakes up serves nothing stale.
pub const LEASE: std::time::Duration = std::time::Duration::from_millis(600);

/// What a replica asks for with `FJORD SYNC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    pub protocol: u64,
    /// The history id the replica holds (any value when it holds none).
    pub history: String,
    /// The op id it wants next.
    pub next_id: u64,
    /// The term of the last op it holds (0 if none).
    pub last_term: u64,
    /// The port it serves clients on.
    pub port: u16,
}

impl SyncRequest {
    /// The command a replica sends.
    pub fn to_args(&self) -> Vec<Bytes> {
        [
            "FJORD".to_string(),
            "SYNC".to_string(),
            self.protocol.to_string(),
            self.history.clone(),
            self.next_id.to_string(),
            self.last_term.to_string(),
            self.port.to_string(),
        ]
        .into_iter()
        .map(Bytes::from)
        .collect()
    }

    /// Reads `FJORD SYNC …` (`args[0]` is `FJORD`).
    pub fn parse(args: &[Bytes]) -> Result<Self, String> {
        let [_, _, protocol, history, next_id, last_term, port] = args else {
            return Err("ERR wrong number of arguments for 'fjord|sync' command".into());
        };
        let number = |b: &Bytes, what: &str| -> Result<u64, String> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("ERR FJORD SYNC: {what} is not a number"))
        };
        Ok(Self {
            protocol: number(protocol, "the protocol version")?,
            history: String::from_utf8_lossy(history).into_owned(),
            next_id: number(next_id, "the op id")?,
            last_term: number(last_term, "the term")?,
            port: u16::try_from(number(port, "the port")?)
                .map_err(|_| "ERR FJORD SYNC: the port is out of range".to_string())?,
        })
    }
}

/// What a shard importing slots asks their source, on a connection of its own: `FJORD
/// SLOTSYNC <protocol> <epoch> <slots>`. The source answers as to a replica's full sync, with
/// only the slots' entries ([`Frame::FullSync`], [`Frame::Snap`] chunks, [`Frame::SnapEnd`]),
/// then [`Frame::SlotOps`]: its oplog from the snapshot on, filtered to the slots. No acks go
/// back: the importer applies the entries as its own writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSyncRequest {
    pub protocol: u64,
    /// The move's epoch (for the source's log).
    pub epoch: u64,
    pub slots: crate::slotset::SlotSet,
}

impl SlotSyncRequest {
    pub fn to_args(&self) -> Vec<Bytes> {
        [
            "FJORD".to_string(),
            "SLOTSYNC".to_string(),
            self.protocol.to_string(),
            self.epoch.to_string(),
            self.slots.to_string(),
        ]
        .into_iter()
        .map(Bytes::from)
        .collect()
    }

    /// Reads `FJORD SLOTSYNC …` (`args[0]` is `FJORD`).
    pub fn parse(args: &[Bytes]) -> Result<Self, String> {
        let [_, _, protocol, epoch, slots] = args else {
            return Err("ERR wrong number of arguments for 'fjord|slotsync' command".into());
        };
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let number = |b: &Bytes, what: &str| -> Result<u64, String> {
            text(b)
                .parse()
                .map_err(|_| format!("ERR FJORD SLOTSYNC: {what} is not a number"))
        };
        Ok(Self {
            protocol: number(protocol, "the protocol version")?,
            epoch: number(epoch, "the epoch")?,
            slots: crate::slotset::SlotSet::parse(&text(slots))
                .map_err(|_| crate::error::SLOT_OUT_OF_RANGE.to_string())?,
        })
    }
}

/// A frame of an established link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Primary → replica: the stream goes on from the op the replica asked for.
    Continue { history: String, term: u64 },
    /// Primary → replica: a snapshot follows, then the stream from `next_id`; `bytes_before`
    /// is where that op stands in the history's bytes.
    FullSync {
        history: String,
        term: u64,
        next_id: u64,
        bytes_before: u64,
    },
    /// Primary → replica: a chunk of the snapshot (an oplog entry's body of changes).
    Snap(Bytes),
    /// Primary → replica: the snapshot is complete.
    SnapEnd,
    /// Primary → replica: consecutive oplog entries from `first_id`, as stored, and the
    /// last op the primary acknowledged to its clients.
    Ops {
        first_id: u64,
        released: u64,
        entries: Vec<Bytes>,
    },
    /// Primary → replica: the primary's last op id, the last op it acknowledged to its
    /// clients, and a stamp of its monotonic clock (ms) that only the primary reads.
    Ping {
        last_id: u64,
        released: u64,
        stamp: u64,
    },
    /// Replica → primary: every op up to `id` is committed here, and the last stamp seen.
    Ack { id: u64, stamp: u64 },
    /// Source → importer: the changes to the moving slots of the source's ops up to
    /// `through`, one entry (in the oplog's layout) per op that touched them; the ops that
    /// did not are left out. Sent with no entries, too, to tell how far the source has read.
    SlotOps { through: u64, entries: Vec<Bytes> },
}

impl Frame {
    /// The frame as it goes on the wire.
    pub fn to_reply(&self) -> Reply {
        let bulk = |b: Bytes| Reply::Bulk(b);
        let num = |n: u64| Reply::Bulk(Bytes::from(n.to_string()));
        let word = |w: &'static str| Reply::Bulk(Bytes::from_static(w.as_bytes()));
        Reply::Array(match self {
            Frame::Continue { history, term } => vec![
                word("CONTINUE"),
                bulk(Bytes::from(history.clone())),
                num(*term),
            ],
            Frame::FullSync {
                history,
                term,
                next_id,
                bytes_before,
            } => vec![
                word("FULLSYNC"),
                bulk(Bytes::from(history.clone())),
                num(*term),
                num(*next_id),
                num(*bytes_before),
            ],
            Frame::Snap(chunk) => vec![word("SNAP"), bulk(chunk.clone())],
            Frame::SnapEnd => vec![word("SNAPEND")],
            Frame::Ops {
                first_id,
                released,
                entries,
            } => {
                let mut v = Vec::with_capacity(entries.len() + 3);
                v.push(word("OPS"));
                v.push(num(*first_id));
                v.push(num(*released));
                v.extend(entries.iter().cloned().map(bulk));
                v
            }
            Frame::Ping {
                last_id,
                released,
                stamp,
            } => vec![word("PING"), num(*last_id), num(*released), num(*stamp)],
            Frame::Ack { id, stamp } => vec![word("ACK"), num(*id), num(*stamp)],
            Frame::SlotOps { through, entries } => {
                let mut v = Vec::with_capacity(entries.len() + 2);
                v.push(word("SLOTOPS"));
                v.push(num(*through));
                v.extend(entries.iter().cloned().map(bulk));
                v
            }
        })
    }

    /// Reads a frame from the parts of a RESP array.
    pub fn parse(parts: Vec<Bytes>) -> Result<Self, String> {
        let bad = || format!("malformed replication frame {:?}", parts.first());
        let num = |b: &Bytes| -> Result<u64, String> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)
        };
        let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
        let name = parts.first().ok_or_else(bad)?;
        Ok(match (&name[..], parts.len()) {
            (b"CONTINUE", 3) => Frame::Continue {
                history: text(&parts[1]),
                term: num(&parts[2])?,
            },
            (b"FULLSYNC", 5) => Frame::FullSync {
                history: text(&parts[1]),
                term: num(&parts[2])?,
                next_id: num(&parts[3])?,
                bytes_before: num(&parts[4])?,
            },
            (b"SNAP", 2) => Frame::Snap(parts[1].clone()),
            (b"SNAPEND", 1) => Frame::SnapEnd,
            (b"OPS", n) if n >= 3 => Frame::Ops {
                first_id: num(&parts[1])?,
                released: num(&parts[2])?,
                entries: parts[3..].to_vec(),
            },
            (b"PING", 4) => Frame::Ping {
                last_id: num(&parts[1])?,
                released: num(&parts[2])?,
                stamp: num(&parts[3])?,
            },
            (b"SLOTOPS", n) if n >= 2 => Frame::SlotOps {
                through: num(&parts[1])?,
                entries: parts[2..].to_vec(),
            },
            (b"ACK", 3) => Frame::Ack {
                id: num(&parts[1])?,
                stamp: num(&parts[2])?,
            },
            _ => return Err(bad()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Proto;
    use bytes::BytesMut;

    /// The parts of an encoded array, as a peer decodes them.
    fn wire_parts(reply: &Reply) -> Vec<Bytes> {
        let mut out = BytesMut::new();
        reply.encode(Proto::Resp2, &mut out);
        let mut decoder = crate::resp::RequestDecoder::new(crate::Limits::default());
        decoder.decode(&mut out).unwrap().unwrap()
    }

    #[test]
    fn frames_round_trip_through_resp() {
        for frame in [
            Frame::Continue {
                history: "ab".repeat(20),
                term: 3,
            },
            Frame::FullSync {
                history: "cd".repeat(20),
                term: 0,
                next_id: 17,
                bytes_before: 4096,
            },
            Frame::Snap(Bytes::from_static(b"\x00\x01binary\r\n")),
            Frame::SnapEnd,
            Frame::Ops {
                first_id: 5,
                released: 4,
                entries: vec![Bytes::from_static(b"one"), Bytes::from_static(b"")],
            },
            Frame::Ping {
                last_id: 9,
                released: 8,
                stamp: 1_700_000_000_000,
            },
            Frame::Ack {
                id: u64::MAX,
                stamp: 3,
            },
            Frame::SlotOps {
                through: 12,
                entries: vec![Bytes::from_static(b"entry")],
            },
            Frame::SlotOps {
                through: 13,
                entries: vec![],
            },
        ] {
            assert_eq!(Frame::parse(wire_parts(&frame.to_reply())), Ok(frame));
        }
        assert!(Frame::parse(vec![Bytes::from_static(b"ACK")]).is_err());
        assert!(Frame::parse(vec![Bytes::from_static(b"ACK"), Bytes::from_static(b"x")]).is_err());
        assert!(Frame::parse(vec![]).is_err());
    }

    #[test]
    fn a_sync_request_round_trips_and_bad_numbers_are_refused() {
        let req = SyncRequest {
            protocol: PROTOCOL_VERSION,
            history: "ef".repeat(20),
            next_id: 1,
            last_term: 0,
            port: 7104,
        };
        assert_eq!(SyncRequest::parse(&req.to_args()), Ok(req.clone()));
        let mut args = req.to_args();
        args[6] = Bytes::from_static(b"70000");
        assert!(SyncRequest::parse(&args).is_err());
        assert!(SyncRequest::parse(&args[..5]).is_err());
    }

    #[test]
    fn a_slot_sync_request_round_trips_and_bad_slots_are_refused() {
        let req = SlotSyncRequest {
            protocol: PROTOCOL_VERSION,
            epoch: 9,
            slots: crate::slotset::SlotSet::parse("0-999,5000").unwrap(),
        };
        assert_eq!(SlotSyncRequest::parse(&req.to_args()), Ok(req.clone()));
        let mut args = req.to_args();
        args[4] = Bytes::from_static(b"16384");
        assert!(SlotSyncRequest::parse(&args).is_err());
        assert!(SlotSyncRequest::parse(&args[..4]).is_err());
    }
}
