//! Citus's rules, where the database `lint` is given has the `citus` extension: statements
//! that Citus refuses on its tables, or runs on the coordinator only. Each is an error, whatever
//! the table's size: it is about what fails, not about how long a lock lasts.

use std::collections::BTreeMap;

use sqlx::PgConnection;
use strata_migrate::lexer;

use super::{Found, bare_name};
use crate::error::SchemaError;

/// How Citus holds each of its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Held {
    /// Sharded by this column.
    Distributed { column: String },
    /// A copy on every node.
    Reference,
    /// On the coordinator only, in Citus's metadata.
    Local,
}

/// The tables Citus knows, by bare name, and the migrations the database has applied (the
/// rules are about what Citus would refuse now: a file applied before the tables were
/// distributed is not judged by them).
#[derive(Debug, Clone, Default)]
pub(super) struct Layout {
    tables: BTreeMap<String, Held>,
    applied: std::collections::BTreeSet<i64>,
}

impl Layout {
    /// The layout of the database `conn` is on, `None` without the `citus` extension.
    pub(super) async fn read(conn: &mut PgConnection) -> Result<Option<Self>, SchemaError> {
        let error = SchemaError::db("reading Citus's tables");
        let has_citus: bool =
            sqlx::query_scalar("select exists (select from pg_extension where extname = 'citus')")
                .fetch_one(&mut *conn)
                .await
                .map_err(error)?;
        if !has_citus {
            return Ok(None);
        }
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "select c.relname::text, p.partmethod::text, p.repmodel::text,
                    case when p.partmethod = 'h'
                         then column_to_column_name(p.logicalrelid, p.partkey) end
               from pg_dist_partition p join pg_class c on c.oid = p.logicalrelid",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(SchemaError::db("reading Citus's tables"))?;
        let tables = rows
            .into_iter()
            .map(|(name, method, model, column)| {
                let held = match (method.as_str(), model.as_str(), column) {
                    ("h", _, Some(column)) => Held::Distributed { column },
                    (_, "t", _) => Held::Reference,
                    _ => Held::Local,
                };
                (name, held)
            })
            .collect();
        let has_history: bool =
            sqlx::query_scalar("select to_regclass('_sqlx_migrations') is not null")
                .fetch_one(&mut *conn)
                .await
                .map_err(SchemaError::db("reading the applied migrations"))?;
        let applied: Vec<i64> = if has_history {
            sqlx::query_scalar("select version from _sqlx_migrations where success")
                .fetch_all(&mut *conn)
                .await
                .map_err(SchemaError::db("reading the applied migrations"))?
        } else {
            Vec::new()
        };
        Ok(Some(Self { tables, applied: applied.into_iter().collect() }))
    }

    /// Whether the database has applied migration `version`.
    pub(super) fn applied(&self, version: i64) -> bool {
        self.applied.contains(&version)
    }

    fn distribution_column(&self, table: &str) -> Option<&str> {
        match self.tables.get(table)? {
            Held::Distributed { column } => Some(column),
            _ => None,
        }
    }
}

/// The words of a statement, lowercased, split at white space, `(`, `)` and `,`.
fn words(text: &str) -> Vec<String> {
    text.replace(['(', ')', ','], " ").split_whitespace().map(str::to_lowercase).collect()
}

/// The bare column names in the first parenthesised list at or after byte `from` of `text`,
/// the first word of each item (an expression's columns are not told apart).
fn column_list(text: &str, from: usize) -> Vec<String> {
    let Some(open) = text[from..].find('(').map(|i| i + from) else { return Vec::new() };
    let mut depth = 0;
    let mut end = text.len();
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = open + i;
                    break;
                }
            }
            _ => {}
        }
    }
    text[open + 1..end]
        .split(',')
        .filter_map(|item| item.split_whitespace().next())
        .map(|name| bare_name(&name.to_lowercase()))
        .collect()
}

