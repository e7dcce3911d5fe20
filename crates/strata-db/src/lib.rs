//! strata-db: the typed, compile-time checked data layer of a multi-tenant work tracker.
//!
//! Every statement is written in SQL and checked against the real schema by sqlx's macros
//! (recorded in `.sqlx/` for offline builds). Every function takes the connection first, so
//! the caller owns the transaction; tenant-owned operations also take a [`Scope`], and run
//! inside `scope.begin(conn)` so row-level security sees the same tenant as the `WHERE`.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), strata_db::Error> {
//! use strata_db::{organizations, projects, users};
//! let mut conn = pool.acquire().await?;
//! let ada = users::create(&mut *conn, &users::NewUser { email: "ada@example.com", display_name: "Ada" }).await?;
//! let new = organizations::NewOrganization { slug: "acme", name: "Acme" };
//! let (_org, scope) = organizations::create_with_owner(&mut conn, &new, ada.id).await?;
//! let mut tx = scope.begin(&mut conn).await?;
//! let ops = projects::create(&mut tx, &scope, &projects::NewProject { key: "OPS", name: "Operations", description: "" }).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

pub mod audit;
pub mod comments;
mod error;
mod ids;
pub mod memberships;
pub mod organizations;
pub mod outbox;
mod pool;
pub mod projects;
pub mod retry;
mod scope;
pub mod tasks;
pub mod users;

pub use error::{Error, constraints};
pub use ids::{AuditEventId, CommentId, OrganizationId, OutboxEventId, ProjectId, TaskId, UserId};
pub use pool::{Pool, PoolSettings, PooledConnection};
pub use scope::{Role, Scope};
