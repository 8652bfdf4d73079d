//! BGP messages on the wire.
//!
//! A stream of bytes is cut into messages by [`header::Framer`]; each frame
//! is decoded with [`Message::decode`] in a [`Context`] that says what the
//! session negotiated (4-octet ASNs, extended messages).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           Marker (16 octets of 0xff)          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

pub mod consts;
pub mod error;
pub mod header;
pub mod notification;
pub mod open;
pub mod prefix;
pub mod route_refresh;
pub mod update;

use bytes::BytesMut;

pub use self::consts::{
    Afi, AsSegmentType, CeaseSubcode, ErrorCode, FsmSubcode, MessageHeaderSubcode, OpenSubcode, RouteRefreshSubcode,
    RouteRefreshSubtype, Safi, UpdateSubcode,
};
pub use self::error::DecodeError;
pub use self::header::{Framer, MessageType};
pub use self::notification::{Notification, NotificationError};
pub use self::open::Open;
pub use self::prefix::Prefix;
pub use self::route_refresh::RouteRefresh;
pub use self::update::{Update, UpdateError};

/// What the session negotiated, which changes how messages are read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// RFC 6793: AS numbers in AS_PATH and AGGREGATOR are 4 octets.
    pub four_octet_asn: bool,
    /// RFC 8654: messages other than OPEN and KEEPALIVE may be up to 65535 octets.
    pub extended_messages: bool,
}

impl Context {
    /// The largest message this session may send or receive of `kind`.
    pub fn max_message_len(&self, kind: MessageType) -> usize {
        match kind {
            MessageType::Open | MessageType::Keepalive => header::MAX_LEN,
            _ if self.extended_messages => header::MAX_EXTENDED_LEN,
            _ => header::MAX_LEN,
        }
    }
}

/// A BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    Open(Open),
    /// Boxed: an UPDATE's attributes are far larger than the other messages.
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Decodes one whole message (header included), as cut by [`Framer`].
    pub fn decode(frame: &[u8], ctx: &Context) -> Result<Message, DecodeError> {
        let (kind, body) = header::parse(frame, ctx)?;
        match kind {
            MessageType::Open => Open::decode(body).map(Message::Open),
            MessageType::Update => {
                Update::decode(body, ctx).map(|u| Message::Update(Box::new(u))).map_err(DecodeError::Update)
            }
            MessageType::Notification => Notification::decode(body).map(Message::Notification),
            MessageType::Keepalive => Ok(Message::Keepalive),
            MessageType::RouteRefresh => RouteRefresh::decode(body).map(Message::RouteRefresh),
        }
    }

    /// Octets [`Self::encode`] appends in `ctx`, header included.
    pub fn encoded_len(&self, ctx: &Context) -> usize {
        header::HEADER_LEN
            + match self {
                Message::Open(open) => open.encoded_len(),
                Message::Update(update) => update.encoded_len(ctx),
                Message::Notification(n) => 2 + n.data.len(),
                Message::Keepalive => 0,
                Message::RouteRefresh(_) => 4,
            }
    }

    /// Appends the whole message, header included.
    pub fn encode(&self, ctx: &Context, out: &mut BytesMut) {
        let start = header::begin(out, self.kind());
        match self {
            Message::Open(open) => open.encode(out),
            Message::Update(update) => update.encode(ctx, out),
            Message::Notification(n) => n.encode(out),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => r.encode(out),
        }
        header::finish(out, start);
        debug_assert!(out.len() - start <= ctx.max_message_len(self.kind()));
    }
}
