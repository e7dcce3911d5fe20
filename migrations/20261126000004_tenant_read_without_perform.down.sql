-- Reverts 20261126000004_tenant_read_without_perform: the definition of 20261126000003.

create or replace function strata_task_by_id(p_organization_id uuid, p_id uuid) returns setof tasks
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
