//! Writing a report as JSON or CSV.
//!
//! A paginated report is a `Page` object in JSON and its rows in CSV (a header row whose
//! columns are the row type's fields in declaration order — taken from the OpenAPI schema
//! so the two never disagree — then one line per row, absent values empty). Both carry
//! `X-Next-Offset` when another page follows. The customer 360 is nested, so its CSV is
//! in long form: `section,item,field,value`.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::params::Format;
use super::problem::Problem;
use crate::reports::Page;

pub(crate) const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";
pub(crate) const NEXT_OFFSET: HeaderName = HeaderName::from_static("x-next-offset");

/// The CSV columns of row type `T`: its schema's properties, in declaration order.
pub(crate) fn columns<T: PartialSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// One page of a report in the requested format.
pub(crate) fn page<T: Serialize + ToSchema>(format: Format, page: Page<T>) -> Response {
    let next = page.next_offset;
    let mut response = match format {
        Format::Json => Json(&page).into_response(),
        Format::Csv => match rows_to_csv(&columns::<T>(), &page.items) {
            Ok(body) => csv_response(body),
            Err(error) => {
                tracing::error!(%error, "writing CSV failed");
                Problem::internal().into_response()
            }
        },
    };
    if let Some(next) = next
        && let Ok(value) = HeaderValue::from_str(&next.to_string())
    {
        response.headers_mut().insert(NEXT_OFFSET, value);
    }
    response
}

/// A nested document (the customer 360) in the requested format.
pub(crate) fn document<T: Serialize>(format: Format, document: &T) -> Response {
    match format {
        Format::Json => Json(document).into_response(),
        Format::Csv => match serde_json::to_value(document)
            .map_err(|error| error.to_string())
            .and_then(|value| long_form_csv(&value).map_err(|error| error.to_string()))
        {
            Ok(body) => csv_response(body),
            Err(error) => {
                tracing::error!(%error, "writing CSV failed");
                Problem::internal().into_response()
            }
        },
    }
}

fn csv_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(CSV_CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

fn rows_to_csv<T: Serialize>(columns: &[String], rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.write_record(columns)?;
    for row in rows {
        writer.serialize(row)?;
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

/// `section,item,field,value` rows of a JSON object whose members are objects (one
/// item, `item` empty) or arrays of objects (`item` = index from 0).
fn long_form_csv(document: &Value) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["section", "item", "field", "value"])?;
    if let Value::Object(sections) = document {
        for (section, content) in sections {
            match content {
                Value::Object(fields) => {
                    for (field, value) in fields {
                        writer.write_record([section, "", field, &cell(value)])?;
                    }
                }
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        let index = index.to_string();
                        match item {
                            Value::Object(fields) => {
                                for (field, value) in fields {
                                    writer.write_record([section, &index, field, &cell(value)])?;
                                }
                            }
                            other => writer.write_record([section, &index, "", &cell(other)])?,
                        }
                    }
                }
                scalar => writer.write_record([section, "", "", &cell(scalar)])?,
            }
        }
    }
    writer
        .into_inner()
        .map_err(|error| error.into_error().into())
}

/// A JSON value as one CSV cell: strings bare, absent empty, structures as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_documents_become_long_form_rows() {
        let body = long_form_csv(&json!({
            "as_of": "2025-03-01",
            "profile": {"name": "Ana", "employer": null},
            "loans": [{"loan_id": "a", "reasons": ["x", "y"]}],
        }))
        .unwrap();
        let text = String::from_utf8(body).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.remove(0), "section,item,field,value");
        lines.sort_unstable();
        assert_eq!(
            lines,
            vec![
                "as_of,,,2025-03-01",
                "loans,0,loan_id,a",
                "loans,0,reasons,\"[\"\"x\"\",\"\"y\"\"]\"",
                "profile,,employer,",
                "profile,,name,Ana",
            ]
        );
    }
}
