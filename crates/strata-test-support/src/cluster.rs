//! [`PrivateCluster`]: a PostgreSQL server of the test's own.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;
use crate::location;
use crate::toolchain::{Toolchain, log_tail, run, run_checked};

/// How many free ports `start` tries when another process takes one before the server binds it.
const START_ATTEMPTS: u32 = 5;
/// Seconds `pg_ctl -w` waits for a start, restart or stop.
const PG_CTL_WAIT_SECS: &str = "60";
/// How long to wait, after `pg_ctl` reports success, for the server to accept connections.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The settings file, included from `postgresql.conf`.
const CONF_FILE: &str = "strata-test.conf";
const LOG_FILE: &str = "server.log";
/// The longest Unix socket path (`sun_path`, 108 bytes with its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Ports of this process's clusters, so that a stopped cluster keeps its port.
static PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A PostgreSQL cluster of the test's own: own data directory, own port, started from the
/// installed binaries.
///
/// It listens on 127.0.0.1 only, trusts every local connection (user `postgres`, no password)
/// and runs with `fsync=off`. Dropping it stops the server (`-m immediate`) and deletes its
/// directory, also when the test fails; clusters of test processes that were killed are
/// removed by the next `start`.
#[derive(Debug)]
pub struct PrivateCluster {
    tools: Toolchain,
    dir: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
    port: u16,
}

