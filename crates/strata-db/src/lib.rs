//! strata-db: the typed, compile-time checked data layer. Every statement is written in SQL
//! and checked against the real schema by sqlx's macros (recorded in `.sqlx/` for offline
//! builds); every function takes the connection first, so the caller owns the transaction.
//!
//! ```no_run
//! # async fn demo(pool: sqlx::PgPool) -> Result<(), strata_db::Error> {
//! use strata_db::organizations::{self, NewOrganization};
//! let mut tx = pool.begin().await?;
//! let org = organizations::create(&mut *tx, &NewOrganization { slug: "acme", name: "Acme" }).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

mod error;
mod ids;
pub mod organizations;
pub mod users;

pub use error::{Error, constraints};
pub use ids::{OrganizationId, UserId};
