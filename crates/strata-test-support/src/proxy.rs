//! A TCP proxy that injects faults between the code under test and a PostgreSQL server: cut
//! every connection, cut one in the middle of a result, add latency, go silent (a blackhole),
//! or refuse new connections.
//!
//! Written here rather than taken from a crate: toxiproxy and its Rust port noxious are servers
//! driven over HTTP (a process to install and manage per test), and what the fault tests need
//! is five switches on one in-process object, about 200 lines on tokio. The proxy runs on a
//! thread and runtime of its own, so a test's own runtime (even a current-thread one that
//! blocks) never starves it, and its switches are plain calls from sync or async code.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::HarnessError;

/// The size of one forwarded chunk.
const CHUNK: usize = 16 * 1024;

/// A fault-injecting proxy on 127.0.0.1 in front of `upstream`. Dropping it closes every
/// connection and stops its thread.
///
/// ```no_run
/// # fn demo() -> Result<(), strata_test_support::HarnessError> {
/// let cluster = strata_test_support::PrivateCluster::start()?;
/// let proxy = strata_test_support::FaultProxy::start(cluster.port())?;
/// let url = proxy.url(&cluster, "postgres"); // the code under test connects here
/// proxy.cut_all(); // every open connection is closed now
/// proxy.set_blackhole(true); // bytes stop moving; new connections are accepted, then silence
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

