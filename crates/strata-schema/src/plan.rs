//! From one [`Model`] to another: which objects go, come and change, what must be rebuilt
//! because something it depends on is, and the statements in dependency order.
//!
//! With `safe`, the statements follow the runner's rules for a table that already exists:
//! indexes `CONCURRENTLY` and keys through such an index, checks and foreign keys `NOT VALID`
//! then validated, `SET NOT NULL` through a validated check; those go to a second,
//! `-- no-transaction` file (`Plan::online`), and so does whatever depends on them.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::SchemaError;
use crate::model::{Kind, Model, Object};

/// The statements of one migration (or of the pair a safe plan splits into).
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// The transactional file's statements, in order.
    pub atomic: Vec<String>,
    /// The `-- no-transaction` file's statements, in order (each runs on its own).
    pub online: Vec<String>,
    /// The data this plan destroys: `table t`, `column t.c`.
    pub drops_data: Vec<String>,
}

impl Plan {
    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.atomic.is_empty() && self.online.is_empty()
    }
}

/// How an object that is in both models but differs gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Statements of its own (`alter …`), keeping the object.
    InPlace,
    /// Dropped and created again, with what depends on it.
    Rebuild,
}

/// The statements that take `from` to `to`.
///
/// # Errors
///
/// [`SchemaError::Refused`] for a change that could be a rename (a table or column goes
/// while a similar one comes), or one the generator does not make (a domain's base type,
/// how a table is partitioned).
pub(crate) fn plan(from: &Model, to: &Model, safe: bool) -> Result<Plan, SchemaError> {
    if from.uncovered != to.uncovered {
        let changed: Vec<String> = from
            .uncovered
            .symmetric_difference(&to.uncovered)
            .map(|u| format!("{} {u}", if to.uncovered.contains(u) { "+" } else { "-" }))
            .collect();
        return Err(SchemaError::Refused(format!(
            "the change involves what the generator does not cover; write this migration by hand:\n  {}",
            changed.join("\n  ")
        )));
    }
    refuse_possible_renames(from, to)?;
    let mut dropped: BTreeSet<String> =
        from.objects.keys().filter(|k| to.get(k).is_none()).cloned().collect();
    let mut created: BTreeSet<String> =
        to.objects.keys().filter(|k| from.get(k).is_none()).cloned().collect();
    // A key or index that only changes its name (a table renamed, say) is renamed.
    let mut renames = Vec::new();
    for old_key in dropped.clone() {
        let Some(old) = from.get(&old_key) else { continue };
        let Some(new) = created.iter().filter_map(|k| to.get(k)).find(|new| {
            new.kind == old.kind && new.parent == old.parent && same_but_name(old, new)
        }) else {
            continue;
        };
        renames.push(rename(old, new));
        dropped.remove(&old_key);
        let new_key = new.key.clone();
        created.remove(&new_key);
    }
    let mut rebuilt: BTreeSet<String> = BTreeSet::new();
    let mut in_place: Vec<String> = Vec::new();
    // Columns whose type changes (in place): what depends on them and cannot follow is rebuilt.
    let mut retyped: BTreeSet<String> = BTreeSet::new();
    for (key, old) in &from.objects {
        let Some(new) = to.get(key) else { continue };
        if old.def == new.def {
            continue;
        }
        match change(old, new)? {
            Change::InPlace => {
                in_place.push(key.clone());
                if old.kind == Kind::Column
                    && (old.part(0) != new.part(0) || old.part(1) != new.part(1))
                {
                    retyped.insert(key.clone());
                }
                if old.kind == Kind::Enum && !is_subsequence(&old.parts, &new.parts) {
                    retyped.extend(
                        dependents(from, key).into_iter().filter(|d| d.starts_with("column ")),
                    );
                }
            }
            Change::Rebuild => {
                rebuilt.insert(key.clone());
            }
        }
    }
    // What depends on a dropped, rebuilt or retyped object is rebuilt (or dropped) with it.
    let reverse = reverse_deps(from);
    let mut queue: Vec<String> = dropped.iter().chain(&rebuilt).cloned().collect();
    for column in &retyped {
        for d in reverse.get(column).into_iter().flatten() {
            let Some(dependent) = from.get(d) else { continue };
            // PostgreSQL rebuilds a column's indexes and keys with its new type itself; views,
            // policies, triggers, functions and generated columns that use it refuse.
            let follows = match dependent.kind {
                Kind::Index
                | Kind::Constraint
                | Kind::ForeignKey
                | Kind::Comment
                | Kind::Grant
                | Kind::SequenceOwner => true,
                Kind::Column => dependent.part(5).is_empty(),
                _ => false,
            };
            if follows || dropped.contains(d) || rebuilt.contains(d) {
                continue;
            }
            if to.get(d).is_some() {
                rebuilt.insert(d.clone());
                in_place.retain(|k| k != d);
            } else {
                dropped.insert(d.clone());
            }
            queue.push(d.clone());
        }
    }
    // A column whose default uses what is rebuilt keeps its rows: its default is dropped
    // first and set again at the end.
    let mut defaults_reset: BTreeSet<String> = BTreeSet::new();
    // A column retyped away from what goes (back to text from an enum the down file drops)
    // changes before the drops.
    let mut early: BTreeSet<String> = BTreeSet::new();
    while let Some(key) = queue.pop() {
        for d in reverse.get(&key).into_iter().flatten() {
            if dropped.contains(d) || rebuilt.contains(d) || defaults_reset.contains(d) {
                continue;
            }
            if let (Some(old), Some(new)) = (from.get(d), to.get(d))
                && old.kind == Kind::Column
                && old.part(0) != new.part(0)
                && in_place.contains(d)
            {
                early.insert(d.clone());
                continue;
            }
            if let (Some(old), Some(new)) = (from.get(d), to.get(d))
                && old.kind == Kind::Column
                && old.part(5).is_empty()
                && new.part(5).is_empty()
            {
                defaults_reset.insert(d.clone());
                continue;
            }
            if to.get(d).is_some() {
                rebuilt.insert(d.clone());
                in_place.retain(|k| k != d);
            } else {
                dropped.insert(d.clone());
            }
            queue.push(d.clone());
        }
    }
    let mut out = Plan::default();
    for key in &defaults_reset {
        let Some(column) = from.get(key) else { continue };
        if !column.part(2).is_empty() && !dropped.iter().any(|t| column.parent.as_ref() == Some(t))
        {
            out.atomic.push(format!(
                "alter table {} alter column {} drop default;",
                column.part(7),
                column.part(6)
            ));
        }
    }
    let existing = |table: &str| from.get(table).is_some() && !created.contains(table);
    for key in topological(from, &early, &BTreeMap::new()) {
        let (Some(old), Some(new)) = (from.get(&key), to.get(&key)) else { continue };
        alter(old, new, from, to, safe && new.parent.as_deref().is_some_and(existing), &mut out);
    }
    // 1. Drops, dependents first; nothing whose owner goes too.
    let going: BTreeSet<String> = dropped.union(&rebuilt).cloned().collect();
    // What goes with its owner is ordered as its owner: a trigger's function is dropped
    // after the table that the trigger goes with.
    let mut owned: BTreeMap<String, String> = BTreeMap::new();
    for key in &going {
        // A foreign key is dropped on its own, before the tables: two tables that reference
        // each other would otherwise need each other gone first.
        if from.get(key).is_some_and(|o| o.kind == Kind::ForeignKey) {
            continue;
        }
        if let Some(owner) = from.get(key).and_then(|o| top_owner_in(from, o, &going)) {
            owned.insert(key.clone(), owner);
        }
    }
    for key in topological(from, &going, &owned).into_iter().rev() {
        let Some(object) = from.get(&key) else { continue };
        if owned.contains_key(&key) {
            continue;
        }
        if dropped.contains(&key)
            && matches!(object.kind, Kind::Table | Kind::Column | Kind::MaterializedView)
        {
            out.drops_data.push(key.clone());
        }
        out.atomic.extend(statements(&object.drop));
    }
    out.atomic.extend(renames.into_iter().flatten());
    // 2. Changes in place, in dependency order. One whose new definition uses what step 3
    // creates (a column retyped to a new enum) runs in step 3, in its dependency order; a
    // function's new body may name what step 3 creates without PostgreSQL recording it (a
    // sequence in a string), so functions change after step 3.
    let changing: BTreeSet<String> = in_place.iter().cloned().collect();
    let coming: BTreeSet<String> = created.union(&rebuilt).cloned().collect();
    let uses_coming =
        |key: &String| to.get(key).is_some_and(|o| o.deps.iter().any(|d| coming.contains(d)));
    let late: BTreeSet<String> = changing
        .iter()
        .filter(|k| uses_coming(k) && to.get(k).is_some_and(|o| o.kind != Kind::Function))
        .cloned()
        .collect();
    // A default set here may call what step 3 creates: defaults are set after it.
    let mut after = After::default();
    for key in topological(to, &changing, &BTreeMap::new()) {
        let (Some(old), Some(new)) = (from.get(&key), to.get(&key)) else { continue };
        if late.contains(&key) || early.contains(&key) {
            continue;
        }
        let mut here = Plan::default();
        alter(old, new, from, to, safe && new.parent.as_deref().is_some_and(existing), &mut here);
        after.place(new.kind, here, &mut out);
    }
    // 3. Creates, dependencies first; a new table's columns inline.
    let mut inline: BTreeMap<String, String> = BTreeMap::new();
    for key in &coming {
        if let Some(object) = to.get(key)
            && matches!(object.kind, Kind::Column | Kind::Constraint)
            // A constraint inside CREATE TABLE is always valid: a NOT VALID one is added apart.
            && !(object.kind == Kind::Constraint && object.create.contains("NOT VALID"))
            && let Some(table) = &object.parent
            && coming.contains(table)
            && to.get(table).is_some_and(|t| {
                // A partition's constraints follow it (its columns are its parent's).
                t.kind == Kind::Table && (object.kind == Kind::Column || t.part(1).is_empty())
            })
        {
            inline.insert(key.clone(), table.clone());
        }
    }
    let mut deferred: BTreeSet<String> = BTreeSet::new();
    let ordered: BTreeSet<String> = coming.union(&late).cloned().collect();
    for key in topological(to, &ordered, &inline) {
        if inline.contains_key(&key) {
            continue;
        }
        let Some(object) = to.get(&key) else { continue };
        if late.contains(&key) {
            let Some(old) = from.get(&key) else { continue };
            let mut here = Plan::default();
            let on_existing = safe && object.parent.as_deref().is_some_and(existing);
            alter(old, object, from, to, on_existing, &mut here);
            after.place(object.kind, here, &mut out);
            continue;
        }
        if is_default_grant(object) && object.parent.as_ref().is_some_and(|p| coming.contains(p)) {
            continue;
        }
        let on_existing =
            safe && object.parent.as_deref().is_some_and(|p| existing(p) && !rebuilt.contains(p));
        let after_online = object
            .deps
            .iter()
            .any(|d| deferred.contains(d) || inline.get(d).is_some_and(|t| deferred.contains(t)));
        let sql = match object.kind {
            Kind::Table => create_table(object, to),
            _ => object.create.clone(),
        };
        if on_existing {
            match safe_create(object) {
                Some((atomic, online)) => {
                    if after_online {
                        out.online.extend(atomic);
                    } else {
                        out.atomic.extend(atomic);
                    }
                    out.online.extend(online);
                    deferred.insert(key);
                    continue;
                }
                None if after_online => {
                    out.online.extend(statements(&sql));
                    deferred.insert(key);
                    continue;
                }
                None => {}
            }
        } else if after_online {
            out.online.extend(statements(&sql));
            deferred.insert(key);
            continue;
        }
        out.atomic.extend(statements(&sql));
        out.atomic.extend(revoke_defaults(object, to));
    }
    out.atomic.extend(after.functions);
    out.atomic.extend(after.defaults);
    for key in &defaults_reset {
        let Some(column) = to.get(key) else { continue };
        if !column.part(2).is_empty() && !changing.contains(key) {
            out.atomic.push(format!(
                "alter table {} alter column {} set default {};",
                column.part(7),
                column.part(6),
                column.part(2)
            ));
        }
    }
    Ok(out)
}

