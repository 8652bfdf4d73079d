//! Files as the source of truth, for running without Kubernetes: MetalLB
//! configuration, Service, Node and EndpointSlice manifests, read together
//! into one [`Snapshot`], and a [`Watcher`] that says when any of them
//! changed.
//!
//! A snapshot is all or nothing: if any file is unreadable or invalid, the
//! caller gets every error and keeps the state it has.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lb_core::config::{self, Config, ConfigError};
use lb_core::endpoints::{EndpointSlice, Endpoints};
use lb_core::manifest::{self, ManifestError};
use lb_core::{Namespace, Node, Service};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde_json::Value;
use tokio::io::unix::AsyncFd;
use tracing::warn;

use crate::bgp::speaker::Secrets;

/// The files to read.
#[derive(Debug, Clone, Default)]
pub struct FileSources {
    /// MetalLB configuration (and Secrets for `passwordSecret`).
    pub config: Vec<PathBuf>,
    pub services: Vec<PathBuf>,
    pub nodes: Vec<PathBuf>,
    /// Without any, every Service counts as served on every node.
    pub endpoints: Vec<PathBuf>,
    /// Namespace labels, for `serviceAllocation.namespaceSelectors`.
    pub namespaces: Vec<PathBuf>,
}

/// Everything read from the files at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub config: Config,
    pub secrets: Secrets,
    pub services: Vec<Service>,
    pub nodes: Vec<Node>,
    pub endpoints: Option<Endpoints>,
    pub namespaces: Vec<Namespace>,
}

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The configuration is invalid; every error is listed.
    #[error("{} configuration error(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Config(Vec<ConfigError>),
    /// A manifest could not be read.
    #[error("{path}: {source}")]
    Manifest { path: PathBuf, source: ManifestError },
    /// A Secret's `password` is not valid base64.
    #[error("{path}: Secret {secret}: data.password is not base64")]
    Secret { path: PathBuf, secret: String },
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|source| SourceError::Read { path: path.to_path_buf(), source })
}

fn manifests<T>(
    paths: &[PathBuf],
    parse: impl Fn(&str) -> Result<Vec<T>, ManifestError>,
) -> Result<Vec<T>, SourceError> {
    let mut all = Vec::new();
    for path in paths {
        all.extend(parse(&read(path)?).map_err(|source| SourceError::Manifest { path: path.clone(), source })?);
    }
    Ok(all)
}

impl FileSources {
    /// Every file, for watching.
    pub fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.config.iter().chain(&self.services).chain(&self.nodes).chain(&self.endpoints).chain(&self.namespaces)
    }

    /// Reads and validates every file.
    pub fn load(&self) -> Result<Snapshot, SourceError> {
        let texts: Vec<(String, String)> =
            self.config.iter().map(|p| Ok((p.display().to_string(), read(p)?))).collect::<Result<_, SourceError>>()?;
        let borrowed: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
        let loaded = config::load(&borrowed).map_err(SourceError::Config)?;
        let mut secrets = Secrets::new();
        for (path, text) in self.config.iter().zip(&texts) {
            read_secrets(path, &text.1, &mut secrets)?;
        }
        let endpoints = if self.endpoints.is_empty() {
            None
        } else {
            let slices: Vec<EndpointSlice> = manifests(&self.endpoints, manifest::endpoint_slices)?;
            Some(Endpoints::new(slices))
        };
        Ok(Snapshot {
            config: loaded.config,
            secrets,
            services: manifests(&self.services, manifest::services)?,
            nodes: manifests(&self.nodes, manifest::nodes)?,
            endpoints,
            namespaces: manifests(&self.namespaces, manifest::namespaces)?,
        })
    }
}

/// Secrets in configuration files, for `passwordSecret` (`password` key,
/// `stringData` or base64 `data`), keyed `namespace/name`.
fn read_secrets(path: &Path, text: &str, secrets: &mut Secrets) -> Result<(), SourceError> {
    // The configuration loader has already read these files; a YAML error
    // here would have been reported there.
    let Ok(docs) = manifest::documents(text) else { return Ok(()) };
    for doc in docs.iter().filter(|d| manifest::kind(d) == Some("Secret")) {
        let name = manifest::name(doc).unwrap_or_default();
        let namespace = doc.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("metallb-system");
        let key = format!("{namespace}/{name}");
        if let Some(p) = doc.pointer("/stringData/password").and_then(Value::as_str) {
            secrets.insert(key, p.as_bytes().to_vec());
        } else if let Some(p) = doc.pointer("/data/password").and_then(Value::as_str) {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(p.trim())
                .map_err(|_| SourceError::Secret { path: path.to_path_buf(), secret: key.clone() })?;
            secrets.insert(key, decoded);
        }
    }
    Ok(())
}

