//! The datagram around every gossip message: a version, and with a shared
//! key an HMAC-SHA256 tag, so a speaker without the key can neither join
//! nor disturb the members (MetalLB's `memberlist` Secret plays this role).
//!
//! ```text
//! "lb" | version (1) | flags (bit 0: tagged) | foca message | tag (16, if tagged)
//! ```
//!
//! The tag covers everything before it. It authenticates, it does not
//! encrypt: claims and liveness are not secrets on the segment, where every
//! ARP reply tells the same. Replays within a run are harmless to SWIM
//! (stale incarnations and report generations are ignored).

use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAGIC: [u8; 2] = *b"lb";
const VERSION: u8 = 1;
const TAGGED: u8 = 1;
const HEADER_LEN: usize = 4;
/// HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows it; still far
/// beyond what an attacker on the segment can forge).
pub const TAG_LEN: usize = 16;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("shorter than the header")]
    Short,
    #[error("not a gossip datagram (magic)")]
    Magic,
    #[error("gossip version {0} not understood")]
    Version(u8),
    #[error("no authentication tag, and a key is configured")]
    Untagged,
    #[error("authentication tag does not verify")]
    BadTag,
    #[error("tagged, and no key is configured here")]
    NoKey,
}

/// The shared gossip key.
#[derive(Clone)]
pub struct GossipKey(Hmac<Sha256>);

impl std::fmt::Debug for GossipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GossipKey(..)")
    }
}

impl GossipKey {
    /// Any length works (HMAC hashes long keys); MetalLB's Secret holds
    /// 128 random bytes in base64, used here as they are.
    pub fn new(key: &[u8]) -> Self {
        Self(Hmac::new_from_slice(key).expect("HMAC takes keys of any length"))
    }
}

/// `message` in a datagram, tagged when there is a key.
pub fn seal(key: Option<&GossipKey>, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + message.len() + TAG_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(if key.is_some() { TAGGED } else { 0 });
    out.extend_from_slice(message);
    if let Some(key) = key {
        let mut mac = key.0.clone();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
    }
    out
}

/// The message in `datagram`, if it is one and verifies.
pub fn open<'a>(key: Option<&GossipKey>, datagram: &'a [u8]) -> Result<&'a [u8], EnvelopeError> {
    if datagram.len() < HEADER_LEN {
        return Err(EnvelopeError::Short);
    }
    if datagram[..2] != MAGIC {
        return Err(EnvelopeError::Magic);
    }
    if datagram[2] != VERSION {
        return Err(EnvelopeError::Version(datagram[2]));
    }
    let tagged = datagram[3] & TAGGED != 0;
    match (key, tagged) {
        (None, false) => Ok(&datagram[HEADER_LEN..]),
        (None, true) => Err(EnvelopeError::NoKey),
        (Some(_), false) => Err(EnvelopeError::Untagged),
        (Some(key), true) => {
            let Some(body_end) = datagram.len().checked_sub(TAG_LEN).filter(|&e| e >= HEADER_LEN) else {
                return Err(EnvelopeError::Short);
            };
            let mut mac = key.0.clone();
            mac.update(&datagram[..body_end]);
            mac.verify_truncated_left(&datagram[body_end..]).map_err(|_| EnvelopeError::BadTag)?;
            Ok(&datagram[HEADER_LEN..body_end])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_key_opens_a_sealed_message() {
        let key = GossipKey::new(b"secret");
        let sealed = seal(Some(&key), b"hello");
        assert_eq!(open(Some(&key), &sealed), Ok(&b"hello"[..]));
        assert_eq!(open(Some(&GossipKey::new(b"other")), &sealed), Err(EnvelopeError::BadTag));
        assert_eq!(open(None, &sealed), Err(EnvelopeError::NoKey));
        let plain = seal(None, b"hello");
        assert_eq!(open(None, &plain), Ok(&b"hello"[..]));
        assert_eq!(open(Some(&key), &plain), Err(EnvelopeError::Untagged));
        // Any bit flipped anywhere is refused.
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(open(Some(&key), &bad).is_err(), "flip at {i}");
        }
        assert_eq!(open(Some(&key), &sealed[..10]), Err(EnvelopeError::Short));
        assert_eq!(open(None, b"xx\x01\x00"), Err(EnvelopeError::Magic));
        assert_eq!(open(None, b"lb\x09\x00"), Err(EnvelopeError::Version(9)));
    }
}
