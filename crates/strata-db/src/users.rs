//! Users: people, who join organizations through memberships.

use crate::input;
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use time::OffsetDateTime;

use crate::error::of_write;
use crate::page::{self, Page, PageRequest};
use crate::{Error, UserId};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Its ID.
    pub id: UserId,
    /// Email address as given; unique case-insensitively.
    pub email: String,
    /// Name shown to others.
    pub display_name: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last changed (kept by the database).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// The fields of a new user.
#[derive(Debug, Clone, Copy)]
pub struct NewUser<'a> {
    /// Email address; unique whatever its case.
    pub email: &'a str,
    /// Name shown to others, not blank.
    pub display_name: &'a str,
}

/// Creates a user with a new UUIDv7.
///
/// # Errors
///
/// [`Error::Conflict`] when the email is taken in any case, [`Error::Invalid`] when the email
/// or display name is malformed.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn create(conn: impl PgExecutor<'_>, new: &NewUser<'_>) -> Result<User, Error> {
    input::text("email", new.email, input::EMAIL_MAX)?;
    input::text("display_name", new.display_name, input::NAME_MAX)?;
    let user = sqlx::query_as!(
        User,
        r#"insert into users (id, email, display_name)
           values ($1, $2, $3)
           returning id as "id: UserId", email, display_name, created_at, updated_at"#,
        UserId::new().into_uuid(),
        new.email,
        new.display_name,
    )
    .fetch_one(conn)
    .await
    .map_err(of_write)?;
    tracing::debug!(user.id = %user.id, "created user");
    Ok(user)
}

/// Reads a user by ID.
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn get(conn: impl PgExecutor<'_>, id: UserId) -> Result<User, Error> {
    sqlx::query_as!(
        User,
        r#"select id as "id: UserId", email, display_name, created_at, updated_at
             from users where id = $1"#,
        id.into_uuid(),
    )
    .fetch_optional(conn)
    .await
    .map_err(of_write)?
    .ok_or(Error::NotFound { entity: "user" })
}

/// Reads a user by email, whatever its case (served by the unique index on `lower(email)`).
///
/// # Errors
///
/// [`Error::NotFound`] when there is none.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn get_by_email(conn: impl PgExecutor<'_>, email: &str) -> Result<User, Error> {
    input::text("email", email, input::EMAIL_MAX)?;
    sqlx::query_as!(
        User,
        r#"select id as "id: UserId", email, display_name, created_at, updated_at
             from users where lower(email) = lower($1)"#,
        email,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "user" })
}

/// Lists users in ID (creation) order, `limit` at a time after `after` (the previous page's
/// `next`): a keyset [`Page`].
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`crate::page::MAX_LIMIT`]; [`Error::Database`].
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn list(
    conn: impl PgExecutor<'_>,
    request: PageRequest<UserId>,
) -> Result<Page<User, UserId>, Error> {
    let PageRequest { after, limit } = request;
    let users = sqlx::query_as!(
        User,
        r#"select id as "id: UserId", email, display_name, created_at, updated_at
             from users
            where $1::uuid is null or id > $1
            order by id
            limit $2"#,
        after.map(UserId::into_uuid),
        page::fetch_count(limit)?,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::of(users, limit, |user| user.id))
}

/// What [`update`] changes: each field that is `Some`.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserPatch<'a> {
    /// The name shown to others.
    pub display_name: Option<&'a str>,
}

/// Changes a user's fields that `patch` sets.
///
/// # Errors
///
/// [`Error::NotFound`] when there is no such user, [`Error::Invalid`] for a blank name,
/// [`Error::InvalidValue`] for one too long.
#[tracing::instrument(skip(conn, patch), err(level = "debug"))]
pub async fn update(
    conn: impl PgExecutor<'_>,
    id: UserId,
    patch: &UserPatch<'_>,
) -> Result<User, Error> {
    patch.display_name.map_or(Ok(()), |name| input::text("display_name", name, input::NAME_MAX))?;
    sqlx::query_as!(
        User,
        r#"update users set display_name = coalesce($2, display_name) where id = $1
           returning id as "id: UserId", email, display_name, created_at, updated_at"#,
        id.into_uuid(),
        patch.display_name,
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "user" })
}
