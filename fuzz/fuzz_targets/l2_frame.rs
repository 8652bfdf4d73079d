//! Arbitrary bytes as an Ethernet frame: an ARP packet, an NS/NA, another
//! payload or an error, never a panic; an ARP or NDP frame emits to bytes
//! that parse to the same frame.
#![no_main]

use lb_arp::wire::{Frame, FrameBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::parse(data) else { return };
    if matches!(frame.body, FrameBody::Other(_)) {
        return;
    }
    let bytes = frame.emit();
    assert_eq!(bytes.len(), frame.buffer_len(), "buffer_len is what emit writes");
    assert_eq!(Frame::parse(&bytes), Ok(frame));
});
