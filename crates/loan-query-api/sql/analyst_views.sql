-- Schema `analyst`: what analysts may read, as views over schema `read_model`.
--
-- Every view names its columns explicitly, so a column the projector adds later is not
-- exposed until it is reviewed here. Sensitive fields appear only as the read model
-- stores them: masked, or the literal 'erased' after crypto-shredding. The views run with
-- their owner's rights, so the analyst role needs no privilege on `read_model`.
-- Recreated as a whole by `loan_query_api::analyst_access::grant` (after a projection
-- rebuild switches schemas, too: views follow the tables they were created over).

DROP SCHEMA IF EXISTS analyst CASCADE;
CREATE SCHEMA analyst;
COMMENT ON SCHEMA analyst IS
  'Read-only views over the loan read models for analysts (sensitive fields masked).';

CREATE VIEW analyst.customers AS
SELECT customer_id, name, gender, birth_date, region, channel, employer, risk_appetite,
       phone_masked, national_id_masked, bank_card_masked,
       monthly_income, monthly_debt_payments, total_assets, total_liabilities,
       registered_on, identity_verified_on, identity_method,
       credit_score, credit_score_source, credit_assessed_on,
       risk_grade, value_tier, segment_rules_version, erased, erased_on, stale
  FROM read_model.customers;
COMMENT ON VIEW analyst.customers IS
  'One row per customer: profile (masked), credit score, risk grade, value tier.';

CREATE VIEW analyst.credit_scores AS
SELECT customer_id, assessed_on, score, source
  FROM read_model.credit_scores;
COMMENT ON VIEW analyst.credit_scores IS 'Credit score history of every customer.';

CREATE VIEW analyst.loans AS
SELECT loan_id, customer_id, channel, purpose, officer_id, status, currency,
       requested_amount, term_months, captured_on, submitted_on, decided_on,
       decision_outcome, approved_on, approved_amount, annual_rate, rejected_on,
       withdrawn_on, signed_on, principal, method, first_due_date, grace_days,
       daily_penalty_rate, disbursed_on, paid_off_on, written_off_on,
       outstanding_principal, outstanding_interest, outstanding_penalty, total_repaid,
       last_payment_on, last_payment_amount, next_due_date, next_due_amount,
       days_past_due, aging_bucket, stale
  FROM read_model.loans;
COMMENT ON VIEW analyst.loans IS
  'One row per loan, current position as recorded (days_past_due/aging_bucket as of the last event; use analyst.loan_delinquency(date) for any report date).';

CREATE VIEW analyst.installments AS
SELECT loan_id, installment_no, due_date, principal_due, interest_due, principal_paid,
       interest_paid, penalty_accrued, penalty_paid, settled_on
  FROM read_model.installments;
COMMENT ON VIEW analyst.installments IS
  'Every installment with what is paid, as now known; settled_on = first date fully paid.';

CREATE VIEW analyst.allocations AS
SELECT loan_id, payment_reference, value_date, installment_no, principal, interest, penalty
  FROM read_model.allocations;
COMMENT ON VIEW analyst.allocations IS
  'How every counted payment was split over installments, by value date.';

CREATE VIEW analyst.loan_timeline AS
SELECT loan_id, position, version, event_type, business_date, recorded_at, actor_id, summary
  FROM read_model.loan_timeline;
COMMENT ON VIEW analyst.loan_timeline IS
  'Follow-up timeline of every loan (event summaries; payload details are not exposed).';

CREATE VIEW analyst.decisions AS
SELECT loan_id, decided_on, rule_set_version, decided_by, outcome, reasons
  FROM read_model.decisions;
COMMENT ON VIEW analyst.decisions IS 'Every decision and the rule findings behind it.';

CREATE VIEW analyst.delinquency_snapshots AS
SELECT snapshot_date, loan_id, days_past_due, aging_bucket, outstanding_principal,
       overdue_amount
  FROM read_model.delinquency_snapshots;
COMMENT ON VIEW analyst.delinquency_snapshots IS 'Recorded daily delinquency snapshots.';

CREATE VIEW analyst.collection_cases AS
SELECT case_id, loan_id, customer_id, team, status, currency, opened_on,
       days_past_due_at_opening, overdue_amount_at_opening, reason, contact_attempts,
       last_contact_on, last_contact_channel, last_contact_outcome, promises,
       promised_amount, promised_pay_by, resolution, resolved_on, stale
  FROM read_model.collection_cases;
COMMENT ON VIEW analyst.collection_cases IS
  'Collection cases: the collections team''s queue (status open) and resolved cases, with contact attempts and promises to pay.';
