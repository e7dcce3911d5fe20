-- Organizations (the tenants), users (global), and who belongs where.

create table public.memberships (
    organization_id uuid not null,
    user_id uuid not null,
    role membership_role default 'member'::membership_role not null,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    constraint memberships_pkey PRIMARY KEY (organization_id, user_id)
);

create table public.organizations (
    id uuid not null,
    slug text not null,
    name text not null,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    constraint organizations_pkey PRIMARY KEY (id),
    constraint organizations_slug_key UNIQUE (slug),
    constraint organizations_name_not_blank CHECK ((btrim(name) <> ''::text)),
    constraint organizations_slug_format CHECK ((slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'::text))
);

create table public.users (
    id uuid not null,
    email text not null,
    display_name text not null,
    created_at timestamp with time zone default now() not null,
    updated_at timestamp with time zone default now() not null,
    constraint users_pkey PRIMARY KEY (id),
    constraint users_display_name_not_blank CHECK ((btrim(display_name) <> ''::text)),
    constraint users_email_format CHECK ((email ~ '^[^@\s]+@[^@\s]+$'::text))
);

alter table public.memberships add constraint memberships_organization_id_fkey FOREIGN KEY (organization_id) REFERENCES organizations(id) ON DELETE CASCADE;
alter table public.memberships add constraint memberships_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
CREATE INDEX memberships_user_id_idx ON public.memberships USING btree (user_id);
CREATE UNIQUE INDEX users_email_key ON public.users USING btree (lower(email));
CREATE TRIGGER memberships_owner_required AFTER DELETE OR UPDATE OF role ON public.memberships FOR EACH ROW WHEN ((old.role = 'owner'::membership_role)) EXECUTE FUNCTION strata_keep_an_owner();
CREATE TRIGGER memberships_set_updated_at BEFORE UPDATE ON public.memberships FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at();
CREATE TRIGGER organizations_set_updated_at BEFORE UPDATE ON public.organizations FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at();
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION strata_set_updated_at();
alter table public.memberships enable row level security;
alter table public.memberships force row level security;
create policy memberships_tenant on public.memberships as permissive for all to public using ((organization_id = strata_current_organization()));
grant DELETE on table public.memberships to strata_app;
grant INSERT on table public.memberships to strata_app;
grant INSERT on table public.organizations to strata_app;
grant INSERT on table public.users to strata_app;
grant SELECT on table public.memberships to strata_app;
grant SELECT on table public.organizations to strata_app;
grant SELECT on table public.users to strata_app;
grant UPDATE on table public.memberships to strata_app;
grant UPDATE on table public.organizations to strata_app;
grant UPDATE on table public.users to strata_app;
comment on column public.organizations.slug is 'URL-safe short name (lowercase letters, digits, hyphens), unique across the service.';
comment on column public.users.email is 'Stored as given; unique case-insensitively through users_email_key on lower(email).';
comment on table public.organizations is 'Tenants: every tenant-owned row belongs to exactly one organization.';
comment on table public.users is 'People; they join organizations through memberships.';
