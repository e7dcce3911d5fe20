//! API tokens: what a service's callers present as `Authorization: Bearer <token>`.
//!
//! A token is `strata_<id>_<secret>`: the id (32 hex digits) finds the row, the secret (32
//! random bytes, 64 hex digits) proves it. Only the secret's SHA-256 is stored, and it is
//! compared in constant time. The whole token is shown once, by [`issue`], as a
//! [`SecretString`] (its `Debug` is redacted). Tokens belong to users, not to a tenant:
//! [`authenticate`] runs before the service knows the organization, as the application role.
//!
//! ```no_run
//! # async fn demo(conn: &mut strata_db::PooledConnection, ada: strata_db::UserId) -> Result<(), strata_db::Error> {
//! use secrecy::ExposeSecret as _;
//! use strata_db::tokens;
//! let expires_at = time::OffsetDateTime::now_utc() + time::Duration::days(90);
//! let issued = tokens::issue(&mut *conn, &tokens::NewApiToken { user: ada, name: "ci", expires_at }).await?;
//! let caller = tokens::authenticate(&mut *conn, issued.secret.expose_secret()).await?;
//! assert_eq!(caller, ada);
//! # Ok(()) }
//! ```

use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::PgExecutor;
use subtle::ConstantTimeEq as _;
use time::OffsetDateTime;

use crate::error::of_write;
use crate::page::{Page, PageRequest};
use crate::{ApiTokenId, Error, UserId, input};

/// The prefix of every token: it tells a scanner of leaked secrets what it found.
pub const PREFIX: &str = "strata_";
/// The bytes of a token's secret.
const SECRET_BYTES: usize = 32;
/// The length of a token: prefix, id, `_`, secret.
const TOKEN_LEN: usize = PREFIX.len() + 32 + 1 + SECRET_BYTES * 2;

/// A token as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    /// Its ID (the token's public part).
    pub id: ApiTokenId,
    /// The user it authenticates.
    pub user_id: UserId,
    /// What the user called it.
    pub name: String,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// The fields of a new token.
#[derive(Debug, Clone, Copy)]
pub struct NewApiToken<'a> {
    /// The user it authenticates.
    pub user: UserId,
    /// A name for the user to know it by (`"laptop"`, `"ci"`), not blank.
    pub name: &'a str,
    /// When it stops working; after now.
    pub expires_at: OffsetDateTime,
}

/// A token just issued: the row, and the whole token, which is shown this once.
#[derive(Debug)]
pub struct IssuedToken {
    /// The row.
    pub token: ApiToken,
    /// `strata_<id>_<secret>`, for the `Authorization: Bearer` header.
    pub secret: SecretString,
}

/// Why a bearer token was refused. A service answers every one the same way (401), and counts
/// and logs them by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenRefusal {
    /// Not of the form `strata_<id>_<secret>`.
    #[error("the token is malformed")]
    Malformed,
    /// No token has this id.
    #[error("no such token")]
    Unknown,
    /// The id is known and the secret is wrong (a tampered or forged token).
    #[error("the token's secret is wrong")]
    WrongSecret,
    /// Past its `expires_at`.
    #[error("the token has expired")]
    Expired,
    /// Revoked.
    #[error("the token was revoked")]
    Revoked,
}

impl TokenRefusal {
    /// A short name for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::WrongSecret => "wrong_secret",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// Issues a token for a user: a new id, a new secret from the operating system's generator
/// (through `rand`'s thread generator, a CSPRNG), the secret's SHA-256 stored.
///
/// # Errors
///
/// [`Error::Invalid`] when the user does not exist, the name is blank or `expires_at` is not
/// in the future; [`Error::InvalidValue`] when the name is too long or holds a NUL.
#[tracing::instrument(skip(conn), fields(user.id = %new.user), err(level = "debug"))]
pub async fn issue(conn: impl PgExecutor<'_>, new: &NewApiToken<'_>) -> Result<IssuedToken, Error> {
    input::text("name", new.name, input::LABEL_MAX)?;
    let id = ApiTokenId::new();
    let secret: [u8; SECRET_BYTES] = rand::random();
    let stored: [u8; 32] = Sha256::digest(secret).into();
    let token = sqlx::query_as!(
        ApiToken,
        r#"insert into api_tokens (id, user_id, name, secret_sha256, expires_at)
           values ($1, $2, $3, $4, $5)
           returning id as "id: ApiTokenId", user_id as "user_id: UserId", name, created_at,
                     expires_at, revoked_at"#,
        id.into_uuid(),
        new.user.into_uuid(),
        new.name,
        &stored[..],
        new.expires_at,
    )
    .fetch_one(conn)
    .await
    .map_err(of_write)?;
    let text = format!("{PREFIX}{}_{}", id.into_uuid().simple(), hex::encode(secret));
    Ok(IssuedToken { token, secret: SecretString::from(text) })
}

/// The user a bearer token authenticates.
///
/// The secret is checked before expiry and revocation, so that only its holder learns those;
/// an unknown id still costs a hash comparison.
///
/// # Errors
///
/// [`Error::Unauthenticated`] with the [`TokenRefusal`]; [`Error::Database`] when the
/// database fails.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn authenticate(conn: impl PgExecutor<'_>, bearer: &str) -> Result<UserId, Error> {
    let (id, secret) = parse(bearer).ok_or(Error::Unauthenticated(TokenRefusal::Malformed))?;
    let row = sqlx::query!(
        r#"select user_id as "user_id: UserId", secret_sha256, expires_at, revoked_at
             from api_tokens where id = $1"#,
        id.into_uuid(),
    )
    .fetch_optional(conn)
    .await?;
    let presented: [u8; 32] = Sha256::digest(secret).into();
    let Some(row) = row else {
        // The same work as a known id: the answer's time does not tell ids apart.
        let _ = presented.ct_eq(&[0u8; 32]);
        return Err(Error::Unauthenticated(TokenRefusal::Unknown));
    };
    if !bool::from(presented[..].ct_eq(&row.secret_sha256[..])) {
        return Err(Error::Unauthenticated(TokenRefusal::WrongSecret));
    }
    if row.revoked_at.is_some() {
        return Err(Error::Unauthenticated(TokenRefusal::Revoked));
    }
    if row.expires_at <= OffsetDateTime::now_utc() {
        return Err(Error::Unauthenticated(TokenRefusal::Expired));
    }
    Ok(row.user_id)
}