/// The in-place statements that wait until every create is done: a function's new body
/// (it may name what is created without PostgreSQL recording it), then a column's new
/// default (it may call what is created).
#[derive(Debug, Default)]
struct After {
    functions: Vec<String>,
    defaults: Vec<String>,
}

impl After {
    /// Puts the statements of one in-place change of an object of kind `kind`: those that
    /// wait here, the others in `out` in order.
    fn place(&mut self, kind: Kind, here: Plan, out: &mut Plan) {
        for statement in here.atomic {
            if kind == Kind::Column && statement.contains(" set default ") {
                self.defaults.push(statement);
            } else if kind == Kind::Function {
                self.functions.push(statement);
            } else {
                out.atomic.push(statement);
            }
        }
        out.online.extend(here.online);
    }
}

/// Whether `object` is a privilege a new function, procedure or type has from the start.
fn is_default_grant(object: &Object) -> bool {
    object.kind == Kind::Grant
        && object.key.ends_with(" to public")
        && (object.key.starts_with("grant EXECUTE on function ")
            || object.key.starts_with("grant EXECUTE on procedure ")
            || object.key.starts_with("grant USAGE on type "))
}

/// A new function, procedure or type comes with privileges to PUBLIC (EXECUTE, USAGE); the
/// revokes of those the target does not have.
fn revoke_defaults(object: &Object, to: &Model) -> Vec<String> {
    let name = object.key.split_once(' ').map_or("", |(_, n)| n);
    let (privilege, on) = match object.kind {
        Kind::Function => ("EXECUTE", object.part(1)),
        Kind::Enum | Kind::Domain => ("USAGE", "type"),
        _ => return Vec::new(),
    };
    if to.get(&format!("grant {privilege} on {on} {name} to public")).is_some() {
        return Vec::new();
    }
    vec![format!("revoke {privilege} on {on} {name} from public;")]
}

