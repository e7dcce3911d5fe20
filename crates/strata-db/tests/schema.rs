//! Invariants of the schema itself, read from the catalog, and the migrations' reversibility.

use sqlx::PgPool;
use strata_test_support::TestResult;

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn every_foreign_key_has_an_index_that_leads_with_its_columns(pool: PgPool) -> TestResult {
    let unindexed: Vec<String> = sqlx::query_scalar(
        "select c.conname::text
           from pg_constraint c
          where c.contype = 'f' and c.connamespace = 'public'::regnamespace
            and not exists (
                select 1 from pg_index i
                 where i.indrelid = c.conrelid
                   and (select array_agg(x order by x) from unnest(i.indkey[0:cardinality(c.conkey) - 1]) x)
                     = (select array_agg(x order by x) from unnest(c.conkey) x))
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert!(unindexed.is_empty(), "foreign keys without an index: {unindexed:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn every_constraint_is_named_after_its_table(pool: PgPool) -> TestResult {
    let misnamed: Vec<String> = sqlx::query_scalar(
        "select conrelid::regclass::text || '.' || conname
           from pg_constraint
          where connamespace = 'public'::regnamespace and conrelid <> 0
            and conname not like conrelid::regclass::text || '\\_%'
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert!(misnamed.is_empty(), "constraints not named <table>_<what>: {misnamed:?}");
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn every_tenant_owned_table_has_forced_row_level_security(pool: PgPool) -> TestResult {
    let unprotected: Vec<String> = sqlx::query_scalar(
        "select c.relname::text
           from pg_class c
           join pg_attribute a on a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped
          where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
            and not (c.relrowsecurity and c.relforcerowsecurity
                     and exists (select 1 from pg_policy p where p.polrelid = c.oid))
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert!(unprotected.is_empty(), "tenant tables without forced RLS: {unprotected:?}");
    let protected: i64 = sqlx::query_scalar(
        "select count(*) from pg_class where relnamespace = 'public'::regnamespace and relforcerowsecurity",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(protected, 6, "memberships, projects, tasks, comments, audit_events, outbox_events");
    let loose: Vec<String> = sqlx::query_scalar(
        "select polname::text from pg_policy
          where polrelid <> 'outbox_events'::regclass
            and (pg_get_expr(polqual, polrelid) <> '(organization_id = strata_current_organization())'
                 or polwithcheck is not null)
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert!(loose.is_empty(), "policies not keyed on the transaction's tenant: {loose:?}");
    // The outbox: every role inserts only into its tenant; only the relay reads and settles,
    // across tenants; the application reads back its own tenant's rows, of which it may read
    // only the id column (name, command, roles, USING, WITH CHECK).
    let outbox: Vec<String> = sqlx::query_scalar(
        "select format('%s %s %s %s %s', polname, polcmd,
                       (select string_agg(case when r = 0 then 'public' else r::regrole::text end, ',')
                          from unnest(polroles) r),
                       coalesce(pg_get_expr(polqual, polrelid), '-'),
                       coalesce(pg_get_expr(polwithcheck, polrelid), '-'))
           from pg_policy where polrelid = 'outbox_events'::regclass
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        outbox,
        [
            "outbox_events_relay_select r strata_relay true -",
            "outbox_events_relay_update w strata_relay true true",
            "outbox_events_tenant_insert a public - (organization_id = strata_current_organization())",
            // The ids of its own tenant's events only: its inserts end in RETURNING id.
            "outbox_events_tenant_select r strata_app (organization_id = strata_current_organization()) -",
        ]
    );
    let privileges: Vec<String> = sqlx::query_scalar(
        "select format('%s %s %s', r, p, has_table_privilege(r, 'outbox_events', p)::text)
           from unnest(array['strata_app', 'strata_relay']) r,
                unnest(array['select', 'insert', 'update', 'delete']) p
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        privileges,
        [
            "strata_app delete false",
            "strata_app insert true",
            "strata_app select false",
            "strata_app update false",
            "strata_relay delete false",
            "strata_relay insert false",
            "strata_relay select true",
            "strata_relay update true",
        ],
        "the application writes events and reads none; the relay reads and settles them"
    );
    Ok(())
}

#[sqlx::test(migrator = "strata_db::MIGRATOR")]
async fn every_data_table_keeps_its_timestamps(pool: PgPool) -> TestResult {
    let missing: Vec<String> = sqlx::query_scalar(
        "select c.relname::text
           from pg_class c
          where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
            -- api_tokens changes once, and says when in revoked_at.
            and c.relname not in ('_sqlx_migrations', 'task_status_transitions', 'audit_events', 'outbox_events', 'api_tokens')
            and (not exists (select 1 from pg_attribute where attrelid = c.oid and attname = 'created_at')
                 or not exists (select 1 from pg_trigger where tgrelid = c.oid and tgname like '%set_updated_at'))
          order by 1",
    )
    .fetch_all(&pool)
    .await?;
    assert!(missing.is_empty(), "tables without created_at or the updated_at trigger: {missing:?}");
    Ok(())
}

/// A text dump of the public schema from the catalog: columns, constraints, indexes, policies.
async fn catalog_dump(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable, column_default)
           from information_schema.columns where table_schema = 'public'
         union all
         select format('constraint %s %s', conname, pg_get_constraintdef(oid))
           from pg_constraint where connamespace = 'public'::regnamespace
         union all
         select format('index %s', pg_get_indexdef(indexrelid))
           from pg_index where indrelid in (select oid from pg_class where relnamespace = 'public'::regnamespace)
         union all
         select format('policy %s %s', polname, pg_get_expr(polqual, polrelid)) from pg_policy
         union all
         select format('trigger %s', tgname) from pg_trigger where not tgisinternal
         order by 1",
    )
    .fetch_all(pool)
    .await
}

#[sqlx::test(migrations = false)]
async fn migrations_go_up_down_and_up_to_the_same_schema(pool: PgPool) -> TestResult {
    let migrator = &strata_db::MIGRATOR;
    migrator.run(&pool).await?;
    let first = catalog_dump(&pool).await?;
    migrator.undo(&pool, 0).await?;
    let empty = catalog_dump(&pool).await?;
    assert!(
        empty.iter().all(|line| line.contains("_sqlx_migrations")),
        "down leaves only the tracking table: {empty:?}"
    );
    migrator.run(&pool).await?;
    assert_eq!(catalog_dump(&pool).await?, first);
    Ok(())
}
