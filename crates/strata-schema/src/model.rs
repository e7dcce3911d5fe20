//! A database's schema as objects the generator can create, drop and alter: each with its
//! identity, its definition, the SQL that makes and removes it, its owner (a column's table),
//! and what it depends on (from `pg_depend`, so statements come in dependency order).
//!
//! Everything is read in one round trip of catalog queries; the SQL text of each object is
//! built by the server (`format('%I')`, `pg_get_*def`), which quotes as PostgreSQL does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::{PgConnection, Row};

use crate::error::SchemaError;

/// What an object is; the order is the tie-break of the dependency sort (schemas first,
/// comments last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// `create schema`.
    Schema,
    /// `create extension`.
    Extension,
    /// `create type … as enum`.
    Enum,
    /// `create domain`.
    Domain,
    /// `create type … as (…)`.
    Composite,
    /// A domain's check constraint.
    DomainConstraint,
    /// `create sequence` (not an identity column's).
    Sequence,
    /// A table (ordinary, partitioned, or a partition).
    Table,
    /// A table's column (created inline with a new table).
    Column,
    /// `alter sequence … owned by`.
    SequenceOwner,
    /// A function or procedure.
    Function,
    /// A view.
    View,
    /// A materialized view.
    MaterializedView,
    /// A table constraint other than a foreign key.
    Constraint,
    /// A foreign key (after every table and key).
    ForeignKey,
    /// An index that backs no constraint.
    Index,
    /// A trigger.
    Trigger,
    /// Row-level security enabled or forced.
    RowSecurity,
    /// A policy.
    Policy,
    /// One privilege granted to one role.
    Grant,
    /// A comment.
    Comment,
}

impl Kind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "schema" => Self::Schema,
            "extension" => Self::Extension,
            "enum" => Self::Enum,
            "domain" => Self::Domain,
            "composite" => Self::Composite,
            "domain constraint" => Self::DomainConstraint,
            "sequence" => Self::Sequence,
            "table" => Self::Table,
            "column" => Self::Column,
            "sequence owner" => Self::SequenceOwner,
            "function" => Self::Function,
            "view" => Self::View,
            "materialized view" => Self::MaterializedView,
            "constraint" => Self::Constraint,
            "foreign key" => Self::ForeignKey,
            "index" => Self::Index,
            "trigger" => Self::Trigger,
            "row security" => Self::RowSecurity,
            "policy" => Self::Policy,
            "grant" => Self::Grant,
            "comment" => Self::Comment,
            _ => return None,
        })
    }
}

/// One object of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Object {
    /// What it is.
    pub kind: Kind,
    /// Its identity, unique in a schema (`column public.tasks.title`).
    pub key: String,
    /// Its definition: two objects with one key and one definition are equal.
    pub def: String,
    /// The object it belongs to and goes away with (a column's table, a grant's relation).
    pub parent: Option<String>,
    /// The statements that make it (on its own; a new table's columns come inline).
    pub create: String,
    /// The statement that removes it.
    pub drop: String,
    /// Kind-specific parts the alterations need (a column's type, default, nullability…).
    pub parts: Vec<String>,
    /// The objects it depends on.
    pub deps: BTreeSet<String>,
}

impl Object {
    /// A part, or "" when absent.
    pub fn part(&self, at: usize) -> &str {
        self.parts.get(at).map_or("", String::as_str)
    }
}

/// A whole schema.
#[derive(Debug, Clone, Default)]
pub(crate) struct Model {
    /// Every object by key.
    pub objects: BTreeMap<String, Object>,
    /// Objects of kinds the generator does not make (aggregates, operators, rules…), one
    /// line each: a change among them is refused, never silently left out.
    pub uncovered: BTreeSet<String>,
}

impl Model {
    /// Every object as one `key: definition` line, sorted: what the proof compares besides
    /// the snapshot.
    pub fn lines(&self) -> Vec<String> {
        let objects = self.objects.values().map(|o| format!("{} = {}", o.key, o.def));
        objects.chain(self.uncovered.iter().map(|u| format!("not covered: {u}"))).collect()
    }

    /// The object `key`.
    pub fn get(&self, key: &str) -> Option<&Object> {
        self.objects.get(key)
    }
}

