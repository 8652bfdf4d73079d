//! Says when a watched file changed, through the `notify` crate and its
//! debouncer (inotify on Linux; polling where inotify cannot be had).
//!
//! Directories are watched rather than files, so that editors and tools
//! that replace a file by renaming another over it are seen. Only events
//! that mean a file is whole count: a writer closing it, a rename into
//! place, a removal. Reacting to each write would read a file half-written
//! (a shell redirection that streams, say), and a half-read services file
//! is a valid file with Services missing. The debouncer holds events until
//! a path has been quiet for [`QUIET`], so files written together are read
//! together.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify_debouncer_full::notify::{self, PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, RecommendedCache};
use tokio::sync::mpsc;
use tracing::warn;

/// A path must have been quiet this long before its events are reported.
pub const QUIET: Duration = Duration::from_millis(10);

/// How often files are compared where inotify is not available.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// The debouncer, kept alive for as long as the watch runs.
#[derive(Debug)]
enum Backend {
    Native(#[allow(dead_code)] Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(#[allow(dead_code)] Debouncer<PollWatcher, NoCache>),
}

/// Reports changes to a set of files.
#[derive(Debug)]
pub struct Watcher {
    _backend: Option<Backend>,
    changes: mpsc::UnboundedReceiver<()>,
}

/// Whether an event means one of `files` is now whole (or gone).
fn completes(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_)
    )
}

/// Whether any of `events` completes or removes one of `files`.
fn concern<'a>(files: &HashSet<PathBuf>, mut events: impl Iterator<Item = &'a notify::Event>) -> bool {
    events.any(|e| completes(&e.kind) && e.paths.iter().any(|p| files.contains(p)))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Watcher {
    /// Watches `paths` from now on: a change made after this returns is
    /// reported even if the caller reads the files first.
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> Self {
        let files: HashSet<PathBuf> = paths.into_iter().map(|p| absolute(&p)).collect();
        let dirs: HashSet<PathBuf> =
            files.iter().map(|f| f.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf)).collect();
        let (tx, changes) = mpsc::unbounded_channel();
        let handler = move |result: DebounceEventResult| match result {
            Ok(events) => {
                if concern(&files, events.iter().map(|e| &e.event)) {
                    let _ = tx.send(());
                }
            }
            // Events may have been lost: have the files read again.
            Err(errors) => {
                warn!(errors = ?errors, "file watch error; reading the files again");
                let _ = tx.send(());
            }
        };
        let backend = Self::native(&dirs, handler.clone()).or_else(|e| {
            warn!(error = %e, "cannot watch the files with inotify; comparing them every 2 s");
            Self::poll(&dirs, handler)
        });
        let backend = match backend {
            Ok(b) => Some(b),
            Err(e) => {
                warn!(error = %e, "cannot watch the files; changes apply on SIGHUP only");
                None
            }
        };
        Self { _backend: backend, changes }
    }

    fn native(
        dirs: &HashSet<PathBuf>,
        handler: impl notify_debouncer_full::DebounceEventHandler,
    ) -> notify::Result<Backend> {
        let mut debouncer = notify_debouncer_full::new_debouncer(QUIET, None, handler)?;
        for dir in dirs {
            debouncer.watch(dir, RecursiveMode::NonRecursive)?;
        }
        Ok(Backend::Native(debouncer))
    }

    fn poll(
        dirs: &HashSet<PathBuf>,
        handler: impl notify_debouncer_full::DebounceEventHandler,
    ) -> notify::Result<Backend> {
        let config = notify::Config::default().with_poll_interval(POLL_EVERY).with_compare_contents(false);
        let mut debouncer =
            notify_debouncer_full::new_debouncer_opt::<_, PollWatcher, _>(QUIET, None, handler, NoCache, config)?;
        for dir in dirs {
            debouncer.watch(dir, RecursiveMode::NonRecursive)?;
        }
        Ok(Backend::Poll(debouncer))
    }

    /// Waits until a watched file has changed; changes that arrived
    /// meanwhile are folded into one.
    pub async fn changed(&mut self) {
        if self.changes.recv().await.is_none() {
            // No watcher: nothing will ever change.
            std::future::pending::<()>().await;
        }
        while self.changes.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("lb-watch-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    async fn next(w: &mut Watcher) {
        tokio::time::timeout(Duration::from_secs(10), w.changed()).await.expect("a change is reported");
    }

    #[tokio::test]
    async fn writes_renames_and_removals_are_seen_and_other_files_are_not() {
        let d = dir("kinds");
        let file = d.0.join("services.yaml");
        std::fs::write(&file, "a").unwrap();
        let mut w = Watcher::new([file.clone()]);

        std::fs::write(&file, "b").unwrap();
        next(&mut w).await;

        let tmp = d.0.join("services.yaml.tmp");
        std::fs::write(&tmp, "c").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        next(&mut w).await;

        std::fs::remove_file(&file).unwrap();
        next(&mut w).await;
    }

    #[test]
    fn only_whole_files_among_the_watched_ones_count() {
        use notify::event::{CreateKind, DataChange, RemoveKind, RenameMode};
        let watched: HashSet<PathBuf> = [PathBuf::from("/etc/lb/services.yaml")].into();
        let event = |kind: EventKind, path: &str| notify::Event::new(kind).add_path(PathBuf::from(path));
        let yes = [
            event(EventKind::Access(AccessKind::Close(AccessMode::Write)), "/etc/lb/services.yaml"),
            event(EventKind::Modify(ModifyKind::Name(RenameMode::Both)), "/etc/lb/x.tmp")
                .add_path(PathBuf::from("/etc/lb/services.yaml")),
            event(EventKind::Remove(RemoveKind::File), "/etc/lb/services.yaml"),
        ];
        for e in &yes {
            assert!(concern(&watched, std::iter::once(e)), "{e:?}");
        }
        let no = [
            // Half-written: more may follow.
            event(EventKind::Modify(ModifyKind::Data(DataChange::Any)), "/etc/lb/services.yaml"),
            event(EventKind::Access(AccessKind::Open(AccessMode::Any)), "/etc/lb/services.yaml"),
            // A new file is empty until its writer closes it.
            event(EventKind::Create(CreateKind::File), "/etc/lb/services.yaml"),
            // Another file in the same directory.
            event(EventKind::Access(AccessKind::Close(AccessMode::Write)), "/etc/lb/other.yaml"),
        ];
        for e in &no {
            assert!(!concern(&watched, std::iter::once(e)), "{e:?}");
        }
    }

    #[tokio::test]
    async fn a_relative_path_is_watched_too() {
        let d = dir("relative");
        let file = d.0.join("config.yaml");
        std::fs::write(&file, "a").unwrap();
        let cwd = std::env::current_dir().unwrap();
        let relative = pathdiff(&file, &cwd);
        let mut w = Watcher::new([relative]);
        std::fs::write(&file, "b").unwrap();
        next(&mut w).await;
    }

    /// `file` relative to `base`, through `..` as needed.
    fn pathdiff(file: &Path, base: &Path) -> PathBuf {
        let ups = base.components().count() - 1;
        let mut out = PathBuf::new();
        for _ in 0..ups {
            out.push("..");
        }
        out.join(file.strip_prefix("/").unwrap())
    }
}
