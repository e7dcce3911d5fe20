-- Reverts 20261126000002_work_tracker. The role strata_app is cluster-wide and may serve other
-- databases, so it is kept; its privileges here go with the tables.
revoke usage on schema public from strata_app;
revoke all on organizations, users from strata_app;
drop table outbox_events;
drop table audit_events;
drop function strata_refuse_change();
drop table comments;
drop table task_status_transitions cascade;
drop table tasks;
drop function strata_check_status_transition();
drop table projects;
drop table memberships;
drop function strata_current_organization();
drop type task_status;
drop type membership_role;
