-- API tokens: the SHA-256 of the secret only.

create table public.api_tokens (
    id uuid not null,
    user_id uuid not null,
    name text not null,
    secret_sha256 bytea not null,
    created_at timestamp with time zone default now() not null,
    expires_at timestamp with time zone not null,
    revoked_at timestamp with time zone,
    constraint api_tokens_pkey PRIMARY KEY (id),
    constraint api_tokens_expires_after_created CHECK ((expires_at > created_at)),
    constraint api_tokens_name_not_blank CHECK ((btrim(name) <> ''::text)),
    constraint api_tokens_secret_sha256_length CHECK ((octet_length(secret_sha256) = 32))
);

alter table public.api_tokens add constraint api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
CREATE INDEX api_tokens_user_id_idx ON public.api_tokens USING btree (user_id);
grant INSERT on table public.api_tokens to strata_app;
grant SELECT on table public.api_tokens to strata_app;
grant UPDATE (revoked_at) on table public.api_tokens to strata_app;
comment on column public.api_tokens.revoked_at is 'Set once when revoked; a revoked token never works again.';
comment on table public.api_tokens is 'Bearer tokens issued to users: the SHA-256 of the secret only; expired or revoked ones are refused.';
