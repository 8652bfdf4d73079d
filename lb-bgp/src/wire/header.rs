//! The message header and framing of a byte stream into messages.
//!
//! Length limits (RFC 4271 §6.1, RFC 8654): every message is at least 19
//! octets and at most 4096 (65535 for UPDATE, NOTIFICATION and
//! ROUTE-REFRESH once extended messages are negotiated); OPEN is at least
//! 29, UPDATE at least 23, NOTIFICATION at least 21, KEEPALIVE exactly 19
//! and ROUTE-REFRESH exactly 23.

use bytes::{Buf, BufMut, BytesMut};

use super::{Context, DecodeError};

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
pub const MAX_LEN: usize = 4096;
pub const MAX_EXTENDED_LEN: usize = 65535;

/// The message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }

    /// The shortest and longest a message of this type may be.
    fn length_range(self, ctx: &Context) -> (usize, usize) {
        let max = ctx.max_message_len(self);
        match self {
            MessageType::Open => (29, max),
            MessageType::Update => (23, max),
            MessageType::Notification => (21, max),
            MessageType::Keepalive => (HEADER_LEN, HEADER_LEN),
            MessageType::RouteRefresh => (23, 23),
        }
    }
}

/// Checks a header (the first 19 octets) and returns the message's type
/// and total length.
pub fn check(header: &[u8; HEADER_LEN], ctx: &Context) -> Result<(MessageType, usize), DecodeError> {
    if header[..16] != MARKER {
        return Err(DecodeError::NotSynchronized);
    }
    let len = u16::from_be_bytes([header[16], header[17]]);
    let kind = MessageType::from_u8(header[18]).ok_or(DecodeError::BadType(header[18]))?;
    let (min, max) = kind.length_range(ctx);
    if !(min..=max).contains(&usize::from(len)) {
        // RFC 7313: a bad ROUTE-REFRESH length has its own error code.
        if kind == MessageType::RouteRefresh && usize::from(len) >= HEADER_LEN && usize::from(len) <= max.max(MAX_LEN) {
            return Err(DecodeError::BadRouteRefreshLength(len));
        }
        return Err(DecodeError::BadLength { len, kind: header[18] });
    }
    Ok((kind, usize::from(len)))
}

/// Checks a whole message and returns its type and body.
pub fn parse<'a>(frame: &'a [u8], ctx: &Context) -> Result<(MessageType, &'a [u8]), DecodeError> {
    let header: &[u8; HEADER_LEN] = frame
        .first_chunk()
        .ok_or(DecodeError::BadLength { len: frame.len().min(usize::from(u16::MAX)) as u16, kind: 0 })?;
    let (kind, len) = check(header, ctx)?;
    if frame.len() != len {
        return Err(DecodeError::BadLength { len: len as u16, kind: kind as u8 });
    }
    Ok((kind, &frame[HEADER_LEN..]))
}

/// The type and total length of the message `buf` begins with, read and
/// checked from its header as any received header is (with the largest
/// limits a session may negotiate); `None` if fewer than 19 octets are
/// there or they are not a valid header.
pub fn peek(buf: &[u8]) -> Option<(MessageType, usize)> {
    let widest = Context { four_octet_asn: true, extended_messages: true };
    check(buf.first_chunk()?, &widest).ok()
}

/// Where a driver may cut an output buffer of whole messages of which
/// `out[..written]` is already written: the end of the message being
/// written (or `written` itself, at a boundary). What lies beyond was not
/// begun and may be dropped (a closing connection) without cutting a
/// message in half; [`crate::session::Session::take_back_unsent`] then takes
/// it back out of the sent counts.
pub fn message_end(out: &[u8], written: usize) -> usize {
    let mut end = 0;
    while end < written.min(out.len()) {
        match peek(&out[end..]) {
            Some((_, len)) => end += len,
            // Not whole messages after all: nothing can be cut safely.
            None => return out.len(),
        }
    }
    end.min(out.len())
}

/// The whole messages at the start of `buf`, by type and length, as
/// [`peek`] reads them; stops at the first that is not whole.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = (MessageType, usize)> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (kind, len) = peek(&buf[at..]).filter(|(_, len)| at + len <= buf.len())?;
        at += len;
        Some((kind, len))
    })
}

/// Starts a message in `out`; returns where it starts, for [`finish`].
pub fn begin(out: &mut BytesMut, kind: MessageType) -> usize {
    let start = out.len();
    out.put_slice(&MARKER);
    out.put_u16(0);
    out.put_u8(kind as u8);
    start
}

