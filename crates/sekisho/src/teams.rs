//! Which version of each team's routes serves, and why.
//!
//! Every reload reads each team's files again. A version that checks and compiles serves;
//! one that does not is refused alone: the team keeps serving its last good version,
//! every other team's change and the root's go ahead, and the refusal is logged, counted
//! and shown on the admin listener's `/teams`. A team's last good version is kept as the
//! text of its files, so it is compiled again under each new root config, and the root's
//! policy on the grant always applies to what serves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::ConfigError;
use crate::config::team::Source;

/// One version of a team's files.
pub type Version = Arc<Vec<Source>>;

/// A team's state after a reload.
#[derive(Clone, Debug)]
pub struct TeamStatus {
    /// The team's name from its grant.
    pub name: String,
    /// The version serving; `None` when no version of the team ever compiled.
    pub serving: Option<Version>,
    /// When the serving version was first applied.
    pub applied: Option<SystemTime>,
    /// Routes the serving version has.
    pub routes: usize,
    /// The latest version, when it was refused, and why.
    pub refused: Option<Refusal>,
}

/// A version of a team's files that does not serve.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// What was read (empty when the files could not be read).
    pub version: Version,
    /// Every problem, each naming its file, line and field.
    pub error: String,
    /// When this version was first refused.
    pub at: SystemTime,
    /// Refused by this reload, not an earlier one: logged and counted once.
    pub new: bool,
}

impl TeamStatus {
    /// `current`: the latest files serve; `stale`: they were refused and the last good
    /// version serves; `failed`: refused, and no version serves.
    pub fn state(&self) -> &'static str {
        match (&self.refused, &self.serving) {
            (None, _) => "current",
            (Some(_), Some(_)) => "stale",
            (Some(_), None) => "failed",
        }
    }

    /// The files of the serving version.
    pub fn files(&self) -> Vec<PathBuf> {
        self.serving
            .iter()
            .flat_map(|v| v.iter().map(|s| s.path.clone()))
            .collect()
    }

    /// The refusal of `latest` for `errors`; the same refusal as before keeps its time
    /// and is not reported again.
    pub fn refusing(
        latest: Version,
        errors: Vec<ConfigError>,
        before: Option<&TeamStatus>,
    ) -> Refusal {
        let error = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let again = before
            .and_then(|b| b.refused.as_ref())
            .filter(|r| r.version == latest && r.error == error);
        match again {
            Some(r) => Refusal {
                new: false,
                ..r.clone()
            },
            None => Refusal {
                version: latest,
                error,
                at: SystemTime::now(),
                new: true,
            },
        }
    }

    /// Logs and counts what this reload decided for the team; called once the snapshot
    /// holding it serves.
    pub fn report(&self) {
        crate::observe::metrics::team_state(&self.name, self.state(), self.routes);
        if let Some(refused) = self.refused.as_ref().filter(|r| r.new) {
            crate::observe::metrics::team_refused(&self.name);
            match self.serving {
                Some(_) => tracing::error!(
                    team = %self.name,
                    "team config refused, its last good version keeps serving:\n{}",
                    refused.error
                ),
                None => tracing::error!(
                    team = %self.name,
                    "team config refused, the team has no routes until it is fixed:\n{}",
                    refused.error
                ),
            }
        }
    }
}
