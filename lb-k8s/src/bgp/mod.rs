pub mod nexthop;
pub mod peer;
pub mod socket;
pub mod speaker;

pub use peer::{PeerHandle, PeerShared, PeerSpec, PeerStatus, Routes};
pub use speaker::{Speaker, peer_spec, routes_of};
