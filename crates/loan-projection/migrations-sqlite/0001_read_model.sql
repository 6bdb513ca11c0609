-- The read models of the embedded mode (SQLite), filled by the same projection code as
-- the PostgreSQL ones (crates/loan-projection/migrations/0002_read_model.sql): the same
-- tables, columns and keys, with SQLite storage types, in STRICT tables:
--
--   PostgreSQL           SQLite
--   uuid                 text    (lower-case hyphenated)
--   date                 text    (YYYY-MM-DD)
--   timestamptz          text    (RFC 3339, UTC)
--   numeric(20,2)        text    (the exact decimal, e.g. 1234.50 — never REAL: SQLite would
--                                 turn money into binary floating point; sums are done in
--                                 Rust with rust_decimal)
--   numeric              text    (the exact decimal)
--   bigint, integer      integer
--   boolean              integer (0 or 1)
--   jsonb                text    (JSON)
--
-- Column meanings: docs/read-models.md (the same as in PostgreSQL).
-- ---------------------------------------------------------------------------------------
-- portfolio group
-- ---------------------------------------------------------------------------------------

CREATE TABLE customers (
    customer_id            text PRIMARY KEY,
    name                   text NOT NULL,
    gender                 text NOT NULL,
    birth_date             text NOT NULL,
    region                 text NOT NULL,
    channel                text NOT NULL,
    employer               text,
    risk_appetite          text NOT NULL,
    phone_masked           text NOT NULL,
    national_id_masked     text NOT NULL,
    bank_card_masked       text NOT NULL,
    monthly_income         text NOT NULL,
    monthly_debt_payments  text NOT NULL,
    total_assets           text NOT NULL,
    total_liabilities      text NOT NULL,
    registered_on          text NOT NULL,
    identity_verified_on   text,
    identity_method        text,
    credit_score           integer,
    credit_score_source    text,
    credit_assessed_on     text,
    risk_grade             text NOT NULL,
    value_tier             text NOT NULL,
    segment_rules_version  text NOT NULL,
    erased                 integer NOT NULL,
    erased_on              text,
    version                integer NOT NULL,
    last_position          integer NOT NULL,
    stale                  integer NOT NULL DEFAULT 0,
    stale_reason           text
) STRICT;

CREATE TABLE credit_scores (
    customer_id            text NOT NULL,
    assessed_on            text NOT NULL,
    score                  integer NOT NULL,
    source                 text NOT NULL,
    position               integer NOT NULL,
    PRIMARY KEY (customer_id, position)
) STRICT;

CREATE TABLE loans (
    loan_id                text PRIMARY KEY,
    customer_id            text NOT NULL,
    channel                text NOT NULL,
    purpose                text NOT NULL,
    officer_id             text,
    status                 text NOT NULL,
    currency               text NOT NULL,
    requested_amount       text NOT NULL,
    term_months            integer NOT NULL,
    captured_on            text NOT NULL,
    submitted_on           text,
    decided_on             text,
    decision_outcome       text,
    approved_on            text,
    approved_amount        text ,
    annual_rate            text,
    rejected_on            text,
    withdrawn_on           text,
    signed_on              text,
    principal              text ,
    method                 text,
    first_due_date         text,
    grace_days             integer,
    daily_penalty_rate     text,
    disbursed_on           text,
    paid_off_on            text,
    written_off_on         text,
    outstanding_principal  text NOT NULL,
    outstanding_interest   text NOT NULL,
    outstanding_penalty    text NOT NULL,
    total_repaid           text NOT NULL,
    last_payment_on        text,
    last_payment_amount    text ,
    next_due_date          text,
    next_due_amount        text ,
    days_past_due          integer,
    aging_bucket           text,
    version                integer NOT NULL,
    last_position          integer NOT NULL,
    stale                  integer NOT NULL DEFAULT 0,
    stale_reason           text,
    payments_count         integer NOT NULL DEFAULT 0,
    reversed_count         integer NOT NULL DEFAULT 0,
    position_date          text
) STRICT;
CREATE INDEX loans_customer ON loans (customer_id);
CREATE INDEX loans_status ON loans (status);

