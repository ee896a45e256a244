//! Watches the config file and the files it names (certificates), and says when any of
//! them changed.
//!
//! Directories are watched rather than files: Kubernetes updates a mounted ConfigMap or
//! Secret by swapping a symlink in the parent directory, which a watch on the old file
//! would never see.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tokio::sync::mpsc;

/// Events are gathered this long, so a file written in several steps reloads once.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// A live watch on a set of files.
pub struct FileWatch {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
    dirs: BTreeSet<PathBuf>,
    files: std::sync::Arc<std::sync::Mutex<Watched>>,
}

/// What counts as a change: a watched file, or any entry of a watched directory.
#[derive(Default)]
struct Watched {
    files: BTreeSet<PathBuf>,
    dirs: BTreeSet<PathBuf>,
}

impl FileWatch {
    /// Starts watching; `changed` receives one message per batch of changes to watched files.
    pub fn start(changed: mpsc::UnboundedSender<()>) -> notify::Result<Self> {
        let files = std::sync::Arc::new(std::sync::Mutex::new(Watched::default()));
        let interesting = files.clone();
        let debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let Ok(events) = result else { return };
            let Ok(watched) = interesting.lock() else {
                return;
            };
            let files = &watched.files;
            // Reading a file (as every reload does) must not look like a change.
            let writes = events.iter().filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(
                            ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Any
                        )
                        | EventKind::Access(AccessKind::Close(AccessMode::Write))
                )
            });
            let touched = writes.flat_map(|e| e.paths.iter()).any(|path| {
                files.contains(path)
                    || path
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("..data"))
                    || files.iter().any(|f| f.parent() == Some(path.as_path()))
                    || path.parent().is_some_and(|dir| watched.dirs.contains(dir))
            });
            if touched {
                let _ = changed.send(());
            }
        })?;
        Ok(FileWatch {
            debouncer,
            dirs: BTreeSet::new(),
            files,
        })
    }

    /// Replaces the set of watched files (the config and every file it names) and of
    /// directories any change in which counts (where teams' files are found by pattern).
    pub fn set_files(
        &mut self,
        files: impl IntoIterator<Item = PathBuf>,
        whole_dirs: impl IntoIterator<Item = PathBuf>,
    ) {
        let files: BTreeSet<PathBuf> = files.into_iter().map(|f| absolute(&f)).collect();
        let whole_dirs: BTreeSet<PathBuf> = whole_dirs.into_iter().map(|d| absolute(&d)).collect();
        // A whole directory's parent is watched for `..data` swaps only: Kubernetes updates
        // a projected volume at its root, above the subdirectory each team's files are in.
        let dirs: BTreeSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .chain(whole_dirs.iter().cloned())
            .chain(
                whole_dirs
                    .iter()
                    .filter_map(|d| d.parent().map(Path::to_path_buf)),
            )
            .collect();
        for gone in self.dirs.difference(&dirs) {
            let _ = self.debouncer.unwatch(gone);
        }
        for dir in dirs.difference(&self.dirs) {
            if let Err(e) = self.debouncer.watch(dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
            }
        }
        self.dirs = dirs;
        if let Ok(mut watched) = self.files.lock() {
            *watched = Watched {
                files,
                dirs: whole_dirs,
            };
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
