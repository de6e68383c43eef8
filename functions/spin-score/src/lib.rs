//! Spin HTTP component: `POST /score` runs one message through the scoring pipeline.
//!
//! The request body is one message in a format the preprocess component accepts (legacy
//! flat JSON, canonical JSON, a FHIR R4 Observation or Bundle), and a `cardiowatch-format`
//! header may name the format. The response is JSON with the probability, the model's name
//! and version, contributions, NEWS2 and alerts. The component exports
//! `wasi:http/incoming-handler@0.2.0` and uses no file, socket, clock or environment.

mod pipeline;

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

use cardiowatch_core::input::FORMAT_HEADER;
use pipeline::Rejection;

#[allow(dead_code, clippy::all)]
mod model {
    include!(concat!(env!("OUT_DIR"), "/model.rs"));
}

/// Path of the scoring endpoint.
const SCORE_PATH: &str = "/score";

/// Largest accepted request body, in bytes. A message of vitals and profile is under
/// 10 KiB, and a FHIR Bundle of a few Observations under 100 KiB.
const MAX_BODY_BYTES: usize = 1 << 20;

#[http_component]
fn handle(request: Request) -> Response {
    if request.path() != SCORE_PATH {
        return error_response(
            404,
            "not_found",
            &format!(
                "no route for {:?}: POST a message to {SCORE_PATH}",
                request.path()
            ),
        );
    }
    if !matches!(request.method(), Method::Post) {
        let mut response = error_response(
            405,
            "method_not_allowed",
            &format!(
                "method {} not allowed on {SCORE_PATH}: use POST",
                request.method()
            ),
        );
        response.set_header("allow", "POST");
        return response;
    }
    score(request)
}

fn score(request: Request) -> Response {
    let body_bytes = request.body().len();
    if body_bytes > MAX_BODY_BYTES {
        return error_response(
            413,
            "payload_too_large",
            &format!(
                "request body of {body_bytes} bytes is over the limit of {MAX_BODY_BYTES} \
                 bytes: send one message per request"
            ),
        );
    }
    let format = request
        .header(FORMAT_HEADER)
        .map(|value| value.as_bytes().to_vec());
    match pipeline::score_message(&model::MODEL, request.into_body(), format) {
        Ok(scored) => json_response(200, &scored),
        Err(Rejection::InvalidInput(error)) => {
            error_response(400, "invalid_input", &error.to_string())
        }
        Err(Rejection::RuleFailure(error)) => {
            error_response(500, "rule_failure", &error.to_string())
        }
    }
}

/// Builds an error response with the JSON body `{"error": <message>, "kind": <kind>}`.
fn error_response(status: u16, kind: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": message, "kind": kind });
    json_response(status, &body)
}

fn json_response(status: u16, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(bytes)
            .build(),
        // Unreachable with the types above, which hold no maps with non-string keys.
        Err(error) => Response::builder()
            .status(500)
            .header("content-type", "text/plain")
            .body(format!("failed to encode the response: {error}"))
            .build(),
    }
}
