//! The RESP wire format: requests in, replies out.
//!
//! Requests are decoded by hand rather than with `redis-protocol`: a server must check every
//! length header against its limits *before* buffering the bytes it announces, and must not
//! re-parse a half-received 100 000-argument MSET from its start on every read. The decoder
//! below keeps Redis's own state machine (multibulk count, current bulk length) across reads
//! and returns Redis's protocol-error texts. Inline commands (`PING\r\n`, what telnet and
//! `redis-cli` in some modes send) follow `sdssplitargs`' quoting rules.
//!
//! Replies are a small enum encoded for the connection's protocol: RESP3 types (maps, sets,
//! doubles, booleans, verbatim strings, `_` null) fold to their RESP2 equivalents on RESP2
//! connections, the way Redis folds them.

use bytes::{Buf, Bytes, BytesMut};
use std::borrow::Cow;

/// Protocol version a connection speaks (`HELLO 2` / `HELLO 3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

impl Proto {
    /// The number HELLO reports in its `proto` field.
    pub fn number(self) -> i64 {
        match self {
            Proto::Resp2 => 2,
            Proto::Resp3 => 3,
        }
    }
}

/// Limits on what a client may send, checked before memory is committed.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest bulk string (Redis's `proto-max-bulk-len`, 512 MB).
    pub max_bulk_len: usize,
    /// Most arguments in one request.
    pub max_array_len: usize,
    /// Longest inline command line (Redis's `PROTO_INLINE_MAX_SIZE`, 64 KB).
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bulk_len: 512 * 1024 * 1024,
            max_array_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
        }
    }
}

/// A malformed request; the text follows `ERR Protocol error: ` and the connection closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

impl ProtocolError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }

    /// The full error line a server sends before closing.
    pub fn to_reply(&self) -> Reply {
        Reply::error(format!("ERR {self}"))
    }
}

/// Longest `*<n>` or `$<n>` header line Redis reads before giving up.
const MAX_HEADER_LEN: usize = 64 * 1024;

/// Incremental decoder of client requests (arrays of bulk strings, or inline lines).
#[derive(Debug)]
pub struct RequestDecoder {
    limits: Limits,
    /// Arguments of the multibulk request being received.
    args: Vec<Bytes>,
    /// Arguments still expected in that request; 0 when between requests.
    remaining: usize,
    /// Length of the bulk string whose `$<n>` header was consumed.
    bulk_len: Option<usize>,
    /// Bytes already taken out of the read buffer for the request being received.
    partial_bytes: usize,
}

