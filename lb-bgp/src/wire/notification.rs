//! NOTIFICATION (RFC 4271 §4.5), with the shutdown communication of RFC 9003.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::DecodeError;
use super::consts::{
    CeaseSubcode, ErrorCode, FsmSubcode, MessageHeaderSubcode, OpenSubcode, RouteRefreshSubcode, UpdateSubcode,
};

/// RFC 9003 caps the shutdown communication at 255 octets of UTF-8.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

/// A NOTIFICATION's error code with its subcode, typed by the code the
/// subcode belongs to (a subcode's meaning depends on its code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotificationError {
    MessageHeader(MessageHeaderSubcode),
    Open(OpenSubcode),
    Update(UpdateSubcode),
    /// RFC 4271 defines no subcode for it (0); another is kept as it came.
    HoldTimerExpired(u8),
    Fsm(FsmSubcode),
    Cease(CeaseSubcode),
    RouteRefresh(RouteRefreshSubcode),
    /// An error code without a name here.
    Unknown {
        code: u8,
        subcode: u8,
    },
}

impl NotificationError {
    /// From the two octets on the wire.
    pub fn from_codes(code: u8, subcode: u8) -> Self {
        match ErrorCode::from(code) {
            ErrorCode::MessageHeader => Self::MessageHeader(subcode.into()),
            ErrorCode::OpenMessage => Self::Open(subcode.into()),
            ErrorCode::UpdateMessage => Self::Update(subcode.into()),
            ErrorCode::HoldTimerExpired => Self::HoldTimerExpired(subcode),
            ErrorCode::FiniteStateMachine => Self::Fsm(subcode.into()),
            ErrorCode::Cease => Self::Cease(subcode.into()),
            ErrorCode::RouteRefreshMessage => Self::RouteRefresh(subcode.into()),
            ErrorCode::Unknown(_) => Self::Unknown { code, subcode },
        }
    }

    pub fn code(&self) -> ErrorCode {
        match *self {
            Self::MessageHeader(_) => ErrorCode::MessageHeader,
            Self::Open(_) => ErrorCode::OpenMessage,
            Self::Update(_) => ErrorCode::UpdateMessage,
            Self::HoldTimerExpired(_) => ErrorCode::HoldTimerExpired,
            Self::Fsm(_) => ErrorCode::FiniteStateMachine,
            Self::Cease(_) => ErrorCode::Cease,
            Self::RouteRefresh(_) => ErrorCode::RouteRefreshMessage,
            Self::Unknown { code, .. } => ErrorCode::from(code),
        }
    }

    /// The subcode octet.
    pub fn subcode(&self) -> u8 {
        match *self {
            Self::MessageHeader(s) => s.into(),
            Self::Open(s) => s.into(),
            Self::Update(s) => s.into(),
            Self::HoldTimerExpired(s) => s,
            Self::Fsm(s) => s.into(),
            Self::Cease(s) => s.into(),
            Self::RouteRefresh(s) => s.into(),
            Self::Unknown { subcode, .. } => subcode,
        }
    }

