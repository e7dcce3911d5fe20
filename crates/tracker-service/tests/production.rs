//! What makes the service fit for production, over real HTTP on a real PostgreSQL:
//! authentication (API tokens and an identity provider's JWTs, every refusal alike), the
//! layers (request id, timeout, header and body limits, CORS, compression), the metrics, the
//! OpenAPI contract against every route and every answer, and task ids that are per
//! organization.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;

/// The value of one sample of `/metrics` (`name{labels}`), 0 when absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(service: &Service) -> Result<String, BoxError> {
    let reply = service.send(Method::GET, "/metrics", &[], None).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    Ok(reply.text)
}

/// Each refusal reason was counted again between the two scrapes.
fn assert_counted(before: &str, after: &str, reasons: &[&str]) {
    for reason in reasons {
        let series = format!("auth_failures_total{{reason=\"{reason}\"}}");
        assert!(sample(after, &series) > sample(before, &series), "{series} did not move");
    }
}

/// A 401 problem, with the same words whatever the reason.
fn assert_refused(reply: &Reply, case: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}: {}", reply.text);
    assert_problem(reply, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"strata\"", "{case}");
    assert_eq!(
        reply.json["detail"], "the request needs valid credentials: Authorization: Bearer <token>",
        "{case}: the answer must not tell refusals apart"
    );
}

#[sqlx::test(migrations = false)]
async fn api_tokens_refuse_every_bad_credential_alike(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "acme").await?;
    let me = format!("/users/{}", w.owner);
    let good = service.token_for(&w.owner).await?;
    let bearer = |token: &str| format!("Bearer {token}");
    let ok = service.send(Method::GET, &me, &[("authorization", &bearer(&good))], None).await?;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);

    // A token issued over HTTP, shown once, then revoked.
    let issued = service.post("/tokens", &w.owner, json!({"name": "laptop"})).await?;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.text);
    let second = issued.json["secret"].as_str().ok_or("a secret")?.to_owned();
    let second_id = issued.json["token"]["id"].as_str().ok_or("an id")?.to_owned();
    let listed = service.get("/tokens", &w.owner).await?;
    assert_eq!(listed.json["items"].as_array().map(Vec::len), Some(2), "{}", listed.text);
    assert!(!listed.text.contains(&second[20..]) && !listed.text.contains("secret"));
    let ok = service.send(Method::GET, &me, &[("authorization", &bearer(&second))], None).await?;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let stranger = service.sign_up("eve@example.com", "Eve").await?.id();
    let theirs = service
        .call(Method::DELETE, &format!("/tokens/{second_id}"), Some(&stranger), None, None)
        .await?;
    assert_problem(&theirs, StatusCode::NOT_FOUND);
    let revoked = service
        .call(Method::DELETE, &format!("/tokens/{second_id}"), Some(&w.owner), None, None)
        .await?;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert!(revoked.json["revoked_at"].is_string(), "{}", revoked.text);

    // One that expired: the superuser ages it (setup only).
    let expired = service.post("/tokens", &w.owner, json!({"name": "old"})).await?;
    let expired_secret = expired.json["secret"].as_str().ok_or("a secret")?.to_owned();
    sqlx::query(
        "update api_tokens set created_at = now() - interval '2 days', \
         expires_at = now() - interval '1 day' where id = $1::uuid",
    )
    .bind(expired.json["token"]["id"].as_str().ok_or("an id")?)
    .execute(&admin)
    .await?;

    let before = scrape(&service).await?;
    let mut tampered = good.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    let unknown = format!("strata_{}_{}", uuid::Uuid::now_v7().simple(), "ab".repeat(32));
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        ("the development header, not allowed", vec![("x-user-id", w.owner.clone())]),
        ("another scheme", vec![("authorization", format!("Basic {good}"))]),
        ("not a token", vec![("authorization", bearer("strata_nonsense"))]),
        ("an unknown token", vec![("authorization", bearer(&unknown))]),
        ("a tampered secret", vec![("authorization", bearer(&tampered))]),
        ("an expired token", vec![("authorization", bearer(&expired_secret))]),
        ("a revoked token", vec![("authorization", bearer(&second))]),
        ("a JWT with no provider", vec![("authorization", bearer("e30.e30.sig"))]),
        ("two tokens", vec![("authorization", bearer(&good)), ("authorization", bearer(&unknown))]),
    ];
    for (case, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_refused(&service.send(Method::GET, &me, &headers, None).await?, case);
    }
    let after = scrape(&service).await?;
    assert_counted(
        &before,
        &after,
        &[
            "missing",
            "not_bearer",
            "malformed",
            "unknown",
            "wrong_secret",
            "expired",
            "revoked",
            "ambiguous",
        ],
    );
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn the_development_header_works_only_when_allowed(admin: PgPool) -> TestResult {
    let mut config = strata_config::Config::default();
    config.auth.trust_user_header = true;
    let service = Service::on(&admin, &config).await?;
    let w = world(&service, "dev").await?;
    let me = format!("/users/{}", w.owner);
    let reply = service.send(Method::GET, &me, &[("x-user-id", &w.owner)], None).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let two = [("x-user-id", w.owner.as_str()), ("x-user-id", w.owner.as_str())];
    assert_refused(&service.send(Method::GET, &me, &two, None).await?, "two headers");
    Ok(())
}

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "tracker";
const JWT_KEY: &str = "a-test-key-of-the-identity-provider-0123456789";