impl RequestDecoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            args: Vec::new(),
            remaining: 0,
            bulk_len: None,
            partial_bytes: 0,
        }
    }

    /// Bytes of a half-received request held by the decoder (not counting `buf`), for the
    /// per-client and global memory budgets.
    pub fn held_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// Bytes the next complete request still needs beyond what `buf` holds, when known:
    /// lets the reader reserve a large bulk string in one step.
    fn bulk_bytes_expected(&self, buf: &BytesMut) -> usize {
        match self.bulk_len {
            Some(len) => (len + 2).saturating_sub(buf.len()),
            None => 0,
        }
    }

    /// Makes room in `buf` for the next read: at least `min` bytes, more when a large bulk
    /// string is arriving (in steps of at most 4 MiB, never more than it announced).
    pub fn reserve_for_read(&self, buf: &mut BytesMut, min: usize) {
        let expected = self.bulk_bytes_expected(buf).min(4 * 1024 * 1024);
        buf.reserve(expected.max(min));
    }

    /// Takes the next complete request out of `buf`. `Ok(None)` means more bytes are needed.
    /// Empty requests (`*0`, `*-1`, blank inline lines) are skipped as Redis skips them.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                let Some(&first) = buf.first() else {
                    return Ok(None);
                };
                if first != b'*' {
                    match self.decode_inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(line) = line_end(buf, MAX_HEADER_LEN, "too big mbulk count string")?
                else {
                    return Ok(None);
                };
                let count = crate::number::parse_i64(&buf[1..line.len])
                    .filter(|&n| n <= self.limits.max_array_len as i64);
                buf.advance(line.taken);
                let count = count.ok_or_else(|| ProtocolError::new("invalid multibulk length"))?;
                if count <= 0 {
                    continue;
                }
                self.remaining = count as usize;
                // Grow with the data that actually arrives, not with what the header claims.
                self.args = Vec::with_capacity(self.remaining.min(1024));
                self.partial_bytes = line.len;
            }
            while self.remaining > 0 {
                let len = match self.bulk_len {
                    Some(len) => len,
                    None => {
                        let Some(&first) = buf.first() else {
                            return Ok(None);
                        };
                        if first != b'$' {
                            return Err(ProtocolError::new(format!(
                                "expected '$', got '{}'",
                                char::from(first)
                            )));
                        }
                        let Some(line) =
                            line_end(buf, MAX_HEADER_LEN, "too big bulk count string")?
                        else {
                            return Ok(None);
                        };
                        let len = crate::number::parse_i64(&buf[1..line.len])
                            .filter(|&n| n >= 0 && n as u64 <= self.limits.max_bulk_len as u64);
                        buf.advance(line.taken);
                        let len =
                            len.ok_or_else(|| ProtocolError::new("invalid bulk length"))? as usize;
                        self.partial_bytes += line.len;
                        self.bulk_len = Some(len);
                        len
                    }
                };
                if buf.len() < len + 2 {
                    return Ok(None);
                }
                let arg = buf.split_to(len).freeze();
                buf.advance(2); // Redis does not check that the two bytes are CRLF either.
                self.partial_bytes += len + 2;
                self.args.push(arg);
                self.bulk_len = None;
                self.remaining -= 1;
            }
            self.partial_bytes = 0;
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }

    fn decode_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(line) = line_end(buf, self.limits.max_inline_len, "too big inline request")?
        else {
            return Ok(None);
        };
        let args = split_inline_args(&buf[..line.len]);
        buf.advance(line.taken);
        args.map(Some)
            .ok_or_else(|| ProtocolError::new("unbalanced quotes in request"))
    }
}

/// Where the first line of a buffer ends.
struct Line {
    /// Its bytes, without the `\r\n` (or lone `\n`).
    len: usize,
    /// Its bytes with them: what the caller advances past once it has read the line.
    taken: usize,
}

/// The `\n`-terminated line at the start of `buf`, or an error if none ends within `max`
/// bytes. The caller reads it in place and then advances past it: splitting each header
/// line off as a buffer of its own cost a reference count and its release per line (about a
/// tenth of the proxy's CPU under SADD -P 16, with the argument splits).
fn line_end(buf: &[u8], max: usize, too_big: &'static str) -> Result<Option<Line>, ProtocolError> {
    match memchr_newline(buf) {
        // Measured as the bytes before the newline (`\r` included), the same measure as the
        // no-newline-yet case below: whether a line is refused must not depend on how it was
        // split across reads (the fuzzer found a 1024-byte line + CRLF that did).
        Some(pos) if pos > max => Err(ProtocolError::new(too_big)),
        Some(pos) => {
            let len = if pos > 0 && buf[pos - 1] == b'\r' {
                pos - 1
            } else {
                pos
            };
            Ok(Some(Line {
                len,
                taken: pos + 1,
            }))
        }
        None if buf.len() > max => Err(ProtocolError::new(too_big)),
        None => Ok(None),
    }
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Splits an inline command line like Redis's `sdssplitargs`: words separated by spaces,
/// `"..."` with `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` with only `\'`. A closing quote
/// must be followed by a space or the end. Returns `None` on unbalanced quotes.
pub fn split_inline_args(line: &[u8]) -> Option<Vec<Bytes>> {
    // sdssplitargs reads a C string: a NUL byte ends the line.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    current.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => current.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(current));
    }
}

fn hex(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c - b'A' + 10,
    }
}