/// The statements of a multi-statement text, one per line group.
fn statements(sql: &str) -> Vec<String> {
    if sql.trim().is_empty() {
        return Vec::new();
    }
    if sql.contains("\n") && !sql.trim_start().to_lowercase().starts_with("create") {
        return sql.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    }
    vec![sql.to_owned()]
}

/// The farthest owner of `object` (its table, a column's table) that is in `set`.
fn top_owner_in(model: &Model, object: &Object, set: &BTreeSet<String>) -> Option<String> {
    let mut found = None;
    let mut parent = object.parent.clone();
    for _ in 0..8 {
        let Some(p) = parent else { break };
        // A schema is dropped only once empty: what is in it goes first, on its own.
        if model.get(&p).is_none_or(|o| o.kind == Kind::Schema) {
            break;
        }
        if set.contains(&p) {
            found = Some(p.clone());
        }
        parent = model.get(&p).and_then(|o| o.parent.clone());
    }
    found
}

/// Whether two keys or indexes differ in their names only.
fn same_but_name(old: &Object, new: &Object) -> bool {
    match old.kind {
        Kind::Constraint | Kind::ForeignKey => old.def == new.def,
        Kind::Index => {
            let body = |o: &Object| o.part(0).split_once(" ON ").map(|(_, rest)| rest.to_owned());
            let head = |o: &Object| o.part(0).starts_with("CREATE UNIQUE");
            body(old).is_some() && body(old) == body(new) && head(old) == head(new)
        }
        _ => false,
    }
}

