//! Where the observed world comes from: files today (`lb standalone`,
//! `lb plan`), the Kubernetes API next. A source produces whole snapshots;
//! it decides nothing about them.

pub mod cluster;
pub mod files;
pub mod watch;
