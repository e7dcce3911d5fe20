-- The primary keys of projects, comments, audit_events and outbox_events become
-- (organization_id, id), on the indexes built by the four before it: a swap of constraints
-- that holds each table's lock for an instant, not a build. projects_id_organization_id_key
-- stays: tasks' foreign key references it.
--
-- Deploy order: strata-db before this migration grouped project summaries by p.id alone,
-- which stops working once p.id is no longer a key by itself (p.key is then not functionally
-- dependent on the group). The data layer of the same commit groups by the whole key and
-- works on both: roll it out first, then migrate.
alter table projects
    drop constraint projects_pkey,
    add constraint projects_pkey primary key using index projects_organization_id_id_idx;
alter table comments
    drop constraint comments_pkey,
    add constraint comments_pkey primary key using index comments_organization_id_id_idx;
alter table audit_events
    drop constraint audit_events_pkey,
    add constraint audit_events_pkey primary key using index audit_events_organization_id_id_idx;
alter table outbox_events
    drop constraint outbox_events_pkey,
    add constraint outbox_events_pkey primary key using index outbox_events_organization_id_id_idx;
