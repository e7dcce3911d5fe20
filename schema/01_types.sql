-- Enumerations. A value is appended in place (`generate` writes ALTER TYPE … ADD VALUE).

create type public.membership_role as enum ('owner', 'admin', 'member', 'viewer');
create type public.task_status as enum ('todo', 'in_progress', 'blocked', 'done', 'cancelled');
