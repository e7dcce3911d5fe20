//! The API's OpenAPI 3.1 contract, generated from the handlers' `#[utoipa::path]`
//! descriptions and served at `/openapi.json`. Every refusal is a [`Problem`] in
//! `application/problem+json`: the refusals any route may answer (a malformed request, no
//! route, a body or headers too large, a fault, the database away) are added to every
//! operation here, those of authenticated routes (401, 403) to theirs, and those a handler
//! names (409, 412, 428) get the problem body.

use utoipa::Modify;
use utoipa::OpenApi as _;
use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

use crate::problem::{PROBLEM_JSON, Problem};

/// The document's frame: title, version, the bearer scheme, the problem schema.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Work tracker",
        description = "The reference service of strata: organizations, projects, tasks and comments, over one PostgreSQL."
    ),
    components(schemas(Problem))
)]
struct Frame;

/// The contract of [`crate::App::router`]: the frame with every route's operation.
pub(crate) fn document(paths: OpenApi) -> OpenApi {
    let mut document = Frame::openapi();
    document.merge(paths);
    Refusals.modify(&mut document);
    document
}

/// Adds the bearer scheme and the problem answers.
struct Refusals;

/// Answered by any route.
const ANY_ROUTE: [(u16, &str); 6] = [
    (400, "The request is malformed (a path, query or header value, or JSON)"),
    (413, "The body is larger than http.max_body_bytes"),
    (431, "The headers are too large"),
    (500, "A fault; its cause is logged with the request id"),
    (503, "The database is unavailable, or the request took longer than http.request_timeout"),
    (405, "The route has no such method"),
];
/// Answered by a route that needs a caller.
const AUTHENTICATED: [(u16, &str); 3] = [
    (401, "No valid credentials"),
    (403, "The caller may not do this"),
    (404, "Not found, or not visible to the caller"),
];
/// Answered by a route that takes a body or query parameters.
const WITH_BODY: [(u16, &str); 1] =
    [(422, "A value is invalid (a field, a page's limit) or the body has the wrong shape")];

impl Modify for Refusals {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (strata_…, from POST /tokens or `tracker-service \
                         issue-token`) or a JWT of the configured identity provider",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let queried = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
                let body = operation.request_body.is_some() || queried;
                let extra = ANY_ROUTE
                    .iter()
                    .chain(if secured { &AUTHENTICATED[..] } else { &[] })
                    .chain(if body { &WITH_BODY[..] } else { &[] });
                let responses = &mut operation.responses.responses;
                for (status, description) in extra {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(Response::new(*description)));
                }
                for (status, response) in responses.iter_mut() {
                    if let (true, RefOr::T(response)) = (status.as_str() >= "400", response) {
                        response.content.insert(
                            PROBLEM_JSON.to_owned(),
                            RefOr::T(Content::new(Some(Ref::from_schema_name("Problem")))),
                        );
                    }
                }
            }
        }
    }
}
