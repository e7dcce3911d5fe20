-- Reverts 20261126000001_organizations_and_users.
drop table users;
drop table organizations;
drop function strata_set_updated_at();
