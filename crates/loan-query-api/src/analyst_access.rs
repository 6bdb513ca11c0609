//! The read-only PostgreSQL access of analysts: schema `analyst` (views over the read
//! models, sensitive fields only ever masked, plus `analyst.loan_delinquency(date)` for
//! as-of delinquency in SQL) and a `NOLOGIN` group role with `USAGE`/`SELECT` on
//! `analyst` and nothing on `read_model` or `projection`.
//!
//! Analysts log in with their own `LOGIN` role made a member of the group
//! (`GRANT loan_analyst TO alice`); `docs/query-api.md` has `psql` examples.
//!
//! Views follow the tables they were created over, so after a projection rebuild switches
//! schemas the views must be recreated: [`script`] is the whole SQL, to run in the
//! switch-over transaction, and [`grant`] runs it on its own.

use sqlx::PgPool;

use crate::QueryError;
use crate::reports::as_of::loans_as_of;

/// The analysts' group role.
pub const DEFAULT_ROLE: &str = "loan_analyst";

const VIEWS: &str = include_str!("../sql/analyst_views.sql");

/// Checks that `role` is a plain lower-case identifier (it is spliced into SQL).
fn checked_role(role: &str) -> Result<&str, QueryError> {
    let mut chars = role.chars();
    let plain = role.len() <= 63
        && chars
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(role)
    } else {
        Err(QueryError::invalid(
            "role",
            format!("must be a lower-case SQL identifier, got `{role}`"),
        ))
    }
}

/// The SQL that (re)creates schema `analyst`, creates group role `role` if missing and
/// grants it read access to `analyst` only.
pub fn script(role: &str) -> Result<String, QueryError> {
    let role = checked_role(role)?;
    let delinquency = loans_as_of("report_date").replace("read_model.", "analyst.");
    Ok(format!(
        "{VIEWS}
CREATE FUNCTION analyst.loan_delinquency(report_date date)
RETURNS TABLE (loan_id uuid, customer_id uuid, purpose text, channel text, officer_id text,
               disbursed_on date, outstanding_principal numeric, days_past_due int4,
               aging_bucket text, overdue_amount numeric, last_payment_on date)
LANGUAGE sql STABLE AS $function$
  SELECT b.loan_id, b.customer_id, b.purpose::text, b.channel::text, b.officer_id::text,
         b.disbursed_on, b.outstanding_principal, b.days_past_due, b.aging_bucket,
         b.overdue_amount, b.last_payment_on
    FROM ({delinquency}) b
$function$;
COMMENT ON FUNCTION analyst.loan_delinquency(date) IS
  'Every loan on book at report_date with days past due, aging bucket, outstanding principal and overdue amount as of that date.';

DO $role$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '{role}') THEN
    CREATE ROLE \"{role}\" NOLOGIN;
  END IF;
END $role$;
REVOKE ALL ON SCHEMA read_model FROM \"{role}\", PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA read_model FROM \"{role}\", PUBLIC;
DO $projection$ BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = 'projection') THEN
    REVOKE ALL ON SCHEMA projection FROM \"{role}\", PUBLIC;
    REVOKE ALL ON ALL TABLES IN SCHEMA projection FROM \"{role}\", PUBLIC;
  END IF;
END $projection$;
REVOKE ALL ON FUNCTION analyst.loan_delinquency(date) FROM PUBLIC;
GRANT USAGE ON SCHEMA analyst TO \"{role}\";
GRANT SELECT ON ALL TABLES IN SCHEMA analyst TO \"{role}\";
GRANT EXECUTE ON FUNCTION analyst.loan_delinquency(date) TO \"{role}\";
"
    ))
}

/// Runs [`script`] in one transaction.
pub async fn grant(pool: &PgPool, role: &str) -> Result<(), QueryError> {
    let sql = script(role)?;
    let mut tx = pool.begin().await?;
    sqlx::raw_sql(&sql).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_role_names_are_spliced_into_sql() {
        assert!(script(DEFAULT_ROLE).is_ok());
        for bad in ["", "Analyst", "a; DROP TABLE x", "a\"b", "1st"] {
            assert!(script(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_views_read_only_the_analyst_schema_in_the_delinquency_function() {
        let sql = script(DEFAULT_ROLE).unwrap();
        let function = &sql[sql.find("CREATE FUNCTION").unwrap()..sql.find("$function$;").unwrap()];
        assert!(!function.contains("read_model."));
        assert!(function.contains("analyst.installments"));
    }
}
