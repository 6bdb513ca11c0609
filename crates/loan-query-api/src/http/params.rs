//! The query string of a report request: strict parsing with the offending parameter
//! named (an unknown or repeated parameter is refused rather than ignored, so a typo such
//! as `asof=` never silently reports today), and the response format the caller asked
//! for (`?format=csv|json` wins over `Accept: text/csv`).

use axum::extract::{FromRequestParts, Query};
use axum::http::{header, request::Parts};
use chrono::NaiveDate;

use super::problem::Problem;
use crate::QueryError;
use crate::reports::{DEFAULT_LIMIT, PageRequest};

/// How a report is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Csv,
}

/// The parsed query string and `Accept` header of a request.
#[derive(Debug)]
pub(crate) struct ReportQuery {
    pairs: Vec<(String, String)>,
    accepts_csv: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for ReportQuery {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|error| Problem::invalid_parameter("query", error.body_text()))?;
        let accepts_csv = parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|media| {
                media
                    .split(';')
                    .next()
                    .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("text/csv"))
            });
        Ok(ReportQuery { pairs, accepts_csv })
    }
}

/// Parameters every report accepts besides its own.
const COMMON: [&str; 3] = ["format", "limit", "offset"];

impl ReportQuery {
    /// Refuses parameters outside `allowed` (and the common ones) and repeated ones.
    pub(crate) fn check(&self, allowed: &[&str]) -> Result<(), QueryError> {
        for (index, (name, _)) in self.pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) && !COMMON.contains(&name.as_str()) {
                let mut known: Vec<&str> = allowed.to_vec();
                known.extend(COMMON);
                return Err(QueryError::invalid(
                    name.clone(),
                    format!(
                        "is not a parameter of this report (known: {})",
                        known.join(", ")
                    ),
                ));
            }
            if self.pairs[..index]
                .iter()
                .any(|(earlier, _)| earlier == name)
            {
                return Err(QueryError::invalid(name.clone(), "is given more than once"));
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// An optional `YYYY-MM-DD` date.
    pub(crate) fn date(&self, name: &str) -> Result<Option<NaiveDate>, QueryError> {
        self.get(name)
            .map(|text| parse_date(name, text))
            .transpose()
    }

    /// A `YYYY-MM-DD` date that must be present.
    pub(crate) fn required_date(&self, name: &str) -> Result<NaiveDate, QueryError> {
        self.date(name)?
            .ok_or_else(|| QueryError::invalid(name, "is required (a date, YYYY-MM-DD)"))
    }

    /// A report date defaulting to today (UTC) when absent.
    pub(crate) fn date_or_today(&self, name: &str) -> Result<NaiveDate, QueryError> {
        Ok(self
            .date(name)?
            .unwrap_or_else(|| chrono::Utc::now().date_naive()))
    }

    /// `limit` (default 100, at most 1000) and `offset` (default 0).
    pub(crate) fn page(&self) -> Result<PageRequest, QueryError> {
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text.parse::<u32>().map_err(|_| {
                QueryError::invalid("limit", format!("must be a whole number, got `{text}`"))
            })?,
        };
        let offset = match self.get("offset") {
            None => 0,
            Some(text) => text.parse::<u64>().map_err(|_| {
                QueryError::invalid("offset", format!("must be a whole number, got `{text}`"))
            })?,
        };
        PageRequest::new(limit, offset)
    }

    pub(crate) fn format(&self) -> Result<Format, QueryError> {
        match self.get("format") {
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(QueryError::invalid(
                "format",
                format!("must be `json` or `csv`, got `{other}`"),
            )),
            None if self.accepts_csv => Ok(Format::Csv),
            None => Ok(Format::Json),
        }
    }
}

/// Parses a `YYYY-MM-DD` date named `name` for the error.
pub(crate) fn parse_date(name: &str, text: &str) -> Result<NaiveDate, QueryError> {
    let well_formed = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    match text.parse::<NaiveDate>() {
        Ok(date) if well_formed => Ok(date),
        _ => Err(QueryError::invalid(
            name,
            format!("must be a date as YYYY-MM-DD, got `{text}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> ReportQuery {
        ReportQuery {
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            accepts_csv: false,
        }
    }

    fn parameter_of(error: QueryError) -> String {
        match error {
            QueryError::InvalidParameter { parameter, .. } => parameter,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn malformed_dates_are_refused_naming_the_parameter() {
        for text in [
            "2025-13-01",
            "2025-02-30",
            "yesterday",
            "2025-1-5",
            "20250105",
            "",
        ] {
            let error = query(&[("as_of", text)]).date("as_of").unwrap_err();
            assert_eq!(parameter_of(error), "as_of", "{text}");
        }
        assert_eq!(
            query(&[("as_of", "2024-02-29")]).date("as_of").unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29)
        );
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let unknown = query(&[("asof", "2025-01-01")])
            .check(&["as_of"])
            .unwrap_err();
        assert_eq!(parameter_of(unknown), "asof");
        let repeated = query(&[("as_of", "2025-01-01"), ("as_of", "2025-01-02")])
            .check(&["as_of"])
            .unwrap_err();
        assert_eq!(parameter_of(repeated), "as_of");
        assert!(
            query(&[("as_of", "2025-01-01"), ("limit", "5")])
                .check(&["as_of"])
                .is_ok()
        );
    }

    #[test]
    fn pagination_parameters_are_checked() {
        assert_eq!(
            parameter_of(query(&[("limit", "ten")]).page().unwrap_err()),
            "limit"
        );
        assert_eq!(
            parameter_of(query(&[("limit", "-1")]).page().unwrap_err()),
            "limit"
        );
        assert_eq!(
            parameter_of(query(&[("limit", "1001")]).page().unwrap_err()),
            "limit"
        );
        assert_eq!(
            parameter_of(query(&[("offset", "x")]).page().unwrap_err()),
            "offset"
        );
        let page = query(&[("limit", "7"), ("offset", "14")]).page().unwrap();
        assert_eq!((page.limit, page.offset), (7, 14));
    }

    #[test]
    fn the_format_parameter_wins_over_the_accept_header() {
        let mut csv_accepted = query(&[]);
        csv_accepted.accepts_csv = true;
        assert_eq!(csv_accepted.format().unwrap(), Format::Csv);
        let mut json_asked = query(&[("format", "json")]);
        json_asked.accepts_csv = true;
        assert_eq!(json_asked.format().unwrap(), Format::Json);
        assert_eq!(
            parameter_of(query(&[("format", "xml")]).format().unwrap_err()),
            "format"
        );
    }
}