/// A reply, in protocol-neutral form.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+text`
    Status(Cow<'static, str>),
    /// `-text`; the text starts with the error code (`ERR`, `WRONGTYPE`, …).
    Error(Cow<'static, str>),
    Int(i64),
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Nil,
    /// A missing array: `*-1` in RESP2, `_` in RESP3.
    NilArray,
    Array(Vec<Reply>),
    /// A map in RESP3, a flat key/value array in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// An array of two-element arrays in RESP3, a flat array in RESP2 (HRANDFIELD …
    /// WITHVALUES, ZRANGE … WITHSCORES): Redis shapes these replies by the protocol.
    Pairs(Vec<(Reply, Reply)>),
    /// A set in RESP3, an array in RESP2.
    Set(Vec<Reply>),
    /// A double in RESP3, a bulk string in RESP2.
    Double(f64),
    /// A double printed as the command prints it (GEOPOS's coordinates, which Redis prints
    /// with `%.17Lf`, not `%.17g`): the same text as a double in RESP3, a bulk string in RESP2.
    DoubleText(Bytes),
    /// A boolean in RESP3, 1/0 in RESP2.
    Bool(bool),
    /// A verbatim `txt` string in RESP3 (INFO, CLUSTER NODES), a bulk string in RESP2.
    Verbatim(Bytes),
    /// An array, set or map of bulk strings only, encoded as its items were read (a range
    /// of a collection): one buffer rather than a [`Reply`] and a copy per item.
    Bulks(Bulks),
    /// A reply already encoded, in the protocol of the request it answers: a shard's reply
    /// that the proxy passes on without reading it ([`ReplyDecoder::decode_frame`]).
    Frame(Bytes),
}

/// What a [`Reply::Bulks`] is to a RESP3 client (a RESP2 client gets a flat array of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Array,
    Set,
    /// Keys and values alternate.
    Map,
}

/// The items of a [`Reply::Bulks`]: bulk strings the same in both protocols, so only the
/// header waits for the protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Bulks {
    shape: Shape,
    items: usize,
    body: BytesMut,
}

impl Bulks {
    pub fn new(shape: Shape) -> Self {
        Self {
            shape,
            items: 0,
            body: BytesMut::new(),
        }
    }

    /// Appends an item (for a map, a key or a value in turn).
    pub fn push(&mut self, item: &[u8]) {
        bulk(&mut self.body, item);
        self.items += 1;
    }

    pub fn len(&self) -> usize {
        self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items == 0
    }
}

impl From<Bulks> for Reply {
    fn from(b: Bulks) -> Self {
        Reply::Bulks(b)
    }
}

impl Reply {
    /// `+OK`
    pub const fn ok() -> Self {
        Reply::Status(Cow::Borrowed("OK"))
    }

    pub fn status(text: impl Into<Cow<'static, str>>) -> Self {
        Reply::Status(text.into())
    }

    pub fn error(text: impl Into<Cow<'static, str>>) -> Self {
        Reply::Error(text.into())
    }

    pub fn bulk(data: impl Into<Bytes>) -> Self {
        Reply::Bulk(data.into())
    }

