//! The least-privilege login role that tests read and write tenant data as.

use sqlx::postgres::{PgConnectOptions, PgPool};

/// The login role tests connect as for tenant data: a member of `strata_app` (so it has the
/// application's privileges), neither superuser nor `BYPASSRLS`.
pub const APP_ROLE: &str = "strata_test_app";

/// The login role tests connect as for the outbox relay: a member of `strata_relay`.
pub const RELAY_ROLE: &str = "strata_test_relay";

/// The password of the test roles. It is the sentinel that `just test` looks for in the test
/// output: a test that prints it fails the run, so this also tests that no secret leaks.
pub(crate) const PASSWORD: &str = "strata-test-secret-pw";

/// Connect options for the same server and database as `admin` (a superuser pool on a migrated
/// database), as `role` ([`APP_ROLE`] or [`RELAY_ROLE`]). Creates the login role when it is
/// missing; roles are cluster-wide, so concurrent tests may race to create it and the loser's
/// error is ignored.
///
/// # Errors
///
/// The database error when the role cannot be created or granted (the migrations must have
/// created `strata_app` and `strata_relay`).
pub async fn login_role_options(
    admin: &PgPool,
    role: &str,
) -> Result<PgConnectOptions, sqlx::Error> {
    let group = match role {
        APP_ROLE => "strata_app",
        RELAY_ROLE => "strata_relay",
        _ => return Err(sqlx::Error::Configuration(format!("unknown test role {role}").into())),
    };
    // Role names are two constants and the password a constant: no input reaches this SQL.
    let create = format!(
        "do $$ begin
             create role {role} login nosuperuser nobypassrls password '{PASSWORD}';
         exception when duplicate_object or unique_violation then null;
         end $$"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(admin).await?;
    let grant = format!("grant {group} to {role}");
    if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(grant)).execute(admin).await {
        // Two tests granting at once may collide on the catalog row; the grant is there.
        let collided = error
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|c| c == "XX000" || c == "23505" || c == "40001");
        if !collided {
            return Err(error);
        }
    }
    Ok(admin.connect_options().as_ref().clone().username(role).password(PASSWORD))
}

/// [`login_role_options`] as a URL, for a program the test starts (a service's
/// `DATABASE_URL`). It holds the role's password: hand it to the program's environment, never
/// to a log or an assertion message.
///
/// # Errors
///
/// As [`login_role_options`].
pub async fn login_role_url(admin: &PgPool, role: &str) -> Result<String, sqlx::Error> {
    let options = login_role_options(admin, role).await?;
    let database = options.get_database().unwrap_or("postgres").to_owned();
    Ok(format!(
        "postgres://{role}:{PASSWORD}@{host}:{port}/{database}?sslmode=disable",
        host = options.get_host(),
        port = options.get_port(),
    ))
}
