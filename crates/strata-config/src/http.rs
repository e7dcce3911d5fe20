//! `[http]` and `[auth]`: the settings of an HTTP service built on strata (the reference
//! service reads them; another service may too).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::duration;

/// `[http]`: where and how a service listens.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// How long one request may take before it is answered 503 (`0s`: no limit).
    #[serde(deserialize_with = "duration::deserialize")]
    pub request_timeout: Duration,
    /// The largest request body taken, in bytes; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Origins a browser may call from (`https://app.example.com`); none: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 2 * 1024 * 1024,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// The algorithm of the identity provider's JWT signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256, with `auth.jwt_secret`.
    #[default]
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256, with the public key in `auth.jwt_public_key_file`.
    RS256,
    /// ECDSA P-256 with SHA-256, with the public key in `auth.jwt_public_key_file`.
    ES256,
    /// Ed25519, with the public key in `auth.jwt_public_key_file`.
    EdDSA,
}

impl JwtAlgorithm {
    /// The name as written in the configuration and in a JWT's header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// `[auth]`: how a service authenticates its callers. API tokens it issued itself always
/// work; JWTs of an identity provider work when `jwt_issuer` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuthConfig {
    /// Development only: take the caller from an `X-User-Id` header, unauthenticated. A
    /// service says so loudly at start-up.
    pub trust_user_header: bool,
    /// How long an API token issued without an explicit expiry lasts.
    #[serde(deserialize_with = "duration::deserialize")]
    pub token_lifetime: Duration,
    /// The identity provider's issuer (`iss`), checked on every JWT; unset: no JWTs.
    pub jwt_issuer: Option<String>,
    /// The audience (`aud`) a JWT must name: this service.
    pub jwt_audience: Option<String>,
    /// The signature algorithm; only this one is accepted (never `none`).
    pub jwt_algorithm: JwtAlgorithm,
    /// The HS256 key, at least 32 bytes. Hidden like a password.
    pub jwt_secret: Option<SecretString>,
    /// The provider's public key (PEM) for RS256, ES256 and EdDSA.
    pub jwt_public_key_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            trust_user_header: false,
            token_lifetime: Duration::from_secs(90 * 24 * 3600),
            jwt_issuer: None,
            jwt_audience: None,
            jwt_algorithm: JwtAlgorithm::HS256,
            jwt_secret: None,
            jwt_public_key_file: None,
        }
    }
}

/// The problems of `[http]` and `[auth]` that the types cannot catch, as `(key, message)`.
pub(crate) fn problems(http: &HttpConfig, auth: &AuthConfig) -> Vec<(&'static str, String)> {
    use secrecy::ExposeSecret as _;
    let mut problems = Vec::new();
    if http.max_body_bytes == 0 {
        problems.push(("http.max_body_bytes", "must be at least 1".to_owned()));
    }
    for origin in &http.cors_allowed_origins {
        let parsed = url::Url::parse(origin).ok();
        let bare = parsed.as_ref().is_some_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.path() == "/"
                && !origin.ends_with('/')
        });
        if !bare {
            problems.push((
                "http.cors_allowed_origins",
                format!("{origin:?} is not an origin (scheme://host[:port], no path)"),
            ));
        }
    }
    if auth.token_lifetime.is_zero() {
        problems.push(("auth.token_lifetime", "must be more than 0s".to_owned()));
    }
    let jwt = auth.jwt_issuer.is_some();
    if jwt && auth.jwt_audience.as_deref().is_none_or(str::is_empty) {
        problems.push(("auth.jwt_audience", "must be set with auth.jwt_issuer".to_owned()));
    }
    let hmac = auth.jwt_algorithm == JwtAlgorithm::HS256;
    match (&auth.jwt_secret, &auth.jwt_public_key_file) {
        (Some(_), Some(_)) => problems.push((
            "auth.jwt_secret",
            "and auth.jwt_public_key_file are both set: set the one of auth.jwt_algorithm"
                .to_owned(),
        )),
        (Some(secret), None) => {
            if !hmac {
                problems.push((
                    "auth.jwt_secret",
                    format!(
                        "is an HS256 key, but auth.jwt_algorithm is {}: set \
                         auth.jwt_public_key_file instead",
                        auth.jwt_algorithm.as_str()
                    ),
                ));
            } else if secret.expose_secret().len() < 32 {
                problems.push(("auth.jwt_secret", "must be at least 32 bytes".to_owned()));
            }
        }
        (None, Some(path)) => {
            if hmac {
                problems.push((
                    "auth.jwt_public_key_file",
                    "is for RS256, ES256 or EdDSA: set auth.jwt_algorithm, or use \
                     auth.jwt_secret for HS256"
                        .to_owned(),
                ));
            } else if !path.is_file() {
                problems.push((
                    "auth.jwt_public_key_file",
                    format!("{} is not a file", path.display()),
                ));
            }
        }
        (None, None) if jwt => problems.push((
            "auth.jwt_issuer",
            "is set without a key: set auth.jwt_secret (HS256) or auth.jwt_public_key_file"
                .to_owned(),
        )),
        (None, None) => {}
    }
    if !jwt && (auth.jwt_secret.is_some() || auth.jwt_public_key_file.is_some()) {
        problems.push(("auth.jwt_issuer", "must be set with a JWT key".to_owned()));
    }
    problems
}
