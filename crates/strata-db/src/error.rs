//! The crate's one error type, and the one place database errors are mapped to it: by
//! SQLSTATE and constraint name.

/// The names of the constraints (and unique indexes) the mapping knows, as the migrations
/// create them.
pub mod constraints {
    /// `organizations.slug` is unique.
    pub const ORGANIZATIONS_SLUG_KEY: &str = "organizations_slug_key";
    /// `organizations.slug` is lowercase letters, digits and hyphens.
    pub const ORGANIZATIONS_SLUG_FORMAT: &str = "organizations_slug_format";
    /// `organizations.name` is not blank.
    pub const ORGANIZATIONS_NAME_NOT_BLANK: &str = "organizations_name_not_blank";
    /// `lower(users.email)` is unique.
    pub const USERS_EMAIL_KEY: &str = "users_email_key";
    /// `users.email` looks like an address.
    pub const USERS_EMAIL_FORMAT: &str = "users_email_format";
    /// `users.display_name` is not blank.
    pub const USERS_DISPLAY_NAME_NOT_BLANK: &str = "users_display_name_not_blank";
    /// A user is a member of an organization once.
    pub const MEMBERSHIPS_PKEY: &str = "memberships_pkey";
    /// A membership names an existing user.
    pub const MEMBERSHIPS_USER_ID_FKEY: &str = "memberships_user_id_fkey";
    /// An organization keeps at least one owner (raised by a trigger, which also serializes
    /// concurrent demotions and removals of owners).
    pub const MEMBERSHIPS_OWNER_REQUIRED: &str = "memberships_owner_required";
    /// A project key is unique in its organization.
    pub const PROJECTS_KEY_KEY: &str = "projects_key_key";
    /// A project key is 2-10 uppercase letters and digits.
    pub const PROJECTS_KEY_FORMAT: &str = "projects_key_format";
    /// `projects.name` is not blank.
    pub const PROJECTS_NAME_NOT_BLANK: &str = "projects_name_not_blank";
    /// A task's assignee is a member of the task's organization.
    pub const TASKS_ASSIGNEE_FKEY: &str = "tasks_assignee_fkey";
    /// `tasks.title` is not blank.
    pub const TASKS_TITLE_NOT_BLANK: &str = "tasks_title_not_blank";
    /// `tasks.priority` is 0 to 4.
    pub const TASKS_PRIORITY_RANGE: &str = "tasks_priority_range";
    /// A status change is in `task_status_transitions` (raised by a trigger).
    pub const TASKS_STATUS_TRANSITION: &str = "tasks_status_transition";
    /// A task's ID is unique in its organization (the key is `(organization_id, id)`): a
    /// create retried with the same ID after an in-doubt outcome meets the one that landed.
    pub const TASKS_PKEY: &str = "tasks_pkey";
    /// A task number is unique in its project.
    pub const TASKS_NUMBER_KEY: &str = "tasks_number_key";
    /// A comment's author is a member of the comment's organization.
    pub const COMMENTS_AUTHOR_FKEY: &str = "comments_author_fkey";
    /// `comments.body` is not blank.
    pub const COMMENTS_BODY_NOT_BLANK: &str = "comments_body_not_blank";
    /// An API token names an existing user.
    pub const API_TOKENS_USER_ID_FKEY: &str = "api_tokens_user_id_fkey";
    /// An API token's name is not blank.
    pub const API_TOKENS_NAME_NOT_BLANK: &str = "api_tokens_name_not_blank";
    /// An API token expires after it is issued.
    pub const API_TOKENS_EXPIRES_AFTER_CREATED: &str = "api_tokens_expires_after_created";
    /// `audit_events` refuses UPDATE, DELETE and TRUNCATE (raised by a trigger).
    pub const AUDIT_EVENTS_APPEND_ONLY: &str = "audit_events_append_only";
}

use constraints::*;

use crate::input::ValueProblem;

