//! The state file of `lb standalone`: the assignments, kept across
//! restarts as a cluster keeps them in Service status.
//!
//! `{"namespace/name": ["ip", ...]}`, rewritten atomically on every change.
//! A missing or unreadable file is an empty state (logged), never a reason
//! not to start.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use lb_core::ServiceKey;
use tracing::{error, warn};

/// The assignments of the last run, by `namespace/name`.
pub fn read(path: &Path) -> BTreeMap<String, Vec<IpAddr>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            error!(event = "stateIgnored", path = %path.display(), error = %e, "state file unreadable; starting afresh");
            BTreeMap::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            warn!(event = "stateIgnored", path = %path.display(), error = %e, "state file unreadable; starting afresh");
            BTreeMap::new()
        }
    }
}

/// Writes the state beside its final place and renames it over, so a crash
/// never leaves half a file.
pub fn write(path: &Path, assignments: &BTreeMap<ServiceKey, Vec<IpAddr>>) -> std::io::Result<()> {
    let map: BTreeMap<&str, &Vec<IpAddr>> = assignments.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let text = serde_json::to_string_pretty(&map).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    // On disk before the rename, and the rename on disk before going on:
    // after a crash the file is the old state or the new one, never empty.
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