/// The inotify descriptor, as tokio's reactor wants it.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

#[allow(unsafe_code)]
fn register(fd: InotifyFd) -> Option<AsyncFd<InotifyFd>> {
    // SAFETY: the descriptor is owned by the `Inotify` inside `fd`, which
    // moves into the `AsyncFd`: it stays open, and is not closed or reused by
    // anyone else, for as long as the registration lives.
    unsafe { AsyncFd::register(fd) }.ok()
}

/// What identifies a file's version without reading it.
type Fingerprint = Option<(SystemTime, u64)>;

fn fingerprint(path: &Path) -> Fingerprint {
    std::fs::metadata(path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
}

/// Says when a watched file changed: inotify on the files' directories (so
/// that editors that replace a file by renaming are seen too), and, should
/// inotify be unavailable or miss something, a comparison of modification
/// times and sizes every few seconds.
pub struct Watcher {
    inotify: Option<AsyncFd<InotifyFd>>,
    /// Watched file names per directory.
    names: HashMap<PathBuf, Vec<OsString>>,
    paths: Vec<PathBuf>,
    fingerprints: Vec<Fingerprint>,
    poll: tokio::time::Interval,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").field("paths", &self.paths).field("inotify", &self.inotify.is_some()).finish()
    }
}

/// After a change, files are read once none has changed for this long (a
/// script writing several files, an editor's backup and rename)...
pub const QUIET: Duration = Duration::from_millis(20);

/// ...or this long after the first change, if changes keep coming.
pub const SETTLE_MAX: Duration = Duration::from_millis(500);

/// The next batch of inotify events; whether one concerns a watched file.
/// Never resolves without inotify.
async fn next_event(inotify: Option<&AsyncFd<InotifyFd>>, names: &HashMap<PathBuf, Vec<OsString>>) -> bool {
    let Some(fd) = inotify else { return std::future::pending().await };
    let relevant = |name: Option<&OsString>| name.is_none_or(|n| names.values().any(|ns| ns.contains(n)));
    loop {
        let Ok(mut guard) = fd.readable().await else { return true };
        // `try_io` clears the readiness when the read would block, so a
        // drained descriptor waits for new events instead of spinning.
        match guard.try_io(|inner| inner.get_ref().0.read_events().map_err(std::io::Error::from)) {
            Ok(Ok(events)) => return events.iter().any(|e| relevant(e.name.as_ref())),
            Ok(Err(_)) => return true,
            Err(_would_block) => continue,
        }
    }
}

impl Watcher {
    pub fn new(paths: impl IntoIterator<Item = PathBuf>, poll_every: Duration) -> Self {
        let paths: Vec<PathBuf> = paths.into_iter().collect();
        let mut names: HashMap<PathBuf, Vec<OsString>> = HashMap::new();
        for p in &paths {
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            if let Some(name) = p.file_name() {
                names.entry(dir).or_default().push(name.to_os_string());
            }
        }
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok().and_then(|ino| {
            // A file is whole once its writer closes it or it is renamed
            // into place; reacting to each write would read it half-written.
            let flags = AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_MOVED_FROM
                | AddWatchFlags::IN_DELETE;
            for dir in names.keys() {
                if let Err(e) = ino.add_watch(dir, flags) {
                    warn!(dir = %dir.display(), error = %e, "cannot watch directory; polling it");
                }
            }
            register(InotifyFd(ino))
        });
        let fingerprints = paths.iter().map(|p| fingerprint(p)).collect();
        let mut poll = tokio::time::interval(poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self { inotify, names, paths, fingerprints, poll }
    }

    /// Waits until a watched file has changed, then until the changes stop
    /// for [`QUIET`] (at most [`SETTLE_MAX`]), so that files written together
    /// are read together.
    pub async fn changed(&mut self) {
        loop {
            let fired = tokio::select! {
                relevant = next_event(self.inotify.as_ref(), &self.names) => relevant,
                _ = self.poll.tick() => false,
            };
            if fired {
                break;
            }
            if self.refresh() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + SETTLE_MAX;
        loop {
            let quiet_until = (tokio::time::Instant::now() + QUIET).min(deadline);
            match tokio::time::timeout_at(quiet_until, next_event(self.inotify.as_ref(), &self.names)).await {
                Ok(_) if tokio::time::Instant::now() < deadline => continue,
                _ => break,
            }
        }
        self.refresh();
    }

    /// Records the current fingerprints; whether any differed.
    fn refresh(&mut self) -> bool {
        let now: Vec<Fingerprint> = self.paths.iter().map(|p| fingerprint(p)).collect();
        let changed = now != self.fingerprints;
        self.fingerprints = now;
        changed
    }
}
