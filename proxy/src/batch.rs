//! One client's single-shard commands, gathered per shard while a read is routed.
//!
//! Sending each command of a pipeline to its shard's connection on its own costs a channel
//! send, a reply channel and a wake-up per command. Instead the session encodes every
//! single-shard command of one read into that shard's open batch, sends each batch as one
//! request once the read is routed (or before anything else goes to a shard, so a client's
//! requests to a shard keep their order), and takes the replies out of the batch's one answer
//! in request order.

use crate::backend::{self, BatchReplies, ShardBackend};
use crate::router::Target;
use bytes::{Bytes, BytesMut};
use fjord_common::{Proto, Reply};
use std::sync::Arc;
use tokio::sync::oneshot;

/// The batches of one client: those still open, and those sent whose replies are not all taken.
#[derive(Default)]
pub struct Batches {
    /// Per destination ([`crate::topology::Routing::backend`]), the batch being filled: its id and contents.
    open: Vec<Option<Open>>,
    /// Every batch since the last [`Batches::clear`], by id.
    batches: Vec<Batch>,
}

struct Open {
    id: usize,
    commands: BytesMut,
    count: usize,
    /// The protocol the replies are wanted in: the client's when the batch was opened (a
    /// client that switches sends its open batches first).
    proto: Proto,
}

struct Batch {
    backend: Arc<ShardBackend>,
    state: State,
}

enum State {
    Open,
    Sent(oneshot::Receiver<BatchReplies>),
    Received {
        replies: std::vec::IntoIter<Reply>,
        /// Why the replies ran out early, if they did.
        failed: Option<String>,
    },
}

impl Batches {
    /// Adds a command for `dest` ([`crate::topology::Routing::backend`]) to its open batch,
    /// to be answered in `proto`; the reply comes from [`Batches::next`] with the id returned.
    pub fn push(&mut self, target: &Target, dest: usize, args: &[Bytes], proto: Proto) -> usize {
        if self.open.len() <= dest {
            self.open.resize_with(dest + 1, || None);
        }
        let open = self.open[dest].get_or_insert_with(|| {
            self.batches.push(Batch {
                backend: Arc::clone(target.routing.backend(dest)),
                state: State::Open,
            });
            Open {
                id: self.batches.len() - 1,
                commands: BytesMut::new(),
                count: 0,
                proto,
            }
        });
        fjord_common::resp::encode_request(args, &mut open.commands);
        open.count += 1;
        open.id
    }

    /// Sends every open batch to its shard, on the lane `target` uses for it.
    pub async fn send(&mut self, target: &Target) {
        for (dest, open) in self.open.iter_mut().enumerate() {
            let Some(open) = open.take() else { continue };
            let batch = &mut self.batches[open.id];
            let rx = batch
                .backend
                .send_batch(
                    target.lane(dest),
                    open.commands.freeze(),
                    open.count,
                    open.proto,
                )
                .await;
            batch.state = State::Sent(rx);
        }
    }

    /// The next reply of batch `id` (replies are taken in the order the commands were pushed).
    pub async fn next(&mut self, id: usize) -> Reply {
        self.next_within(id, None).await
    }

    /// [`Batches::next`], but if the batch's replies take longer than `within`, it fails as a
    /// whole (its later replies too), as a batch that lost its connection does: for reads a
    /// replica serves, which the primary can answer instead.
    pub async fn next_within(&mut self, id: usize, within: Option<std::time::Duration>) -> Reply {
        let batch = &mut self.batches[id];
        if let State::Sent(rx) = &mut batch.state {
            let received = backend::receive_batch(rx, &batch.backend);
            let BatchReplies { replies, failed } = match within {
                None => received.await,
                Some(limit) => tokio::time::timeout(limit, received)
                    .await
                    .unwrap_or_else(|_| BatchReplies {
                        replies: Vec::new(),
                        failed: Some(batch.backend.too_slow(limit)),
                    }),
            };
            batch.state = State::Received {
                replies: replies.into_iter(),
                failed,
            };
        }
        match &mut batch.state {
            State::Received { replies, failed } => replies.next().unwrap_or_else(|| {
                Reply::error(failed.clone().unwrap_or_else(|| {
                    batch
                        .backend
                        .down("the shard sent fewer replies than asked")
                }))
            }),
            State::Open | State::Sent(_) => Reply::error("ERR internal error: batch not sent"),
        }
    }

    /// Forgets every batch; called once all their replies are taken.
    pub fn clear(&mut self) {
        self.batches.clear();
    }
}