    /// A bulk string from text (status-like values that Redis sends as bulk strings).
    pub fn text(s: impl Into<String>) -> Self {
        Reply::Bulk(Bytes::from(s.into()))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding of this reply for protocol `proto` to `out`.
    pub fn encode(&self, proto: Proto, out: &mut BytesMut) {
        match self {
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(n) => int_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil => match proto {
                Proto::Resp2 => out.extend_from_slice(b"$-1\r\n"),
                Proto::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Reply::NilArray => match proto {
                Proto::Resp2 => out.extend_from_slice(b"*-1\r\n"),
                Proto::Resp3 => out.extend_from_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                let tag = if proto == Proto::Resp3 { b'~' } else { b'*' };
                int_line(out, tag, items.len() as i64);
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                match proto {
                    Proto::Resp2 => int_line(out, b'*', 2 * pairs.len() as i64),
                    Proto::Resp3 => int_line(out, b'%', pairs.len() as i64),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Pairs(pairs) => {
                let flat = proto == Proto::Resp2;
                int_line(out, b'*', pairs.len() as i64 * if flat { 2 } else { 1 });
                for (k, v) in pairs {
                    if !flat {
                        int_line(out, b'*', 2);
                    }
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                let text = format_double(*d);
                match proto {
                    Proto::Resp2 => bulk(out, text.as_bytes()),
                    Proto::Resp3 => line(out, b',', text.as_bytes()),
                }
            }
            Reply::DoubleText(text) => match proto {
                Proto::Resp2 => bulk(out, text),
                Proto::Resp3 => line(out, b',', text),
            },
            Reply::Bool(b) => match proto {
                Proto::Resp2 => int_line(out, b':', i64::from(*b)),
                Proto::Resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            },
            Reply::Verbatim(text) => match proto {
                Proto::Resp2 => bulk(out, text),
                Proto::Resp3 => {
                    int_line(out, b'=', text.len() as i64 + 4);
                    out.extend_from_slice(b"txt:");
                    out.extend_from_slice(text);
                    out.extend_from_slice(b"\r\n");
                }
            },
            Reply::Frame(frame) => out.extend_from_slice(frame),
            Reply::Bulks(b) => {
                let (tag, n) = match (b.shape, proto) {
                    (Shape::Set, Proto::Resp3) => (b'~', b.items),
                    (Shape::Map, Proto::Resp3) => (b'%', b.items / 2),
                    _ => (b'*', b.items),
                };
                int_line(out, tag, n as i64);
                out.extend_from_slice(&b.body);
            }
        }
    }
}

/// Deepest nesting a reply may have: shards nest a few levels at most (ZMPOP, geo searches);
/// the bound keeps a corrupt stream from growing the decoder's stack without end.
const MAX_REPLY_DEPTH: usize = 32;

/// Incremental decoder of replies, RESP2 and RESP3 alike: a shard answers each of the
/// proxy's requests in the protocol of the client it is for, so one connection carries both.
///
/// A reply is scanned once as its bytes arrive (the scan resumes where the last read
/// ended, so a reply of many megabytes arriving in small reads costs no rescans), then built
/// from the complete frame. It becomes the [`Reply`] that encodes back to the same bytes:
/// `$-1` and `*-1` stay [`Reply::Nil`] and [`Reply::NilArray`], a double keeps its text
/// ([`Reply::DoubleText`]), maps, sets, booleans and verbatim strings keep their types.
#[derive(Debug, Default)]
pub struct ReplyDecoder {
    /// Where the scan of the reply at the front of the buffer stands.
    scanned: usize,
    /// Per aggregate the scan is inside, outermost first, the parts it still expects.
    open: Vec<u64>,
}

/// A reply's header line: its type byte, the text after it, and where the next part starts.
struct ReplyLine<'a> {
    tag: u8,
    text: &'a [u8],
    next: usize,
}

fn reply_line(data: &[u8], at: usize) -> Result<Option<ReplyLine<'_>>, String> {
    let Some(rest) = data.get(at..).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let Some(newline) = memchr_newline(rest) else {
        return Ok(None);
    };
    if newline < 1 || rest[newline - 1] != b'\r' {
        return Err("a reply line does not end with CRLF".to_string());
    }
    Ok(Some(ReplyLine {
        tag: rest[0],
        text: &rest[1..newline - 1],
        next: at + newline + 1,
    }))
}

/// A length header's number: `-1` (null) or a count that fits in memory.
fn reply_len(text: &[u8]) -> Result<i64, String> {
    crate::number::parse_i64(text)
        .filter(|&n| n >= -1)
        .ok_or_else(|| format!("bad length {:?} in a reply", String::from_utf8_lossy(text)))
}

/// Parts an aggregate with header `tag` and length `n` holds (a map's are keys and values).
fn parts(tag: u8, n: i64) -> u64 {
    n as u64 * if tag == b'%' { 2 } else { 1 }
}

impl ReplyDecoder {
    /// Takes the next complete reply out of `buf`; `Ok(None)` means more bytes are needed.
    /// An error means the stream is not RESP (or holds a push or attribute, which shards
    /// never send): the connection cannot be trusted further.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, String> {
        let Some(end) = self.scan(buf)? else {
            return Ok(None);
        };
        let frame = buf.split_to(end).freeze();
        let (reply, _) = build_reply(&frame, 0, 0)?;
        Ok(Some(reply))
    }

    /// [`ReplyDecoder::decode`] for a reply that is passed on as it came: a
    /// [`Reply::Frame`], unless it is an error, which is read (the proxy follows some). A
    /// reply of many parts (LRANGE, HGETALL) is then scanned once and copied once, rather
    /// than built into a [`Reply`] per part and encoded again.
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<Reply>, String> {
        let Some(end) = self.scan(buf)? else {
            return Ok(None);
        };
        let frame = buf.split_to(end).freeze();
        if matches!(frame[0], b'-' | b'!') {
            return build_reply(&frame, 0, 0).map(|(reply, _)| Some(reply));
        }
        Ok(Some(Reply::Frame(frame)))
    }

    /// Where the reply at the front of `buf` ends, once it has all arrived.
    fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        loop {
            let Some(line) = reply_line(buf, self.scanned)? else {
                return Ok(None);
            };
            let after = match line.tag {
                b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => line.next,
                b'$' | b'=' | b'!' => match reply_len(line.text)? {
                    -1 if line.tag == b'$' => line.next,
                    -1 => return Err("a null verbatim string or blob error".to_string()),
                    n => {
                        let end = line.next.saturating_add(n as usize).saturating_add(2);
                        if buf.len() < end {
                            return Ok(None);
                        }
                        end
                    }
                },
                b'*' | b'~' | b'%' => match reply_len(line.text)? {
                    -1 if line.tag == b'*' => line.next,
                    -1 => return Err("a null set or map".to_string()),
                    0 => line.next,
                    n => {
                        if self.open.len() >= MAX_REPLY_DEPTH {
                            return Err("a reply nested too deep".to_string());
                        }
                        self.open.push(parts(line.tag, n));
                        self.scanned = line.next;
                        continue;
                    }
                },
                other => return Err(format!("unexpected reply type {:?}", char::from(other))),
            };
            self.scanned = after;
            // A part is complete: it completes the aggregates it was the last part of.
            loop {
                match self.open.last_mut() {
                    None => {
                        self.scanned = 0;
                        return Ok(Some(after));
                    }
                    Some(left) if *left > 1 => {
                        *left -= 1;
                        break;
                    }
                    Some(_) => {
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// The reply at `at` in `frame`, a complete reply the scan checked, and where it ends.
fn build_reply(frame: &Bytes, at: usize, depth: usize) -> Result<(Reply, usize), String> {
    let line = reply_line(frame, at)?.ok_or("a reply ended early")?;
    let text = || String::from_utf8_lossy(line.text).into_owned();
    let blob = |n: i64| {
        let end = line.next + n as usize;
        frame
            .get(line.next..end)
            .map(|_| (frame.slice(line.next..end), end + 2))
            .ok_or_else(|| "a reply ended early".to_string())
    };
    let items = |n: u64| -> Result<(Vec<Reply>, usize), String> {
        if depth >= MAX_REPLY_DEPTH {
            return Err("a reply nested too deep".to_string());
        }
        let mut items = Vec::with_capacity(n.min(1024 * 1024) as usize);
        let mut next = line.next;
        for _ in 0..n {
            let (item, after) = build_reply(frame, next, depth + 1)?;
            items.push(item);
            next = after;
        }
        Ok((items, next))
    };
    let simple = |reply: Reply| Ok((reply, line.next));
    match line.tag {
        b'+' if line.text == b"OK" => simple(Reply::ok()),
        b'+' => simple(Reply::status(text())),
        b'-' => simple(Reply::error(text())),
        b':' => simple(Reply::Int(
            crate::number::parse_i64(line.text).ok_or("a bad integer in a reply")?,
        )),
        b'_' => simple(Reply::Nil),
        b',' => simple(Reply::DoubleText(frame.slice(at + 1..line.next - 2))),
        b'#' => simple(Reply::Bool(line.text == b"t")),
        // Big numbers are not something shards send; RESP2 carries them as bulk strings.
        b'(' => simple(Reply::Bulk(frame.slice(at + 1..line.next - 2))),
        b'$' | b'=' | b'!' => match reply_len(line.text)? {
            -1 => simple(Reply::Nil),
            n => {
                let (data, end) = blob(n)?;
                let reply = match line.tag {
                    b'$' => Reply::Bulk(data),
                    // Skips the format (`txt:`): verbatim strings are always text here.
                    b'=' => Reply::Verbatim(data.slice(4.min(data.len())..)),
                    _ => Reply::error(String::from_utf8_lossy(&data).into_owned()),
                };
                Ok((reply, end))
            }
        },
        b'*' | b'~' | b'%' => match reply_len(line.text)? {
            -1 => simple(Reply::NilArray),
            n => {
                let (items, end) = items(parts(line.tag, n))?;
                let reply = match line.tag {
                    b'*' => Reply::Array(items),
                    b'~' => Reply::Set(items),
                    _ => {
                        let mut items = items.into_iter();
                        let mut pairs = Vec::with_capacity(items.len() / 2);
                        while let (Some(k), Some(v)) = (items.next(), items.next()) {
                            pairs.push((k, v));
                        }
                        Reply::Map(pairs)
                    }
                };
                Ok((reply, end))
            }
        },
        other => Err(format!("unexpected reply type {:?}", char::from(other))),
    }
}

impl From<String> for Reply {
    /// A `String` becomes an error reply: the common case for command code returning errors.
    fn from(error: String) -> Self {
        Reply::Error(Cow::Owned(error))
    }
}

impl From<&'static str> for Reply {
    fn from(error: &'static str) -> Self {
        Reply::Error(Cow::Borrowed(error))
    }
}

/// A double as Redis 7.0 replies with one (`addReplyDouble`: `%.17g`, `inf`, `-inf`).
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if d.is_nan() {
        return "nan".to_string();
    }
    // %.17g: 17 significant digits, exponent form when the exponent is below -4 or at least
    // 17, trailing zeros dropped.
    let sci = format!("{d:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |t: &str| -> String {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t.to_string()
        }
    };
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (16 - exp).max(0) as usize;
        trim(&format!("{d:.decimals$}"))
    }
}

fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.extend_from_slice(&[tag]);
    // A status or error line must not carry a line break: it would end the frame early.
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(&[tag]);
    out.extend_from_slice(digits.format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 16);
    int_line(out, b'$', data.len() as i64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Encodes a request as a RESP array of bulk strings (what clients and the proxy send).
pub fn encode_request<A: AsRef<[u8]>>(args: &[A], out: &mut BytesMut) {
    int_line(out, b'*', args.len() as i64);
    for a in args {
        bulk(out, a.as_ref());
    }
}

#[cfg(test)]
mod double_tests {
    use super::format_double;

    #[test]
    fn doubles_print_as_redis_7_0_prints_them() {
        // Each as `ZADD z <score> m` then `ZSCORE z m` in redis-server 7.0.15.
        for (d, text) in [
            (1.1, "1.1000000000000001"),
            (1.5, "1.5"),
            (3.0, "3"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e20, "1e+20"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(format_double(d), text, "{d}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut d = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(req) = d.decode(&mut buf)? {
            out.push(req);
        }
        Ok(out)
    }

    #[test]
    fn decodes_multibulk_and_inline() {
        let reqs =
            decode_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n\r\nset a \"b c\"\n").unwrap();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(reqs[1], vec![Bytes::from("PING")]);
        assert_eq!(reqs[2][2], Bytes::from("b c"));
    }

    #[test]
    fn decodes_byte_by_byte() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$0\r\n\r\n";
        let mut d = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(req) = d.decode(&mut buf).unwrap() {
                got = Some(req);
            }
        }
        assert_eq!(got.unwrap()[2], Bytes::new());
    }

    #[test]
    fn refuses_oversized_headers_before_buffering() {
        let mut d = RequestDecoder::new(Limits::default());
        let mut buf = BytesMut::from(&b"*1\r\n$4294967296\r\n"[..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err().to_string(),
            "Protocol error: invalid bulk length"
        );
        let err = decode_all(b"*99999999999\r\n").unwrap_err();
        assert_eq!(err.to_string(), "Protocol error: invalid multibulk length");
        let err = decode_all(b"*1\r\nfoo\r\n").unwrap_err();
        assert_eq!(err.to_string(), "Protocol error: expected '$', got 'f'");
        let err = decode_all(&vec![b'a'; 70 * 1024]).unwrap_err();
        assert_eq!(err.to_string(), "Protocol error: too big inline request");
        let err = decode_all(b"set a \"b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn inline_escapes_follow_sdssplitargs() {
        let args = split_inline_args(br#"a "\x41\n" 'it\'s' """#).unwrap();
        assert_eq!(
            args,
            vec![
                Bytes::from("a"),
                Bytes::from("A\n"),
                Bytes::from("it's"),
                Bytes::new()
            ]
        );
        assert!(split_inline_args(br#""a"b"#).is_none());
    }

    /// Found by the resp_decoder fuzz target: a line at the inline limit followed by CRLF was
    /// accepted in one read and refused when it arrived byte by byte.
    #[test]
    fn the_inline_limit_does_not_depend_on_how_bytes_arrive() {
        let limits = Limits {
            max_inline_len: 8,
            ..Limits::default()
        };
        for line in [&b"PING abc\r\n"[..], b"PING abcd\r\n"] {
            let whole = RequestDecoder::new(limits)
                .decode(&mut BytesMut::from(line))
                .is_ok();
            let mut d = RequestDecoder::new(limits);
            let mut buf = BytesMut::new();
            let mut bytewise = true;
            for &b in line {
                buf.extend_from_slice(&[b]);
                if d.decode(&mut buf).is_err() {
                    bytewise = false;
                    break;
                }
            }
            assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(line));
        }
    }

    /// Found by the resp_decoder fuzz target: a NUL byte made the splitter loop forever,
    /// pushing empty arguments until memory ran out.
    #[test]
    fn inline_nul_ends_the_line_like_a_c_string() {
        assert_eq!(
            split_inline_args(b"\x04\0\0\0").unwrap(),
            vec![Bytes::from_static(b"\x04")]
        );
        assert_eq!(
            split_inline_args(b"PING\0junk").unwrap(),
            vec![Bytes::from_static(b"PING")]
        );
        assert!(split_inline_args(b"\"a\0\"").is_none());
    }

    /// Every reply a shard sends, in either protocol, decodes to a reply that encodes back
    /// to the same bytes, whether it arrives whole or a byte at a time, and whether it is
    /// read or passed on as a frame (which reads only errors).
    #[test]
    fn replies_decode_to_what_encodes_them_again() {
        let replies = vec![
            Reply::ok(),
            Reply::status("QUEUED"),
            Reply::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            Reply::Int(-42),
            Reply::bulk(&b"a\r\nb"[..]),
            Reply::bulk(Bytes::new()),
            Reply::Nil,
            Reply::NilArray,
            Reply::Array(vec![]),
            Reply::Array(vec![
                Reply::Nil,
                Reply::Array(vec![Reply::Int(1), Reply::NilArray]),
            ]),
            Reply::Map(vec![
                (Reply::text("f"), Reply::text("v")),
                (Reply::text("g"), Reply::Nil),
            ]),
            Reply::Pairs(vec![(Reply::text("m"), Reply::Double(1.1))]),
            Reply::Set(vec![Reply::text("x"), Reply::text("y")]),
            Reply::Double(f64::NEG_INFINITY),
            Reply::DoubleText(Bytes::from_static(b"13.36138933897018433")),
            Reply::Bool(true),
            Reply::Bool(false),
            Reply::Verbatim(Bytes::from_static(b"# Server\r\nredis_version:7.0.15\r\n")),
        ];
        for proto in [Proto::Resp2, Proto::Resp3] {
            let mut wire = BytesMut::new();
            for r in &replies {
                r.encode(proto, &mut wire);
            }
            let expected = wire.clone();
            // Whole, then a byte at a time.
            for (step, frames) in [
                (wire.len(), false),
                (1, false),
                (wire.len(), true),
                (1, true),
            ] {
                let mut d = ReplyDecoder::default();
                let (mut buf, mut again) = (BytesMut::new(), BytesMut::new());
                let mut decoded = Vec::new();
                for chunk in wire.chunks(step) {
                    buf.extend_from_slice(chunk);
                    loop {
                        let reply = match frames {
                            true => d.decode_frame(&mut buf),
                            false => d.decode(&mut buf),
                        };
                        let Some(reply) = reply.unwrap() else { break };
                        reply.encode(proto, &mut again);
                        decoded.push(reply);
                    }
                }
                let case = format!("{proto:?}, step {step}, frames {frames}");
                assert_eq!(decoded.len(), replies.len(), "{case}");
                assert_eq!(again, expected, "{case}");
                assert!(buf.is_empty());
                for (got, sent) in decoded.iter().zip(&replies) {
                    assert_eq!(
                        matches!(got, Reply::Frame(_)),
                        frames && !sent.is_error(),
                        "{case}: {sent:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let deep = "*1\r\n".repeat(MAX_REPLY_DEPTH + 1) + ":1\r\n";
        for bad in [
            &b"?\r\n"[..],
            b"$-2\r\n",
            b"*x\r\n",
            b":1\n",
            b"~-1\r\n",
            b">1\r\n+a\r\n",
            b"|1\r\n+a\r\n+b\r\n",
            deep.as_bytes(),
        ] {
            let mut buf = BytesMut::from(bad);
            assert!(
                ReplyDecoder::default().decode(&mut buf).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Incomplete is not an error.
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nab"[..]);
        assert_eq!(ReplyDecoder::default().decode(&mut buf), Ok(None));
    }

    /// A reply built item by item encodes as the array, set or map of the same bulk strings.
    #[test]
    fn bulks_encode_as_the_aggregate_of_their_items() {
        let items = [&b"f"[..], b"", b"a\r\nb", b"v"];
        let bulk = |i: &[u8]| Reply::bulk(Bytes::copy_from_slice(i));
        for (shape, same) in [
            (
                Shape::Array,
                Reply::Array(items.iter().map(|i| bulk(i)).collect()),
            ),
            (
                Shape::Set,
                Reply::Set(items.iter().map(|i| bulk(i)).collect()),
            ),
            (
                Shape::Map,
                Reply::Map(items.chunks(2).map(|p| (bulk(p[0]), bulk(p[1]))).collect()),
            ),
        ] {
            let mut built = Bulks::new(shape);
            items.iter().for_each(|i| built.push(i));
            assert_eq!(built.len(), items.len());
            for proto in [Proto::Resp2, Proto::Resp3] {
                let (mut got, mut want) = (BytesMut::new(), BytesMut::new());
                Reply::Bulks(built.clone()).encode(proto, &mut got);
                same.encode(proto, &mut want);
                assert_eq!(got, want, "{shape:?} {proto:?}");
            }
        }
    }

    #[test]
    fn resp3_types_fold_to_resp2() {
        let reply = Reply::Map(vec![(Reply::text("a"), Reply::Bool(true))]);
        let mut out = BytesMut::new();
        reply.encode(Proto::Resp2, &mut out);
        assert_eq!(&out[..], b"*2\r\n$1\r\na\r\n:1\r\n");
        out.clear();
        reply.encode(Proto::Resp3, &mut out);
        assert_eq!(&out[..], b"%1\r\n$1\r\na\r\n#t\r\n");
    }
}
