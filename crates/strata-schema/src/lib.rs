//! strata-schema: the tools that read and reason about a schema, beside the runner
//! (strata-migrate) that applies it.
//!
//! - [`snapshot`]: a database's schema as sorted one-line text (what `schema.sql` holds);
//!   [`differences`] compares two.
//! - [`verify`]: each down file undoes its up file; [`diff`]: a live database against its
//!   applied migrations. Both on scratch databases.
//! - [`lint`]: squawk's rules, told what the runner does and how big the tables are.
//! - [`generate`]: the migration that takes the history to a desired schema, safe by
//!   construction and proven on scratch databases before it is written.
//! - [`squash`]: the files through one version as one checkpoint, proven the same.
//!
//! The runner's library does not depend on this crate, so a service that imports the runner
//! builds no SQL parser.

mod catalog;
mod error;
mod generate;
mod lint;
mod model;
mod plan;
mod squash;
mod verify;

pub use catalog::{Difference, Schema, differences, snapshot};
pub use error::SchemaError;
pub use generate::{
    Desired, GenerateOptions, Generation, WrittenFile, compare_databases, generate,
};
pub use lint::{Ignored, LintFinding, LintOptions, LintReport, RULES, Severity, lint};
pub use squash::{MAX_ROWS, SquashOptions, SquashReport, squash};
pub use verify::{DiffReport, NotInverse, VerifyReport, diff, verify};
