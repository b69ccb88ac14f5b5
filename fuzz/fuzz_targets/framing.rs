//! A byte stream cut into arbitrary pieces frames into the same messages as the whole stream.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sip_message::{Frame, StreamDecoder};

/// Decodes `chunks` in order; returns each frame's bytes and whether decoding ended in error.
fn frames(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut decoder = StreamDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for c in chunks {
        buf.extend_from_slice(c);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(Frame::Message(m))) => out.push(m.to_bytes().to_vec()),
                Ok(Some(Frame::Ping)) => out.push(b"ping".to_vec()),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let step = usize::from(cut % 64) + 1;
    let chunks: Vec<&[u8]> = stream.chunks(step).collect();
    let (whole, whole_err) = frames(&[stream]);
    let (pieces, pieces_err) = frames(&chunks);
    if !whole_err && !pieces_err {
        assert_eq!(whole, pieces);
    } else {
        // An error may surface at a different frame, but the frames before it agree.
        let n = whole.len().min(pieces.len());
        assert_eq!(whole[..n], pieces[..n]);
    }
});
