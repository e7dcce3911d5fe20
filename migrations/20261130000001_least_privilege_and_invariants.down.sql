-- Reverts 20261130000001_least_privilege_and_invariants. The role strata_relay is cluster-wide
-- and may serve other databases, so it is kept; its privileges here are revoked.
drop policy outbox_events_relay_update on outbox_events;
drop policy outbox_events_relay_select on outbox_events;
drop policy outbox_events_tenant_insert on outbox_events;
alter table outbox_events no force row level security;
alter table outbox_events disable row level security;
revoke all on outbox_events from strata_relay;
revoke usage on schema public from strata_relay;
grant select, insert, update on outbox_events to strata_app;
comment on table outbox_events is
    'Events for other services, written in the transaction of the change; claimed with FOR UPDATE SKIP LOCKED.';
drop trigger memberships_owner_required on memberships;
drop function strata_keep_an_owner();
drop function strata_enter_organization(uuid, uuid);
