-- API tokens: how a service's callers authenticate (`Authorization: Bearer strata_<id>_<secret>`).
--
-- The secret is 32 random bytes, shown once when the token is issued; only its SHA-256 is
-- stored, so a read of this table gives nobody a usable token. A fast hash is right for a
-- random 256-bit secret (there is no dictionary to slow down); passwords would need a slow one.
-- The token is looked up by its id and the hash compared in constant time by the service.
-- Tokens belong to users, not to a tenant: the service reads them before it knows the tenant.
create table api_tokens (
    id uuid not null,
    user_id uuid not null,
    name text not null,
    secret_sha256 bytea not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz,
    constraint api_tokens_pkey primary key (id),
    constraint api_tokens_user_id_fkey foreign key (user_id) references users (id) on delete cascade,
    constraint api_tokens_name_not_blank check (btrim(name) <> ''),
    constraint api_tokens_secret_sha256_length check (octet_length(secret_sha256) = 32),
    constraint api_tokens_expires_after_created check (expires_at > created_at)
);
comment on table api_tokens is
    'Bearer tokens issued to users: the SHA-256 of the secret only; expired or revoked ones are refused.';
comment on column api_tokens.revoked_at is 'Set once when revoked; a revoked token never works again.';
create index api_tokens_user_id_idx on api_tokens (user_id);

-- The service issues, reads and revokes tokens; it never deletes them (revocation is kept).
grant select, insert, update (revoked_at) on api_tokens to strata_app;