impl PrivateCluster {
    /// Creates (`initdb`: trust auth, `-U postgres`, `-E UTF8`, `--no-sync`) and starts
    /// (`pg_ctl start -w`) a cluster on a free port of 127.0.0.1, with `fsync=off`, and waits
    /// until it accepts connections.
    ///
    /// # Errors
    /// When the programs or the `postgres` user (as root) are missing, no directory can hold
    /// the cluster, or `initdb` or the server fails (the error quotes the server log).
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_with(&[])
    }

    /// As [`start`](Self::start), with extra server settings, such as
    /// `&[("max_connections", "50")]`; values are quoted for `postgresql.conf`.
    ///
    /// # Errors
    /// As [`start`](Self::start); a setting the server rejects fails the start, and the
    /// error's log tail names it.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<Self, HarnessError> {
        let began = Instant::now();
        let tools = Toolchain::discover()?;
        let dir = location::create_cluster_dir(&tools)?;
        // From here on, dropping `cluster` on an error stops and deletes whatever was made.
        let mut cluster =
            Self { tools, data_dir: dir.join("data"), log: dir.join(LOG_FILE), dir, port: 0 };
        cluster.init()?;
        cluster.launch(settings)?;
        tracing::info!(
            cluster.port = cluster.port,
            cluster.dir = %cluster.dir.display(),
            elapsed_ms = began.elapsed().as_millis(),
            "started a private PostgreSQL cluster"
        );
        Ok(cluster)
    }

    /// A streaming replica of this cluster: `pg_basebackup -R -X stream` into a directory of
    /// its own, started on its own port as a hot standby; it follows this cluster until it is
    /// dropped. Stop, start, pause or resume it like any cluster.
    ///
    /// # Errors
    /// As [`start`](Self::start), and when the base backup fails (its output is quoted).
    pub fn start_replica(&self) -> Result<Self, HarnessError> {
        let tools = Toolchain::discover()?;
        let dir = location::create_cluster_dir(&tools)?;
        let mut replica =
            Self { tools, data_dir: dir.join("data"), log: dir.join(LOG_FILE), dir, port: 0 };
        let mut backup = replica.tools.server_command("pg_basebackup");
        backup
            .arg("-D")
            .arg(&replica.data_dir)
            .args(["-h", "127.0.0.1", "-U", "postgres", "-R", "-X", "stream", "-c", "fast"])
            .arg("--no-sync")
            .arg("-p")
            .arg(self.port.to_string());
        isolate_from_libpq_env(&mut backup);
        run_checked(backup, None)?;
        // The copy holds the primary's settings file (its port): launching rewrites it.
        replica.launch(&[("hot_standby", "on")])?;
        Ok(replica)
    }

    /// On a replica: stops replaying the primary's changes (`pg_wal_replay_pause()`), until
    /// [`resume_replay`](Self::resume_replay).
    ///
    /// # Errors
    /// As [`psql`](Self::psql); on a primary, the server refuses.
    pub fn pause_replay(&self) -> Result<(), HarnessError> {
        self.psql("postgres", "select pg_wal_replay_pause()").map(drop)
    }

    /// On a replica: replays again.
    ///
    /// # Errors
    /// As [`pause_replay`](Self::pause_replay).
    pub fn resume_replay(&self) -> Result<(), HarnessError> {
        self.psql("postgres", "select pg_wal_replay_resume()").map(drop)
    }

    /// The TCP port the server listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE`: the superuser, no password needed.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` (one statement or several) through `psql -Atq -v ON_ERROR_STOP=1` as the
    /// superuser on `database`, for setup; returns what it printed, trimmed.
    ///
    /// # Errors
    /// When psql is not installed, cannot connect, or a statement fails (psql's message).
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, HarnessError> {
        let psql = self.tools.psql()?;
        let mut command = Command::new(psql);
        command
            .args(["-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(database)
            .args(["-f", "-"]);
        isolate_from_libpq_env(&mut command);
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let spawn_error = |source| HarnessError::Spawn { program: psql.to_path_buf(), source };
        let mut child = command.spawn().map_err(spawn_error)?;
        let stdin = child.stdin.take();
        let output = thread::scope(|scope| {
            // Written from a thread so that a large output cannot block a large input.
            scope.spawn(move || {
                if let Some(mut stdin) = stdin {
                    // A failed write means psql stopped early; its stderr says why.
                    let _ = stdin.write_all(sql.as_bytes());
                }
            });
            child.wait_with_output()
        })
        .map_err(spawn_error)?;
        if !output.status.success() {
            return Err(HarnessError::Psql {
                database: database.to_owned(),
                port: self.port,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `pg_ctl restart -m fast -w`: every connection is cut; returns once the server accepts
    /// connections again.
    ///
    /// # Errors
    /// When the server does not stop or does not come back (the error quotes the server log).
    pub fn restart(&self) -> Result<(), HarnessError> {
        self.pg_ctl("restart", &["-m", "fast"])?;
        self.wait_until_accepting()
    }

    /// `pg_ctl stop -m fast -w`: the server is down (connections refused) until
    /// [`start_again`](Self::start_again).
    ///
    /// # Errors
    /// When the server is not running or does not stop in time.
    pub fn stop(&self) -> Result<(), HarnessError> {
        self.pg_ctl("stop", &["-m", "fast"])
    }

    /// `pg_ctl start -w` after [`stop`](Self::stop), same port and directory; returns once the
    /// server accepts connections.
    ///
    /// # Errors
    /// When the server does not start (say, another process took the port meanwhile).
    pub fn start_again(&self) -> Result<(), HarnessError> {
        self.pg_ctl("start", &[])?;
        self.wait_until_accepting()
    }

    /// Whether the server accepts connections now (`pg_isready`, else a TCP connect).
    pub fn is_running(&self) -> bool {
        let Some(pg_isready) = self.tools.pg_isready() else {
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
            return TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok();
        };
        let mut command = Command::new(pg_isready);
        command.args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-t", "2"]);
        command.arg("-p").arg(self.port.to_string());
        isolate_from_libpq_env(&mut command);
        run(command).is_ok_and(|output| output.status.success())
    }

    fn init(&self) -> Result<(), HarnessError> {
        let mut initdb = self.tools.server_command("initdb");
        initdb.arg("-D").arg(&self.data_dir).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run_checked(initdb, None)?;
        let conf = self.data_dir.join("postgresql.conf");
        let io_error =
            |source| HarnessError::Io { action: "append to", path: conf.clone(), source };
        let mut file = OpenOptions::new().append(true).open(&conf).map_err(io_error)?;
        writeln!(file, "\ninclude '{CONF_FILE}'").map_err(io_error)
    }

    /// Starts the server on a free port, trying another when that one is taken meanwhile.
    fn launch(&mut self, settings: &[(&str, &str)]) -> Result<(), HarnessError> {
        for attempt in 1..=START_ATTEMPTS {
            self.take_free_port()?;
            self.write_settings(settings)?;
            let log_start = fs::metadata(&self.log).map_or(0, |meta| meta.len());
            let Err(error) = self.pg_ctl("start", &[]) else {
                return self.wait_until_accepting();
            };
            if !log_since(&self.log, log_start).contains("Address already in use") {
                return Err(error);
            }
            tracing::debug!(
                cluster.port = self.port,
                attempt,
                "port taken meanwhile; trying another"
            );
        }
        Err(HarnessError::PortsTaken {
            data_dir: self.data_dir.clone(),
            attempts: START_ATTEMPTS,
            log: self.log.clone(),
            log_tail: log_tail(&self.log),
        })
    }

    fn write_settings(&self, settings: &[(&str, &str)]) -> Result<(), HarnessError> {
        let socket_dir = self.dir.to_string_lossy();
        // Too long a path would stop the server; TCP alone is enough then.
        let socket_dir = if socket_dir.len() + ".s.PGSQL.65535.lock".len() < MAX_SOCKET_PATH {
            socket_dir
        } else {
            "".into()
        };
        let mut text = String::from("# Written by strata-test-support.\n");
        let fixed = [
            ("listen_addresses", "127.0.0.1"),
            ("port", &self.port.to_string()),
            ("unix_socket_directories", socket_dir.as_ref()),
            ("fsync", "off"),
        ];
        for (key, value) in fixed.iter().chain(settings) {
            let _ = writeln!(text, "{key} = '{}'", value.replace('\'', "''"));
        }
        let path = self.data_dir.join(CONF_FILE);
        let io_error = |source| HarnessError::Io { action: "write", path: path.clone(), source };
        fs::write(&path, text).map_err(io_error)?;
        if let Some(user) = self.tools.server_user() {
            chown(&path, Some(user.uid), Some(user.gid)).map_err(io_error)?;
        }
        Ok(())
    }

    fn pg_ctl(&self, action: &str, options: &[&str]) -> Result<(), HarnessError> {
        let mut command = self.tools.server_command("pg_ctl");
        command.arg("-D").arg(&self.data_dir).args(["-w", "-t", PG_CTL_WAIT_SECS]).args(options);
        if action != "stop" {
            // Also keeps the server from holding our output pipes open.
            command.arg("-l").arg(&self.log);
        }
        command.arg(action);
        run_checked(command, Some(&self.log)).map(drop)
    }

    fn wait_until_accepting(&self) -> Result<(), HarnessError> {
        let began = Instant::now();
        while !self.is_running() {
            if began.elapsed() > ACCEPT_TIMEOUT {
                return Err(HarnessError::NotAccepting {
                    data_dir: self.data_dir.clone(),
                    port: self.port,
                    waited_secs: ACCEPT_TIMEOUT.as_secs(),
                    log: self.log.clone(),
                    log_tail: log_tail(&self.log),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Moves this cluster to a port free on 127.0.0.1 now and not held by another cluster of
    /// this process (so that a stopped cluster keeps its port).
    fn take_free_port(&mut self) -> Result<(), HarnessError> {
        let mut ports = PORTS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut last_error = None;
        for _ in 0..20 {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|socket| socket.local_addr())
            {
                Ok(address) if !ports.contains(&address.port()) => {
                    ports.remove(&self.port);
                    ports.insert(address.port());
                    self.port = address.port();
                    return Ok(());
                }
                Ok(_) => {}
                Err(error) => last_error = Some(error),
            }
        }
        Err(HarnessError::FreePort(last_error.unwrap_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "every port offered is held by this process",
            )
        })))
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        stop_immediately(&self.tools, &self.dir);
        PORTS.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.port);
        if let Err(error) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(cluster.dir = %self.dir.display(), %error, "could not remove a test cluster");
        }
    }
}

/// `pg_ctl stop -m immediate` on the cluster in `cluster_dir` if its server may be running;
/// failures are ignored (the directory is deleted next, which also ends a server left over).
pub(crate) fn stop_immediately(tools: &Toolchain, cluster_dir: &Path) {
    let data_dir = cluster_dir.join("data");
    if !data_dir.join("postmaster.pid").exists() {
        return;
    }
    let mut command = tools.server_command("pg_ctl");
    command.arg("-D").arg(&data_dir).args([
        "-m",
        "immediate",
        "-w",
        "-t",
        PG_CTL_WAIT_SECS,
        "stop",
    ]);
    if let Err(error) = run_checked(command, None) {
        tracing::debug!(%error, "pg_ctl stop -m immediate failed");
    }
}

/// The log's text after byte `start`.
fn log_since(log: &Path, start: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = fs::File::open(log)
        && file.seek(SeekFrom::Start(start)).is_ok()
    {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Clears the libpq variables that could send a client elsewhere or demand what the private
/// cluster does not offer (TLS, a service file, options).
fn isolate_from_libpq_env(command: &mut Command) {
    for name in
        ["PGSERVICE", "PGSERVICEFILE", "PGHOSTADDR", "PGOPTIONS", "PGSSLMODE", "PGREQUIRESSL"]
    {
        command.env_remove(name);
    }
    command.env("PGCONNECT_TIMEOUT", "10");
}
