pub mod nexthop;
pub mod peer;
pub mod socket;
pub mod speaker;

pub use peer::{PeerHandle, PeerShared, PeerSpec, PeerStatus, Routes, StopReason};
pub use speaker::{Speaker, default_router_id, peer_spec, routes_of};
