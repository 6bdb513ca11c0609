//! RFC 9457 problem details: every error the API returns, as
//! `application/problem+json`, with the offending parameter named.
//!
//! Problem types (`type`): `urn:loan-query-api:problem:invalid-parameter` (400),
//! `…:not-found` (404), `…:internal` (500, no internal details). The extension member
//! `parameter` names the query or path parameter at fault.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::QueryError;

pub const INVALID_PARAMETER: &str = "urn:loan-query-api:problem:invalid-parameter";
pub const NOT_FOUND: &str = "urn:loan-query-api:problem:not-found";
pub const INTERNAL: &str = "urn:loan-query-api:problem:internal";
pub const CONTENT_TYPE: &str = "application/problem+json";

/// A problem details object (RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI identifying the problem type (see above).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// The parameter at fault, for invalid parameters.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parameter: Option<String>,
}

impl Problem {
    pub fn invalid_parameter(parameter: &str, detail: impl Into<String>) -> Self {
        Problem {
            problem_type: INVALID_PARAMETER.into(),
            title: "Invalid parameter".into(),
            status: StatusCode::BAD_REQUEST.as_u16(),
            detail: detail.into(),
            parameter: Some(parameter.into()),
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem {
            problem_type: NOT_FOUND.into(),
            title: "Not found".into(),
            status: StatusCode::NOT_FOUND.as_u16(),
            detail: detail.into(),
            parameter: None,
        }
    }

    pub fn internal() -> Self {
        Problem {
            problem_type: INTERNAL.into(),
            title: "Internal error".into(),
            status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
            detail: "the report could not be produced; the error was logged".into(),
            parameter: None,
        }
    }
}

impl From<QueryError> for Problem {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::InvalidParameter { parameter, message } => {
                let detail = format!("`{parameter}` {message}");
                Problem::invalid_parameter(&parameter, detail)
            }
            QueryError::NotFound { .. } => Problem::not_found(error.to_string()),
            QueryError::Database(cause) => {
                tracing::error!(error = %cause, "report failed");
                Problem::internal()
            }
            QueryError::Overflow { what } => {
                tracing::error!(what, "report failed: overflow");
                Problem::internal()
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body,
        )
            .into_response()
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
