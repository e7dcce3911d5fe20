//! Finding the installed PostgreSQL programs, and running them as the right user.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::HarnessError;

/// Where Debian and Ubuntu install each major version's programs.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";
/// The programs that must come from one directory, so that their versions match.
const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// How many lines of the server log an error shows.
const LOG_TAIL_LINES: usize = 20;

/// The system user the server runs as when the tests run as root.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// The installed programs, and who runs the server ones.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    bin_dir: PathBuf,
    psql: Option<PathBuf>,
    pg_isready: Option<PathBuf>,
    server_user: Option<ServerUser>,
}

impl Toolchain {
    /// Finds the programs as `scripts/db.sh` does: the directory of the `pg_ctl` on PATH (its
    /// symlinks resolved) when `initdb` and `postgres` sit next to it, else the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub(crate) fn discover() -> Result<Self, HarnessError> {
        let bin_dir = server_bin_dir().ok_or(HarnessError::ServerNotInstalled)?;
        let client = |name: &str| {
            let beside = bin_dir.join(name);
            if is_executable(&beside) { Some(beside) } else { on_path(name) }
        };
        let server_user = if running_as_root() { Some(postgres_user()?) } else { None };
        Ok(Self { psql: client("psql"), pg_isready: client("pg_isready"), bin_dir, server_user })
    }

    /// The user server programs run as, when that is not the current user (we are root).
    pub(crate) fn server_user(&self) -> Option<ServerUser> {
        self.server_user
    }

    /// A command running server program `name` (`initdb`, `pg_ctl`) as the server's user.
    pub(crate) fn server_command(&self, name: &str) -> Command {
        self.as_server_user(self.bin_dir.join(name))
    }

    /// `psql`, or why there is none.
    pub(crate) fn psql(&self) -> Result<&Path, HarnessError> {
        self.psql
            .as_deref()
            .ok_or_else(|| HarnessError::PsqlNotInstalled { bin_dir: self.bin_dir.clone() })
    }

    /// `pg_isready`, when installed.
    pub(crate) fn pg_isready(&self) -> Option<&Path> {
        self.pg_isready.as_deref()
    }

    /// Whether the server's user may write in `dir` (always, when that user is us).
    pub(crate) fn server_user_can_write(&self, dir: &Path) -> bool {
        if self.server_user.is_none() {
            return true;
        }
        let mut test = self.as_server_user("test");
        test.arg("-w").arg(dir);
        run(test).is_ok_and(|output| output.status.success())
    }

    /// A command running `program` as the server's user (PgBouncer refuses root too).
    pub(crate) fn as_server_user(&self, program: impl AsRef<OsStr>) -> Command {
        if self.server_user.is_some() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program).current_dir("/");
            command
        } else {
            Command::new(program)
        }
    }
}

/// Runs `command` with no input and its output captured.
pub(crate) fn run(mut command: Command) -> Result<Output, HarnessError> {
    command.stdin(Stdio::null()).output().map_err(|source| HarnessError::Spawn {
        program: PathBuf::from(command.get_program()),
        source,
    })
}

/// Runs `command`; an exit other than success is an error quoting its output and, when the
/// command drives a server, the tail of `log`.
pub(crate) fn run_checked(command: Command, log: Option<&Path>) -> Result<Output, HarnessError> {
    let rendered = render(&command);
    tracing::debug!(command = %rendered, "running");
    let output = run(command)?;
    if output.status.success() {
        return Ok(output);
    }
    let text = [&output.stderr, &output.stdout]
        .iter()
        .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Err(HarnessError::Command {
        command: rendered,
        status: output.status,
        output: text,
        log: log.map(Path::to_path_buf),
        log_tail: log.map(log_tail).unwrap_or_default(),
    })
}

/// The last lines of the server log, or nothing when it cannot be read.
pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read(log).map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    let text = text.unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

fn render(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

fn server_bin_dir() -> Option<PathBuf> {
    let beside_path = on_path("pg_ctl")
        .and_then(|pg_ctl| std::fs::canonicalize(pg_ctl).ok())
        .and_then(|pg_ctl| pg_ctl.parent().map(Path::to_path_buf));
    beside_path
        .into_iter()
        .chain(versioned_bin_dirs())
        .find(|dir| SERVER_PROGRAMS.iter().all(|name| is_executable(&dir.join(name))))
}

/// `/usr/lib/postgresql/*/bin`, newest version first.
fn versioned_bin_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(VERSIONED_ROOT) else { return Vec::new() };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let version = parse_version(name.to_str()?)?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything else is not a version directory.
pub(crate) fn parse_version(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|file| is_executable(file))
}

fn is_executable(file: &Path) -> bool {
    std::fs::metadata(file)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn running_as_root() -> bool {
    id(&["-u"]).is_some_and(|uid| uid == 0)
}

fn postgres_user() -> Result<ServerUser, HarnessError> {
    match (id(&["-u", "postgres"]), id(&["-g", "postgres"])) {
        (Some(uid), Some(gid)) => Ok(ServerUser { uid, gid }),
        _ => Err(HarnessError::NoPostgresUser),
    }
}

/// A number printed by `id ARGS`.
fn id(args: &[&str]) -> Option<u32> {
    let mut command = Command::new("id");
    command.args(args).stderr(Stdio::null());
    let output = run(command).ok().filter(|output| output.status.success())?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// A client program of the installed PostgreSQL (`pg_dump`, `psql`): beside the server's
/// programs, else on PATH; `None` when neither has it.
pub fn client_program(name: &str) -> Option<PathBuf> {
    match server_bin_dir().map(|dir| dir.join(name)) {
        Some(beside) if is_executable(&beside) => Some(beside),
        _ => on_path(name),
    }
}
