//! strata-db: the typed, compile-time checked data layer of a multi-tenant work tracker.
//!
//! Every statement is written in SQL and checked against the real schema by sqlx's macros
//! (recorded in `.sqlx/` for offline builds). Connections come from [`Pool`]; functions take
//! the connection first, so the caller owns the transaction. Tenant-owned operations take a
//! [`TenantTx`]: a transaction that [`TenantTx::begin`] opens only after checking the caller's
//! membership, with the organization set for row-level security. Forgetting it does not
//! compile (see [`tenant`]).
//!
//! ```no_run
//! # async fn demo(config: strata_config::Config) -> Result<(), strata_db::Error> {
//! use strata_db::{organizations, projects, users, Pool, TenantTx};
//! let pool = Pool::from_config(&config.database)?;
//! let mut conn = pool.acquire().await?;
//! let ada = users::create(&mut conn, &users::NewUser { email: "ada@example.com", display_name: "Ada" }).await?;
//! let new = organizations::NewOrganization { slug: "acme", name: "Acme" };
//! let (acme, _) = organizations::create_with_owner(&mut conn, &new, ada.id).await?;
//! // A request: membership check and tenant in one transaction, then the work, then commit.
//! let mut tx = TenantTx::begin(&mut conn, acme.id, ada.id).await?;
//! let ops = projects::create(&mut tx, &projects::NewProject { key: "OPS", name: "Operations", description: "" }).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! # On Citus
//!
//! The same statements run on a Citus coordinator, where the migrations distribute the tenant
//! tables by organization. Two habits of the SQL here come from it:
//! - the tenant is set with `strata_set_tenant()`, which Citus's `SET LOCAL` carries to the
//!   workers ([`TenantTx`]);
//! - every audit and outbox insert that selects from another part of its statement ends in
//!   `RETURNING`. Citus runs such an insert apart from the rest; without `RETURNING` it sends
//!   the rows to the shard as `COPY`, which PostgreSQL refuses on a table under row-level
//!   security, and with it as an `INSERT … SELECT` on the shard, which row-level security checks.
//!   `tests/citus.rs` fails on the first insert that forgets it.

pub mod audit;
pub mod comments;
mod error;
mod exec;
mod ids;
pub mod input;
pub mod memberships;
pub mod organizations;
pub mod outbox;
pub mod page;
mod pool;
pub mod projects;
pub mod replicas;
pub mod retry;
mod scope;
mod settings;
pub mod tasks;
pub mod tenant;
pub mod tokens;
pub mod users;

pub use error::{Error, Retry, constraints};
pub use ids::{
    ApiTokenId, AuditEventId, CommentId, OrganizationId, OutboxEventId, ProjectId, TaskId, UserId,
};
pub use input::ValueProblem;
pub use page::{Page, PageRequest};
pub use pool::{Pool, PoolMetrics, PoolSettings, PooledConnection};
pub use replicas::{ReadConnection, ReadPool, WalPosition};
pub use scope::{Role, Scope};
pub use tenant::{AsConnection, Tenant, TenantConn, TenantTx};

/// The schema this crate's statements are written for: the project's migrations
/// (`migrations/` at the workspace root), embedded at build time. Apply them with the runner
/// (`strata_migrate::run(&config, &strata_db::MIGRATOR)`) or sqlx's own `Migrator::run`; the
/// `strata-migrate` binary embeds the same files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");
