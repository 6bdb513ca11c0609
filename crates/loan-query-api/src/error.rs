//! The one error type of the crate boundary: what a report can fail with, in terms the
//! HTTP layer turns into problem details (bad parameter → 400, unknown thing → 404,
//! anything else → 500 without internal details).

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter is malformed or out of range; `parameter` names it as the caller
    /// spelled it (`as_of`, `limit`, `customer_id`, …).
    #[error("invalid parameter `{parameter}`: {message}")]
    InvalidParameter { parameter: String, message: String },
    /// The thing asked for does not exist in the read model.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// The read-model database (PostgreSQL or the embedded SQLite file) failed, is
    /// unreachable, or holds a value that does not decode (e.g. a money text that is not
    /// an exact decimal).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A figure left the range of exact decimals (or of a day count) while the embedded
    /// reports computed it — where PostgreSQL would report a numeric overflow.
    #[error("{what} overflowed")]
    Overflow { what: &'static str },
}

impl QueryError {
    pub fn invalid(parameter: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError::InvalidParameter {
            parameter: parameter.into(),
            message: message.into(),
        }
    }
}
