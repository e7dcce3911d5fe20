//! The runner: a [`Session`](crate::Session) and the commands on it, from taking the lock to
//! the reports. A writing command goes `session` (the lock, `lock`) → `history` → `plan` →
//! `execute` (with `retry`, `events`, `progress`), or `render` for `--dry-run`; `status` and
//! `check` read the same history without a lock; `targets` runs a command on many databases;
//! `cancel` stops a session from outside; `observe` carries its news to a live display.

pub(crate) mod admin;
pub mod cancel;
pub mod check;
pub(crate) mod events;
pub(crate) mod execute;
pub(crate) mod history;
pub(crate) mod lock;
pub mod observe;
pub(crate) mod options;
pub(crate) mod plan;
pub(crate) mod progress;
pub(crate) mod render;
pub mod report;
pub(crate) mod retry;
pub(crate) mod session;
pub(crate) mod sqlstate;
pub mod status;
pub mod targets;