/// What a data-layer call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row does not exist, or is not visible in the caller's organization.
    #[error("{entity} not found")]
    NotFound {
        /// The kind of row, such as `"task"`.
        entity: &'static str,
    },
    /// A unique constraint refused the write.
    #[error("{message} (constraint {constraint})")]
    Conflict {
        /// The constraint's name, one of [`constraints`].
        constraint: &'static str,
        /// What conflicts, for a human.
        message: &'static str,
    },
    /// The row changed since the caller read it: re-read and retry.
    #[error("stale version: expected {expected}, the row is at {actual}")]
    Stale {
        /// The version the caller read.
        expected: i32,
        /// The version now stored.
        actual: i32,
    },
    /// The status change is not in the allowed-transition table.
    #[error("invalid transition: {message}")]
    InvalidTransition {
        /// The server's message, naming both statuses.
        message: String,
    },
    /// A check or reference of the schema refused the input.
    #[error("invalid input: {message} (constraint {constraint})")]
    Invalid {
        /// The constraint's name, one of [`constraints`].
        constraint: &'static str,
        /// What is wrong, for a human.
        message: &'static str,
    },
    /// A rule the data layer checks itself refused the input, before the database saw it: a
    /// malformed cursor or task key, a page size, a write to an archived project. Nothing was
    /// written.
    #[error("invalid input: {message}")]
    BadInput {
        /// What is wrong, for a human.
        message: &'static str,
    },
    /// A value the database cannot store or index: refused at the data layer's boundary,
    /// naming the field ([`crate::input`]), or by the server (field `"input"`,
    /// [`ValueProblem::Refused`]). Nothing was written.
    #[error("invalid {field}: {problem}")]
    InvalidValue {
        /// The field, as the input type names it (`title`, `labels`, `due_on` …).
        field: &'static str,
        /// What is wrong with it.
        problem: ValueProblem,
    },
    /// The caller may not do this in this organization (not a member, a too-weak role, or a
    /// row outside its tenant, as row-level security reports it).
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why, for a human.
        reason: &'static str,
    },
    /// A bearer token was refused ([`crate::tokens::authenticate`]); why is for logs and
    /// metrics, not for the caller.
    #[error("unauthenticated: {0}")]
    Unauthenticated(crate::tokens::TokenRefusal),
    /// A write was sent to a read-only server: a replica (`ReadPool` hands out replica
    /// connections for reads only), or a primary in read-only mode.
    #[error("cannot write on a read-only server (a replica): write through the primary's pool")]
    ReadOnly,
    /// The connection was lost, or stopped answering, after a commit (or a write that commits
    /// on its own: creating a user or an organization, settling outbox events) was sent and
    /// before the server answered: the write may or may not have been applied. See
    /// [`Retry::InDoubt`].
    #[error(
        "the connection was lost before the server confirmed the write: it may or may not have \
         been applied (read it back, or retry it if it is idempotent)"
    )]
    InDoubt(#[source] sqlx::Error),
    /// No connection could be opened: the last attempt's failure, in the server's or the
    /// pooler's own words (or the server setting that did not take). Returned at once when
    /// the refusal will come again (see [`crate::Pool::acquire`]); unavailable, and safe to
    /// retry, when it may pass (a server restarting, a network failure).
    #[error("could not open a database connection: {0}{hint}", hint = connect_hint(.0))]
    Connect(#[source] std::sync::Arc<sqlx::Error>),
    /// The configuration cannot make a pool (no URL, or an unusable one).
    #[error(transparent)]
    Config(#[from] strata_config::ConfigError),
    /// Any other database error, with its source.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

/// What a caller may do after an [`Error`]: [`Error::retry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing was applied, and the same call (the whole transaction, from `begin`) may succeed
    /// if made again: the database was unavailable or stopped answering before a commit, or
    /// the transaction lost a serialization conflict, a deadlock or a timeout. Wait first
    /// when [`Error::is_unavailable`].
    Safe,
    /// The write may or may not have been applied ([`Error::InDoubt`]). Retry only what is
    /// idempotent: a task created again with the same [`crate::tasks::NewTask::id`] answers
    /// [`Error::Conflict`] on [`constraints::TASKS_PKEY`] when the first one landed, and an
    /// update with the same expected version answers [`Error::Stale`]. Otherwise read first.
    InDoubt,
    /// Making the same call again fails the same way: change the input, or re-read first.
    No,
}

impl Error {
    /// Whether a retry is safe, in doubt, or pointless. Every error has one answer:
    ///
    /// - [`Retry::Safe`] for [`Error::is_unavailable`], [`Error::is_transaction_conflict`], a statement or
    ///   lock timeout (57014, 55P03), a connection that broke inside a transaction, which
    ///   the server then rolls back, or a cached statement whose plan a migration made stale
    ///   (0A000 `cached plan must not change result type`, 42804: the pool replaces the
    ///   connection, so the retry prepares it afresh).
    /// - [`Retry::InDoubt`] for [`Error::InDoubt`].
    /// - [`Retry::No`] for everything else (not found, conflicts, invalid input, stale versions,
    ///   forbidden, read-only, configuration, and database errors not listed above).
    pub fn retry(&self) -> Retry {
        match self {
            Self::InDoubt(_) => Retry::InDoubt,
            Self::Connect(_) if self.is_unavailable() => Retry::Safe,
            Self::Database(e)
                if self.is_unavailable()
                    || self.is_transaction_conflict()
                    || breaks_connection(e)
                    || plan_went_stale(e)
                    || sqlstate(e).is_some_and(|code| code == "57014" || code == "55P03") =>
            {
                Retry::Safe
            }
            _ => Retry::No,
        }
    }

    /// Whether the transaction lost to a concurrent one: a serialization failure (40001) or a
    /// deadlock (40P01), which [`crate::retry::with_retries`] reruns whole. One of the cases
    /// [`Error::retry`] calls safe to retry; ask that for any error.
    pub fn is_transaction_conflict(&self) -> bool {
        match self {
            Self::Database(e) => sqlstate(e).is_some_and(|code| code == "40001" || code == "40P01"),
            _ => false,
        }
    }

    /// Whether the database cannot be reached or cannot serve now, or the pool had no
    /// connection to give in time: nothing was done, and the same call may succeed later (an
    /// HTTP service answers 503 with `Retry-After`). Covers the pool's timeout and closing,
    /// I/O, TLS and protocol failures, the server shutting down, starting or out of
    /// connections (SQLSTATE 57P01-57P03, 53300), and a server that cannot reach another
    /// (08006, 08001, 08004, and Citus's "failure on connection marked as essential": a Citus
    /// worker that is down).
    pub fn is_unavailable(&self) -> bool {
        let e = match self {
            Self::Database(e) => e,
            // A refusal that will come again (a certificate the TLS library refuses, a wrong
            // password) is not an outage: waiting does not help.
            Self::Connect(e) if refuses_for_good(e) => return false,
            Self::Connect(e) => e.as_ref(),
            _ => return false,
        };
        matches!(
            e,
            sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::WorkerCrashed
        ) || sqlstate(e).is_some_and(|code| {
            code.starts_with("57P")
                || code == "53300"
                // A connection the server itself could not make or keep: Citus's coordinator
                // reports a worker it cannot reach as 08006 (08001, 08004 for a refused start).
                || matches!(code.as_ref(), "08006" | "08001" | "08004")
        }) || lost_a_worker(e)
    }
}

/// Whether Citus's coordinator lost a worker in the middle of the transaction: it aborts the
/// transaction with an internal error (XX000) that only its message tells apart (each message
/// here was seen in `tests/citus.rs`'s worker restart, or is libpq's for a lost connection). Nothing was
/// committed: a failure while committing aborts too (a worker lost after its part was
/// prepared commits later, when Citus recovers it, and the commit succeeds).
fn lost_a_worker(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| {
        let message = db.message();
        db.code().is_some_and(|code| code == "XX000")
            && [
                "failure on connection marked as essential",
                "connection to the remote node",
                // A worker's own words, or libpq's about it, relayed under XX000 (seen as a
                // worker stops in the middle of a COPY).
                "terminating connection due to administrator command",
                "server closed the connection unexpectedly",
                "connection not open",
                "could not receive data from server",
                "could not send data to server",
                "the database system is shutting down",
            ]
            .iter()
            .any(|said| message.contains(said))
    })
}

/// Whether a failure to open a connection will come again at once, so that a caller waiting
/// for a connection gets it now rather than after the acquire timeout: the server or the pooler
/// refused in its own words (a wrong password, a missing database, a start-up parameter it does
/// not take), a server setting did not take, or the TLS library refused the server's
/// certificate. Not a network failure, nor a server that is
/// starting, stopping or full (57P01-57P03, 53300), which a wait can outlast.
pub(crate) fn refuses_for_good(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Configuration(_) => true,
        // The same certificate will be refused again.
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => strata_config::tls_refusal(error).is_some(),
        sqlx::Error::Database(_) => {
            !sqlstate(error).is_some_and(|code| code.starts_with("57P") || code == "53300")
        }
        _ => false,
    }
}