/// The objects, one row each: kind, key, def, parent, create, drop, parts, and the catalog
/// address (classid, objid, objsubid) that `pg_depend` names it by.
const OBJECTS: &str = r#"
with spaces as (
    select oid, nspname, nspowner, nspacl from pg_namespace
     where nspname not in ('pg_catalog', 'information_schema', '_sqlx_test')
       and nspname not like 'pg\_toast%' and nspname not like 'pg\_temp%'
), from_extensions as (
    select classid, objid from pg_depend where deptype = 'e'
), rels as (
    select c.*, s.nspname, format('%I.%I', s.nspname, c.relname) as qname,
           case c.relkind when 'v' then 'view' when 'm' then 'materialized view'
                          when 'S' then 'sequence' else 'table' end as rkind
      from pg_class c join spaces s on s.oid = c.relnamespace
     where c.relname not like '\_sqlx\_migrations%'
       and c.relname not like '\_strata\_migration\_%'
       and c.relkind in ('r', 'p', 'v', 'm', 'S')
       and (c.oid) not in (select objid from from_extensions where classid = 'pg_class'::regclass)
), identity_seqs as (
    select d.objid from pg_depend d where d.classid = 'pg_class'::regclass and d.deptype = 'i'
), tables as (
    select * from rels where relkind in ('r', 'p')
), types as (
    select t.*, s.nspname, format('%I.%I', s.nspname, t.typname) as qname
      from pg_type t join spaces s on s.oid = t.typnamespace
     where (t.typtype in ('e', 'd')
            or (t.typtype = 'c' and exists (select from pg_class k where k.oid = t.typrelid and k.relkind = 'c')))
       and t.oid not in (select objid from from_extensions where classid = 'pg_type'::regclass)
), funcs as (
    select p.*, s.nspname,
           format('%I.%I(%s)', s.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) as qname,
           case p.prokind when 'p' then 'procedure' else 'function' end as fkind
      from pg_proc p join spaces s on s.oid = p.pronamespace
     where p.prokind in ('f', 'p')
       and p.oid not in (select objid from from_extensions where classid = 'pg_proc'::regclass)
), cols as (
    select r.qname as tname, a.*, d.oid as attrdef, pg_get_expr(d.adbin, d.adrelid) as expr,
           format_type(a.atttypid, a.atttypmod) as typ,
           case when a.attcollation <> 0 and a.attcollation <> t.typcollation
                then (select format('%I.%I', cn.nspname, co.collname) from pg_collation co
                        join pg_namespace cn on cn.oid = co.collnamespace where co.oid = a.attcollation)
                else '' end as coll
      from tables r
      join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
      join pg_type t on t.oid = a.atttypid
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
     where a.attislocal
), cons as (
    select c.*, r.qname as tname, pg_get_constraintdef(c.oid) as def
      from pg_constraint c join tables r on r.oid = c.conrelid
     where c.contype in ('c', 'f', 'p', 'u', 'x') and c.conislocal
), roles as (
    select oid, rolname from pg_roles
), grants as (
    select case r.relkind when 'S' then 'sequence' else 'table' end as gkind, r.qname as target,
           format('%s %s', r.rkind, r.qname) as parent,
           x.privilege_type, x.grantee, x.is_grantable, '' as col
      from rels r cross join lateral aclexplode(coalesce(r.relacl,
           acldefault((case r.relkind when 'S' then 's' else 'r' end)::"char", r.relowner))) x
     where x.grantee <> r.relowner
    union all
    select 'table', r.qname, format('column %s.%I', r.qname, a.attname),
           x.privilege_type, x.grantee, x.is_grantable, a.attname
      from rels r join pg_attribute a on a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped
      cross join lateral aclexplode(a.attacl) x
     where a.attacl is not null and x.grantee <> r.relowner
    union all
    select f.fkind, f.qname, format('function %s', f.qname), x.privilege_type, x.grantee,
           x.is_grantable, ''
      from funcs f cross join lateral aclexplode(coalesce(f.proacl, acldefault('f'::"char", f.proowner))) x
     where x.grantee <> f.proowner
    union all
    select 'schema', format('%I', s.nspname), format('schema %I', s.nspname), x.privilege_type,
           x.grantee, x.is_grantable, ''
      from spaces s cross join lateral aclexplode(coalesce(s.nspacl, acldefault('n'::"char", s.nspowner))) x
     where x.grantee <> s.nspowner
    union all
    select 'type', t.qname,
           format('%s %s', case t.typtype when 'd' then 'domain' when 'e' then 'enum' else 'type' end, t.qname),
           x.privilege_type, x.grantee,
           x.is_grantable, ''
      from types t cross join lateral aclexplode(coalesce(t.typacl, acldefault('T'::"char", t.typowner))) x
     where x.grantee <> t.typowner
), described as (
    select 'schema' as dkind, format('%I', s.nspname) as target, format('schema %I', s.nspname) as parent,
           d.description
      from spaces s join pg_description d on d.objoid = s.oid and d.classoid = 'pg_namespace'::regclass
    union all
    select case r.relkind when 'v' then 'view' when 'm' then 'materialized view'
                          when 'S' then 'sequence' else 'table' end,
           r.qname, format('%s %s', r.rkind, r.qname), d.description
      from rels r join pg_description d on d.objoid = r.oid and d.classoid = 'pg_class'::regclass
       and d.objsubid = 0
    union all
    select 'column', format('%s.%I', r.qname, a.attname), format('column %s.%I', r.qname, a.attname),
           d.description
      from rels r join pg_attribute a on a.attrelid = r.oid and a.attnum > 0
      join pg_description d on d.objoid = r.oid and d.classoid = 'pg_class'::regclass
       and d.objsubid = a.attnum
     where r.relkind in ('r', 'p')
    union all
    select f.fkind, f.qname, format('function %s', f.qname), d.description
      from funcs f join pg_description d on d.objoid = f.oid and d.classoid = 'pg_proc'::regclass
    union all
    select case t.typtype when 'd' then 'domain' else 'type' end, t.qname,
           format('%s %s', case t.typtype when 'd' then 'domain' when 'e' then 'enum' else 'type' end, t.qname),
           d.description
      from types t join pg_description d on d.objoid = t.oid and d.classoid = 'pg_type'::regclass
    union all
    select 'constraint', format('%I on %s', c.conname, c.tname),
           format('%s %s.%I', case c.contype when 'f' then 'foreign key' else 'constraint' end,
                  c.tname, c.conname), d.description
      from cons c join pg_description d on d.objoid = c.oid and d.classoid = 'pg_constraint'::regclass
    union all
    select 'index', format('%I.%I', r.nspname, ic.relname),
           format('index %I.%I', r.nspname, ic.relname), d.description
      from pg_index i join tables r on r.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
      join pg_description d on d.objoid = ic.oid and d.classoid = 'pg_class'::regclass
     where not exists (select from pg_constraint k where k.conindid = i.indexrelid and k.contype in ('p', 'u', 'x'))
    union all
    select 'trigger', format('%I on %s', t.tgname, r.qname), format('trigger %s.%I', r.qname, t.tgname),
           d.description
      from pg_trigger t join tables r on r.oid = t.tgrelid
      join pg_description d on d.objoid = t.oid and d.classoid = 'pg_trigger'::regclass
     where not t.tgisinternal
    union all
    select 'policy', format('%I on %s', p.polname, r.qname), format('policy %s.%I', r.qname, p.polname),
           d.description
      from pg_policy p join tables r on r.oid = p.polrelid
      join pg_description d on d.objoid = p.oid and d.classoid = 'pg_policy'::regclass
)
select * from (
    select 'schema' as kind, format('schema %I', nspname) as key, 'schema' as def, null::text as parent,
           format('create schema %I;', nspname) as create_sql,
           format('drop schema if exists %I;', nspname) as drop_sql, '{}'::text[] as parts,
           'pg_namespace'::regclass::oid as classid, oid as objid, 0 as objsubid
      from spaces where nspname <> 'public'
    union all
    select 'extension', format('extension %I', e.extname),
           format('version %s in %I', e.extversion, n.nspname), null,
           format('create extension if not exists %I with schema %I;', e.extname, n.nspname),
           format('drop extension if exists %I;', e.extname), array[e.extversion],
           'pg_extension'::regclass::oid, e.oid, 0
      from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname <> 'plpgsql'
    union all
    select 'enum', format('enum %s', t.qname),
           (select string_agg(quote_literal(l.enumlabel), ', ' order by l.enumsortorder)
              from pg_enum l where l.enumtypid = t.oid), format('schema %I', t.nspname),
           format('create type %s as enum (%s);', t.qname,
                  (select string_agg(quote_literal(l.enumlabel), ', ' order by l.enumsortorder)
                     from pg_enum l where l.enumtypid = t.oid)),
           format('drop type if exists %s;', t.qname),
           coalesce((select array_agg(l.enumlabel::text order by l.enumsortorder) from pg_enum l
                      where l.enumtypid = t.oid), '{}'),
           'pg_type'::regclass::oid, t.oid, 0
      from types t where t.typtype = 'e'
    union all
    select 'domain', format('domain %s', t.qname),
           concat_ws(' ', format_type(t.typbasetype, t.typtypmod),
                     case when t.typcollation <> 0 and t.typcollation <> bt.typcollation
                          then format('collate %s', t.typcollation::regcollation) end,
                     'default ' || t.typdefault, case when t.typnotnull then 'not null' end),
           format('schema %I', t.nspname),
           format('create domain %s as %s;', t.qname,
                  concat_ws(' ', format_type(t.typbasetype, t.typtypmod),
                            case when t.typcollation <> 0 and t.typcollation <> bt.typcollation
                                 then format('collate %s', t.typcollation::regcollation) end,
                            'default ' || t.typdefault, case when t.typnotnull then 'not null' end)),
           format('drop domain if exists %s;', t.qname),
           array[format_type(t.typbasetype, t.typtypmod),
                 coalesce(case when t.typcollation <> bt.typcollation then t.typcollation::regcollation::text end, ''),
                 coalesce(t.typdefault, ''), t.typnotnull::text],
           'pg_type'::regclass::oid, t.oid, 0
      from types t join pg_type bt on bt.oid = t.typbasetype where t.typtype = 'd'
    union all
    select 'domain constraint', format('domain constraint %s.%I', t.qname, c.conname),
           pg_get_constraintdef(c.oid), format('domain %s', t.qname),
           format('alter domain %s add constraint %I %s;', t.qname, c.conname, pg_get_constraintdef(c.oid)),
           format('alter domain %s drop constraint if exists %I;', t.qname, c.conname), '{}',
           'pg_constraint'::regclass::oid, c.oid, 0
      from pg_constraint c join types t on t.oid = c.contypid
    union all
    select 'composite', format('type %s', t.qname),
           (select string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum)
              from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped),
           format('schema %I', t.nspname),
           format('create type %s as (%s);', t.qname,
                  (select string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' order by a.attnum)
                     from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped)),
           format('drop type if exists %s;', t.qname),
           coalesce((select array_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) order by a.attnum)
                       from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped), '{}'),
           'pg_type'::regclass::oid, t.oid, 0
      from types t where t.typtype = 'c'
    union all
    select 'sequence', format('sequence %s', r.qname),
           format('as %s increment by %s minvalue %s maxvalue %s start with %s cache %s%s',
                  format_type(q.seqtypid, null), q.seqincrement, q.seqmin, q.seqmax, q.seqstart,
                  q.seqcache, case when q.seqcycle then ' cycle' else ' no cycle' end),
           format('schema %I', r.nspname),
           format('create sequence %s as %s increment by %s minvalue %s maxvalue %s start with %s cache %s%s;',
                  r.qname, format_type(q.seqtypid, null), q.seqincrement, q.seqmin, q.seqmax,
                  q.seqstart, q.seqcache, case when q.seqcycle then ' cycle' else ' no cycle' end),
           format('drop sequence if exists %s;', r.qname),
           array[format('alter sequence %s as %s increment by %s minvalue %s maxvalue %s start with %s cache %s%s;',
                  r.qname, format_type(q.seqtypid, null), q.seqincrement, q.seqmin, q.seqmax,
                  q.seqstart, q.seqcache, case when q.seqcycle then ' cycle' else ' no cycle' end)],
           'pg_class'::regclass::oid, r.oid, 0
      from rels r join pg_sequence q on q.seqrelid = r.oid
     where r.relkind = 'S' and r.oid not in (select objid from identity_seqs)
    union all
    select 'sequence owner', format('sequence owner %s', r.qname),
           format('%s.%I', o.qname, a.attname), format('sequence %s', r.qname),
           format('alter sequence %s owned by %s.%I;', r.qname, o.qname, a.attname),
           format('alter sequence if exists %s owned by none;', r.qname), '{}',
           0::oid, 0::oid, 0
      from rels r join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = r.oid
       and d.refclassid = 'pg_class'::regclass and d.deptype = 'a' and d.refobjsubid > 0
      join rels o on o.oid = d.refobjid
      join pg_attribute a on a.attrelid = o.oid and a.attnum = d.refobjsubid
     where r.relkind = 'S'
    union all
    select 'table', format('table %s', r.qname),
           concat_ws(' ', case r.relpersistence when 'u' then 'unlogged' end,
                     case when r.relispartition then format('partition of %s %s',
                          (select format('%I.%I', pn.nspname, pc.relname) from pg_inherits p
                            join pg_class pc on pc.oid = p.inhparent join pg_namespace pn on pn.oid = pc.relnamespace
                           where p.inhrelid = r.oid),
                          pg_get_expr(r.relpartbound, r.oid)) end,
                     case when r.relkind = 'p' then 'partition by ' || pg_get_partkeydef(r.oid) end,
                     case when r.reloptions is not null then format('with (%s)', array_to_string(r.reloptions, ', ')) end),
           case when r.relispartition
                then (select format('table %I.%I', pn.nspname, pc.relname) from pg_inherits p
                        join pg_class pc on pc.oid = p.inhparent join pg_namespace pn on pn.oid = pc.relnamespace
                       where p.inhrelid = r.oid)
                else format('schema %I', r.nspname) end,
           '', format('drop table if exists %s;', r.qname),
           array[case r.relpersistence when 'u' then 'unlogged ' else '' end,
                 case when r.relispartition then format(' partition of %s %s',
                      (select format('%I.%I', pn.nspname, pc.relname) from pg_inherits p
                            join pg_class pc on pc.oid = p.inhparent join pg_namespace pn on pn.oid = pc.relnamespace
                           where p.inhrelid = r.oid),
                      pg_get_expr(r.relpartbound, r.oid)) else '' end,
                 case when r.relkind = 'p' then ' partition by ' || pg_get_partkeydef(r.oid) else '' end,
                 coalesce(array_to_string(r.reloptions, ', '), '')],
           'pg_class'::regclass::oid, r.oid, 0
      from tables r
    union all
    select 'column', format('column %s.%I', c.tname, c.attname),
           concat_ws(' ', format('%I', c.attname), c.typ,
                     case when c.coll <> '' then 'collate ' || c.coll end,
                     case when c.attgenerated = 's' then format('generated always as (%s) stored', c.expr)
                          when c.expr is not null then 'default ' || c.expr end,
                     case when c.attnotnull then 'not null' end,
                     case c.attidentity when 'a' then 'generated always as identity'
                                        when 'd' then 'generated by default as identity' end),
           format('table %s', c.tname),
           format('alter table %s add column %s;', c.tname,
                  concat_ws(' ', format('%I', c.attname), c.typ,
                     case when c.coll <> '' then 'collate ' || c.coll end,
                     case when c.attgenerated = 's' then format('generated always as (%s) stored', c.expr)
                          when c.expr is not null then 'default ' || c.expr end,
                     case when c.attnotnull then 'not null' end,
                     case c.attidentity when 'a' then 'generated always as identity'
                                        when 'd' then 'generated by default as identity' end)),
           format('alter table %s drop column if exists %I;', c.tname, c.attname),
           array[c.typ, c.coll, case when c.attgenerated = 's' then '' else coalesce(c.expr, '') end,
                 c.attnotnull::text, c.attidentity::text,
                 case when c.attgenerated = 's' then c.expr else '' end, format('%I', c.attname),
                 c.tname, lpad(c.attnum::text, 5, '0')],
           'pg_class'::regclass::oid, c.attrelid, c.attnum
      from cols c
    union all
    select case c.contype when 'f' then 'foreign key' else 'constraint' end,
           format('%s %s.%I', case c.contype when 'f' then 'foreign key' else 'constraint' end,
                  c.tname, c.conname),
           c.def, format('table %s', c.tname),
           format('alter table %s add constraint %I %s;', c.tname, c.conname, c.def),
           format('alter table %s drop constraint if exists %I;', c.tname, c.conname),
           array[c.contype::text, c.convalidated::text, coalesce(pg_get_indexdef(nullif(c.conindid, 0)), ''),
                 format('%I', c.conname), c.tname, c.def],
           'pg_constraint'::regclass::oid, c.oid, 0
      from cons c
    union all
    select 'index', format('index %I.%I', r.nspname, ic.relname),
           pg_get_indexdef(i.indexrelid) || case when i.indisvalid then '' else ' -- INVALID' end,
           format('%s %s', r.rkind, r.qname), pg_get_indexdef(i.indexrelid) || ';',
           format('drop index if exists %I.%I;', r.nspname, ic.relname),
           array[pg_get_indexdef(i.indexrelid), format('%I.%I', r.nspname, ic.relname), r.relkind::text],
           'pg_class'::regclass::oid, i.indexrelid, 0
      from pg_index i join rels r on r.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
     where not exists (select from pg_constraint k where k.conindid = i.indexrelid
                        and k.conrelid = i.indrelid and k.contype in ('p', 'u', 'x'))
       and not exists (select from pg_inherits h where h.inhrelid = i.indexrelid)
    union all
    select 'view', format('view %s', r.qname),
           concat_ws(' ', case when r.reloptions is not null then format('with (%s)', array_to_string(r.reloptions, ', ')) end,
                     pg_get_viewdef(r.oid, true)),
           format('schema %I', r.nspname),
           format(e'create view %s%s as\n%s', r.qname,
                  case when r.reloptions is not null then format(' with (%s)', array_to_string(r.reloptions, ', ')) else '' end,
                  pg_get_viewdef(r.oid, true)),
           format('drop view if exists %s;', r.qname), '{}',
           'pg_class'::regclass::oid, r.oid, 0
      from rels r where r.relkind = 'v'
    union all
    select 'materialized view', format('materialized view %s', r.qname),
           pg_get_viewdef(r.oid, true), format('schema %I', r.nspname),
           format(e'create materialized view %s as\n%s\nwith %sdata;', r.qname,
                  rtrim(pg_get_viewdef(r.oid, true), ';'),
                  case when r.relispopulated then '' else 'no ' end),
           format('drop materialized view if exists %s;', r.qname), '{}',
           'pg_class'::regclass::oid, r.oid, 0
      from rels r where r.relkind = 'm'
    union all
    select 'function', format('function %s', f.qname), pg_get_functiondef(f.oid),
           format('schema %I', f.nspname), rtrim(pg_get_functiondef(f.oid), e'\n') || ';',
           format('drop %s if exists %s;', f.fkind, f.qname),
           array[coalesce(pg_get_function_result(f.oid), ''), f.fkind],
           'pg_proc'::regclass::oid, f.oid, 0
      from funcs f
    union all
    select 'trigger', format('trigger %s.%I', r.qname, t.tgname), pg_get_triggerdef(t.oid),
           format('table %s', r.qname), pg_get_triggerdef(t.oid) || ';',
           format('drop trigger if exists %I on %s;', t.tgname, r.qname), '{}',
           'pg_trigger'::regclass::oid, t.oid, 0
      from pg_trigger t join tables r on r.oid = t.tgrelid
     where not t.tgisinternal and t.tgparentid = 0
    union all
    select 'row security', format('row security %s', r.qname),
           concat_ws(', ', case when r.relrowsecurity then 'enabled' end,
                     case when r.relforcerowsecurity then 'forced' end),
           format('table %s', r.qname),
           concat_ws(e'\n', case when r.relrowsecurity then format('alter table %s enable row level security;', r.qname) end,
                     case when r.relforcerowsecurity then format('alter table %s force row level security;', r.qname) end),
           concat_ws(e'\n', case when r.relrowsecurity then format('alter table %s disable row level security;', r.qname) end,
                     case when r.relforcerowsecurity then format('alter table %s no force row level security;', r.qname) end),
           '{}', 0::oid, 0::oid, 0
      from tables r where r.relrowsecurity or r.relforcerowsecurity
    union all
    select 'policy', format('policy %s.%I', r.qname, p.polname),
           concat_ws(' ', case when p.polpermissive then 'permissive' else 'restrictive' end,
                     'for ' || case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                                            when 'd' then 'delete' else 'all' end,
                     'to ' || (select string_agg(case when x = 0 then 'public' else quote_ident(x::regrole::text) end, ', '
                                            order by case when x = 0 then 'public' else x::regrole::text end)
                                 from unnest(p.polroles) x),
                     'using (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                     'with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'),
           format('table %s', r.qname),
           format('create policy %I on %s %s;', p.polname, r.qname,
                  concat_ws(' ', case when p.polpermissive then 'as permissive' else 'as restrictive' end,
                     'for ' || case p.polcmd when 'r' then 'select' when 'a' then 'insert' when 'w' then 'update'
                                            when 'd' then 'delete' else 'all' end,
                     'to ' || (select string_agg(case when x = 0 then 'public' else quote_ident(x::regrole::text) end, ', '
                                            order by case when x = 0 then 'public' else x::regrole::text end)
                                 from unnest(p.polroles) x),
                     'using (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                     'with check (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')),
           format('drop policy if exists %I on %s;', p.polname, r.qname), '{}',
           'pg_policy'::regclass::oid, p.oid, 0
      from pg_policy p join tables r on r.oid = p.polrelid
    union all
    select 'grant',
           format('grant %s%s on %s %s to %s%s', g.privilege_type,
                  case when g.col <> '' then format(' (%I)', g.col) else '' end, g.gkind, g.target,
                  case g.grantee when 0 then 'public' else quote_ident(g.grantee::regrole::text) end,
                  case when g.is_grantable then ' with grant option' else '' end),
           '', g.parent,
           format('grant %s%s on %s %s to %s%s;', g.privilege_type,
                  case when g.col <> '' then format(' (%I)', g.col) else '' end, g.gkind, g.target,
                  case g.grantee when 0 then 'public' else quote_ident(g.grantee::regrole::text) end,
                  case when g.is_grantable then ' with grant option' else '' end),
           format('revoke %s%s on %s %s from %s;', g.privilege_type,
                  case when g.col <> '' then format(' (%I)', g.col) else '' end, g.gkind, g.target,
                  case g.grantee when 0 then 'public' else quote_ident(g.grantee::regrole::text) end),
           '{}', 0::oid, 0::oid, 0
      from grants g
    union all
    select 'comment', format('comment on %s %s', d.dkind, d.target), d.description, d.parent,
           format('comment on %s %s is %L;', d.dkind, d.target, d.description),
           format('comment on %s %s is null;', d.dkind, d.target), '{}', 0::oid, 0::oid, 0
      from described d
) objects
"#;

/// Other catalog addresses that stand for an object: a relation's row type, an array type,
/// a column default, a view's rewrite rule, a constraint's index, an identity's sequence.
const ALIASES: &str = r#"
select 'pg_type'::regclass::oid as classid, c.reltype as objid, 0 as objsubid,
       c.oid as to_objid, 'pg_class'::regclass::oid as to_classid, 0 as to_objsubid
  from pg_class c where c.reltype <> 0 and c.oid >= 16384
union all
select 'pg_type'::regclass::oid, t.typarray, 0, t.oid, 'pg_type'::regclass::oid, 0
  from pg_type t where t.typarray <> 0 and t.oid >= 16384 and t.typtype in ('e', 'd', 'c')
union all
select 'pg_class'::regclass::oid, t.typrelid, 0, t.oid, 'pg_type'::regclass::oid, 0
  from pg_type t join pg_class k on k.oid = t.typrelid where t.typtype = 'c' and k.relkind = 'c' and t.oid >= 16384
union all
select 'pg_attrdef'::regclass::oid, d.oid, 0, d.adrelid, 'pg_class'::regclass::oid, d.adnum
  from pg_attrdef d where d.oid >= 16384
union all
select 'pg_rewrite'::regclass::oid, w.oid, 0, w.ev_class, 'pg_class'::regclass::oid, 0
  from pg_rewrite w where w.oid >= 16384
union all
select 'pg_class'::regclass::oid, k.conindid, 0, k.oid, 'pg_constraint'::regclass::oid, 0
  from pg_constraint k where k.conindid <> 0 and k.contype in ('p', 'u', 'x') and k.oid >= 16384
union all
select 'pg_class'::regclass::oid, d.objid, 0, d.refobjid, 'pg_class'::regclass::oid, d.refobjsubid
  from pg_depend d where d.classid = 'pg_class'::regclass and d.deptype = 'i'
   and d.refclassid = 'pg_class'::regclass and d.refobjsubid > 0
"#;

/// What the generator does not cover, one line an object.
const UNCOVERED: &str = r#"
with spaces as (
    select oid, nspname from pg_namespace
     where nspname not in ('pg_catalog', 'information_schema', '_sqlx_test')
       and nspname not like 'pg\_toast%' and nspname not like 'pg\_temp%'
), from_extensions as (
    select classid, objid from pg_depend where deptype = 'e'
)
select line from (
    select format('aggregate or window function %s', p.oid::regprocedure) as line
      from pg_proc p join spaces s on s.oid = p.pronamespace
     where p.prokind in ('a', 'w') and p.oid not in (select objid from from_extensions)
    union all
    select format('type %s (%s)', t.oid::regtype, case t.typtype when 'r' then 'range' when 'm' then 'multirange'
                                                 when 'b' then 'base' else 'pseudo' end)
      from pg_type t join spaces s on s.oid = t.typnamespace
     where t.typtype in ('r', 'm', 'b', 'p') and t.typelem = 0 and t.oid not in (select objid from from_extensions)
    union all
    select format('collation %I.%I', s.nspname, c.collname)
      from pg_collation c join spaces s on s.oid = c.collnamespace
     where c.oid not in (select objid from from_extensions)
    union all
    select format('operator %s', o.oid::regoperator)
      from pg_operator o join spaces s on s.oid = o.oprnamespace
     where o.oid not in (select objid from from_extensions)
    union all
    select format('cast (%s as %s)', c.castsource::regtype, c.casttarget::regtype)
      from pg_cast c where c.oid >= 16384 and c.oid not in (select objid from from_extensions)
    union all
    select format('event trigger %I', evtname) from pg_event_trigger
     where oid not in (select objid from from_extensions)
    union all
    select format('rule %I on %s', w.rulename, w.ev_class::regclass)
      from pg_rewrite w join pg_class c on c.oid = w.ev_class join spaces s on s.oid = c.relnamespace
     where w.rulename <> '_RETURN'
    union all
    select format('statistics %I.%I', s.nspname, x.stxname)
      from pg_statistic_ext x join spaces s on s.oid = x.stxnamespace
    union all
    select format('foreign table %s', c.oid::regclass)
      from pg_class c join spaces s on s.oid = c.relnamespace
     where c.relkind = 'f' and c.oid not in (select objid from from_extensions)
    union all
    select format('inheritance: %s inherits %s', c.oid::regclass, h.inhparent::regclass)
      from pg_inherits h join pg_class c on c.oid = h.inhrelid join spaces s on s.oid = c.relnamespace
     where not c.relispartition and c.relkind in ('r', 'p')
    union all
    select format('text search configuration %I.%I', s.nspname, t.cfgname)
      from pg_ts_config t join spaces s on s.oid = t.cfgnamespace
     where t.oid not in (select objid from from_extensions)
    union all
    select format('publication %I', pubname) from pg_publication
    union all
    select format('replica identity %s of %s', c.relreplident, c.oid::regclass)
      from pg_class c join spaces s on s.oid = c.relnamespace
     where c.relkind in ('r', 'p') and c.relreplident not in ('d', 'n')
    union all
    select format('clustered on index %s', i.indexrelid::regclass)
      from pg_index i join pg_class c on c.oid = i.indrelid join spaces s on s.oid = c.relnamespace
     where i.indisclustered
    union all
    select format('storage, compression or statistics target of column %s.%I', c.oid::regclass, a.attname)
      from pg_attribute a join pg_class c on c.oid = a.attrelid join spaces s on s.oid = c.relnamespace
      join pg_type t on t.oid = a.atttypid
     where c.relkind in ('r', 'p') and a.attnum > 0 and not a.attisdropped
       and (a.attstattarget >= 0 or a.attcompression <> '' or a.attstorage <> t.typstorage)
       and c.oid not in (select objid from from_extensions)
) lines
"#;

/// Dependencies between user objects.
const DEPENDS: &str = r#"
select classid, objid, objsubid, refclassid, refobjid, refobjsubid from pg_depend
 where deptype in ('n', 'a') and objid >= 16384 and refobjid >= 16384
"#;

type Address = (u32, u32, i32);

/// Reads the schema of the database `conn` is on.
///
/// # Errors
///
/// [`SchemaError::Database`] when the catalogs cannot be read.
pub(crate) async fn read(conn: &mut PgConnection) -> Result<Model, SchemaError> {
    let rows = sqlx::query(OBJECTS)
        .fetch_all(&mut *conn)
        .await
        .map_err(SchemaError::db("reading the schema's objects from the catalogs"))?;
    let mut model = Model::default();
    let mut by_address: HashMap<Address, String> = HashMap::new();
    for row in &rows {
        let get = |name: &str| row.try_get::<Option<String>, _>(name);
        let read = || -> Result<(Object, Address), sqlx::Error> {
            let kind_text = get("kind")?.unwrap_or_default();
            let kind = Kind::parse(&kind_text).ok_or_else(|| {
                sqlx::Error::Protocol(format!("an object of unknown kind {kind_text}"))
            })?;
            let object = Object {
                kind,
                key: get("key")?.unwrap_or_default(),
                def: get("def")?.unwrap_or_default(),
                parent: get("parent")?,
                create: get("create_sql")?.unwrap_or_default(),
                drop: get("drop_sql")?.unwrap_or_default(),
                parts: row
                    .try_get::<Vec<Option<String>>, _>("parts")?
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect(),
                deps: BTreeSet::new(),
            };
            let address: Address = (
                row.try_get::<sqlx::postgres::types::Oid, _>("classid")?.0,
                row.try_get::<sqlx::postgres::types::Oid, _>("objid")?.0,
                row.try_get::<i32, _>("objsubid")?,
            );
            Ok((object, address))
        };
        let (object, address) = read().map_err(SchemaError::db("reading the schema's objects"))?;
        if address.1 != 0 {
            by_address.insert(address, object.key.clone());
        }
        model.objects.insert(object.key.clone(), object);
    }
    let uncovered: Vec<String> = sqlx::query_scalar(UNCOVERED)
        .fetch_all(&mut *conn)
        .await
        .map_err(SchemaError::db("reading the objects the generator does not cover"))?;
    model.uncovered = uncovered.into_iter().collect();
    let oid = |row: &sqlx::postgres::PgRow, name: &str| {
        row.try_get::<sqlx::postgres::types::Oid, _>(name).map(|o| o.0)
    };
    let aliases = sqlx::query(ALIASES)
        .fetch_all(&mut *conn)
        .await
        .map_err(SchemaError::db("reading the catalog's aliases"))?;
    for row in &aliases {
        let read = || -> Result<(Address, Address), sqlx::Error> {
            Ok((
                (oid(row, "classid")?, oid(row, "objid")?, row.try_get("objsubid")?),
                (oid(row, "to_classid")?, oid(row, "to_objid")?, row.try_get("to_objsubid")?),
            ))
        };
        let (from, to) = read().map_err(SchemaError::db("reading the catalog's aliases"))?;
        let key = by_address.get(&to).or_else(|| by_address.get(&(to.0, to.1, 0))).cloned();
        if let Some(key) = key {
            by_address.entry(from).or_insert(key);
        }
    }
    let depends = sqlx::query(DEPENDS)
        .fetch_all(&mut *conn)
        .await
        .map_err(SchemaError::db("reading the dependencies between objects"))?;
    let find = |address: Address| {
        by_address.get(&address).or_else(|| by_address.get(&(address.0, address.1, 0))).cloned()
    };
    for row in &depends {
        let read = || -> Result<(Address, Address), sqlx::Error> {
            Ok((
                (oid(row, "classid")?, oid(row, "objid")?, row.try_get("objsubid")?),
                (oid(row, "refclassid")?, oid(row, "refobjid")?, row.try_get("refobjsubid")?),
            ))
        };
        let (from, to) = read().map_err(SchemaError::db("reading the dependencies"))?;
        let (Some(from), Some(to)) = (find(from), find(to)) else { continue };
        if from == to {
            continue;
        }
        // A serial's sequence depends on its column (auto); the column's default depends on
        // the sequence. The first edge is the `sequence owner` object's, so the sequence
        // comes before the table.
        if from.starts_with("sequence ") && to.starts_with("column ") {
            continue;
        }
        if let Some(object) = model.objects.get_mut(&from) {
            object.deps.insert(to);
        }
    }
    let keys: BTreeSet<String> = model.objects.keys().cloned().collect();
    for object in model.objects.values_mut() {
        if let Some(parent) = &object.parent
            && keys.contains(parent)
        {
            object.deps.insert(parent.clone());
        }
        if object.kind == Kind::SequenceOwner {
            let column = format!("column {}", object.def);
            if keys.contains(&column) {
                object.deps.insert(column);
            }
        }
        object.deps.retain(|d| keys.contains(d));
    }
    Ok(model)
}
