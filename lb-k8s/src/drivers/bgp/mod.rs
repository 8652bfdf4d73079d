pub mod nexthop;
pub mod peer;
pub mod socket;
pub mod speaker;

pub use peer::{PeerHandle, PeerShared, PeerSpec, PeerStatus, Routes, StopReason};
pub use speaker::{Speaker, probe_local_address, routes_of, spec_of};