/// Whether a prepared statement's plan no longer fits the schema, after a migration changed
/// the type of a column it returns: the server refuses to run the cached plan (SQLSTATE 0A000,
/// `cached plan must not change result type`), or, where the column comes through a function
/// returning a table's row type (`strata_task_by_id`), the plan is not invalidated at all and
/// fails on the row's new type (42804, `attribute 5 of type record has wrong type`). Nothing
/// ran; the same statement prepared afresh succeeds.
///
/// A compile-time checked statement meets 42804 (datatype mismatch) only when the schema
/// changed under it, so the code alone decides; 0A000 is also every other unsupported
/// feature, so its message does too.
pub(crate) fn plan_went_stale(error: &sqlx::Error) -> bool {
    error.as_database_error().is_some_and(|db| match db.code().as_deref() {
        Some("42804") => true,
        Some("0A000") => db.message().starts_with("cached plan must not"),
        _ => false,
    })
}

/// What to do about a connection failure whose cause the words alone do not say.
fn connect_hint(error: &sqlx::Error) -> String {
    if let Some(refusal) = strata_config::tls_refusal(error) {
        return format!(" ({refusal})");
    }
    let text = error.to_string();
    if text.contains("unsupported startup parameter") {
        " (a pooler refused a start-up parameter: set database.pooler to its pool_mode, \"session\" \
         or \"transaction\", and strata sends its settings after connecting instead)"
            .to_owned()
    } else {
        String::new()
    }
}