/// The switches, read by every connection's tasks.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    /// Each change closes every connection open at the time (`cut_all`).
    cuts: watch::Sender<u64>,
    /// Nothing moves while true (`set_blackhole`).
    silent: watch::Sender<bool>,
    /// New connections are reset at once while true (`set_refuse`).
    refuse: AtomicBool,
    /// Added before each forwarded chunk, in microseconds (`set_latency`).
    latency_us: AtomicU64,
    /// When non-zero, the next connection whose server-to-client bytes pass this many (counted
    /// from when it was armed) is cut there, in the middle of what it was sending.
    cut_after: AtomicU64,
    /// Connections accepted so far.
    accepted: AtomicU64,
    /// Connections cut by a fault (not those that ended on their own).
    cut: AtomicU64,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to 127.0.0.1:`upstream_port`.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Proxy`] when no port can be bound or the thread cannot start.
    pub fn start(upstream_port: u16) -> Result<Self, HarnessError> {
        let io_error = |what: &'static str| move |source| HarnessError::Proxy { what, source };
        let listener = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(io_error("binding a port on 127.0.0.1"))?;
        listener.set_nonblocking(true).map_err(io_error("making its port non-blocking"))?;
        let port = listener.local_addr().map_err(io_error("reading its port"))?.port();
        let shared = Arc::new(Shared {
            upstream: SocketAddr::from((Ipv4Addr::LOCALHOST, upstream_port)),
            cuts: watch::Sender::new(0),
            silent: watch::Sender::new(false),
            refuse: AtomicBool::new(false),
            latency_us: AtomicU64::new(0),
            cut_after: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            cut: AtomicU64::new(0),
        });
        let (shutdown, stop) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_error("building its runtime"))?;
        let accepting = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || runtime.block_on(accept_loop(listener, accepting, stop)))
            .map_err(io_error("spawning its thread"))?;
        Ok(Self { port, shared, shutdown, thread: Some(thread) })
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `cluster`'s URL for `database` with the proxy's port in place of the server's.
    pub fn url(&self, cluster: &crate::PrivateCluster, database: &str) -> String {
        cluster.url(database).replace(&format!(":{}/", cluster.port()), &format!(":{}/", self.port))
    }

    /// Closes every connection open now, both sides, as a network failure or a proxy restart
    /// would; new connections are accepted as before.
    pub fn cut_all(&self) {
        self.shared.cuts.send_modify(|generation| *generation += 1);
    }

    /// Arms a cut in the middle of a result: the first connection to send `bytes` more from
    /// the server to the client is closed there, after a part of what it was sending.
    pub fn cut_after_server_bytes(&self, bytes: u64) {
        self.shared.cut_after.store(bytes.max(1), Ordering::SeqCst);
    }

    /// Adds `latency` before each forwarded chunk, in both directions (`Duration::ZERO` for
    /// none).
    pub fn set_latency(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(micros, Ordering::SeqCst);
    }

    /// While on, nothing moves: open connections stay open and silent (bytes already read are
    /// held, closes are not passed on), and new connections are accepted and never answered.
    /// Turned off, everything held moves on.
    pub fn set_blackhole(&self, on: bool) {
        self.shared.silent.send_replace(on);
    }

    /// While on, new connections are reset as soon as they are accepted (the client sees a
    /// refused or reset connection); open connections are left alone.
    pub fn set_refuse(&self, on: bool) {
        self.shared.refuse.store(on, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections closed by a fault so far (a cut, or a cut mid-result).
    pub fn cut_count(&self) -> u64 {
        self.shared.cut.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        self.cut_all();
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

async fn accept_loop(listener: StdListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Ok(listener) = TcpListener::from_std(listener) else { return };
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                if shared.refuse.load(Ordering::SeqCst) {
                    // Linger 0: close with a reset, as a refusing host or firewall answers.
                    drop(client.set_zero_linger());
                    continue;
                }
                tokio::spawn(serve(client, shared.clone()));
            }
        }
    }
}

/// Forwards one connection until either side closes it or a fault cuts it.
async fn serve(client: TcpStream, shared: Arc<Shared>) {
    let mut cuts = shared.cuts.subscribe();
    cuts.mark_unchanged();
    let run = async {
        until_audible(&shared).await;
        let server = TcpStream::connect(shared.upstream).await?;
        drop(client.set_nodelay(true));
        drop(server.set_nodelay(true));
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::select! {
            result = pump(client_read, server_write, &shared, false) => result,
            result = pump(server_read, client_write, &shared, true) => result,
        }
    };
    tokio::select! {
        _ = cuts.changed() => {
            shared.cut.fetch_add(1, Ordering::SeqCst);
        }
        result = run => {
            if matches!(&result, Err(e) if e.kind() == io::ErrorKind::ConnectionAborted) {
                shared.cut.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Copies `from` to `to` chunk by chunk, obeying the switches. `downstream` is the server to
/// client direction, where a cut mid-result applies.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    shared: &Shared,
    downstream: bool,
) -> io::Result<()> {
    let mut buffer = vec![0; CHUNK];
    loop {
        until_audible(shared).await;
        let read = from.read(&mut buffer).await?;
        // What was read while the proxy went silent is held until it speaks again.
        until_audible(shared).await;
        if read == 0 {
            return to.shutdown().await;
        }
        let latency = shared.latency_us.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(Duration::from_micros(latency)).await;
        }
        let mut chunk = &buffer[..read];
        if downstream && let Some(keep) = take_cut(shared, read as u64) {
            chunk = &chunk[..usize::try_from(keep).unwrap_or(0)];
            to.write_all(chunk).await?;
            return Err(io::Error::from(io::ErrorKind::ConnectionAborted));
        }
        to.write_all(chunk).await?;
    }
}

/// Counts `bytes` against an armed mid-result cut: `Some(n)` when this chunk crosses it (send
/// its first `n` bytes, then cut), disarming it.
fn take_cut(shared: &Shared, bytes: u64) -> Option<u64> {
    let mut keep = None;
    let _ = shared.cut_after.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
        keep = None;
        match left {
            0 => None,
            left if left <= bytes => {
                keep = Some(left - 1);
                Some(0)
            }
            left => Some(left - bytes),
        }
    });
    keep
}

/// Returns at once unless the proxy is silent, else when it speaks again.
async fn until_audible(shared: &Shared) {
    let mut silent = shared.silent.subscribe();
    drop(silent.wait_for(|silent| !silent).await);
}