/// The statement that renames `old` to `new` (see [`same_but_name`]).
fn rename(old: &Object, new: &Object) -> Option<String> {
    let name = |o: &Object, at: usize| bare(o.part(at)).to_owned();
    match old.kind {
        Kind::Constraint | Kind::ForeignKey => Some(format!(
            "alter table {} rename constraint {} to {};",
            old.part(4),
            old.part(3),
            new.part(3)
        )),
        Kind::Index => Some(format!("alter index {} rename to {};", old.part(1), name(new, 1))),
        _ => None,
    }
}

/// How `old` becomes `new`.
fn change(old: &Object, new: &Object) -> Result<Change, SchemaError> {
    Ok(match old.kind {
        Kind::Column => {
            if old.part(5) != new.part(5) {
                Change::Rebuild
            } else {
                Change::InPlace
            }
        }
        Kind::Enum
        | Kind::Composite
        | Kind::Sequence
        | Kind::Extension
        | Kind::RowSecurity
        | Kind::Comment => Change::InPlace,
        Kind::Domain => {
            if old.part(0) != new.part(0) || old.part(1) != new.part(1) {
                return Err(SchemaError::Refused(format!(
                    "{} changes its base type or collation ({} to {}): the generator does not rewrite a domain and its columns; write this migration by hand",
                    old.key, old.def, new.def
                )));
            }
            Change::InPlace
        }
        Kind::Table => {
            if old.part(1) != new.part(1) || old.part(2) != new.part(2) {
                return Err(SchemaError::Refused(format!(
                    "{} changes how it is partitioned ({:?} to {:?}): that means a new table and a copy of the rows; write this migration by hand",
                    old.key, old.def, new.def
                )));
            }
            Change::InPlace
        }
        Kind::Constraint | Kind::ForeignKey
            if old.def.strip_suffix(" NOT VALID") == Some(new.def.as_str()) =>
        {
            Change::InPlace
        }
        Kind::Function => {
            if old.part(0) == new.part(0) && old.part(1) == new.part(1) {
                Change::InPlace
            } else {
                Change::Rebuild
            }
        }
        _ => Change::Rebuild,
    })
}

