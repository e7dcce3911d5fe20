//! Where clusters live, and sweeping the ones that killed test processes left behind.
//!
//! Each cluster gets `<base>/<pid>-<counter>`, where base is `<target>/test-clusters` when the
//! server's user can write there, else `/var/tmp/strata-test-clusters`. The directory holds an
//! `owner` file naming the test process (pid and start time); a cluster whose owner is gone is
//! stopped and deleted by the next test process that starts a cluster there.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::HarnessError;
use crate::toolchain::Toolchain;

/// The base used when the workspace's target directory is out of the server user's reach.
const OUTSIDE_BASE: &str = "/var/tmp/strata-test-clusters";
/// The file in each cluster directory naming the test process that owns it.
pub(crate) const OWNER_FILE: &str = "owner";

static COUNTER: AtomicU32 = AtomicU32::new(0);
/// Bases this process has already swept.
static SWEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Creates a fresh cluster directory, owned by the server's user, in the first base that works.
pub(crate) fn create_cluster_dir(tools: &Toolchain) -> Result<PathBuf, HarnessError> {
    let mut tried = Vec::new();
    for base in [target_dir().join("test-clusters"), PathBuf::from(OUTSIDE_BASE)] {
        match create_in(tools, &base) {
            Ok(dir) => {
                sweep_once(tools, &base);
                return Ok(dir);
            }
            Err(reason) => tried.push(format!("{}: {reason}", base.display())),
        }
    }
    Err(HarnessError::NoClusterDir { tried })
}

fn create_in(tools: &Toolchain, base: &Path) -> Result<PathBuf, String> {
    fs::create_dir_all(base).map_err(|error| format!("cannot create it ({error})"))?;
    let pid = std::process::id();
    let dir = loop {
        let dir = base.join(format!("{pid}-{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
        match fs::create_dir(&dir) {
            Ok(()) => break dir,
            // Left by an earlier process with our pid; the sweep will take it.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(format!("cannot create a directory in it ({error})")),
        }
    };
    let prepared = prepare(tools, &dir);
    if prepared.is_err() {
        let _ = fs::remove_dir_all(&dir);
    }
    prepared.map(|()| dir)
}

fn prepare(tools: &Toolchain, dir: &Path) -> Result<(), String> {
    let owner = Owner::current();
    fs::write(dir.join(OWNER_FILE), owner.to_string())
        .map_err(|error| format!("cannot write in it ({error})"))?;
    if let Some(user) = tools.server_user() {
        chown(dir, Some(user.uid), Some(user.gid))
            .map_err(|error| format!("cannot give a directory to the postgres user ({error})"))?;
        if !tools.server_user_can_write(dir) {
            return Err("the postgres user cannot reach or write it".to_owned());
        }
    }
    Ok(())
}

/// The workspace's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace),
/// else `target` in the workspace root found above this crate's manifest.
pub(crate) fn target_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .skip(1)
        .find(|dir| {
            fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|text| text.contains("[workspace]"))
        })
        .unwrap_or(manifest_dir);
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

fn sweep_once(tools: &Toolchain, base: &Path) {
    let first = SWEPT.lock().unwrap_or_else(PoisonError::into_inner).insert(base.to_path_buf());
    if first {
        sweep(tools, base);
    }
}

/// Stops and deletes every cluster under `base` whose owning test process is gone.
pub(crate) fn sweep(tools: &Toolchain, base: &Path) {
    let Ok(entries) = fs::read_dir(base) else { return };
    for dir in entries.flatten().map(|entry| entry.path()).filter(|path| path.is_dir()) {
        let Some(owner) = Owner::of(&dir) else { continue };
        if owner.is_alive() {
            continue;
        }
        tracing::info!(cluster.dir = %dir.display(), owner.pid = owner.pid, "removing a test cluster its test process left behind");
        crate::cluster::stop_immediately(tools, &dir);
        if let Err(error) = fs::remove_dir_all(&dir) {
            tracing::warn!(cluster.dir = %dir.display(), %error, "could not remove a stale test cluster");
        }
    }
}

/// The test process owning a cluster: its pid and, on Linux, its start time (which tells a
/// live owner from an unrelated process that reused the pid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    pub(crate) started: Option<u64>,
}

impl Owner {
    pub(crate) fn current() -> Self {
        let pid = std::process::id();
        Self { pid, started: start_time(pid) }
    }

    /// Read from the owner file; failing that, the pid from the directory's name (a directory
    /// created a moment ago, its file not written yet).
    fn of(dir: &Path) -> Option<Self> {
        if let Ok(text) = fs::read_to_string(dir.join(OWNER_FILE)) {
            let mut fields = text.split_whitespace();
            let pid = fields.next()?.parse().ok()?;
            return Some(Self { pid, started: fields.next().and_then(|field| field.parse().ok()) });
        }
        let name = dir.file_name()?.to_str()?;
        let pid = name.split('-').next()?.parse().ok()?;
        Some(Self { pid, started: None })
    }

    fn is_alive(self) -> bool {
        if !Path::new("/proc/self/stat").exists() {
            return true; // cannot tell without /proc: never delete what may be in use
        }
        match start_time(self.pid) {
            None => false,
            Some(now) => self.started.is_none_or(|started| started == now),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.started {
            Some(started) => writeln!(f, "{} {started}", self.pid),
            None => writeln!(f, "{}", self.pid),
        }
    }
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}
