//! What many operations declare alike, said once: the x-request-id request header
//! ([`RequestId`]) and sets of shared error answers (`$ref`s to the response components of
//! `responses.rs`). A set goes in an operation's `responses(...)` next to its own answers;
//! the document keeps answers by status, so where a set stands in the list does not matter.

use std::collections::BTreeMap;

use utoipa::openapi::path::Parameter;
use utoipa::openapi::{Ref, RefOr, Response};

/// The optional `x-request-id` request header every operation but `/openapi.json` and
/// `/metrics` accepts (echoed in the answer's header of that name).
pub struct RequestId;

impl utoipa::IntoParams for RequestId {
    fn into_params(_: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>) -> Vec<Parameter> {
        let parameter = serde_json::json!({
            "name": "x-request-id",
            "in": "header",
            "description": "Echoed in the response's x-request-id header; generated when absent.",
            "required": false,
            "schema": {"type": ["string", "null"]}
        });
        vec![serde_json::from_value(parameter).expect("x-request-id is a parameter")]
    }
}

/// `(status, component)` pairs as `$ref` answers.
fn refs(set: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    set.iter()
        .map(|(status, component)| {
            let answer = RefOr::Ref(Ref::from_response_name(*component));
            (status.to_string(), answer)
        })
        .collect()
}

/// A named set of shared answers: `Name: status => Component, ...`.
macro_rules! answers {
    ($(#[doc = $doc:literal])* $name:ident: $($status:literal => $component:ident),+ $(,)?) => {
        $(#[doc = $doc])*
        pub struct $name;
        impl utoipa::IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                refs(&[$((stringify!($status), stringify!($component))),+])
            }
        }
    };
}

answers!(
    /// A route called with the wrong method, and the server's own failures.
    ServerFailures: 405 => MethodNotAllowed, 500 => Internal, 503 => Unavailable
);
answers!(
    /// A request body that came too slowly or is too large.
    BodyFailures: 408 => RequestTimeout, 413 => PayloadTooLarge
);
answers!(
    /// An admin change refused: bad input, no admin credentials, no CSRF token.
    AdminRefusals: 400 => InvalidArgument, 401 => Unauthorized, 403 => CsrfFailed
);
answers!(
    /// The forwarded API's errors, whatever the request.
    ForwardedFailures: 401 => ForwardedError, 403 => ForwardedError, 404 => ForwardedError,
    501 => ForwardedError, 502 => ForwardedError, 503 => ForwardedError, 504 => ForwardedError
);
answers!(
    /// A signed webhook refused, or not taken now.
    WebhookFailures: 400 => InvalidPayload, 401 => InvalidSignature, 405 => MethodNotAllowed,
    408 => RequestTimeout, 413 => PayloadTooLarge, 500 => Internal, 501 => WebhooksDisabled,
    503 => WebhookUnavailable
);
answers!(
    /// The dead-letter API refused (no admin credentials) or not served (webhooks off, store down).
    DeadLetterFailures: 401 => Unauthorized, 501 => WebhooksDisabled, 503 => WebhookUnavailable
);

/// One operation of the document: `#[utoipa::path]` on a doc function, written as
///
/// ```text
/// operation! {
///     METHOD "PATH" => function, "operationId", tag "TAG", SECURITY, "summary",
///     [the other attributes of utoipa::path: description, params, request_body],
///     ANSWER, ...
/// }
/// ```
///
/// SECURITY names who may call (`public`, `waiting`, `admission`, `admin`, `console`,
/// `optional_console`). An ANSWER is a set above (`ServerFailures`, ...), `STATUS => Component`
/// (a response of `responses.rs`), `STATUS => (...)` (an inline response as utoipa writes it),
/// `STATUS => echoed(...)` (the same, with the `x-request-id` header that every answer of the
/// gateway's own routes carries) or `STATUS => html("description")` (an echoed HTML page);
/// `echoed[HEADERS](...)` and `html[HEADERS](...)` add headers beside x-request-id.
macro_rules! operation {
    ($method:ident $path:tt => $name:ident, $id:tt, tag $tag:tt, $security:ident, $summary:tt,
        [$($attr:tt)*], $($answers:tt)*) => {
        operation!(@security $security
            ($name [$method, path = $path, operation_id = $id, tag = $tag, summary = $summary] [$($attr)*])
            [] $($answers)*,);
    };
    (@security public $($rest:tt)*) => { operation!(@answers (()) $($rest)*); };
    (@security waiting $($rest:tt)*) => { operation!(@answers (("waitingToken" = [])) $($rest)*); };
    (@security admission $($rest:tt)*) => { operation!(@answers (("admissionToken" = [])) $($rest)*); };
    (@security admin $($rest:tt)*) => {
        operation!(@answers (("adminToken" = []), ("consoleSession" = [])) $($rest)*);
    };
    (@security console $($rest:tt)*) => { operation!(@answers (("consoleSession" = [])) $($rest)*); };
    (@security optional_console $($rest:tt)*) => {
        operation!(@answers ((), ("consoleSession" = [])) $($rest)*);
    };
    (@answers $who:tt $op:tt [$($done:tt)*] $status:tt => html $([$($header:tt)*])? ($description:tt),
        $($rest:tt)*) => {
        operation!(@answers $who $op [$($done)*] $status => echoed $([$($header)*])? (
            description = $description, content_type = "text/html; charset=utf-8", body = String
        ), $($rest)*);
    };
    (@answers $who:tt $op:tt [$($done:tt)*] $status:tt => echoed $([$($header:tt)*])? ($($answer:tt)*),
        $($rest:tt)*) => {
        operation!(@answers $who $op [$($done)* (status = $status, headers(
            ("x-request-id" = String, description = "The request's x-request-id, or a generated one."),
            $($($header)*)?
        ), $($answer)*),] $($rest)*);
    };
    (@answers $who:tt $op:tt [$($done:tt)*] $status:tt => ($($answer:tt)*), $($rest:tt)*) => {
        operation!(@answers $who $op [$($done)* (status = $status, $($answer)*),] $($rest)*);
    };
    (@answers $who:tt $op:tt [$($done:tt)*] $status:tt => $component:ident, $($rest:tt)*) => {
        operation!(@answers $who $op [$($done)* (status = $status, response = responses::$component),] $($rest)*);
    };
    (@answers $who:tt $op:tt [$($done:tt)*] $set:ident, $($rest:tt)*) => {
        operation!(@answers $who $op [$($done)* $set,] $($rest)*);
    };
    (@answers ($($who:tt)*) ($name:ident [$($head:tt)*] [$($attr:tt)*]) [$($done:tt)*] $(,)?) => {
        #[utoipa::path($($head)*, security($($who)*), responses($($done)*), $($attr)*)]
        pub fn $name() {}
    };
}