/// Whether `a` is `b` with items inserted (in order).
fn is_subsequence(a: &[String], b: &[String]) -> bool {
    let mut it = b.iter();
    a.iter().all(|x| it.any(|y| y == x))
}

/// The keys that depend on `key`, directly.
fn dependents(model: &Model, key: &str) -> Vec<String> {
    model.objects.values().filter(|o| o.deps.contains(key)).map(|o| o.key.clone()).collect()
}

/// For each key, the objects that depend on it.
fn reverse_deps(model: &Model) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for object in model.objects.values() {
        for d in &object.deps {
            out.entry(d.clone()).or_default().push(object.key.clone());
        }
    }
    out
}

/// `keys` in dependency order (Kahn's algorithm; ties by kind, then key). `alias` maps a key
/// to the one that stands for it (a new table's inline column to its table). A cycle is
/// broken in the same tie order.
fn topological(
    model: &Model,
    keys: &BTreeSet<String>,
    alias: &BTreeMap<String, String>,
) -> Vec<String> {
    let resolve = |k: &String| alias.get(k).cloned().unwrap_or_else(|| k.clone());
    let mut deps: BTreeMap<String, BTreeSet<String>> =
        keys.iter().map(|k| (k.clone(), BTreeSet::new())).collect();
    for key in keys {
        let Some(object) = model.get(key) else { continue };
        let me = resolve(key);
        for d in &object.deps {
            let d = resolve(d);
            if d != me && keys.contains(&d) {
                deps.entry(me.clone()).or_default().insert(d);
            }
        }
    }
    let rank = |k: &String| (model.get(k).map(|o| o.kind), k.clone());
    let mut ready: BTreeSet<(Option<Kind>, String)> =
        deps.iter().filter(|(_, d)| d.is_empty()).map(|(k, _)| rank(k)).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(keys.len());
    while out.len() < deps.len() {
        let next = match ready.pop_first() {
            Some((_, key)) => key,
            None => {
                // A cycle: take the first remaining in tie order.
                match deps.keys().filter(|k| !done.contains(*k)).map(rank).min() {
                    Some((_, key)) => key,
                    None => break,
                }
            }
        };
        if !done.insert(next.clone()) {
            continue;
        }
        out.push(next.clone());
        for (key, d) in &mut deps {
            if d.remove(&next) && d.is_empty() && !done.contains(key) {
                ready.insert(rank(key));
            }
        }
    }
    out
}

/// `create table` with the table's columns inline, in their order, then its constraints other
/// than foreign keys (key first).
fn create_table(table: &Object, model: &Model) -> String {
    let name = table.key.trim_start_matches("table ");
    let mut columns: Vec<&Object> = model
        .objects
        .values()
        .filter(|o| o.kind == Kind::Column && o.parent.as_deref() == Some(table.key.as_str()))
        .collect();
    columns.sort_by(|a, b| a.part(8).cmp(b.part(8)));
    let (unlogged, partition_of, partition_by, options) =
        (table.part(0), table.part(1), table.part(2), table.part(3));
    let with = if options.is_empty() { String::new() } else { format!(" with ({options})") };
    if !partition_of.is_empty() {
        return format!("create {unlogged}table {name}{partition_of}{partition_by}{with};");
    }
    let mut constraints: Vec<&Object> = model
        .objects
        .values()
        .filter(|o| o.kind == Kind::Constraint && o.parent.as_deref() == Some(table.key.as_str()))
        .filter(|o| !o.create.contains("NOT VALID"))
        .collect();
    constraints.sort_by_key(|c| (c.part(0) != "p", c.part(0) != "u", c.key.clone()));
    let body: Vec<String> = columns
        .iter()
        .map(|c| format!("    {}", c.def))
        .chain(constraints.iter().map(|c| format!("    constraint {} {}", c.part(3), c.part(5))))
        .collect();
    let body = if body.is_empty() { String::new() } else { format!("\n{}\n", body.join(",\n")) };
    format!("create {unlogged}table {name} ({body}){partition_by}{with};")
}

