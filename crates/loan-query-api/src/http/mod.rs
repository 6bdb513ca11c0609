//! The reports over HTTP (axum 0.8): one `GET` route per report, JSON by default, CSV with
//! `?format=csv` or `Accept: text/csv`, `limit`/`offset` pagination, and RFC 9457 problem
//! details for every error. [`router`] builds the routes over the read models (PostgreSQL
//! or the embedded SQLite file: the same answers from either); [`serve`] runs them on a
//! listener until shutdown. The routes and parameters are listed in
//! `docs/query-api.md` and in the OpenAPI document served at `/openapi.json`.

mod params;
pub mod problem;
mod respond;

use std::future::Future;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use utoipa::{IntoParams, OpenApi};
use uuid::Uuid;

use crate::reports::{
    Page, collection_cases, customer_360, delinquency, pipeline, roll_rate, segmentation,
    snapshots, vintage,
};
use crate::{QueryError, ReadModels};
use params::{ReportQuery, parse_date};
use problem::Problem;

/// The routes of the query API over `read_models` (a `PgPool`, a `SqlitePool` or a
/// [`ReadModels`]).
pub fn router(read_models: impl Into<ReadModels>) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/openapi.json", get(openapi_json))
        .route("/customers/{customer_id}", get(customer))
        .route("/segments", get(segments))
        .route("/segments/customers", get(customer_segments))
        .route(
            "/segments/{dimension}/{value}/members",
            get(segment_members),
        )
        .route("/delinquency/loans", get(delinquent_loans))
        .route("/delinquency/buckets", get(buckets))
        .route("/delinquency/par", get(par))
        .route("/delinquency/roll-rates", get(roll_rates))
        .route("/delinquency/vintages", get(vintages))
        .route("/delinquency/snapshots/{date}", get(snapshot))
        .route("/collection-queue", get(collection_queue))
        .route("/collection-cases", get(cases))
        .route("/pipeline", get(funnel))
        .fallback(unknown_route)
        .with_state(read_models.into())
}

/// Serves [`router`] on `listener` until `shutdown` completes, then finishes the
/// requests in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    read_models: impl Into<ReadModels>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(read_models))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The OpenAPI document of the routes above.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Loan portfolio query API",
        description = "Read-only reports over the loan read models for analysts: customer 360, \
                       segmentation, as-of delinquency, roll rates, vintages, collection queue \
                       and cases, pipeline. JSON by default; CSV with `?format=csv` or `Accept: text/csv`. \
                       Errors are RFC 9457 problem details. Guide: docs/query-api.md."
    ),
    paths(
        live,
        customer,
        segments,
        customer_segments,
        segment_members,
        delinquent_loans,
        buckets,
        par,
        roll_rates,
        vintages,
        snapshot,
        collection_queue,
        cases,
        funnel
    ),
    components(schemas(Problem))
)]
struct ApiDoc;

type Models = State<ReadModels>;

fn respond<T>(result: Result<T, QueryError>, ok: impl FnOnce(T) -> Response) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(error) => error.into_response(),
    }
}

// Query-string descriptions for the OpenAPI document (parsed by `ReportQuery`).

/// Pagination and format, accepted by every report.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query string in OpenAPI; ReportQuery parses it"
)]
struct Paging {
    /// Rows per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// Rows to skip (default 0); the response's `next_offset` gives the next page.
    offset: Option<u64>,
    /// `json` (default) or `csv`; wins over `Accept: text/csv`.
    format: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query string in OpenAPI; ReportQuery parses it"
)]
struct AsOf {
    /// Report date, `YYYY-MM-DD` (default: today, UTC).
    as_of: Option<chrono::NaiveDate>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query string in OpenAPI; ReportQuery parses it"
)]
struct AsOfBy {
    /// Report date, `YYYY-MM-DD` (default: today, UTC).
    as_of: Option<chrono::NaiveDate>,
    /// Breakdown: `portfolio` (default), `purpose`, `channel`, `officer`, `risk_grade`,
    /// `value_tier`, `risk_appetite`, `region`.
    by: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query string in OpenAPI; ReportQuery parses it"
)]
struct Between {
    /// First report date, `YYYY-MM-DD`.
    from: chrono::NaiveDate,
    /// Second report date, `YYYY-MM-DD`, after `from`.
    to: chrono::NaiveDate,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query string in OpenAPI; ReportQuery parses it"
)]
struct FunnelQuery {
    /// Grouping: `channel` (default), `officer`, `month` (capture month).
    by: Option<String>,
    /// Earliest capture date, `YYYY-MM-DD` (inclusive).
    from: Option<chrono::NaiveDate>,
    /// Latest capture date, `YYYY-MM-DD` (inclusive).
    to: Option<chrono::NaiveDate>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "describes the query string in OpenAPI; ReportQuery parses it"
)]
struct CaseQuery {
    /// `open` (default), `resolved` or `all`.
    status: Option<String>,
    /// Only the cases of this team (e.g. `collections`).
    team: Option<String>,
}

