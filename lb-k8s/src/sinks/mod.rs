//! Where results go: the state file, `/status`, `/metrics` and the
//! announcement log. Sinks read [`crate::view`] values; they decide nothing.

pub mod announcements;
pub mod configuration_state;
pub mod events;
pub mod http;
pub mod metrics;
pub mod state;
pub mod status;
