//! `check`: a gate for CI and deploys, from the same view as `status`. (Named apart from
//! strata-schema's lint findings: a [`Kind`] is what `check` can fail on, a [`Finding`] one
//! of them about one migration.)

use serde::Serialize;

use crate::runner::status::{MigrationStatus, State};

/// Something `check` can fail on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A migration is not applied yet.
    Pending,
    /// An applied migration's file changed.
    Changed,
    /// An applied migration has no file.
    Missing,
    /// A migration is recorded as failed (partial).
    Failed,
    /// A pending migration is older than the newest applied one.
    OutOfOrder,
}

impl Kind {
    /// Every kind, the default of `--fail-on`.
    pub const ALL: [Self; 5] =
        [Self::Pending, Self::Changed, Self::Missing, Self::Failed, Self::OutOfOrder];

    /// Its name: `pending`, `changed`, `missing`, `failed`, `out-of-order`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Changed => "changed",
            Self::Missing => "missing",
            Self::Failed => "failed",
            Self::OutOfOrder => "out-of-order",
        }
    }

    fn of(line: &MigrationStatus) -> Option<Self> {
        match line.state {
            State::Pending if line.out_of_order => Some(Self::OutOfOrder),
            State::Pending => Some(Self::Pending),
            State::ChecksumChanged => Some(Self::Changed),
            State::FileMissing => Some(Self::Missing),
            State::Failed => Some(Self::Failed),
            State::Applied | State::InCheckpoint => None,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;

    /// A name of [`Kind::as_str`].
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|f| f.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|f| f.as_str()).collect();
            format!("{name:?} is not one of {}", names.join(", "))
        })
    }
}

/// One finding about one migration.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was found.
    #[serde(rename = "finding")]
    pub kind: Kind,
    /// The migration's version.
    pub version: i64,
    /// Its description.
    pub description: String,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Every finding, in version order, whether it fails the check or not.
    pub found: Vec<Finding>,
    /// The kinds the check was told to fail on.
    pub fail_on: Vec<Kind>,
    /// Whether any finding is one of those.
    pub failed: bool,
}

/// Judges `lines` (from [`Session::status`](crate::Session::status)) against `fail_on`.
pub fn check(lines: &[MigrationStatus], fail_on: &[Kind]) -> CheckReport {
    let found: Vec<Finding> = lines
        .iter()
        .filter_map(|l| {
            Kind::of(l).map(|kind| Finding {
                kind,
                version: l.version,
                description: l.description.clone(),
            })
        })
        .collect();
    let failed = found.iter().any(|f| fail_on.contains(&f.kind));
    CheckReport { found, fail_on: fail_on.to_vec(), failed }
}
