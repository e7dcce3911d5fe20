//! Who is calling: `Authorization: Bearer <token>`, where the token is either an API token this
//! service issued (`strata_…`, checked by [`strata_db::tokens::authenticate`]: stored hashed,
//! compared in constant time, with expiry and revocation) or a JWT of the identity provider
//! configured in `[auth]` (signature, algorithm, `exp`, `nbf`, issuer and audience checked by
//! `jsonwebtoken`; `alg: none` and every other algorithm than the configured one refused).
//!
//! `X-User-Id` is taken only when `auth.trust_user_header` is set, which the service names
//! at start-up as a development setting. Every refusal answers the same 401; its reason is
//! counted ([`crate::metrics`]) and logged, without the token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use strata_config::{AuthConfig, JwtAlgorithm};
use strata_db::UserId;

use crate::App;
use crate::problem::ApiError;

/// The development header that names the caller, when `auth.trust_user_header` allows it.
pub const USER_HEADER: &str = "x-user-id";

/// How the service checks credentials, built once from `[auth]`.
pub struct Authenticator {
    trust_user_header: bool,
    jwt: Option<Jwt>,
}

impl std::fmt::Debug for Authenticator {
    /// Whether each way is on; never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("trust_user_header", &self.trust_user_header)
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

/// An identity provider's JWTs: the key and what a token must say.
struct Jwt {
    key: DecodingKey,
    validation: Validation,
}

/// Why `[auth]` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// The public key file could not be read.
    #[error("auth.jwt_public_key_file: {path}: {source}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key is not a PEM key of the configured algorithm.
    #[error("auth.jwt_public_key_file: not a {algorithm} public key in PEM: {source}")]
    Key {
        /// The configured algorithm.
        algorithm: &'static str,
        /// What jsonwebtoken said.
        source: jsonwebtoken::errors::Error,
    },
}

/// The claims the service reads from a JWT; the rest are checked by [`Validation`].
#[derive(serde::Deserialize)]
struct Claims {
    /// The user's id.
    sub: String,
}

impl Authenticator {
    /// From `[auth]` (validated at load: issuer, audience and one key together).
    ///
    /// # Errors
    ///
    /// [`AuthSetupError`] when the public key cannot be read or parsed.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthSetupError> {
        use secrecy::ExposeSecret as _;
        let jwt = match (&config.jwt_issuer, &config.jwt_audience) {
            (Some(issuer), Some(audience)) => {
                let algorithm = match config.jwt_algorithm {
                    JwtAlgorithm::RS256 => Algorithm::RS256,
                    JwtAlgorithm::ES256 => Algorithm::ES256,
                    JwtAlgorithm::EdDSA => Algorithm::EdDSA,
                    _ => Algorithm::HS256,
                };
                let key = match (&config.jwt_secret, &config.jwt_public_key_file) {
                    (Some(secret), _) => {
                        DecodingKey::from_secret(secret.expose_secret().as_bytes())
                    }
                    (None, Some(path)) => {
                        let pem = std::fs::read(path).map_err(|source| {
                            AuthSetupError::KeyFile { path: path.clone(), source }
                        })?;
                        let parsed = match algorithm {
                            Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                            Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                            _ => DecodingKey::from_ed_pem(&pem),
                        };
                        parsed.map_err(|source| AuthSetupError::Key {
                            algorithm: config.jwt_algorithm.as_str(),
                            source,
                        })?
                    }
                    (None, None) => {
                        return Ok(Self { trust_user_header: config.trust_user_header, jwt: None });
                    }
                };
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&[issuer]);
                validation.set_audience(&[audience]);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.validate_nbf = true;
                validation.leeway = 30;
                Some(Jwt { key, validation })
            }
            _ => None,
        };
        Ok(Self { trust_user_header: config.trust_user_header, jwt })
    }

    /// Whether `X-User-Id` is trusted (a development setting).
    pub fn trusts_user_header(&self) -> bool {
        self.trust_user_header
    }

    /// The caller of a request with these headers, or why there is none.
    async fn caller(&self, headers: &HeaderMap, app: &App) -> Result<UserId, Denied> {
        let mut authorization = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = authorization.next() else {
            return self.caller_from_user_header(headers);
        };
        if authorization.next().is_some() {
            return Err(Denied::Refused("ambiguous"));
        }
        let value = value.to_str().map_err(|_| Denied::Refused("malformed"))?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(Denied::Refused("malformed"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Denied::Refused("not_bearer"));
        }
        let token = token.trim();
        if token.starts_with(strata_db::tokens::PREFIX) {
            let mut conn = app.acquire().await.map_err(|e| Denied::Failed(e.into()))?;
            return match strata_db::tokens::authenticate(&mut conn, token).await {
                Ok(user) => Ok(user),
                Err(strata_db::Error::Unauthenticated(why)) => Err(Denied::Refused(why.as_str())),
                Err(e) => Err(Denied::Failed(e.into())),
            };
        }
        let jwt = self.jwt.as_ref().ok_or(Denied::Refused("jwt_not_configured"))?;
        let data = jsonwebtoken::decode::<Claims>(token, &jwt.key, &jwt.validation)
            .map_err(|e| Denied::Refused(jwt_refusal(e.kind())))?;
        let user =
            data.claims.sub.parse::<uuid::Uuid>().map_err(|_| Denied::Refused("jwt_subject"))?;
        Ok(UserId::from_uuid(user))
    }

    fn caller_from_user_header(&self, headers: &HeaderMap) -> Result<UserId, Denied> {
        let mut values = headers.get_all(USER_HEADER).iter();
        let (Some(value), true) = (values.next(), self.trust_user_header) else {
            return Err(Denied::Refused("missing"));
        };
        if values.next().is_some() {
            return Err(Denied::Refused("ambiguous"));
        }
        let id = value.to_str().ok().and_then(|text| text.trim().parse::<uuid::Uuid>().ok());
        id.map(UserId::from_uuid).ok_or(Denied::Refused("malformed"))
    }
}

/// Why a request has no caller: refused, with a reason for the log and the metrics; or the
/// database failed while the token was checked, which is answered as that failure (not 401).
#[derive(Debug)]
enum Denied {
    Refused(&'static str),
    Failed(ApiError),
}

/// jsonwebtoken's error kinds as reasons.
fn jwt_refusal(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "jwt_expired",
        K::ImmatureSignature => "jwt_not_yet_valid",
        K::InvalidSignature => "jwt_signature",
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "jwt_algorithm",
        K::InvalidIssuer => "jwt_issuer",
        K::InvalidAudience => "jwt_audience",
        K::MissingRequiredClaim(_) => "jwt_claims",
        _ => "jwt_malformed",
    }
}

/// The calling user, authenticated.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub UserId);

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match app.auth.caller(&parts.headers, app).await {
            Ok(user) => Ok(Self(user)),
            Err(Denied::Refused(reason)) => {
                app.metrics.auth_failure(reason);
                tracing::info!(reason, "authentication refused");
                Err(ApiError::Unauthenticated(reason))
            }
            Err(Denied::Failed(error)) => Err(error),
        }
    }
}
