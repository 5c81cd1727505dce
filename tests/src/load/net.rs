//! The load generator's connections: pipelined RESP connections shared by several workers, and
//! the two ways to reach the data: one address that takes any key (fjord's proxy, twemproxy),
//! or a cluster's nodes by slot, as a cluster client does (split per slot, grouped per node).

use bytes::{Bytes, BytesMut};
use fjord_common::resp::encode_request;
use fjord_common::slot_of;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame as Frame;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

type Reply = Result<Frame, String>;

/// One TCP connection; requests from any task are written in batches and their replies handed
/// back in order.
#[derive(Clone)]
pub struct Pipe {
    tx: mpsc::Sender<(Vec<Bytes>, oneshot::Sender<Reply>)>,
}

impl Pipe {
    pub async fn connect(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut read, mut write) = stream.into_split();
        let (tx, mut rx) = mpsc::channel::<(Vec<Bytes>, oneshot::Sender<Reply>)>(1024);
        let (waiting_tx, mut waiting_rx) = mpsc::unbounded_channel::<oneshot::Sender<Reply>>();
        tokio::spawn(async move {
            let mut out = BytesMut::with_capacity(64 * 1024);
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some((args, reply)) = next.take() {
                    encode_request(&args, &mut out);
                    if waiting_tx.send(reply).is_err() {
                        return;
                    }
                    next = rx.try_recv().ok();
                }
                if write.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
        });
        tokio::spawn(async move {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut waiting = VecDeque::new();
            let why = 'read: loop {
                match read.read_buf(&mut buf).await {
                    Ok(0) => break "connection closed".to_string(),
                    Ok(_) => {}
                    Err(e) => break e.to_string(),
                }
                loop {
                    let frame = match decode_bytes_mut(&mut buf) {
                        Ok(Some((frame, ..))) => frame,
                        Ok(None) => break,
                        Err(e) => break 'read format!("undecodable reply: {e:?}"),
                    };
                    while let Ok(w) = waiting_rx.try_recv() {
                        waiting.push_back(w);
                    }
                    let Some(w) = waiting.pop_front() else {
                        break 'read "a reply nobody asked for".to_string();
                    };
                    let _ = w.send(Ok(frame));
                }
            };
            while let Some(w) = waiting.pop_front().or_else(|| waiting_rx.try_recv().ok()) {
                let _ = w.send(Err(why.clone()));
            }
        });
        Ok(Self { tx })
    }

    /// Queues a request; the receiver yields its reply.
    pub async fn send(&self, args: Vec<Bytes>) -> oneshot::Receiver<Reply> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send((args, reply)).await;
        rx
    }

    pub async fn call(&self, args: Vec<Bytes>) -> Reply {
        receive(self.send(args).await).await
    }
}

async fn receive(rx: oneshot::Receiver<Reply>) -> Reply {
    match rx.await {
        Ok(Ok(Frame::Error(e))) => Err(e.to_string()),
        Ok(r) => r,
        Err(_) => Err("the connection was lost".into()),
    }
}

/// Which node serves each slot, from CLUSTER SLOTS.
pub struct SlotMap {
    pub nodes: Vec<String>,
    owner: Vec<usize>,
}

impl SlotMap {
    pub async fn fetch(addr: &str) -> anyhow::Result<Self> {
        let pipe = Pipe::connect(addr).await?;
        let reply = pipe
            .call(vec![Bytes::from("CLUSTER"), Bytes::from("SLOTS")])
            .await
            .map_err(|e| anyhow::anyhow!("CLUSTER SLOTS on {addr}: {e}"))?;
        let Frame::Array(ranges) = reply else {
            anyhow::bail!("CLUSTER SLOTS on {addr}: not an array");
        };
        let mut nodes: Vec<String> = Vec::new();
        let mut owner = vec![usize::MAX; usize::from(fjord_common::SLOT_COUNT)];
        for range in ranges {
            let Frame::Array(parts) = range else {
                anyhow::bail!("CLUSTER SLOTS: a range is not an array");
            };
            let (
                Some(Frame::Integer(start)),
                Some(Frame::Integer(end)),
                Some(Frame::Array(master)),
            ) = (parts.first(), parts.get(1), parts.get(2))
            else {
                anyhow::bail!("CLUSTER SLOTS: unexpected range shape");
            };
            let (Some(Frame::BulkString(host)), Some(Frame::Integer(port))) =
                (master.first(), master.get(1))
            else {
                anyhow::bail!("CLUSTER SLOTS: unexpected node shape");
            };
            let node = format!("{}:{port}", String::from_utf8_lossy(host));
            let index = nodes.iter().position(|n| *n == node).unwrap_or_else(|| {
                nodes.push(node);
                nodes.len() - 1
            });
            for slot in *start..=*end {
                owner[slot as usize] = index;
            }
        }
        if owner.contains(&usize::MAX) {
            anyhow::bail!("CLUSTER SLOTS on {addr} leaves slots uncovered");
        }
        Ok(Self { nodes, owner })
    }
}