/// Liveness: the process answers (does not touch the database).
#[utoipa::path(get, path = "/health/live", responses((status = 200, description = "alive")))]
async fn live() -> &'static str {
    "ok"
}

async fn openapi_json() -> Response {
    axum::Json(openapi()).into_response()
}

async fn unknown_route() -> Problem {
    Problem::not_found("no such route; see /openapi.json")
}

/// Customer 360: profile (masked), credit scores, segments, loans with delinquency as of
/// the report date, timeline and decision reasons. CSV in long form
/// (`section,item,field,value`).
#[utoipa::path(get, path = "/customers/{customer_id}",
    params(("customer_id" = Uuid, Path, description = "The customer's id"), AsOf, Paging),
    responses(
        (status = 200, description = "The customer 360 (JSON), or its long form section,item,field,value (CSV)",
            content((customer_360::Customer360 = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json")))]
async fn customer(
    State(read_models): Models,
    Path(id): Path<String>,
    query: ReportQuery,
) -> Response {
    let request = async {
        query.check(&["as_of"])?;
        let format = query.format()?;
        let id = Uuid::parse_str(&id).map_err(|_| {
            QueryError::invalid("customer_id", format!("must be a UUID, got `{id}`"))
        })?;
        let as_of = query.date_or_today("as_of")?;
        let report = customer_360::customer_360(&read_models, id, as_of).await?;
        Ok((format, report))
    };
    respond(request.await, |(format, report)| {
        respond::document(format, &report)
    })
}

/// Figures of every segment (customers, active loans, outstanding balance, overdue rate)
/// as of the report date, with the segment rules version.
#[utoipa::path(get, path = "/segments", params(AsOf, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<segmentation::SegmentFigures> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn segments(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["as_of"])?;
        let format = query.format()?;
        let page = query.page()?;
        let as_of = query.date_or_today("as_of")?;
        Ok((
            format,
            segmentation::segment_figures(&read_models, as_of, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Every customer's segments (one row per customer, dimension and value).
#[utoipa::path(get, path = "/segments/customers", params(Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<segmentation::CustomerSegment> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn customer_segments(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&[])?;
        let format = query.format()?;
        let page = query.page()?;
        Ok((
            format,
            segmentation::customer_segments(&read_models, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Members of one segment, for campaign export (erased customers left out; contact
/// masked).
#[utoipa::path(get, path = "/segments/{dimension}/{value}/members",
    params(("dimension" = String, Path, description = "risk_grade, value_tier, loan_purpose, \
                                                       risk_appetite, region or channel"),
           ("value" = String, Path, description = "The segment value, e.g. `high`"), Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<segmentation::SegmentMember> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn segment_members(
    State(read_models): Models,
    Path((dimension, value)): Path<(String, String)>,
    query: ReportQuery,
) -> Response {
    let request = async {
        query.check(&[])?;
        let format = query.format()?;
        let page = query.page()?;
        let dimension = segmentation::SegmentDimension::parse(&dimension, "dimension")?;
        Ok((
            format,
            segmentation::segment_members(&read_models, dimension, &value, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Every loan on book at the report date with its days past due, aging bucket,
/// outstanding principal and overdue amount.
#[utoipa::path(get, path = "/delinquency/loans", params(AsOf, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<delinquency::LoanDelinquency> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn delinquent_loans(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["as_of"])?;
        let format = query.format()?;
        let page = query.page()?;
        let as_of = query.date_or_today("as_of")?;
        Ok((
            format,
            delinquency::loan_delinquency(&read_models, as_of, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

fn breakdown(query: &ReportQuery) -> Result<delinquency::Breakdown, QueryError> {
    query
        .get("by")
        .map(|by| delinquency::Breakdown::parse(by, "by"))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Loans, outstanding principal and overdue amount per aging bucket at the report date,
/// optionally broken down.
#[utoipa::path(get, path = "/delinquency/buckets", params(AsOfBy, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<delinquency::BucketFigures> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn buckets(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["as_of", "by"])?;
        let format = query.format()?;
        let page = query.page()?;
        let as_of = query.date_or_today("as_of")?;
        let by = breakdown(&query)?;
        Ok((
            format,
            delinquency::portfolio_buckets(&read_models, as_of, by, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// PAR1, PAR30, PAR90 (balance-weighted) at the report date, optionally broken down.
#[utoipa::path(get, path = "/delinquency/par", params(AsOfBy, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<delinquency::ParFigures> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn par(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["as_of", "by"])?;
        let format = query.format()?;
        let page = query.page()?;
        let as_of = query.date_or_today("as_of")?;
        let by = breakdown(&query)?;
        Ok((
            format,
            delinquency::portfolio_at_risk(&read_models, as_of, by, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Roll-rate matrix: where each aging bucket's loans at `from` stood at `to`.
#[utoipa::path(get, path = "/delinquency/roll-rates", params(Between, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<roll_rate::RollRateCell> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn roll_rates(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["from", "to"])?;
        let format = query.format()?;
        let page = query.page()?;
        let from = query.required_date("from")?;
        let to = query.required_date("to")?;
        Ok((
            format,
            roll_rate::roll_rates(&read_models, from, to, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Vintage curves: share of each disbursement month's loans ever 30+/60+/90+ days past due
/// by months on book, as known at the report date.
#[utoipa::path(get, path = "/delinquency/vintages", params(AsOf, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<vintage::VintageCell> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn vintages(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["as_of"])?;
        let format = query.format()?;
        let page = query.page()?;
        let as_of = query.date_or_today("as_of")?;
        Ok((format, vintage::vintages(&read_models, as_of, page).await?))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// The recorded daily snapshot of a date (empty if none was written).
#[utoipa::path(get, path = "/delinquency/snapshots/{date}",
    params(("date" = chrono::NaiveDate, Path, description = "Snapshot date, YYYY-MM-DD"), Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<snapshots::SnapshotRow> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn snapshot(
    State(read_models): Models,
    Path(date): Path<String>,
    query: ReportQuery,
) -> Response {
    let request = async {
        query.check(&[])?;
        let format = query.format()?;
        let page = query.page()?;
        let date = parse_date("date", &date)?;
        Ok((format, snapshots::snapshot(&read_models, date, page).await?))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Loans past due at the report date, worst first (days past due, then overdue amount),
/// with their officer and the customer's masked phone.
#[utoipa::path(get, path = "/collection-queue", params(AsOf, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<delinquency::CollectionItem> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn collection_queue(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["as_of"])?;
        let format = query.format()?;
        let page = query.page()?;
        let as_of = query.date_or_today("as_of")?;
        Ok((
            format,
            delinquency::collection_queue(&read_models, as_of, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Collection cases (open by default), oldest opening first: the team, contact attempts,
/// the latest promise to pay, the resolution, and the customer's masked phone.
#[utoipa::path(get, path = "/collection-cases", params(CaseQuery, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<collection_cases::CollectionCaseRow> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn cases(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["status", "team"])?;
        let format = query.format()?;
        let page = query.page()?;
        let status = match query.get("status") {
            None => collection_cases::CaseStatus::default(),
            Some(text) => collection_cases::CaseStatus::parse(text).ok_or_else(|| {
                QueryError::invalid(
                    "status",
                    format!("must be `open`, `resolved` or `all`, got `{text}`"),
                )
            })?,
        };
        let team = query.get("team");
        Ok((
            format,
            collection_cases::collection_cases(&read_models, status, team, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}

/// Pipeline funnel: lead → review → signed → disbursed counts and conversions.
#[utoipa::path(get, path = "/pipeline", params(FunnelQuery, Paging),
    responses((status = 200, description = "One page of the report (JSON), or its rows with a header row (CSV)",
            content((Page<pipeline::FunnelFigures> = "application/json"), (String = "text/csv"))),
              (status = 400, description = "A parameter is malformed or out of range", body = Problem, content_type = "application/problem+json")))]
async fn funnel(State(read_models): Models, query: ReportQuery) -> Response {
    let request = async {
        query.check(&["by", "from", "to"])?;
        let format = query.format()?;
        let page = query.page()?;
        let by = query
            .get("by")
            .map(|by| pipeline::FunnelGrouping::parse(by, "by"))
            .transpose()?
            .unwrap_or_default();
        let from = query.date("from")?;
        let to = query.date("to")?;
        Ok((
            format,
            pipeline::funnel(&read_models, by, from, to, page).await?,
        ))
    };
    respond(request.await, |(format, page)| respond::page(format, page))
}