/// The SQLSTATE of a database error.
fn sqlstate(error: &sqlx::Error) -> Option<std::borrow::Cow<'_, str>> {
    error.as_database_error().and_then(|db| db.code())
}

/// The error of a write sent outside a transaction (a commit, or a statement that commits
/// on its own): [`Error::InDoubt`] when the connection failed before the server answered,
/// mapped as usual otherwise.
pub(crate) fn of_write(error: sqlx::Error) -> Error {
    if strata_config::is_outcome_unknown(&error) {
        Error::InDoubt(error)
    } else {
        Error::from(error)
    }
}

/// Whether `error` leaves its connection unusable (see [`strata_config::is_connection_lost`]).
pub(crate) use strata_config::is_connection_lost as breaks_connection;

#[derive(Clone, Copy)]
enum Kind {
    Conflict,
    Invalid,
    Forbidden,
}

/// The same key as [`TASKS_PKEY`], its columns in the other order (comments' foreign key
/// references it): a duplicate id meets this index first, and is reported as [`TASKS_PKEY`].
const TASKS_ID_ORGANIZATION_ID_KEY: &str = "tasks_id_organization_id_key";

/// A constraint's name as the schema has it. On Citus a violation on a shard names the shard's
/// copy, with `_` and the shard's id in it: appended (`projects_key_key_102045`), or, for a
/// name a trigger makes from its table's (`audit_events_102148_append_only`), inside. A
/// segment of digits goes when the name without it is one of ours.
fn unsharded(name: &str) -> &str {
    let ours = |n: &str| -> Option<&'static str> {
        [TASKS_STATUS_TRANSITION, TASKS_ID_ORGANIZATION_ID_KEY]
            .into_iter()
            .chain(KNOWN.iter().map(|(k, ..)| *k))
            .find(|k| *k == n)
    };
    if ours(name).is_some() {
        return name;
    }
    let parts: Vec<&str> = name.split('_').collect();
    for (at, part) in parts.iter().enumerate() {
        if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            let mut rest = parts.clone();
            rest.remove(at);
            if let Some(known) = ours(&rest.join("_")) {
                return known;
            }
        }
    }
    name
}