/// `strata_<32 hex>_<64 hex>` into the id and the secret's bytes.
fn parse(bearer: &str) -> Option<(ApiTokenId, [u8; SECRET_BYTES])> {
    if bearer.len() != TOKEN_LEN {
        return None;
    }
    let rest = bearer.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id = uuid::Uuid::try_parse(id).ok().filter(|_| id.len() == 32)?;
    let mut bytes = [0u8; SECRET_BYTES];
    hex::decode_to_slice(secret, &mut bytes).ok()?;
    Some((ApiTokenId::from_uuid(id), bytes))
}

/// A user's tokens, oldest first, a page at a time (after `after`, at most `limit`).
///
/// # Errors
///
/// [`Error::BadInput`] unless `limit` is 1 to [`crate::page::MAX_LIMIT`].
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn list(
    conn: impl PgExecutor<'_>,
    user: UserId,
    request: PageRequest<ApiTokenId>,
) -> Result<Page<ApiToken, ApiTokenId>, Error> {
    let PageRequest { after, limit } = request;
    let fetch = crate::page::fetch_count(limit)?;
    // Ids are UUIDv7, in time order; the nil UUID is before every one.
    let tokens = sqlx::query_as!(
        ApiToken,
        r#"select id as "id: ApiTokenId", user_id as "user_id: UserId", name, created_at,
                  expires_at, revoked_at
             from api_tokens
            where user_id = $1 and id > coalesce($2, '00000000-0000-0000-0000-000000000000'::uuid)
            order by id
            limit $3"#,
        user.into_uuid(),
        after.map(ApiTokenId::into_uuid),
        fetch,
    )
    .fetch_all(conn)
    .await?;
    Ok(Page::of(tokens, limit, |t| t.id))
}

/// Revokes one of a user's tokens; revoking a revoked one keeps its first `revoked_at`.
///
/// # Errors
///
/// [`Error::NotFound`] when the user has no such token.
#[tracing::instrument(skip(conn), err(level = "debug"))]
pub async fn revoke<C>(conn: &mut C, user: UserId, id: ApiTokenId) -> Result<ApiToken, Error>
where
    C: ?Sized,
    for<'c> &'c mut C: PgExecutor<'c>,
{
    // Set once: only a token not revoked yet takes the time. Not one statement with
    // `coalesce(revoked_at, now())`: Citus refuses a function that is not immutable under
    // COALESCE or CASE in an update of a reference table, and `least(revoked_at, now())` lets a
    // second revoker whose transaction began earlier move the time back.
    let revoked = sqlx::query_as!(
        ApiToken,
        r#"update api_tokens set revoked_at = now()
            where id = $1 and user_id = $2 and revoked_at is null
        returning id as "id: ApiTokenId", user_id as "user_id: UserId", name, created_at,
                  expires_at, revoked_at"#,
        id.into_uuid(),
        user.into_uuid(),
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(of_write)?;
    if let Some(token) = revoked {
        return Ok(token);
    }
    // Revoked already (by this caller before, or by another at the same moment), or not this
    // user's: as it stands.
    sqlx::query_as!(
        ApiToken,
        r#"select id as "id: ApiTokenId", user_id as "user_id: UserId", name, created_at,
                  expires_at, revoked_at
             from api_tokens where id = $1 and user_id = $2"#,
        id.into_uuid(),
        user.into_uuid(),
    )
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound { entity: "token" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_form_parses() {
        let id = uuid::Uuid::now_v7();
        let good = format!("{PREFIX}{}_{}", id.simple(), "ab".repeat(32));
        assert_eq!(parse(&good).map(|(i, s)| (i.into_uuid(), s)), Some((id, [0xab; 32])));
        for bad in [
            String::new(),
            good.replacen("strata_", "strata-", 1),
            format!("{PREFIX}{}_{}", id.hyphenated(), "ab".repeat(30)),
            format!("{PREFIX}{}_{}", id.simple(), "zz".repeat(32)),
            format!("{good}0"),
            good[..good.len() - 1].to_owned(),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }
}
