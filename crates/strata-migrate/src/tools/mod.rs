//! The tools on migration files and scratch databases, which the runner and strata-schema
//! share: reading a directory (`files`), checksums (`checksum`), a file's directives
//! (`directive`), splitting SQL into statements (`lexer`), a checkpoint's header
//! (`checkpoint`), and a database of one's own for a command (`scratch`).

pub mod checkpoint;
pub(crate) mod checksum;
pub(crate) mod directive;
pub mod files;
pub mod lexer;
#[cfg(test)]
mod lexer_oracle;
pub mod scratch;
