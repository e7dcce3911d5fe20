//! The command line at a person's terminal: a live progress display of the library's
//! [`Progress`] news, colour that `NO_COLOR`, `--color=never` and a pipe turn off, and Ctrl-C
//! or SIGTERM that cancel the running statement and say what they left.

use std::future::Future;
use std::io::IsTerminal as _;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata_migrate::MigrateError;
use strata_migrate::cancel::Canceller;
use strata_migrate::observe::{Observer, Progress};
use tokio::signal::unix::{SignalKind, signal};

/// When to show the live progress display (`--progress`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum When {
    /// At a terminal (standard error), with text output.
    Auto,
    /// Always, also when standard error is not a terminal.
    Always,
    /// Never: log lines instead.
    Never,
}

/// The live display of a running command: one line that names the migration (of how many),
/// the statement's phase and percentage, the time so far, and what it waits on.
pub(crate) struct Live {
    bar: ProgressBar,
}

impl Live {
    /// A display on standard error, if `when` asks for one here; `json` output never has one.
    pub(crate) fn start(when: When, json: bool) -> Option<Self> {
        let show = !json
            && match when {
                When::Never => false,
                When::Always => true,
                When::Auto => std::io::stderr().is_terminal(),
            };
        if !show {
            return None;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        let style =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {prefix}{wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message("connecting");
        bar.enable_steady_tick(Duration::from_millis(100));
        Some(Self { bar })
    }

    /// What the library tells the display.
    pub(crate) fn observer(&self) -> Observer {
        let bar = self.bar.clone();
        Observer::new(move |news| match news {
            Progress::LockWait { waited, holder } => bar.set_message(format!(
                "waiting {:.0} s for the migration lock, held by {holder}",
                waited.as_secs_f64()
            )),
            Progress::Migration { index, total, version, description, up } => {
                bar.set_prefix(format!("[{index}/{total}] "));
                let doing = if *up { "applying" } else { "reverting" };
                bar.set_message(format!("{doing} {version} {description}"));
            }
            Progress::Running { what, phase, percent, .. } => {
                let phase = phase.as_deref().map(|p| format!(": {p}")).unwrap_or_default();
                let percent = percent.map(|p| format!(" {p}%")).unwrap_or_default();
                bar.set_message(format!("{what}{phase}{percent}"));
            }
            Progress::Blocked { what, pid, state, since, .. } => bar.set_message(format!(
                "{what}: waiting on a lock held by pid {pid} ({state}, query started {since})"
            )),
            Progress::Retry { version, retry, of } => bar.set_message(format!(
                "{version}: lock_timeout expired, rolled back; retry {retry} of {of}"
            )),
            Progress::Done { version, elapsed } => {
                bar.set_message(format!("{version} done in {:.1} s", elapsed.as_secs_f64()));
            }
            _ => {}
        })
    }

    /// Removes the display (the command's own output follows).
    pub(crate) fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// Colour for `--color`: `auto` leaves it to anstream (a terminal without `NO_COLOR`).
pub(crate) fn color(choice: clap::ColorChoice) {
    let choice = match choice {
        clap::ColorChoice::Always => anstream::ColorChoice::Always,
        clap::ColorChoice::Never => anstream::ColorChoice::Never,
        clap::ColorChoice::Auto => anstream::ColorChoice::Auto,
    };
    choice.write_global();
}

/// `text` in `color`; the escape codes are stripped on output where colour is off.
pub(crate) fn paint(color: AnsiColor, text: &str) -> String {
    let style = Style::new().fg_color(Some(color.into()));
    format!("{style}{text}{style:#}")
}

/// The signal that stopped a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill`, a deploy tool, a container stopping.
    Terminate,
}

impl Signal {
    /// The exit code: 128 and the signal's number, as shells report it.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Self::Interrupt => 130,
            Self::Terminate => 143,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        }
    }
}

/// How long the command waits, after asking the server to cancel, for its statement to end.
const GRACE: Duration = Duration::from_secs(3);

/// What an interrupted command got to.
#[derive(Debug)]
pub(crate) struct Interrupted {
    /// The signal.
    pub(crate) signal: Signal,
    /// The command's own error once the statement was cancelled, when it ended within the
    /// grace period (it says which statement a rerun resumes at).
    pub(crate) error: Option<MigrateError>,
    /// Whether the server was asked to cancel a statement.
    pub(crate) cancelled: bool,
}

/// Ctrl-C and SIGTERM, caught from the start of a writing command (before it connects), so
/// that one arriving early is not the default exit without a word.
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Catches both; `None` where they cannot be caught (the default then applies).
    pub(crate) fn catch() -> Option<Self> {
        let interrupt = signal(SignalKind::interrupt()).ok()?;
        let terminate = signal(SignalKind::terminate()).ok()?;
        Some(Self { interrupt, terminate })
    }

    /// The next one.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }
}

/// Runs `work` until it ends or a signal comes. On Ctrl-C or SIGTERM, asks the server to
/// cancel the session's running statement (from a connection of `canceller`'s own) and waits
/// up to [`GRACE`] for `work` to end; a second signal ends the process at once.
pub(crate) async fn interruptible<T>(
    canceller: &Canceller,
    signals: Option<&mut Signals>,
    work: impl Future<Output = Result<T, MigrateError>>,
) -> Result<Result<T, MigrateError>, Interrupted> {
    let Some(signals) = signals else { return Ok(work.await) };
    tokio::pin!(work);
    let signal = tokio::select! {
        result = &mut work => return Ok(result),
        signal = signals.next() => signal,
    };
    eprintln!(
        "\n{}: cancelling the running statement (session pid {}); {} again to stop at once",
        signal.name(),
        canceller.pid(),
        signal.name()
    );
    let stopping = async {
        let cancelled = canceller.cancel().await.unwrap_or(false);
        let ended = tokio::time::timeout(GRACE, &mut work).await.ok();
        (cancelled, ended)
    };
    tokio::select! {
        (cancelled, ended) = stopping => Err(Interrupted {
            signal,
            error: ended.and_then(Result::err),
            cancelled,
        }),
        again = signals.next() => {
            eprintln!("{}: stopping now; the server ends the session within about a second", again.name());
            std::process::exit(i32::from(again.exit_code()));
        }
    }
}