/// The constraint of an error that arrives without its name: Citus's coordinator relays a
/// worker's error with its SQLSTATE, message, detail, hint and context, but not its
/// constraint. The server's own messages quote the name (`… violates unique constraint "X"`);
/// the errors this schema's triggers raise are known by their messages.
fn relayed_constraint(message: &str) -> Option<&str> {
    if let Some((_, rest)) = message.split_once("constraint \"") {
        return rest.split_once('"').map(|(name, _)| name);
    }
    [
        ("task status cannot change from ", TASKS_STATUS_TRANSITION),
        ("an organization keeps at least one owner", MEMBERSHIPS_OWNER_REQUIRED),
        (" is append-only: ", AUDIT_EVENTS_APPEND_ONLY),
    ]
    .into_iter()
    .find(|(said, _)| message.contains(said))
    .map(|(_, constraint)| constraint)
}

/// Known constraints: name, what a violation means, message.
const KNOWN: &[(&str, Kind, &str)] = &[
    (ORGANIZATIONS_SLUG_KEY, Kind::Conflict, "an organization with this slug already exists"),
    (
        ORGANIZATIONS_SLUG_FORMAT,
        Kind::Invalid,
        "a slug is 1-63 lowercase letters, digits and hyphens",
    ),
    (ORGANIZATIONS_NAME_NOT_BLANK, Kind::Invalid, "an organization's name must not be blank"),
    (USERS_EMAIL_KEY, Kind::Conflict, "a user with this email already exists"),
    (USERS_EMAIL_FORMAT, Kind::Invalid, "an email address needs one @ and no spaces"),
    (USERS_DISPLAY_NAME_NOT_BLANK, Kind::Invalid, "a display name must not be blank"),
    (MEMBERSHIPS_PKEY, Kind::Conflict, "the user is already a member of the organization"),
    (MEMBERSHIPS_USER_ID_FKEY, Kind::Invalid, "no such user"),
    (MEMBERSHIPS_OWNER_REQUIRED, Kind::Invalid, "an organization keeps at least one owner"),
    (
        PROJECTS_KEY_KEY,
        Kind::Conflict,
        "a project with this key already exists in the organization",
    ),
    (
        PROJECTS_KEY_FORMAT,
        Kind::Invalid,
        "a project key is 2-10 uppercase letters and digits, starting with a letter",
    ),
    (PROJECTS_NAME_NOT_BLANK, Kind::Invalid, "a project's name must not be blank"),
    (TASKS_ASSIGNEE_FKEY, Kind::Invalid, "the assignee is not a member of the organization"),
    (TASKS_TITLE_NOT_BLANK, Kind::Invalid, "a task's title must not be blank"),
    (TASKS_PRIORITY_RANGE, Kind::Invalid, "priority is 0 (highest) to 4 (lowest)"),
    (TASKS_NUMBER_KEY, Kind::Conflict, "a task with this number already exists in the project"),
    (TASKS_PKEY, Kind::Conflict, "a task with this ID already exists"),
    (COMMENTS_BODY_NOT_BLANK, Kind::Invalid, "a comment must not be blank"),
    (
        COMMENTS_AUTHOR_FKEY,
        Kind::Invalid,
        "a member who has written comments in the organization stays a member",
    ),
    (API_TOKENS_USER_ID_FKEY, Kind::Invalid, "no such user"),
    (API_TOKENS_NAME_NOT_BLANK, Kind::Invalid, "a token's name must not be blank"),
    (API_TOKENS_EXPIRES_AFTER_CREATED, Kind::Invalid, "a token expires after it is issued"),
    (AUDIT_EVENTS_APPEND_ONLY, Kind::Forbidden, "the audit log is append-only"),
];

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        let Some(db) = error.as_database_error() else {
            return Self::Database(error);
        };
        let code = db.code().unwrap_or_default();
        let constraint = db.constraint().or_else(|| relayed_constraint(db.message()));
        if constraint.map(unsharded) == Some(TASKS_STATUS_TRANSITION) {
            return Self::InvalidTransition { message: db.message().to_owned() };
        }
        let name = match constraint.map(unsharded) {
            Some(TASKS_ID_ORGANIZATION_ID_KEY) => Some(TASKS_PKEY),
            other => other,
        };
        if let Some(&(constraint, kind, message)) =
            name.and_then(|name| KNOWN.iter().find(|(known, ..)| *known == name))
        {
            return match (kind, code.as_ref()) {
                (Kind::Conflict, "23505") => Self::Conflict { constraint, message },
                (Kind::Invalid, "23514" | "23503") => Self::Invalid { constraint, message },
                (Kind::Forbidden, _) => Self::Forbidden { reason: message },
                _ => Self::Database(error),
            };
        }
        // Values the server cannot store or index: a bad encoding (a NUL), a datetime or a
        // number out of range, a string too long for its type, an index entry or a tsvector
        // over the server's size limits. The data layer's own checks name the field first.
        if matches!(code.as_ref(), "22021" | "22P05" | "22008" | "22003" | "22001" | "54000") {
            return Self::InvalidValue { field: "input", problem: ValueProblem::Refused };
        }
        // read_only_sql_transaction: a write on a hot standby.
        if code == "25006" {
            return Self::ReadOnly;
        }
        // Row-level security refused a row outside the transaction's organization.
        if code == "42501" {
            return Self::Forbidden { reason: "the row is outside the caller's organization" };
        }
        Self::Database(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_means_the_database_or_the_pool_could_not_serve() {
        let io = || sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        for error in [sqlx::Error::PoolTimedOut, sqlx::Error::PoolClosed, io()] {
            assert!(Error::Database(error).is_unavailable());
        }
        assert!(!Error::Database(sqlx::Error::RowNotFound).is_unavailable());
        assert!(!Error::NotFound { entity: "task" }.is_unavailable());
        assert!(!Error::Stale { expected: 1, actual: 2 }.is_unavailable());
    }

    #[test]
    fn a_relayed_error_is_known_by_its_message() {
        for (message, constraint) in [
            (
                "duplicate key value violates unique constraint \"projects_key_key_102052\"",
                "projects_key_key_102052",
            ),
            (
                "insert or update on table \"tasks_102084\" violates foreign key constraint \"tasks_assignee_fkey_102084\"",
                "tasks_assignee_fkey_102084",
            ),
            (
                "new row for relation \"tasks_102084\" violates check constraint \"tasks_title_not_blank_102084\"",
                "tasks_title_not_blank_102084",
            ),
            ("task status cannot change from done to todo", TASKS_STATUS_TRANSITION),
            ("an organization keeps at least one owner", MEMBERSHIPS_OWNER_REQUIRED),
            ("audit_events_102148 is append-only: UPDATE refused", AUDIT_EVENTS_APPEND_ONLY),
        ] {
            assert_eq!(relayed_constraint(message), Some(constraint), "{message}");
        }
        assert_eq!(relayed_constraint("division by zero"), None);
    }

    #[test]
    fn a_shards_constraint_name_is_the_schemas() {
        assert_eq!(unsharded("projects_key_key_102045"), PROJECTS_KEY_KEY);
        assert_eq!(unsharded(PROJECTS_KEY_KEY), PROJECTS_KEY_KEY);
        assert_eq!(unsharded("tasks_status_transition_102084"), TASKS_STATUS_TRANSITION);
        assert_eq!(unsharded("somebody_elses_102045"), "somebody_elses_102045");
        assert_eq!(unsharded("projects_key_key_x1"), "projects_key_key_x1");
        assert_eq!(unsharded("audit_events_102148_append_only"), AUDIT_EVENTS_APPEND_ONLY);
    }

    #[test]
    fn a_connect_failure_is_unavailable_unless_it_refuses_for_good() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = Error::Connect(std::sync::Arc::new(sqlx::Error::Io(refused)));
        assert!(error.is_unavailable());
        assert_eq!(error.retry(), Retry::Safe);
        assert!(!refuses_for_good(&sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into())));
        let setting = sqlx::Error::Configuration("database.statement_timeout did not take".into());
        assert!(refuses_for_good(&setting));
        let error = Error::Connect(std::sync::Arc::new(setting));
        assert!(!error.is_unavailable());
        assert_eq!(error.retry(), Retry::No);
        assert!(error.to_string().contains("database.statement_timeout"), "{error}");
    }
}