/// Writes the length of the message started at `start`.
pub fn finish(out: &mut BytesMut, start: usize) {
    let len = (out.len() - start) as u16;
    out[start + 16..start + 18].copy_from_slice(&len.to_be_bytes());
}

/// Cuts a TCP byte stream into whole messages: partial reads are kept
/// until complete, several messages in one read come out one by one.
/// After an error the stream cannot be resynchronised: the session must
/// send the error's NOTIFICATION and close.
#[derive(Debug, Default)]
pub struct Framer {
    buf: BytesMut,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Octets received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, header included; `None` until one is complete.
    /// A bad header is reported as soon as its 19 octets are in.
    #[must_use]
    pub fn next_frame(&mut self, ctx: &Context) -> Option<Result<BytesMut, DecodeError>> {
        let header: &[u8; HEADER_LEN] = self.buf.first_chunk()?;
        let (_, len) = match check(header, ctx) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        (self.buf.len() >= len).then(|| Ok(self.buf.split_to(len)))
    }

    /// Drops everything buffered (after an error, or when the connection closes).
    pub fn clear(&mut self) {
        self.buf.advance(self.buf.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keepalive() -> Vec<u8> {
        let mut m = MARKER.to_vec();
        m.extend_from_slice(&[0, 19, 4]);
        m
    }

    #[test]
    fn frames_survive_any_split() {
        let stream: Vec<u8> = [keepalive(), keepalive(), keepalive()].concat();
        for cut in 0..stream.len() {
            let mut f = Framer::new();
            let mut frames = 0;
            for chunk in [&stream[..cut], &stream[cut..]] {
                f.push(chunk);
                while let Some(frame) = f.next_frame(&Context::default()) {
                    assert_eq!(frame.expect("valid").as_ref(), keepalive().as_slice());
                    frames += 1;
                }
            }
            assert_eq!((frames, f.buffered()), (3, 0), "cut at {cut}");
        }
    }

    #[test]
    fn header_errors() {
        let ctx = Context::default();
        let mut bad = keepalive();
        bad[3] = 0;
        assert_eq!(parse(&bad, &ctx), Err(DecodeError::NotSynchronized));
        let mut long_keepalive = keepalive();
        long_keepalive[17] = 20;
        long_keepalive.push(0);
        assert_eq!(parse(&long_keepalive, &ctx), Err(DecodeError::BadLength { len: 20, kind: 4 }));
        let mut unknown = keepalive();
        unknown[18] = 9;
        assert_eq!(parse(&unknown, &ctx), Err(DecodeError::BadType(9)));
        let mut huge = keepalive();
        huge[18] = 2;
        huge[16..18].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(check(huge.first_chunk().expect("19"), &ctx), Err(DecodeError::BadLength { len: 5000, kind: 2 }));
        let extended = Context { extended_messages: true, ..ctx };
        assert!(check(huge.first_chunk().expect("19"), &extended).is_ok());
        assert!(parse(&keepalive()[..10], &ctx).is_err());
    }

    fn message(kind: u8, len: u16) -> Vec<u8> {
        let mut m = MARKER.to_vec();
        m.extend_from_slice(&len.to_be_bytes());
        m.push(kind);
        m.resize(usize::from(len), 0);
        m
    }

    #[test]
    fn output_is_cut_at_the_end_of_the_message_being_written() {
        let out: Vec<u8> = [message(4, 19), message(2, 30), message(3, 25)].concat();
        assert_eq!(message_end(&out, 0), 0, "nothing begun: nothing kept");
        assert_eq!(message_end(&out, 5), 19, "the first message is finished");
        assert_eq!(message_end(&out, 19), 19);
        assert_eq!(message_end(&out, 20), 49);
        assert_eq!(message_end(&out, 74), 74);
        assert_eq!(message_end(&out, 100), 74);
        let kinds: Vec<_> = messages(&out[19..]).collect();
        assert_eq!(kinds, [(MessageType::Update, 30), (MessageType::Notification, 25)]);
        assert_eq!(messages(&out[..40]).count(), 1, "a partial message is not counted");
    }

    #[test]
    fn the_framer_reports_a_bad_header_before_the_body_arrives() {
        let mut f = Framer::new();
        let mut header = keepalive();
        header[16..18].copy_from_slice(&3u16.to_be_bytes());
        f.push(&header);
        assert_eq!(f.next_frame(&Context::default()), Some(Err(DecodeError::BadLength { len: 3, kind: 4 })));
    }
}