CREATE TABLE loan_timeline (
    loan_id                text NOT NULL,
    position               integer NOT NULL,
    version                integer NOT NULL,
    event_type             text NOT NULL,
    business_date          text,
    recorded_at            text NOT NULL,
    actor_id               text NOT NULL,
    summary                text NOT NULL,
    details                text NOT NULL,
    PRIMARY KEY (loan_id, version)
) STRICT;

CREATE TABLE decisions (
    loan_id                text NOT NULL,
    decided_on             text NOT NULL,
    rule_set_version       text,
    outcome                text NOT NULL,
    reasons                text NOT NULL,
    position               integer NOT NULL,
    decided_by             text NOT NULL,
    actor_id               text NOT NULL,
    PRIMARY KEY (loan_id, position)
) STRICT;

-- ---------------------------------------------------------------------------------------
-- delinquency group
-- ---------------------------------------------------------------------------------------

CREATE TABLE installments (
    loan_id                text NOT NULL,
    installment_no         integer NOT NULL,
    due_date               text NOT NULL,
    principal_due          text NOT NULL,
    interest_due           text NOT NULL,
    principal_paid         text NOT NULL,
    interest_paid          text NOT NULL,
    penalty_accrued        text NOT NULL,
    penalty_paid           text NOT NULL,
    settled_on             text,
    stale                  integer NOT NULL DEFAULT 0,
    stale_reason           text,
    PRIMARY KEY (loan_id, installment_no)
) STRICT;
CREATE INDEX installments_due_date ON installments (due_date);

CREATE TABLE allocations (
    loan_id                text NOT NULL,
    payment_reference      text NOT NULL,
    value_date             text NOT NULL,
    installment_no         integer NOT NULL,
    principal              text NOT NULL,
    interest               text NOT NULL,
    penalty                text NOT NULL,
    PRIMARY KEY (loan_id, payment_reference, installment_no)
) STRICT;
CREATE INDEX allocations_value_date ON allocations (loan_id, value_date);

-- ---------------------------------------------------------------------------------------
-- not owned by a group (kept across rebuilds)
-- ---------------------------------------------------------------------------------------

CREATE TABLE delinquency_snapshots (
    snapshot_date          text NOT NULL,
    loan_id                text NOT NULL,
    days_past_due          integer NOT NULL,
    aging_bucket           text NOT NULL,
    outstanding_principal  text NOT NULL,
    overdue_amount         text NOT NULL,
    PRIMARY KEY (snapshot_date, loan_id)
) STRICT;

-- ---------------------------------------------------------------------------------------
-- projector bookkeeping (PostgreSQL keeps these in schema `projection`)
-- ---------------------------------------------------------------------------------------

CREATE TABLE checkpoints (
    projection             text PRIMARY KEY,
    last_sequence          integer NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    updated_at             text NOT NULL,
    last_error             text,
    last_error_at          text
) STRICT;

CREATE TABLE quarantine (
    projection             text NOT NULL,
    aggregate_type         text NOT NULL,
    aggregate_id           text NOT NULL,
    position               integer NOT NULL,
    event_type             text,
    reason                 text NOT NULL,
    quarantined_at         text NOT NULL,
    PRIMARY KEY (projection, aggregate_type, aggregate_id)
) STRICT;

CREATE TABLE dead_letters (
    projection             text NOT NULL,
    position               integer NOT NULL,
    subject                text NOT NULL,
    aggregate_type         text,
    aggregate_id           text,
    event_type             text,
    reason                 text NOT NULL,
    payload                text NOT NULL,
    recorded_at            text NOT NULL,
    resolved_at            text,
    PRIMARY KEY (projection, position)
) STRICT;
