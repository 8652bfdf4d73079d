//! Decode errors, each with the NOTIFICATION RFC 4271 §6 prescribes.

use super::consts::{MessageHeaderSubcode as Header, OpenSubcode as OpenSub, RouteRefreshSubcode};
use super::notification::{Notification, NotificationError as E};
use super::update::UpdateError;

/// Why received bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The 16-octet marker is not all ones: the stream lost its framing.
    #[error("message header marker is not all ones")]
    NotSynchronized,
    /// The length field is impossible for the message type.
    #[error("bad message length {len} for message type {kind}")]
    BadLength { len: u16, kind: u8 },
    /// A message type this speaker does not know.
    #[error("unknown message type {0}")]
    BadType(u8),
    /// OPEN with a version other than 4.
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    /// OPEN with a BGP identifier of 0.0.0.0 (RFC 6286).
    #[error("bad BGP identifier 0.0.0.0")]
    BadBgpIdentifier,
    /// OPEN with an optional parameter other than capabilities (RFC 5492).
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    /// OPEN with a hold time of 1 or 2 seconds.
    #[error("unacceptable hold time {0}s (0 or at least 3)")]
    UnacceptableHoldTime(u16),
    /// OPEN whose parameter or capability lengths do not add up.
    #[error("malformed OPEN optional parameters")]
    MalformedOpen,
    /// ROUTE-REFRESH whose length is not 23 (RFC 7313).
    #[error("bad ROUTE-REFRESH length {0}")]
    BadRouteRefreshLength(u16),
    /// An UPDATE error; most void only that UPDATE (RFC 7606).
    #[error(transparent)]
    Update(UpdateError),
}

impl DecodeError {
    /// Whether the session must be reset (NOTIFICATION, then close). Only
    /// UPDATE attribute errors leave it up: RFC 7606 voids that UPDATE alone.
    pub fn resets_session(&self) -> bool {
        match self {
            DecodeError::Update(e) => e.resets_session(),
            _ => true,
        }
    }

    /// The NOTIFICATION to send before closing the session.
    pub fn notification(&self) -> Notification {
        let (error, data) = match *self {
            DecodeError::Update(ref e) => return e.notification(),
            DecodeError::NotSynchronized => (E::MessageHeader(Header::ConnectionNotSynchronized), vec![]),
            DecodeError::BadLength { len, .. } => {
                (E::MessageHeader(Header::BadMessageLength), len.to_be_bytes().to_vec())
            }
            DecodeError::BadType(t) => (E::MessageHeader(Header::BadMessageType), vec![t]),
            // The data is the largest version we support.
            DecodeError::UnsupportedVersion(_) => {
                (E::Open(OpenSub::UnsupportedVersionNumber), 4u16.to_be_bytes().to_vec())
            }
            DecodeError::BadBgpIdentifier => (E::Open(OpenSub::BadBgpIdentifier), vec![]),
            DecodeError::UnsupportedOptionalParameter(_) => (E::Open(OpenSub::UnsupportedOptionalParameter), vec![]),
            DecodeError::UnacceptableHoldTime(_) => (E::Open(OpenSub::UnacceptableHoldTime), vec![]),
            DecodeError::MalformedOpen => (E::Open(OpenSub::Unspecific), vec![]),
            DecodeError::BadRouteRefreshLength(len) => {
                (E::RouteRefresh(RouteRefreshSubcode::InvalidMessageLength), len.to_be_bytes().to_vec())
            }
        };
        Notification::with_data(error, data)
    }
}