    /// The subcode's name from the RFCs, when it has one (and is not 0).
    fn subcode_name(&self) -> Option<&'static str> {
        use CeaseSubcode as C;
        Some(match *self {
            Self::MessageHeader(MessageHeaderSubcode::ConnectionNotSynchronized) => "Connection Not Synchronized",
            Self::MessageHeader(MessageHeaderSubcode::BadMessageLength) => "Bad Message Length",
            Self::MessageHeader(MessageHeaderSubcode::BadMessageType) => "Bad Message Type",
            Self::Open(OpenSubcode::UnsupportedVersionNumber) => "Unsupported Version Number",
            Self::Open(OpenSubcode::BadPeerAs) => "Bad Peer AS",
            Self::Open(OpenSubcode::BadBgpIdentifier) => "Bad BGP Identifier",
            Self::Open(OpenSubcode::UnsupportedOptionalParameter) => "Unsupported Optional Parameter",
            Self::Open(OpenSubcode::UnacceptableHoldTime) => "Unacceptable Hold Time",
            Self::Open(OpenSubcode::UnsupportedCapability) => "Unsupported Capability",
            Self::Update(UpdateSubcode::MalformedAttributeList) => "Malformed Attribute List",
            Self::Update(UpdateSubcode::UnrecognizedWellKnownAttribute) => "Unrecognized Well-known Attribute",
            Self::Update(UpdateSubcode::MissingWellKnownAttribute) => "Missing Well-known Attribute",
            Self::Update(UpdateSubcode::AttributeFlagsError) => "Attribute Flags Error",
            Self::Update(UpdateSubcode::AttributeLengthError) => "Attribute Length Error",
            Self::Update(UpdateSubcode::InvalidOriginAttribute) => "Invalid ORIGIN Attribute",
            Self::Update(UpdateSubcode::InvalidNextHopAttribute) => "Invalid NEXT_HOP Attribute",
            Self::Update(UpdateSubcode::OptionalAttributeError) => "Optional Attribute Error",
            Self::Update(UpdateSubcode::InvalidNetworkField) => "Invalid Network Field",
            Self::Update(UpdateSubcode::MalformedAsPath) => "Malformed AS_PATH",
            Self::Fsm(FsmSubcode::UnexpectedMessageInOpenSent) => "Receive Unexpected Message in OpenSent State",
            Self::Fsm(FsmSubcode::UnexpectedMessageInOpenConfirm) => "Receive Unexpected Message in OpenConfirm State",
            Self::Fsm(FsmSubcode::UnexpectedMessageInEstablished) => "Receive Unexpected Message in Established State",
            Self::Cease(C::MaximumPrefixesReached) => "Maximum Number of Prefixes Reached",
            Self::Cease(C::AdministrativeShutdown) => "Administrative Shutdown",
            Self::Cease(C::PeerDeconfigured) => "Peer De-configured",
            Self::Cease(C::AdministrativeReset) => "Administrative Reset",
            Self::Cease(C::ConnectionRejected) => "Connection Rejected",
            Self::Cease(C::OtherConfigurationChange) => "Other Configuration Change",
            Self::Cease(C::ConnectionCollisionResolution) => "Connection Collision Resolution",
            Self::Cease(C::OutOfResources) => "Out of Resources",
            Self::Cease(C::HardReset) => "Hard Reset",
            Self::Cease(C::BfdDown) => "BFD Down",
            Self::RouteRefresh(RouteRefreshSubcode::InvalidMessageLength) => "Invalid Message Length",
            _ => return None,
        })
    }
}

/// A NOTIFICATION: why the sender is closing the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub error: NotificationError,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(error: NotificationError) -> Self {
        Self { error, data: Vec::new() }
    }

    /// With the data field the error calls for.
    pub fn with_data(error: NotificationError, data: Vec<u8>) -> Self {
        Self { error, data }
    }

    /// A Cease with `subcode` (RFC 4486): Peer De-configured for a peer
    /// removed from the configuration, Connection Collision Resolution
    /// for the loser of a collision, and so on.
    pub fn cease(subcode: CeaseSubcode) -> Self {
        Self::new(NotificationError::Cease(subcode))
    }

    /// A Finite State Machine Error (RFC 6608).
    pub fn fsm(subcode: FsmSubcode) -> Self {
        Self::new(NotificationError::Fsm(subcode))
    }

    /// An OPEN Message Error.
    pub fn open(subcode: OpenSubcode) -> Self {
        Self::new(NotificationError::Open(subcode))
    }

    /// Hold Timer Expired.
    pub fn hold_timer_expired() -> Self {
        Self::new(NotificationError::HoldTimerExpired(0))
    }

    pub fn code(&self) -> ErrorCode {
        self.error.code()
    }

    /// The subcode octet; [`Self::error`] has it typed.
    pub fn subcode(&self) -> u8 {
        self.error.subcode()
    }

    pub fn error(&self) -> NotificationError {
        self.error
    }

    /// The Cease subcode, if this is a Cease.
    pub fn cease_subcode(&self) -> Option<CeaseSubcode> {
        match self.error {
            NotificationError::Cease(s) => Some(s),
            _ => None,
        }
    }

    /// Cease / Administrative Shutdown, with an optional message for the
    /// peer's operator (RFC 9003), cut to 255 octets at a character boundary.
    pub fn shutdown(message: &str) -> Self {
        let mut end = message.len().min(MAX_SHUTDOWN_MESSAGE);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        if end > 0 {
            data.push(end as u8);
            data.extend_from_slice(&message.as_bytes()[..end]);
        }
        Self { error: NotificationError::Cease(CeaseSubcode::AdministrativeShutdown), data }
    }

    /// The RFC 9003 message of a Cease / Administrative Shutdown or Reset,
    /// if it carries a well-formed one.
    pub fn shutdown_message(&self) -> Option<&str> {
        let is_shutdown = matches!(
            self.cease_subcode(),
            Some(CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset)
        );
        let (&len, rest) = self.data.split_first().filter(|_| is_shutdown)?;
        rest.get(..usize::from(len)).and_then(|text| std::str::from_utf8(text).ok())
    }

    /// Decodes the message body (after the header).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match body {
            [code, subcode, data @ ..] => {
                Ok(Self { error: NotificationError::from_codes(*code, *subcode), data: data.to_vec() })
            }
            // The header checks lengths; a short body is a bad length all the same.
            _ => Err(DecodeError::BadLength { len: (19 + body.len()) as u16, kind: 3 }),
        }
    }

    /// Appends the message body.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.code().into());
        out.put_u8(self.subcode());
        out.put_slice(&self.data);
    }
}