/// One logical client: a pipe to the target, or one to each node of a cluster.
pub struct Client {
    pipes: Vec<Pipe>,
    map: Option<Arc<SlotMap>>,
}

impl Client {
    /// A client of one address that takes any key.
    pub async fn single(addr: &str) -> anyhow::Result<Self> {
        Ok(Self {
            pipes: vec![Pipe::connect(addr).await?],
            map: None,
        })
    }

    /// A cluster client: a pipe to every node of `map`.
    pub async fn cluster(map: Arc<SlotMap>) -> anyhow::Result<Self> {
        let mut pipes = Vec::new();
        for node in &map.nodes {
            pipes.push(Pipe::connect(node).await?);
        }
        Ok(Self {
            pipes,
            map: Some(map),
        })
    }

    /// Sends `command` over `items` (keys, or key-value pairs of `per_item` arguments): one
    /// request in single mode, one per slot in cluster mode (all sent before any is awaited,
    /// as a cluster client pipelines them per node). Returns each part's reply with the item
    /// positions it covers.
    async fn fan_out(
        &self,
        command: &'static str,
        items: &[Vec<Bytes>],
        key_of: impl Fn(&[Bytes]) -> &[u8],
    ) -> Result<Vec<(Vec<usize>, Frame)>, String> {
        let groups: Vec<(usize, Vec<usize>)> = match &self.map {
            None => vec![(0, (0..items.len()).collect())],
            Some(map) => {
                let mut by_slot: HashMap<u16, Vec<usize>> = HashMap::new();
                for (i, item) in items.iter().enumerate() {
                    by_slot.entry(slot_of(key_of(item))).or_default().push(i);
                }
                by_slot
                    .into_iter()
                    .map(|(slot, positions)| (map.owner[slot as usize], positions))
                    .collect()
            }
        };
        let mut sent = Vec::with_capacity(groups.len());
        for (node, positions) in groups {
            let mut args = vec![Bytes::from_static(command.as_bytes())];
            for &p in &positions {
                args.extend(items[p].iter().cloned());
            }
            sent.push((positions, self.pipes[node].send(args).await));
        }
        let mut replies = Vec::with_capacity(sent.len());
        for (positions, rx) in sent {
            replies.push((positions, receive(rx).await?));
        }
        Ok(replies)
    }

    /// MGET: the values in request order.
    pub async fn mget(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>, String> {
        let items: Vec<Vec<Bytes>> = keys.iter().map(|k| vec![k.clone()]).collect();
        let parts = self.fan_out("MGET", &items, |item| &item[0]).await?;
        let mut values = vec![None; keys.len()];
        let mut got = 0;
        for (positions, frame) in parts {
            let Frame::Array(items) = frame else {
                return Err(format!("MGET answered {frame:?}"));
            };
            // A short or long part shows as a length mismatch in the checker.
            got += items.len();
            for (&p, item) in positions.iter().zip(items) {
                values[p] = match item {
                    Frame::BulkString(b) => Some(b),
                    Frame::Null => None,
                    other => return Err(format!("MGET value {other:?}")),
                };
            }
        }
        values.truncate(got.min(keys.len()));
        if got > keys.len() {
            values.resize(got, None);
        }
        Ok(values)
    }

    /// MSET of `pairs` (one MSET per slot in cluster mode).
    pub async fn mset(&self, pairs: &[(Bytes, Bytes)]) -> Result<(), String> {
        let items: Vec<Vec<Bytes>> = pairs
            .iter()
            .map(|(k, v)| vec![k.clone(), v.clone()])
            .collect();
        for (_, frame) in self.fan_out("MSET", &items, |item| &item[0]).await? {
            if !matches!(&frame, Frame::SimpleString(s) if &s[..] == b"OK") {
                return Err(format!("MSET answered {frame:?}"));
            }
        }
        Ok(())
    }
}