fn jwt(claims: &Value, algorithm: Algorithm, key: &str) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(key.as_bytes()))
        .unwrap_or_default()
}

#[sqlx::test(migrations = false)]
async fn jwts_of_the_identity_provider_are_verified(admin: PgPool) -> TestResult {
    let mut config = strata_config::Config::default();
    config.auth.jwt_issuer = Some(ISSUER.to_owned());
    config.auth.jwt_audience = Some(AUDIENCE.to_owned());
    config.auth.jwt_secret = Some(SecretString::from(JWT_KEY));
    let service = Service::on(&admin, &config).await?;
    let w = world(&service, "idp").await?;
    let me = format!("/users/{}", w.owner);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |sub: &str, iss: &str, aud: &str, exp: i64| json!({"sub": sub, "iss": iss, "aud": aud, "exp": exp, "iat": now});
    let valid = jwt(&claims(&w.owner, ISSUER, AUDIENCE, now + 600), Algorithm::HS256, JWT_KEY);
    let call = |token: String| {
        let me = me.clone();
        let service = &service;
        async move {
            service
                .send(Method::GET, &me, &[("authorization", &format!("Bearer {token}"))], None)
                .await
        }
    };
    let ok = call(valid.clone()).await?;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);

    // Someone else's payload under the owner's signature.
    let other = jwt(
        &claims(&uuid::Uuid::now_v7().to_string(), ISSUER, AUDIENCE, now + 600),
        Algorithm::HS256,
        "another-key-another-key-another-key-0",
    );
    let parts: Vec<&str> = valid.split('.').collect();
    let other_payload = other.split('.').nth(1).unwrap_or_default();
    let tampered = format!("{}.{other_payload}.{}", parts[0], parts[2]);
    // base64url of {"alg":"none","typ":"JWT"}: an unsigned token.
    let unsigned = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let before = scrape(&service).await?;
    let cases = [
        ("expired", jwt(&claims(&w.owner, ISSUER, AUDIENCE, now - 300), Algorithm::HS256, JWT_KEY)),
        (
            "signed with another key",
            jwt(
                &claims(&w.owner, ISSUER, AUDIENCE, now + 600),
                Algorithm::HS256,
                "another-key-another-key-another-key-0",
            ),
        ),
        ("tampered", tampered),
        ("alg none", unsigned),
        (
            "another algorithm",
            jwt(&claims(&w.owner, ISSUER, AUDIENCE, now + 600), Algorithm::HS384, JWT_KEY),
        ),
        (
            "another issuer",
            jwt(
                &claims(&w.owner, "https://evil.example/", AUDIENCE, now + 600),
                Algorithm::HS256,
                JWT_KEY,
            ),
        ),
        (
            "another audience",
            jwt(&claims(&w.owner, ISSUER, "billing", now + 600), Algorithm::HS256, JWT_KEY),
        ),
        (
            "a subject that is no id",
            jwt(&claims("ada", ISSUER, AUDIENCE, now + 600), Algorithm::HS256, JWT_KEY),
        ),
        (
            "no expiry",
            jwt(
                &json!({"sub": w.owner, "iss": ISSUER, "aud": AUDIENCE}),
                Algorithm::HS256,
                JWT_KEY,
            ),
        ),
    ];
    for (case, token) in cases {
        assert_refused(&call(token).await?, case);
    }
    let after = scrape(&service).await?;
    assert_counted(
        &before,
        &after,
        &[
            "jwt_expired",
            "jwt_signature",
            "jwt_algorithm",
            "jwt_issuer",
            "jwt_audience",
            "jwt_subject",
            "jwt_claims",
        ],
    );
    // API tokens still work beside JWTs.
    assert_eq!(service.get(&me, &w.owner).await?.status, StatusCode::OK);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn a_task_id_is_per_organization_and_tells_nothing_of_others(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let (a, b) = (world(&service, "alpha").await?, world(&service, "beta").await?);
    let id = uuid::Uuid::now_v7();
    let create = |w: &World, title: &str| {
        let path = format!("/organizations/{}/projects/{}/tasks", w.org, w.project);
        let (owner, body) = (w.owner.clone(), json!({"id": id, "title": title}));
        let service = &service;
        async move { service.post(&path, &owner, body).await }
    };
    let first = create(&a, "alpha's").await?;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    // The same id in another organization is another task, not a refusal.
    let second = create(&b, "beta's").await?;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text);
    for (w, title) in [(&a, "alpha's"), (&b, "beta's")] {
        let read = service.get(&format!("/organizations/{}/tasks/{id}", w.org), &w.owner).await?;
        assert_eq!((read.status, read.json["title"].as_str()), (StatusCode::OK, Some(title)));
    }
    // Still one per organization: a retry is a conflict.
    assert_problem(&create(&a, "again").await?, StatusCode::CONFLICT);
    let stored: i64 = sqlx::query_scalar("select count(*) from tasks where id = $1")
        .bind(id)
        .fetch_one(&admin)
        .await?;
    assert_eq!(stored, 2);
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn the_layers_answer_as_problems(admin: PgPool) -> TestResult {
    let mut config = strata_config::Config::default();
    config.http.request_timeout = Duration::from_millis(500);
    config.http.max_body_bytes = 4096;
    config.http.cors_allowed_origins = vec!["https://app.example".to_owned()];
    let service = Service::on(&admin, &config).await?;
    let w = world(&service, "layers").await?;
    let task = format!("/organizations/{}/tasks/{}", w.org, w.task);

    // The request id: the client's, echoed; or a new one.
    let mine = service.send(Method::GET, "/healthz", &[("x-request-id", "req-42")], None).await?;
    assert_eq!(mine.headers["x-request-id"], "req-42");
    let new = service.send(Method::GET, "/healthz", &[], None).await?;
    let id = new.headers["x-request-id"].to_str()?;
    assert!(id.parse::<uuid::Uuid>().is_ok(), "{id}");

    // Headers and bodies over the limits.
    let huge = "x".repeat(20 * 1024);
    let reply = service.send(Method::GET, "/healthz", &[("x-padding", &huge)], None).await?;
    assert_problem(&reply, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let big = json!({"title": "x".repeat(8192)}).to_string();
    let path = format!("/organizations/{}/projects/{}/tasks", w.org, w.project);
    let token = format!("Bearer {}", service.token_for(&w.owner).await?);
    let reply = service.send(Method::POST, &path, &[("authorization", &token)], Some(big)).await?;
    assert_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE);

    // CORS: the configured origin only.
    let preflight = |origin: &'static str| {
        let service = &service;
        let task = task.clone();
        async move {
            let headers = [
                ("origin", origin),
                ("access-control-request-method", "PATCH"),
                ("access-control-request-headers", "authorization,if-match"),
            ];
            service.send(Method::OPTIONS, &task, &headers, None).await
        }
    };
    let allowed = preflight("https://app.example").await?;
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://app.example");
    let refused = preflight("https://evil.example").await?;
    assert!(!refused.headers.contains_key("access-control-allow-origin"), "{:?}", refused.headers);

    // gzip when asked for.
    let zipped =
        service.send(Method::GET, "/openapi.json", &[("accept-encoding", "gzip")], None).await?;
    assert_eq!(zipped.headers[header::CONTENT_ENCODING], "gzip");

    // A request that outlasts http.request_timeout: 503 as a problem; the service goes on.
    let mut blocker = admin.begin().await?;
    sqlx::query("select 1 from tasks where id = $1::uuid for update")
        .bind(&w.task)
        .execute(&mut *blocker)
        .await?;
    let slow = service
        .call(Method::PATCH, &task, Some(&w.owner), Some(1), Some(json!({"title": "t"})))
        .await?;
    assert_problem(&slow, StatusCode::SERVICE_UNAVAILABLE);
    blocker.rollback().await?;
    let after = service.get(&task, &w.owner).await?;
    assert_eq!((after.status, after.json["version"].as_i64()), (StatusCode::OK, Some(1)));
    Ok(())
}

