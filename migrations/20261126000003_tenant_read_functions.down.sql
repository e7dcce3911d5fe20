-- Reverts 20261126000003_tenant_read_functions.
drop function strata_task_by_id(uuid, uuid);