/// The safe form of creating `object` on a table in use: the statements of the transactional
/// file and those of the `-- no-transaction` one; `None` when the plain form is safe.
fn safe_create(object: &Object) -> Option<(Vec<String>, Vec<String>)> {
    match object.kind {
        Kind::Index if object.part(2) != "p" => {
            Some((Vec::new(), vec![format!("{};", concurrently(object.part(0)))]))
        }
        Kind::Constraint | Kind::ForeignKey => {
            let (contype, table, name, def) =
                (object.part(0), object.part(4), object.part(3), object.part(5));
            match contype {
                "c" | "f" if !def.ends_with("NOT VALID") => Some((
                    vec![format!("alter table {table} add constraint {name} {def} not valid;")],
                    vec![format!("alter table {table} validate constraint {name};")],
                )),
                "p" | "u"
                    if !object.part(2).is_empty() && !object.part(2).contains(" ON ONLY ") =>
                {
                    let kind = if contype == "p" { "primary key" } else { "unique" };
                    let mut tail = String::new();
                    if def.contains("DEFERRABLE") && !def.contains("NOT DEFERRABLE") {
                        tail.push_str(" deferrable");
                        if def.contains("INITIALLY DEFERRED") {
                            tail.push_str(" initially deferred");
                        }
                    }
                    Some((
                        Vec::new(),
                        vec![
                            format!("{};", concurrently(object.part(2))),
                            format!(
                                "alter table {table} add constraint {name} {kind} using index {name}{tail};"
                            ),
                        ],
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `CREATE [UNIQUE] INDEX name …` as `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS name …`
/// (a rerun after a failure finds it; an invalid one left behind the runner refuses first).
fn concurrently(indexdef: &str) -> String {
    match indexdef.find(" INDEX ") {
        Some(at) => {
            format!("{} INDEX CONCURRENTLY IF NOT EXISTS {}", &indexdef[..at], &indexdef[at + 7..])
        }
        None => indexdef.to_owned(),
    }
}

/// The statements that change `old` into `new` in place. `safe`: the object belongs to a
/// table in use.
fn alter(old: &Object, new: &Object, from: &Model, to: &Model, safe: bool, out: &mut Plan) {
    match old.kind {
        Kind::Column => alter_column(old, new, safe, out),
        Kind::Enum => alter_enum(old, new, from, to, out),
        Kind::Domain => {
            let name = old.key.trim_start_matches("domain ");
            if old.part(2) != new.part(2) {
                out.atomic.push(if new.part(2).is_empty() {
                    format!("alter domain {name} drop default;")
                } else {
                    format!("alter domain {name} set default {};", new.part(2))
                });
            }
            if old.part(3) != new.part(3) {
                let verb = if new.part(3) == "true" { "set" } else { "drop" };
                out.atomic.push(format!("alter domain {name} {verb} not null;"));
            }
        }
        Kind::Constraint | Kind::ForeignKey => {
            let validate =
                format!("alter table {} validate constraint {};", new.part(4), new.part(3));
            if safe { out.online.push(validate) } else { out.atomic.push(validate) }
        }
        Kind::Sequence => out.atomic.push(new.part(0).to_owned()),
        Kind::Composite => {
            let name = old.key.trim_start_matches("type ");
            let attribute =
                |a: &String| a.split_once(' ').map(|(n, t)| (n.to_owned(), t.to_owned()));
            let old_attrs: Vec<(String, String)> = old.parts.iter().filter_map(attribute).collect();
            let new_attrs: Vec<(String, String)> = new.parts.iter().filter_map(attribute).collect();
            for (n, _) in old_attrs.iter().filter(|(n, _)| !new_attrs.iter().any(|(m, _)| m == n)) {
                out.atomic.push(format!("alter type {name} drop attribute {n};"));
            }
            for (n, t) in &new_attrs {
                match old_attrs.iter().find(|(m, _)| m == n) {
                    Some((_, old_type)) if old_type != t => {
                        out.atomic.push(format!("alter type {name} alter attribute {n} type {t};"));
                    }
                    Some(_) => {}
                    None => out.atomic.push(format!("alter type {name} add attribute {n} {t};")),
                }
            }
        }
        Kind::Extension => {
            let name = old.key.trim_start_matches("extension ");
            out.atomic.push(format!("alter extension {name} update to '{}';", new.part(0)));
        }
        Kind::RowSecurity => {
            out.atomic.extend(statements(&old.drop));
            out.atomic.extend(statements(&new.create));
        }
        Kind::Table => {
            let name = old.key.trim_start_matches("table ");
            if old.part(0) != new.part(0) {
                let to = if new.part(0).is_empty() { "logged" } else { "unlogged" };
                out.atomic.push(format!("alter table {name} set {to};"));
            }
            if old.part(3) != new.part(3) {
                if !old.part(3).is_empty() {
                    let keys: Vec<&str> = old
                        .part(3)
                        .split(", ")
                        .map(|kv| kv.split('=').next().unwrap_or(kv))
                        .collect();
                    out.atomic.push(format!("alter table {name} reset ({});", keys.join(", ")));
                }
                if !new.part(3).is_empty() {
                    out.atomic.push(format!("alter table {name} set ({});", new.part(3)));
                }
            }
        }
        _ => out.atomic.extend(statements(&new.create)),
    }
}

/// A column's type, default, nullability and identity, in place.
fn alter_column(old: &Object, new: &Object, safe: bool, out: &mut Plan) {
    let (table, column) = (new.part(7), new.part(6));
    let at = format!("alter table {table} alter column {column}");
    let retyped = old.part(0) != new.part(0) || old.part(1) != new.part(1);
    if old.part(4) != new.part(4) && !old.part(4).is_empty() && new.part(4).is_empty() {
        out.atomic.push(format!("{at} drop identity;"));
    }
    if retyped {
        if !old.part(2).is_empty() {
            out.atomic.push(format!("{at} drop default;"));
        }
        let collate = if new.part(1).is_empty() {
            String::new()
        } else {
            format!(" collate {}", new.part(1))
        };
        out.atomic.push(format!(
            "{at} type {}{collate} using {column}::{};",
            new.part(0),
            new.part(0)
        ));
        if !new.part(2).is_empty() {
            out.atomic.push(format!("{at} set default {};", new.part(2)));
        }
    } else if old.part(2) != new.part(2) {
        out.atomic.push(if new.part(2).is_empty() {
            format!("{at} drop default;")
        } else {
            format!("{at} set default {};", new.part(2))
        });
    }
    if old.part(3) != new.part(3) {
        if new.part(3) == "true" {
            if safe {
                let check = constraint_name(table, column);
                out.atomic.push(format!(
                    "alter table {table} add constraint {check} check ({column} is not null) not valid;"
                ));
                out.online.push(format!("alter table {table} validate constraint {check};"));
                out.online.push(format!("{at} set not null;"));
                out.online.push(format!("alter table {table} drop constraint {check};"));
            } else {
                out.atomic.push(format!("{at} set not null;"));
            }
        } else if new.part(4).is_empty() {
            out.atomic.push(format!("{at} drop not null;"));
        }
    }
    if old.part(4) != new.part(4) && !new.part(4).is_empty() {
        let how = if new.part(4) == "a" { "always" } else { "by default" };
        if old.part(4).is_empty() {
            out.atomic.push(format!("{at} add generated {how} as identity;"));
        } else {
            out.atomic.push(format!("{at} set generated {how};"));
        }
    }
}

/// The name of the check that stands in for NOT NULL while it is validated.
fn constraint_name(table: &str, column: &str) -> String {
    let bare = |s: &str| s.rsplit('.').next().unwrap_or(s).trim_matches('"').to_owned();
    let mut name = format!("{}_{}_not_null", bare(table), bare(column));
    name.truncate(63);
    format!("\"{}\"", name.replace('"', ""))
}

/// An enum's new values added in place; values removed or reordered: the type made again and
/// its columns converted through text (which fails, keeping everything, if a row holds a
/// value that goes).
fn alter_enum(old: &Object, new: &Object, from: &Model, to: &Model, out: &mut Plan) {
    let name = old.key.trim_start_matches("enum ");
    if is_subsequence(&old.parts, &new.parts) {
        for (i, label) in new.parts.iter().enumerate() {
            if old.parts.contains(label) {
                continue;
            }
            let place = match i {
                0 => format!(" before {}", literal(&new.parts[1])),
                _ => format!(" after {}", literal(&new.parts[i - 1])),
            };
            let place = if new.parts.len() == 1 { String::new() } else { place };
            out.atomic.push(format!("alter type {name} add value {}{place};", literal(label)));
        }
        return;
    }
    let (qualified, bare) = suffixed(name, "__strata_old");
    out.atomic.push(format!("alter type {name} rename to {bare};"));
    out.atomic.push(new.create.clone());
    for key in dependents(from, &old.key) {
        let Some(column) = from.get(&key).filter(|c| c.kind == Kind::Column) else { continue };
        let (table, col, typ) = (column.part(7), column.part(6), column.part(0));
        let at = format!("alter table {table} alter column {col}");
        if !column.part(2).is_empty() {
            out.atomic.push(format!("{at} drop default;"));
        }
        let via = if typ.ends_with("[]") { "text[]" } else { "text" };
        out.atomic.push(format!("{at} type {typ} using {col}::{via}::{typ};"));
        if let Some(default) = to.get(&key).map(|c| c.part(2)).filter(|d| !d.is_empty()) {
            out.atomic.push(format!("{at} set default {default};"));
        }
    }
    out.atomic.push(format!("drop type {qualified};"));
}

/// `schema.name` with `suffix` on the name: (qualified, bare).
fn suffixed(qualified: &str, suffix: &str) -> (String, String) {
    let (schema, name) = match qualified.rfind('.') {
        Some(at) if !qualified[at..].contains('"') || qualified.ends_with('"') => {
            (&qualified[..at + 1], &qualified[at + 1..])
        }
        _ => ("", qualified),
    };
    let bare = match name.strip_suffix('"') {
        Some(inner) => format!("{inner}{suffix}\""),
        None => format!("{name}{suffix}"),
    };
    (format!("{schema}{bare}"), bare)
}

/// A string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A table that goes while a similar one comes, or a column that goes while one of the same
/// type comes to the same table, could be a rename: refuse, naming both, unless the caller
/// said which it is (`--rename`, applied before the models were read).
fn refuse_possible_renames(from: &Model, to: &Model) -> Result<(), SchemaError> {
    let columns_of = |model: &Model, table: &str| -> BTreeSet<(String, String)> {
        model
            .objects
            .values()
            .filter(|o| o.kind == Kind::Column && o.parent.as_deref() == Some(table))
            .map(|o| (o.part(6).to_owned(), o.part(0).to_owned()))
            .collect()
    };
    let tables = |a: &Model, b: &Model| -> Vec<String> {
        a.objects
            .values()
            .filter(|o| o.kind == Kind::Table && b.get(&o.key).is_none())
            .map(|o| o.key.clone())
            .collect()
    };
    let mut found = Vec::new();
    for gone in tables(from, to) {
        let old = columns_of(from, &gone);
        for come in tables(to, from) {
            let new = columns_of(to, &come);
            let shared = old.intersection(&new).count();
            if !old.is_empty() && shared * 2 >= old.len().max(new.len()) {
                found.push(format!(
                    "{gone} goes and {come} comes with {shared} of its columns: a rename? pass --rename {}={}",
                    gone.trim_start_matches("table "),
                    bare(come.trim_start_matches("table "))
                ));
            }
        }
    }
    for (key, table) in &from.objects {
        if table.kind != Kind::Table || to.get(key).is_none() {
            continue;
        }
        let old = columns_of(from, key);
        let new = columns_of(to, key);
        for (gone, typ) in old.difference(&new).filter(|(n, _)| !new.iter().any(|(m, _)| m == n)) {
            for (come, _) in
                new.iter().filter(|(n, t)| t == typ && !old.iter().any(|(m, _)| m == n))
            {
                found.push(format!(
                    "column {gone} of {key} goes and column {come} ({typ}) comes: a rename? pass --rename {}.{}={}",
                    key.trim_start_matches("table "),
                    gone,
                    come
                ));
            }
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(SchemaError::Refused(format!(
            "refusing to drop and add what may be a rename (data would be lost):\n  {}\n  a rename can also be written in the desired schema, as a comment: `-- strata: rename TABLE.COLUMN=NEW_NAME`\n  if they are different objects, add the new one in one migration and drop the old in another",
            found.join("\n  ")
        )))
    }
}

/// The last part of a qualified name.
fn bare(qualified: &str) -> &str {
    qualified.rsplit('.').next().unwrap_or(qualified)
}