#[sqlx::test(migrations = false)]
async fn the_metrics_move_with_the_requests(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let w = world(&service, "metrics").await?;
    let task = format!("/organizations/{}/tasks/{}", w.org, w.task);
    let before = scrape(&service).await?;
    for _ in 0..3 {
        assert_eq!(service.get(&task, &w.owner).await?.status, StatusCode::OK);
    }
    let missing = format!("/organizations/{}/tasks/{}", w.org, uuid::Uuid::now_v7());
    assert_problem(&service.get(&missing, &w.owner).await?, StatusCode::NOT_FOUND);
    let after = scrape(&service).await?;
    let route = "/organizations/{org}/tasks/{task}";
    let ok = format!("http_requests_total{{method=\"GET\",route=\"{route}\",status=\"200\"}}");
    assert_eq!(sample(&after, &ok) - sample(&before, &ok), 3.0, "{after}");
    let latency =
        format!("http_request_duration_seconds_count{{method=\"GET\",route=\"{route}\"}}");
    assert_eq!(sample(&after, &latency) - sample(&before, &latency), 4.0);
    let not_found = "db_errors_total{class=\"not_found\"}";
    assert_eq!(sample(&after, not_found) - sample(&before, not_found), 1.0);
    let acquired = "db_pool_acquire_duration_seconds_count";
    assert!(sample(&after, acquired) >= sample(&before, acquired) + 4.0, "{after}");
    assert!(sample(&after, "db_pool_connections") >= 1.0, "{after}");
    assert!(sample(&after, "db_pool_connections_opened_total") >= 1.0, "{after}");
    assert_eq!(sample(&after, "db_pool_max_connections"), 10.0, "{after}");
    assert!(after.contains("db_pool_waiting "), "{after}");
    Ok(())
}