/// Citus's findings on statement `s` of `sql`.
pub(super) fn check(layout: &Layout, sql: &str, s: &lexer::Statement<'_>) -> Vec<Found> {
    let text = s.text;
    let lower = text.to_lowercase();
    let w = words(text);
    let word = |i: usize| w.get(i).map(String::as_str).unwrap_or("");
    let mut found = Vec::new();
    // `create [unlogged|temp …] table`: the word before the column list.
    let creating_table =
        word(0) == "create" && w.iter().take_while(|x| *x != "(").any(|x| x == "table");
    let mut finding = |rule: &str, message: String, help: &str| {
        let mut f = Found::on(sql, s, rule, message, help.to_owned());
        f.always_error = true;
        if creating_table {
            f.table = None;
        }
        found.push(f);
    };

    // Run on the coordinator only.
    for (lead, what) in [
        ("create database", "CREATE DATABASE"),
        ("drop database", "DROP DATABASE"),
        ("alter system", "ALTER SYSTEM"),
        ("create tablespace", "CREATE TABLESPACE"),
    ] {
        if lower.trim_start().starts_with(lead) {
            finding(
                "citus-not-sent-to-workers",
                format!("Citus runs {what} on the coordinator only: the workers do not get it"),
                "run it on every node, outside the migrations (a database needs the extension and the nodes added on each)",
            );
        }
    }

    // The table an `alter table` or a `create [unique] index … on` works on.
    let table = super::target_table(text);
    let column = table.as_deref().and_then(|t| layout.distribution_column(t));

    // A unique constraint or index on a distributed table must include its column.
    let unique_at = if word(0) == "create" && word(1) == "unique" && word(2) == "index" {
        lower.find(" on ").map(|i| i + 4)
    } else if word(0) == "alter" && word(1) == "table" && lower.contains(" add ") {
        ["unique", "primary key"]
            .iter()
            .filter_map(|k| lower.find(&format!(" {k}")).map(|i| i + k.len() + 1))
            .min()
            .filter(|_| !lower.contains(" using index "))
    } else {
        None
    };
    if let (Some(at), Some(column), Some(table)) = (unique_at, column, table.as_deref()) {
        let columns = column_list(text, at);
        if !columns.is_empty() && !columns.iter().any(|c| c == column) {
            finding(
                "citus-unique-without-distribution-column",
                format!(
                    "{table} is distributed by {column}: Citus refuses a unique constraint or index without it ({})",
                    columns.join(", ")
                ),
                "include the distribution column in the key (a key per tenant), or keep the table on one node as a reference table",
            );
        }
    }

    // A foreign key into a distributed table, from a table that is not distributed.
    if lower.contains("references") {
        let target = w
            .iter()
            .position(|x| x == "references")
            .and_then(|i| w.get(i + 1))
            .map(|name| bare_name(name));
        let from_held = table.as_deref().and_then(|t| layout.tables.get(t));
        let from_not_distributed =
            creating_table || matches!(from_held, Some(Held::Reference | Held::Local) | None);
        if let Some(target) = target.filter(|t| layout.distribution_column(t).is_some())
            && from_not_distributed
            && (creating_table || word(0) == "alter")
        {
            finding(
                "citus-foreign-key-to-distributed-table",
                format!(
                    "a foreign key into the distributed table {target} from a table that is not distributed: Citus refuses it"
                ),
                "distribute the referencing table by the same column, colocated, or point the key at a reference table",
            );
        }
    }

    // The distribution column itself cannot change type, go, or change name.
    if let (Some(column), true) = (column, word(0) == "alter" && word(1) == "table") {
        let touches = ["alter column", "drop column", "rename column"].iter().any(|k| {
            lower.find(k).is_some_and(|i| {
                lower[i + k.len()..]
                    .split_whitespace()
                    .find(|x| !matches!(*x, "if" | "exists"))
                    .is_some_and(|name| bare_name(name.trim_end_matches([';', ','])) == column)
            })
        }) || (lower.contains(" alter ")
            && lower.contains(&format!(" {column} type")));
        if touches {
            finding(
                "citus-distribution-column-change",
                format!(
                    "{} is distributed by {column}: Citus refuses to change that column's type, drop it or rename it",
                    table.as_deref().unwrap_or("the table")
                ),
                "add a new column and a new table distributed by it, and move the rows (a data migration)",
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let mut tables = BTreeMap::new();
        tables.insert("tasks".to_owned(), Held::Distributed { column: "organization_id".into() });
        tables.insert("users".to_owned(), Held::Reference);
        tables.insert("outbox".to_owned(), Held::Local);
        Layout { tables, applied: Default::default() }
    }

    fn rules(sql: &str) -> Vec<String> {
        let statements = lexer::split(sql).expect("lexes");
        statements.iter().flat_map(|s| check(&layout(), sql, s)).map(|f| f.rule).collect()
    }

    #[test]
    fn each_rule_fires_on_what_citus_refuses_and_not_on_what_it_takes() {
        for (sql, rule) in [
            (
                "create unique index t_title on tasks (title);",
                "citus-unique-without-distribution-column",
            ),
            (
                "alter table tasks add constraint t_n unique (number);",
                "citus-unique-without-distribution-column",
            ),
            (
                "alter table only public.tasks add primary key (id);",
                "citus-unique-without-distribution-column",
            ),
            (
                "alter table users add constraint u_t foreign key (task_id) references tasks (id);",
                "citus-foreign-key-to-distributed-table",
            ),
            (
                "create table notes (id int, task uuid references tasks (id));",
                "citus-foreign-key-to-distributed-table",
            ),
            (
                "alter table tasks alter column organization_id type text;",
                "citus-distribution-column-change",
            ),
            ("alter table tasks drop column organization_id;", "citus-distribution-column-change"),
            (
                "alter table tasks rename column organization_id to org;",
                "citus-distribution-column-change",
            ),
            ("create database other;", "citus-not-sent-to-workers"),
            ("alter system set work_mem = '64MB';", "citus-not-sent-to-workers"),
        ] {
            assert_eq!(rules(sql), vec![rule.to_owned()], "{sql}");
        }
        for sql in [
            "create unique index t_key on tasks (organization_id, number);",
            "alter table tasks add constraint t_n unique (number, organization_id);",
            "alter table tasks add constraint tasks_pkey primary key using index t_idx;",
            "alter table tasks add constraint t_u foreign key (user_id) references users (id);",
            "alter table tasks alter column title type text;",
            "create unique index u_email on users (email);",
            "create index t_title on tasks (title);",
            "alter table outbox add column note text;",
        ] {
            assert!(rules(sql).is_empty(), "{sql}: {:?}", rules(sql));
        }
    }
}
