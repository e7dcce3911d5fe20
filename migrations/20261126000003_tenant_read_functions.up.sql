-- Hot tenant reads in one round trip. A plain tenant read needs BEGIN, set_config, the query
-- and COMMIT (four round trips) so that row-level security sees the tenant. These functions
-- set the tenant transaction-locally themselves, run the query under RLS (SECURITY INVOKER:
-- the caller's role, so a role without BYPASSRLS is still confined), then put back the
-- setting they found. Outside a transaction the setting ends with the statement.
--
-- Inside a transaction already set to another tenant they refuse (SQLSTATE 42501): a read
-- must never widen what the transaction's tenant may see.

create function strata_task_by_id(p_organization_id uuid, p_id uuid) returns setof tasks
language plpgsql volatile security invoker as $$
declare
    previous text := coalesce(current_setting('strata.organization_id', true), '');
begin
    if previous <> '' and previous <> p_organization_id::text then
        raise exception 'this transaction is scoped to another organization'
            using errcode = 'insufficient_privilege', constraint = 'strata_task_by_id_tenant';
    end if;
    perform set_config('strata.organization_id', p_organization_id::text, true);
    return query
        select * from tasks t
         where t.organization_id = p_organization_id and t.id = p_id and t.deleted_at is null;
    perform set_config('strata.organization_id', previous, true);
end
$$;
comment on function strata_task_by_id(uuid, uuid) is
    'One task of one organization under RLS, in one round trip; used by strata_db::tasks::get.';
revoke execute on function strata_task_by_id(uuid, uuid) from public;
grant execute on function strata_task_by_id(uuid, uuid) to strata_app;
