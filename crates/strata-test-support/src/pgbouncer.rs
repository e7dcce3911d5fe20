//! A PgBouncer of the test's own, from the installed package, in front of a server the test
//! names: its own port and directory, stopped and removed on drop.

use std::fs;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::location::create_cluster_dir;
use crate::roles::{APP_ROLE, PASSWORD, RELAY_ROLE};
use crate::toolchain::{Toolchain, log_tail};

/// How long to wait for PgBouncer to accept connections.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(15);

/// PgBouncer's `pool_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client connection, for the client's whole session.
    Session,
    /// A server connection per transaction.
    Transaction,
}

impl PoolMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }
}

/// A running PgBouncer: listens on 127.0.0.1 only, trusts its clients, and logs in to the
/// server as the client's user (with the test roles' password where the server asks for one).
/// At most `pool_size` server connections per database and user: fewer than the clients, so
/// that clients share server connections as they do in production.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// How to start a [`PgBouncer`]: [`PgBouncer::builder`].
#[derive(Debug, Clone)]
pub struct PgBouncerBuilder {
    upstream_port: u16,
    mode: PoolMode,
    pool_size: u32,
    ignore_options: bool,
    max_prepared_statements: u32,
    program: Option<PathBuf>,
    modern: bool,
}

impl PgBouncerBuilder {
    /// At most `size` server connections per database and user (default 2).
    #[must_use]
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// Adds `options` to `ignore_startup_parameters`, as guides on the web advise: the
    /// start-up parameter that carries settings such as `statement_timeout` is then accepted
    /// and dropped. By default PgBouncer refuses it.
    #[must_use]
    pub fn ignore_options(mut self, ignore: bool) -> Self {
        self.ignore_options = ignore;
        self
    }

    /// `max_prepared_statements` (PgBouncer 1.21 and later; 0, the default, leaves it unset):
    /// protocol-level prepared statements survive transaction mode.
    #[must_use]
    pub fn max_prepared_statements(mut self, count: u32) -> Self {
        self.max_prepared_statements = count;
        self
    }

    /// Runs a PgBouncer of 1.21 or later ([`find_modern`]) instead of the installed one.
    #[must_use]
    pub fn modern(mut self) -> Self {
        self.modern = true;
        self
    }

    /// Runs this program instead of the installed `pgbouncer`.
    #[must_use]
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Starts it and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// [`HarnessError::PgBouncerNotInstalled`] without the program; otherwise when no
    /// directory or port can be had, or it does not start (the error quotes its log).
    pub fn start(self) -> Result<PgBouncer, HarnessError> {
        let program = match (&self.program, self.modern) {
            (Some(program), _) => program.clone(),
            (None, true) => find_modern()?,
            (None, false) => find().ok_or(HarnessError::PgBouncerNotInstalled)?,
        };
        let tools = Toolchain::discover()?;
        let dir = create_cluster_dir(&tools)?;
        let port = free_port()?;
        let users = dir.join("userlist.txt");
        let log = dir.join("pgbouncer.log");
        let ini = dir.join("pgbouncer.ini");
        let write = |path: &Path, text: String| {
            fs::write(path, text).map_err(|source| HarnessError::Io {
                action: "write",
                path: path.to_path_buf(),
                source,
            })
        };
        // The test roles' password is a constant of this crate; the superuser has none.
        write(
            &users,
            format!(
                "\"postgres\" \"\"\n\"{APP_ROLE}\" \"{PASSWORD}\"\n\"{RELAY_ROLE}\" \"{PASSWORD}\"\n"
            ),
        )?;
        let ignored =
            if self.ignore_options { "extra_float_digits, options" } else { "extra_float_digits" };
        let prepared = match self.max_prepared_statements {
            0 => String::new(),
            count => format!("max_prepared_statements = {count}\n"),
        };
        write(
            &ini,
            format!(
                "[databases]\n\
                 * = host=127.0.0.1 port={upstream_port}\n\
                 [pgbouncer]\n\
                 listen_addr = 127.0.0.1\n\
                 listen_port = {port}\n\
                 unix_socket_dir =\n\
                 auth_type = trust\n\
                 auth_file = {users}\n\
                 pool_mode = {mode}\n\
                 default_pool_size = {pool_size}\n\
                 max_client_conn = 1000\n\
                 ignore_startup_parameters = {ignored}\n\
                 {prepared}\
                 logfile = {log}\n",
                upstream_port = self.upstream_port,
                users = users.display(),
                mode = self.mode.as_str(),
                pool_size = self.pool_size,
                log = log.display(),
            ),
        )?;
        let mut command = tools.as_server_user(&program);
        command.arg(&ini).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|source| HarnessError::Spawn { program: program.clone(), source })?;
        let bouncer = PgBouncer { child, dir, port };
        let start = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if start.elapsed() > ACCEPT_TIMEOUT {
                return Err(HarnessError::PgBouncerNotAccepting {
                    port,
                    waited_secs: ACCEPT_TIMEOUT.as_secs(),
                    log_tail: log_tail(&log),
                    log,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(bouncer)
    }
}

impl PgBouncer {
    /// A PgBouncer in `mode` in front of the server on 127.0.0.1:`upstream_port`, with 2
    /// server connections, refusing the `options` start-up parameter (PgBouncer's default).
    pub fn builder(upstream_port: u16, mode: PoolMode) -> PgBouncerBuilder {
        PgBouncerBuilder {
            upstream_port,
            mode,
            pool_size: 2,
            ignore_options: false,
            max_prepared_statements: 0,
            program: None,
            modern: false,
        }
    }

    /// Starts PgBouncer in `mode` in front of the server on 127.0.0.1:`upstream_port`, and
    /// waits until it accepts connections ([`PgBouncer::builder`] with `pool_size`).
    ///
    /// # Errors
    ///
    /// As [`PgBouncerBuilder::start`].
    pub fn start(upstream_port: u16, mode: PoolMode, pool_size: u32) -> Result<Self, HarnessError> {
        Self::builder(upstream_port, mode).pool_size(pool_size).start()
    }

    /// The log PgBouncer has written so far (its refusals name their reason).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` through it as `user` (no password: it trusts its clients).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{database}?sslmode=disable", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // `runuser` passes the signal on to PgBouncer and waits for it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // As root, `runuser` may end before PgBouncer: stop it by its port's owner too.
        let _ = std::process::Command::new("pkill")
            .args(["-f", &format!("{}", self.dir.join("pgbouncer.ini").display())])
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `pgbouncer` on PATH, else the Debian package's.
fn find() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("pgbouncer")).find(|p| p.is_file())
    });
    on_path.or_else(|| Some(PathBuf::from("/usr/sbin/pgbouncer")).filter(|p| p.is_file()))
}

/// A PgBouncer of 1.21 or later: `PGBOUNCER_MODERN`, else what the workspace's
/// `scripts/pgbouncer.sh modern` finds or builds (the installed one when new enough, one built
/// before and cached, or 1.25.2 built from `../shared/vendor/pgbouncer`).
///
/// # Errors
///
/// [`HarnessError::PgBouncerModernMissing`] with the script's reason.
pub fn find_modern() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("PGBOUNCER_MODERN") {
        return Ok(PathBuf::from(path));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pgbouncer.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg("modern")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| HarnessError::Spawn { program: script.clone(), source })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().map(str::trim).filter(|p| !p.is_empty()) {
        Some(path) if output.status.success() => Ok(PathBuf::from(path)),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr.lines().last().unwrap_or("the script failed").to_owned();
            Err(HarnessError::PgBouncerModernMissing { reason })
        }
    }
}

fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.port())
        .map_err(HarnessError::FreePort)
}