/// Whether `value` conforms to `schema` (the JSON Schema subset utoipa writes: `$ref`,
/// `type`, `required`, `properties`, `items`, `enum`, `oneOf`, `allOf`, formats `uuid` and
/// `date-time`). A property the schema does not name is an error: the answer must not say
/// more than the contract.
fn conforms(schema: &Value, value: &Value, doc: &Value, at: &str) -> Result<(), String> {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        return conforms(&doc["components"]["schemas"][name], value, doc, at);
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        return match options.iter().any(|s| conforms(s, value, doc, at).is_ok()) {
            true => Ok(()),
            false => Err(format!("{at}: {value} matches none of {options:?}")),
        };
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(part, value, doc, at)?;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {options:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| match t {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    if let Some(text) = value.as_str() {
        let parses = match schema["format"].as_str() {
            Some("uuid") => text.parse::<uuid::Uuid>().is_ok(),
            Some("date-time") => {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            }
            _ => true,
        };
        if !parses {
            return Err(format!("{at}: {text:?} is not a {}", schema["format"]));
        }
    }
    if let (Value::Object(fields), Some(properties)) = (value, schema["properties"].as_object()) {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                return Err(format!("{at}: {name} is missing"));
            }
        }
        for (name, field) in fields {
            let property =
                properties.get(name).ok_or(format!("{at}: {name} is not in the contract"))?;
            conforms(property, field, doc, &format!("{at}.{name}"))?;
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, element) in items.iter().enumerate() {
            conforms(item, element, doc, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// The contract's template of a concrete path (`/organizations/{org}/…`).
fn template_of<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"].as_object()?.keys().map(String::as_str).find(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(t, s)| t.starts_with('{') || t == s)
    })
}

/// A request of the tour: method, path, caller, `If-Match` version, body.
type Call<'a> = (Method, String, Option<&'a str>, Option<i64>, Option<Value>);