impl fmt::Display for Notification {
    /// `Cease / Administrative Shutdown ("maintenance")`, names from the RFCs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.code() {
            ErrorCode::MessageHeader => "Message Header Error",
            ErrorCode::OpenMessage => "OPEN Message Error",
            ErrorCode::UpdateMessage => "UPDATE Message Error",
            ErrorCode::HoldTimerExpired => "Hold Timer Expired",
            ErrorCode::FiniteStateMachine => "Finite State Machine Error",
            ErrorCode::Cease => "Cease",
            ErrorCode::RouteRefreshMessage => "ROUTE-REFRESH Message Error",
            _ => "Unknown Error",
        };
        match self.error.subcode_name() {
            Some(sub) => write!(f, "{name} / {sub}")?,
            None if self.subcode() == 0 => f.write_str(name)?,
            None => write!(f, "{name} / subcode {}", self.subcode())?,
        }
        if let Some(message) = self.shutdown_message() {
            write!(f, " ({message:?})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_communication_round_trips() {
        let n = Notification::shutdown("maintenance window");
        assert_eq!(n.data[0], 18);
        assert_eq!(n.shutdown_message(), Some("maintenance window"));
        assert_eq!(n.to_string(), "Cease / Administrative Shutdown (\"maintenance window\")");
        let mut out = BytesMut::new();
        n.encode(&mut out);
        assert_eq!(Notification::decode(&out), Ok(n));
    }

    #[test]
    fn long_messages_are_cut_at_a_character() {
        let n = Notification::shutdown(&"é".repeat(200));
        assert_eq!(n.data[0], 254);
        assert_eq!(n.shutdown_message().map(str::len), Some(254));
        assert!(Notification::shutdown("").data.is_empty());
    }

    #[test]
    fn malformed_shutdown_data_is_ignored() {
        let n = Notification::with_data(NotificationError::Cease(CeaseSubcode::AdministrativeShutdown), vec![9, b'a']);
        assert_eq!(n.shutdown_message(), None);
        assert_eq!(n.to_string(), "Cease / Administrative Shutdown");
        assert!(Notification::decode(&[6]).is_err());
        assert_eq!(Notification::hold_timer_expired().to_string(), "Hold Timer Expired");
        assert_eq!(Notification::fsm(FsmSubcode::Unknown(9)).to_string(), "Finite State Machine Error / subcode 9");
        // Unknown codes and subcodes come back as they came.
        for (code, subcode) in [(9, 3), (6, 42), (4, 1), (5, 2)] {
            let mut out = BytesMut::new();
            Notification::new(NotificationError::from_codes(code, subcode)).encode(&mut out);
            assert_eq!(out.as_ref(), [code, subcode]);
            assert_eq!(Notification::decode(&out).map(|n| (u8::from(n.code()), n.subcode())), Ok((code, subcode)));
        }
    }
}
