//! The request decoder on arbitrary bytes, fed in arbitrary chunks, with small limits: it
//! must never panic, never hold more than the limits allow, and decode the same requests
//! whatever the chunking.
#![no_main]
use bytes::BytesMut;
use fjord_common::{Limits, RequestDecoder};
use libfuzzer_sys::fuzz_target;

fn decode(data: &[u8], chunk: usize) -> (Vec<Vec<bytes::Bytes>>, bool) {
    let limits = Limits { max_bulk_len: 4096, max_array_len: 64, max_inline_len: 1024 };
    let mut d = RequestDecoder::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(part);
        loop {
            match d.decode(&mut buf) {
                Ok(Some(req)) => {
                    // Multibulk requests are bounded by max_array_len; inline ones, as in Redis,
                    // only by the line length.
                    assert!(req.len() <= 64 || req.iter().map(|a| a.len() + 1).sum::<usize>() <= 1024);
                    assert!(req.iter().all(|a| a.len() <= 4096));
                    out.push(req);
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
        assert!(d.held_bytes() <= 64 * (4096 + 64) + 64 * 1024);
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let chunk = usize::from(data[0]) % 17 + 1;
    let whole = decode(&data[1..], data.len());
    let chunked = decode(&data[1..], chunk);
    assert_eq!(whole, chunked, "chunking changed the result");
    let _ = fjord_common::resp::split_inline_args(data);
});