/// Checks one answer against the contract; returns the operation it covered.
fn check_answer(doc: &Value, method: &Method, path: &str, reply: &Reply) -> String {
    let template =
        template_of(doc, path).unwrap_or_else(|| panic!("{path} is not in the contract"));
    let operation = &doc["paths"][template][method.as_str().to_lowercase()];
    let status = reply.status.as_str();
    let documented = &operation["responses"][status];
    assert!(
        documented.is_object(),
        "{method} {template} answered {status}, undocumented: {}",
        reply.text
    );
    let content_type = reply.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    if let Some(content_type) = content_type {
        let media = content_type.split(';').next().unwrap_or_default();
        let content = &documented["content"][media];
        assert!(content.is_object(), "{method} {template} {status}: {media} is undocumented");
        if media.ends_with("json") && content["schema"].is_object() {
            let checked = conforms(&content["schema"], &reply.json, doc, "body");
            assert!(checked.is_ok(), "{method} {template} {status}: {checked:?}");
        }
    } else {
        assert!(documented["content"].is_null(), "{method} {template} {status}: no body");
    }
    format!("{method} {template}")
}

#[sqlx::test(migrations = false)]
async fn the_contract_covers_every_route_and_every_answer(admin: PgPool) -> TestResult {
    let service = Service::on(&admin, &Default::default()).await?;
    let doc = service.send(Method::GET, "/openapi.json", &[], None).await?.json;
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."), "{doc}");
    let mut every: Vec<String> = Vec::new();
    for (template, item) in doc["paths"].as_object().ok_or("paths")? {
        for method in ["get", "post", "patch", "delete", "put"] {
            if item[method].is_object() {
                every.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert_eq!(every.len(), 30, "{every:?}");

    // A tour of every operation, as a client would make it, and some refusals; every answer
    // is checked against the contract.
    let mut covered = std::collections::BTreeSet::new();
    let user = service.sign_up("ada@example.com", "Ada").await?;
    covered.insert(check_answer(&doc, &Method::POST, "/users", &user));
    let (ada, eve) = (user.id(), service.sign_up("eve@example.com", "Eve").await?.id());
    let org = service.post("/organizations", &ada, json!({"slug": "acme", "name": "Acme"})).await?;
    let o = org.id();
    let project = service
        .post(&format!("/organizations/{o}/projects"), &ada, json!({"key": "OPS", "name": "Ops"}))
        .await?;
    let p = project.id();
    let task = service.post(&format!("/organizations/{o}/projects/{p}/tasks"), &ada, json!({"title": "t", "labels": ["a"], "due_on": "2027-01-31", "metadata": {"source": "api"}})).await?;
    let t = task.id();
    let comment = service
        .post(&format!("/organizations/{o}/tasks/{t}/comments"), &ada, json!({"body": "hello"}))
        .await?;
    let c = comment.id();
    let issued =
        service.post("/tokens", &ada, json!({"name": "cli", "expires_in_days": 7})).await?;
    let token = issued.json["token"]["id"].as_str().unwrap_or_default().to_owned();
    for (path, reply) in [
        ("/organizations".to_owned(), &org),
        (format!("/organizations/{o}/projects"), &project),
        (format!("/organizations/{o}/projects/{p}/tasks"), &task),
        (format!("/organizations/{o}/tasks/{t}/comments"), &comment),
        ("/tokens".to_owned(), &issued),
    ] {
        covered.insert(check_answer(&doc, &Method::POST, &path, reply));
    }
    let tour: Vec<Call<'_>> = vec![
        (Method::GET, "/healthz".into(), None, None, None),
        (Method::GET, "/readyz".into(), None, None, None),
        (Method::GET, "/metrics".into(), None, None, None),
        (Method::GET, "/openapi.json".into(), None, None, None),
        (Method::GET, format!("/users/{ada}"), Some(&ada), None, None),
        (Method::GET, format!("/users/{ada}"), None, None, None),
        (Method::GET, "/tokens".into(), Some(&ada), None, None),
        (Method::GET, "/tokens?limit=0".into(), Some(&ada), None, None),
        (Method::GET, format!("/organizations/{o}"), Some(&ada), None, None),
        (Method::GET, format!("/organizations/{o}"), Some(&eve), None, None),
        (
            Method::POST,
            "/organizations".into(),
            Some(&ada),
            None,
            Some(json!({"slug": "acme", "name": "Again"})),
        ),
        (Method::GET, format!("/organizations/{o}/members"), Some(&ada), None, None),
        (
            Method::POST,
            format!("/organizations/{o}/members"),
            Some(&ada),
            None,
            Some(json!({"user_id": eve, "role": "member"})),
        ),
        (
            Method::PATCH,
            format!("/organizations/{o}/members/{eve}"),
            Some(&ada),
            None,
            Some(json!({"role": "viewer"})),
        ),
        (
            Method::PATCH,
            format!("/organizations/{o}/members/{eve}"),
            Some(&ada),
            None,
            Some(json!({"role": "king"})),
        ),
        (Method::DELETE, format!("/organizations/{o}/members/{eve}"), Some(&ada), None, None),
        (Method::GET, format!("/organizations/{o}/projects"), Some(&ada), None, None),
        (Method::GET, format!("/organizations/{o}/projects/{p}"), Some(&ada), None, None),
        (
            Method::GET,
            format!("/organizations/{o}/projects/{p}/tasks?status=todo&order=priority"),
            Some(&ada),
            None,
            None,
        ),
        (
            Method::GET,
            format!("/organizations/{o}/projects/{p}/tasks?order=random()"),
            Some(&ada),
            None,
            None,
        ),
        (Method::GET, format!("/organizations/{o}/tasks/{t}"), Some(&ada), None, None),
        (
            Method::GET,
            format!("/organizations/{o}/tasks/{}", uuid::Uuid::now_v7()),
            Some(&ada),
            None,
            None,
        ),
        (
            Method::PATCH,
            format!("/organizations/{o}/tasks/{t}"),
            Some(&ada),
            None,
            Some(json!({"priority": 1})),
        ),
        (
            Method::PATCH,
            format!("/organizations/{o}/tasks/{t}"),
            Some(&ada),
            Some(9),
            Some(json!({"priority": 1})),
        ),
        (
            Method::PATCH,
            format!("/organizations/{o}/tasks/{t}"),
            Some(&ada),
            Some(1),
            Some(json!({"priority": 1, "due_on": null})),
        ),
        (
            Method::POST,
            format!("/organizations/{o}/tasks/{t}/transition"),
            Some(&ada),
            Some(2),
            Some(json!({"status": "in_progress"})),
        ),
        (
            Method::POST,
            format!("/organizations/{o}/tasks/{t}/assign"),
            Some(&ada),
            Some(3),
            Some(json!({"assignee_id": ada})),
        ),
        (Method::DELETE, format!("/organizations/{o}/tasks/{t}"), Some(&ada), Some(4), None),
        (Method::POST, format!("/organizations/{o}/tasks/{t}/restore"), Some(&ada), Some(5), None),
        (Method::GET, format!("/organizations/{o}/tasks/{t}/comments"), Some(&ada), None, None),
        (
            Method::PATCH,
            format!("/organizations/{o}/comments/{c}"),
            Some(&ada),
            None,
            Some(json!({"body": "edited"})),
        ),
        (Method::DELETE, format!("/organizations/{o}/comments/{c}"), Some(&ada), None, None),
        (Method::DELETE, format!("/tokens/{token}"), Some(&ada), None, None),
        (
            Method::POST,
            "/users".into(),
            None,
            None,
            Some(json!({"email": "ada@example.com", "display_name": "Ada"})),
        ),
    ];
    for (method, path, caller, version, body) in tour {
        let reply = service.call(method.clone(), &path, caller, version, body).await?;
        covered.insert(check_answer(&doc, &method, &path, &reply));
    }
    let missing: Vec<&String> = every.iter().filter(|op| !covered.contains(*op)).collect();
    assert!(missing.is_empty(), "operations the tour did not make: {missing:?}");

    // No route answers a method the contract does not list.
    for (template, item) in doc["paths"].as_object().ok_or("paths")? {
        let path = template
            .replace("{org}", &o)
            .replace("{project}", &p)
            .replace("{task}", &t)
            .replace("{comment}", &c)
            .replace("{user}", &ada)
            .replace("{token}", &token);
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::PUT] {
            if item[method.as_str().to_lowercase()].is_null() {
                let reply = service.call(method.clone(), &path, Some(&ada), None, None).await?;
                assert_problem(&reply, StatusCode::METHOD_NOT_ALLOWED);
            }
        }
    }
    Ok(())
}
