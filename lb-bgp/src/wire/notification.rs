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

/// Error codes (RFC 4271 §4.5, RFC 7313).
pub mod code {
    pub const HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Error subcodes, by the code they belong to.
pub mod subcode {
    pub const UNSPECIFIC: u8 = 0;
    // Message header error.
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
    // OPEN message error.
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    // Cease (RFC 4486, RFC 8538).
    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    // ROUTE-REFRESH message error (RFC 7313).
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// RFC 9003 caps the shutdown communication at 255 octets of UTF-8.
pub const MAX_SHUTDOWN_MESSAGE: usize = 255;

/// A NOTIFICATION: why the sender is closing the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8) -> Self {
        Self { code, subcode, data: Vec::new() }
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
        Self { code: code::CEASE, subcode: subcode::ADMINISTRATIVE_SHUTDOWN, data }
    }

    /// The RFC 9003 message of a Cease / Administrative Shutdown or Reset,
    /// if it carries a well-formed one.
    pub fn shutdown_message(&self) -> Option<&str> {
        let is_shutdown = self.code == code::CEASE
            && matches!(self.subcode, subcode::ADMINISTRATIVE_SHUTDOWN | subcode::ADMINISTRATIVE_RESET);
        let (&len, rest) = self.data.split_first().filter(|_| is_shutdown)?;
        rest.get(..usize::from(len)).and_then(|text| std::str::from_utf8(text).ok())
    }

    /// Decodes the message body (after the header).
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        match body {
            [code, subcode, data @ ..] => Ok(Self { code: *code, subcode: *subcode, data: data.to_vec() }),
            // The header checks lengths; a short body is a bad length all the same.
            _ => Err(DecodeError::BadLength { len: (19 + body.len()) as u16, kind: 3 }),
        }
    }

    /// Appends the message body.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }
}

impl fmt::Display for Notification {
    /// `Cease / Administrative Shutdown ("maintenance")`, names from the RFCs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.code {
            code::HEADER => "Message Header Error",
            code::OPEN => "OPEN Message Error",
            code::UPDATE => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            _ => "Unknown Error",
        };
        let sub = match (self.code, self.subcode) {
            (_, subcode::UNSPECIFIC) => None,
            (code::HEADER, subcode::CONNECTION_NOT_SYNCHRONIZED) => Some("Connection Not Synchronized"),
            (code::HEADER, subcode::BAD_MESSAGE_LENGTH) => Some("Bad Message Length"),
            (code::HEADER, subcode::BAD_MESSAGE_TYPE) => Some("Bad Message Type"),
            (code::OPEN, subcode::UNSUPPORTED_VERSION) => Some("Unsupported Version Number"),
            (code::OPEN, subcode::BAD_PEER_AS) => Some("Bad Peer AS"),
            (code::OPEN, subcode::BAD_BGP_IDENTIFIER) => Some("Bad BGP Identifier"),
            (code::OPEN, subcode::UNSUPPORTED_OPTIONAL_PARAMETER) => Some("Unsupported Optional Parameter"),
            (code::OPEN, subcode::UNACCEPTABLE_HOLD_TIME) => Some("Unacceptable Hold Time"),
            (code::OPEN, subcode::UNSUPPORTED_CAPABILITY) => Some("Unsupported Capability"),
            (code::CEASE, subcode::MAX_PREFIXES) => Some("Maximum Number of Prefixes Reached"),
            (code::CEASE, subcode::ADMINISTRATIVE_SHUTDOWN) => Some("Administrative Shutdown"),
            (code::CEASE, subcode::PEER_DECONFIGURED) => Some("Peer De-configured"),
            (code::CEASE, subcode::ADMINISTRATIVE_RESET) => Some("Administrative Reset"),
            (code::CEASE, subcode::CONNECTION_REJECTED) => Some("Connection Rejected"),
            (code::CEASE, subcode::OTHER_CONFIGURATION_CHANGE) => Some("Other Configuration Change"),
            (code::CEASE, subcode::CONNECTION_COLLISION_RESOLUTION) => Some("Connection Collision Resolution"),
            (code::CEASE, subcode::OUT_OF_RESOURCES) => Some("Out of Resources"),
            (code::CEASE, subcode::HARD_RESET) => Some("Hard Reset"),
            (code::ROUTE_REFRESH, subcode::INVALID_MESSAGE_LENGTH) => Some("Invalid Message Length"),
            _ => None,
        };
        match sub {
            Some(sub) => write!(f, "{name} / {sub}")?,
            None if self.subcode == subcode::UNSPECIFIC => f.write_str(name)?,
            None => write!(f, "{name} / subcode {}", self.subcode)?,
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
        let n = Notification { code: code::CEASE, subcode: subcode::ADMINISTRATIVE_SHUTDOWN, data: vec![9, b'a'] };
        assert_eq!(n.shutdown_message(), None);
        assert_eq!(n.to_string(), "Cease / Administrative Shutdown");
        assert!(Notification::decode(&[6]).is_err());
        assert_eq!(Notification::new(4, 0).to_string(), "Hold Timer Expired");
    }
}
