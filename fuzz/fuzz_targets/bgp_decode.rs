//! Arbitrary bytes as a BGP byte stream: messages or errors (each with its
//! NOTIFICATION), never a panic; whatever decodes re-encodes to itself.
#![no_main]

use bytes::BytesMut;
use lb_bgp::wire::{Context, Framer, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = Context { four_octet_asn: true, extended_messages: data.first().is_some_and(|b| b & 1 == 1) };
    let mut framer = Framer::new();
    for chunk in data.chunks(37) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame(&ctx) {
            let Ok(frame) = frame.map_err(|e| e.notification()) else { return };
            match Message::decode(&frame, &ctx) {
                Ok(msg) => {
                    let mut out = BytesMut::new();
                    msg.encode(&ctx, &mut out);
                    assert_eq!(out.len(), msg.encoded_len(&ctx), "encoded_len is what encode writes");
                    assert_eq!(Message::decode(&out, &ctx).as_ref(), Ok(&msg));
                }
                Err(e) => {
                    let _ = e.notification();
                    return;
                }
            }
        }
    }
});
