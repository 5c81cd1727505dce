//! A connection this shard opened to another shard to pull from it: a replica's link to its
//! primary, an importer's to the source of the slots it imports. Frames of
//! [`fjord_common::repl`] in both directions; silence past [`SILENCE_LIMIT`] breaks it.

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use fjord_common::repl::Frame;
use fjord_common::{Proto, Reply};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Silence from the other shard after which the link counts as broken (it sends a frame at
/// least every 100 ms).
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// The connection, with what has been read and not yet decoded.
pub struct Link {
    stream: TcpStream,
    buf: BytesMut,
}

impl Link {
    /// Connects to `addr`, authenticating with `password` (the shards share one).
    pub async fn connect(addr: &str, password: Option<&str>) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut link = Link {
            stream,
            buf: BytesMut::with_capacity(64 * 1024),
        };
        if let Some(pass) = password {
            link.send(&["AUTH".into(), Bytes::copy_from_slice(pass.as_bytes())])
                .await?;
            if let BytesFrame::Error(e) = link.read().await? {
                bail!("{addr} refused AUTH: {e}");
            }
        }
        Ok(link)
    }

    pub async fn send(&mut self, args: &[Bytes]) -> anyhow::Result<()> {
        let reply = Reply::Array(args.iter().cloned().map(Reply::Bulk).collect());
        self.send_reply(reply).await
    }

    pub async fn send_frame(&mut self, frame: Frame) -> anyhow::Result<()> {
        self.send_reply(frame.to_reply()).await
    }

    async fn send_reply(&mut self, reply: Reply) -> anyhow::Result<()> {
        let mut out = BytesMut::new();
        reply.encode(Proto::Resp2, &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next RESP value; silence past [`SILENCE_LIMIT`] is an error.
    async fn read(&mut self) -> anyhow::Result<BytesFrame> {
        loop {
            match decode_bytes_mut(&mut self.buf) {
                Ok(Some((frame, ..))) => return Ok(frame),
                Ok(None) => {}
                Err(e) => bail!("undecodable data from the other shard: {e:?}"),
            }
            let read = tokio::time::timeout(SILENCE_LIMIT, self.stream.read_buf(&mut self.buf));
            match read.await {
                Err(_) => bail!(
                    "the other shard was silent for {} s",
                    SILENCE_LIMIT.as_secs()
                ),
                Ok(Ok(0)) => bail!("the other shard closed the link"),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// The next frame; an error reply ends the session with its text.
    pub async fn frame(&mut self) -> anyhow::Result<Frame> {
        match self.read().await? {
            BytesFrame::Array(items) => {
                let parts = items
                    .into_iter()
                    .map(|item| match item {
                        BytesFrame::BulkString(b) => Ok(b),
                        other => Err(anyhow!("unexpected item in a frame: {other:?}")),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Frame::parse(parts).map_err(|e| anyhow!(e))
            }
            BytesFrame::Error(e) => bail!("the other shard refused: {e}"),
            other => bail!("unexpected reply from the other shard: {other:?}"),
        }
    }
}
