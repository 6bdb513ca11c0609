-- The live read models (schema read_model), built by the projectors from the event log.
-- Money is NUMERIC(20,2), dates DATE, times TIMESTAMPTZ, ids UUID. A rebuild clones these
-- tables (CREATE TABLE ... (LIKE ... INCLUDING ALL)) into read_model_rebuild_<n> and
-- switches over by renaming schemas; see docs/read-models.md.

CREATE SCHEMA IF NOT EXISTS read_model;
COMMENT ON SCHEMA read_model IS 'Live read models built by the projectors from the event log (docs/read-models.md). Replaced atomically by a rebuild.';

-- ---------------------------------------------------------------------------------------
-- portfolio group
-- ---------------------------------------------------------------------------------------

CREATE TABLE read_model.customers (
    customer_id            uuid          PRIMARY KEY,
    name                   text          NOT NULL,
    gender                 text          NOT NULL,
    birth_date             date          NOT NULL,
    region                 text          NOT NULL,
    channel                text          NOT NULL,
    employer               text,
    risk_appetite          text          NOT NULL,
    phone_masked           text          NOT NULL,
    national_id_masked     text          NOT NULL,
    bank_card_masked       text          NOT NULL,
    monthly_income         numeric(20,2) NOT NULL,
    monthly_debt_payments  numeric(20,2) NOT NULL,
    total_assets           numeric(20,2) NOT NULL,
    total_liabilities      numeric(20,2) NOT NULL,
    registered_on          date          NOT NULL,
    identity_verified_on   date,
    identity_method        text,
    credit_score           integer,
    credit_score_source    text,
    credit_assessed_on     date,
    risk_grade             text          NOT NULL,
    value_tier             text          NOT NULL,
    segment_rules_version  text          NOT NULL,
    erased                 boolean       NOT NULL,
    erased_on              date,
    version                bigint        NOT NULL,
    last_position          bigint        NOT NULL,
    stale                  boolean       NOT NULL DEFAULT false,
    stale_reason           text
);
COMMENT ON TABLE read_model.customers IS 'Customer 360 profile and segments: one row per registered customer (group portfolio).';
COMMENT ON COLUMN read_model.customers.customer_id IS 'Customer aggregate id.';
COMMENT ON COLUMN read_model.customers.name IS 'Name as registered.';
COMMENT ON COLUMN read_model.customers.gender IS 'male or female (from the national ID).';
COMMENT ON COLUMN read_model.customers.birth_date IS 'Birth date (from the national ID).';
COMMENT ON COLUMN read_model.customers.region IS 'Region of residence (segment), latest contact update.';
COMMENT ON COLUMN read_model.customers.channel IS 'Acquisition channel (segment), e.g. app, branch, broker:acme.';
COMMENT ON COLUMN read_model.customers.employer IS 'Current employer; NULL when not employed.';
COMMENT ON COLUMN read_model.customers.risk_appetite IS 'conservative, balanced or aggressive (segment, from the suitability questionnaire).';
COMMENT ON COLUMN read_model.customers.phone_masked IS 'Phone in masked form (PhoneNumber::masked), or ''erased'' after crypto-shredding. Never in clear.';
COMMENT ON COLUMN read_model.customers.national_id_masked IS 'National ID in masked form (NationalId::masked, e.g. 110***********1234), or ''erased''. Never in clear.';
COMMENT ON COLUMN read_model.customers.bank_card_masked IS 'Bank card in masked form (BankCard::masked), or ''erased''. Never in clear.';
COMMENT ON COLUMN read_model.customers.monthly_income IS 'Monthly income, latest financials.';
COMMENT ON COLUMN read_model.customers.monthly_debt_payments IS 'Monthly installments on other debts, latest financials.';
COMMENT ON COLUMN read_model.customers.total_assets IS 'Total assets, latest financials.';
COMMENT ON COLUMN read_model.customers.total_liabilities IS 'Total liabilities, latest financials.';
COMMENT ON COLUMN read_model.customers.registered_on IS 'Business date of registration.';
COMMENT ON COLUMN read_model.customers.identity_verified_on IS 'When identity was verified; NULL if not verified (disbursement requires it).';
COMMENT ON COLUMN read_model.customers.identity_method IS 'How identity was verified, e.g. face_match; NULL if not verified.';
COMMENT ON COLUMN read_model.customers.credit_score IS 'Current credit score: the assessment with the latest assessed_on (then the latest recorded); NULL without one.';
COMMENT ON COLUMN read_model.customers.credit_score_source IS 'Bureau or model of the current score.';
COMMENT ON COLUMN read_model.customers.credit_assessed_on IS 'assessed_on of the current score.';
COMMENT ON COLUMN read_model.customers.risk_grade IS 'low, medium or high by risk-grade/v1 on the current score and debt-to-income (segment).';
COMMENT ON COLUMN read_model.customers.value_tier IS 'high, medium or low by value-tier/v1 on income and net worth (segment).';
COMMENT ON COLUMN read_model.customers.segment_rules_version IS 'Versions of the segment rules that computed risk_grade and value_tier (e.g. segments/v1: risk-grade/v1 + value-tier/v1).';
COMMENT ON COLUMN read_model.customers.erased IS 'True once the customer was erased (crypto-shredded).';
COMMENT ON COLUMN read_model.customers.erased_on IS 'Business date of the erasure.';
COMMENT ON COLUMN read_model.customers.version IS 'Aggregate version (events applied) the row reflects.';
COMMENT ON COLUMN read_model.customers.last_position IS 'Stream sequence of the last commit of this customer applied.';
COMMENT ON COLUMN read_model.customers.stale IS 'True while the customer is quarantined: later events were not applied (see projection.quarantine).';
COMMENT ON COLUMN read_model.customers.stale_reason IS 'Why the row is stale: the position, event type and reason of the commit that could not be applied.';

CREATE TABLE read_model.credit_scores (
    customer_id  uuid    NOT NULL,
    assessed_on  date    NOT NULL,
    score        integer NOT NULL,
    source       text    NOT NULL,
    position     bigint  NOT NULL,
    PRIMARY KEY (customer_id, position)
);
COMMENT ON TABLE read_model.credit_scores IS 'Credit score history: one row per credit assessment recorded (group portfolio).';
COMMENT ON COLUMN read_model.credit_scores.customer_id IS 'Customer assessed.';
COMMENT ON COLUMN read_model.credit_scores.assessed_on IS 'Date of the assessment (as reported by the source).';
COMMENT ON COLUMN read_model.credit_scores.score IS 'Score, 300..900.';
COMMENT ON COLUMN read_model.credit_scores.source IS 'Bureau or model, e.g. pboc, baihang, internal-v3.';
COMMENT ON COLUMN read_model.credit_scores.position IS 'Stream sequence of the commit that recorded it.';

CREATE TABLE read_model.loans (
    loan_id                uuid          PRIMARY KEY,
    customer_id            uuid          NOT NULL,
    channel                text          NOT NULL,
    purpose                text          NOT NULL,
    officer_id             text,
    status                 text          NOT NULL,
    currency               text          NOT NULL,
    requested_amount       numeric(20,2) NOT NULL,
    term_months            integer       NOT NULL,
    captured_on            date          NOT NULL,
    submitted_on           date,
    decided_on             date,
    decision_outcome       text,
    approved_on            date,
    approved_amount        numeric(20,2),
    annual_rate            numeric,
    rejected_on            date,
    withdrawn_on           date,
    signed_on              date,
    principal              numeric(20,2),
    method                 text,
    first_due_date         date,
    grace_days             integer,
    daily_penalty_rate     numeric,
    disbursed_on           date,
    paid_off_on            date,
    written_off_on         date,
    outstanding_principal  numeric(20,2) NOT NULL,
    outstanding_interest   numeric(20,2) NOT NULL,
    outstanding_penalty    numeric(20,2) NOT NULL,
    total_repaid           numeric(20,2) NOT NULL,
    last_payment_on        date,
    last_payment_amount    numeric(20,2),
    next_due_date          date,
    next_due_amount        numeric(20,2),
    days_past_due          integer,
    aging_bucket           text,
    version                bigint        NOT NULL,
    last_position          bigint        NOT NULL,
    stale                  boolean       NOT NULL DEFAULT false,
    stale_reason           text,
    payments_count         integer       NOT NULL DEFAULT 0,
    reversed_count         integer       NOT NULL DEFAULT 0,
    position_date          date
);
CREATE INDEX loans_customer ON read_model.loans (customer_id);
CREATE INDEX loans_status ON read_model.loans (status);
COMMENT ON TABLE read_model.loans IS 'One row per loan, lead to closure, with its current money position (group portfolio). Figures come from the domain''s own servicing functions on the loan''s recorded book.';
COMMENT ON COLUMN read_model.loans.loan_id IS 'Loan aggregate id.';
COMMENT ON COLUMN read_model.loans.customer_id IS 'Borrower (read_model.customers).';
COMMENT ON COLUMN read_model.loans.channel IS 'Channel the lead came from.';
COMMENT ON COLUMN read_model.loans.purpose IS 'consumer or business (segment).';
COMMENT ON COLUMN read_model.loans.officer_id IS 'Loan officer owning the loan (last assigned); NULL if none.';
COMMENT ON COLUMN read_model.loans.status IS 'Lifecycle status: lead, review, signed, disbursed, repaying, overdue, rejected, withdrawn, paid_off, written_off.';
COMMENT ON COLUMN read_model.loans.currency IS 'ISO 4217 currency.';
COMMENT ON COLUMN read_model.loans.requested_amount IS 'Amount requested at lead capture.';
COMMENT ON COLUMN read_model.loans.term_months IS 'Term requested (months); the contract term is the same once signed.';
COMMENT ON COLUMN read_model.loans.captured_on IS 'Business date the lead was captured.';
COMMENT ON COLUMN read_model.loans.submitted_on IS 'When it was submitted for review.';
COMMENT ON COLUMN read_model.loans.decided_on IS 'Date of the latest decision (automated or by an underwriter).';
COMMENT ON COLUMN read_model.loans.decision_outcome IS 'Latest decision: approve, reject or refer.';
COMMENT ON COLUMN read_model.loans.approved_on IS 'When the application was approved.';
COMMENT ON COLUMN read_model.loans.approved_amount IS 'Amount approved.';
COMMENT ON COLUMN read_model.loans.annual_rate IS 'Annual rate approved (fraction, 0.12 = 12%); the contract rate once signed.';
COMMENT ON COLUMN read_model.loans.rejected_on IS 'When the application was rejected.';
COMMENT ON COLUMN read_model.loans.withdrawn_on IS 'When the application was withdrawn.';
COMMENT ON COLUMN read_model.loans.signed_on IS 'When the contract was signed.';
COMMENT ON COLUMN read_model.loans.principal IS 'Contract principal; NULL before signing.';
COMMENT ON COLUMN read_model.loans.method IS 'equal_installment or equal_principal; NULL before signing.';
COMMENT ON COLUMN read_model.loans.first_due_date IS 'Due date of the first installment (contract).';
COMMENT ON COLUMN read_model.loans.grace_days IS 'Days after a due date before penalty accrues and the loan turns overdue (contract).';
COMMENT ON COLUMN read_model.loans.daily_penalty_rate IS 'Daily penalty rate on overdue principal (contract, fraction).';
COMMENT ON COLUMN read_model.loans.disbursed_on IS 'Value date of the disbursement; NULL before.';
COMMENT ON COLUMN read_model.loans.paid_off_on IS 'Date the loan became paid off (NULL again if a reversal reopened it).';
COMMENT ON COLUMN read_model.loans.written_off_on IS 'Date the loan was written off.';
COMMENT ON COLUMN read_model.loans.outstanding_principal IS 'Principal not yet repaid, as of position_date (0 before disbursement).';
COMMENT ON COLUMN read_model.loans.outstanding_interest IS 'Scheduled interest not yet paid, as of position_date.';
COMMENT ON COLUMN read_model.loans.outstanding_penalty IS 'Penalty accrued and not yet paid, as of position_date.';
COMMENT ON COLUMN read_model.loans.total_repaid IS 'Sum of the payments that count (recorded, not reversed).';
COMMENT ON COLUMN read_model.loans.last_payment_on IS 'Value date of the latest counted payment (by value date, then recording order).';
COMMENT ON COLUMN read_model.loans.last_payment_amount IS 'Amount of that payment.';
COMMENT ON COLUMN read_model.loans.next_due_date IS 'Due date of the first installment not fully paid due on or after position_date; NULL when none (or closed).';
COMMENT ON COLUMN read_model.loans.next_due_amount IS 'What is unpaid on that installment (principal, interest, accrued penalty).';
COMMENT ON COLUMN read_model.loans.days_past_due IS 'Days past due as of position_date, as last recorded by events (for another date use read_model.installments); NULL before disbursement.';
COMMENT ON COLUMN read_model.loans.aging_bucket IS 'Aging bucket as last recorded by events: current, dpd_1_to_30, dpd_31_to_60, dpd_61_to_90, dpd_90_plus; NULL before disbursement.';
COMMENT ON COLUMN read_model.loans.version IS 'Aggregate version (events applied) the row reflects.';
COMMENT ON COLUMN read_model.loans.last_position IS 'Stream sequence of the last commit of this loan applied.';
COMMENT ON COLUMN read_model.loans.stale IS 'True while the loan is quarantined by the portfolio projection (see projection.quarantine).';
COMMENT ON COLUMN read_model.loans.stale_reason IS 'Why the row is stale: position, event type and reason of the commit that could not be applied.';
COMMENT ON COLUMN read_model.loans.payments_count IS 'Number of counted payments (recorded, not reversed).';
COMMENT ON COLUMN read_model.loans.reversed_count IS 'Number of reversed payments.';
COMMENT ON COLUMN read_model.loans.position_date IS 'Date the loan''s book was brought to by its last money event (the "as of" of the outstanding figures); NULL before disbursement.';

CREATE TABLE read_model.loan_timeline (
    loan_id        uuid        NOT NULL,
    position       bigint      NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    business_date  date,
    recorded_at    timestamptz NOT NULL,
    actor_id       text        NOT NULL,
    summary        text        NOT NULL,
    details        jsonb       NOT NULL,
    PRIMARY KEY (loan_id, version)
);
COMMENT ON TABLE read_model.loan_timeline IS 'Every event of every loan, in order: the follow-up timeline and decision trail (group portfolio).';
COMMENT ON COLUMN read_model.loan_timeline.loan_id IS 'Loan.';
COMMENT ON COLUMN read_model.loan_timeline.position IS 'Stream sequence of the commit holding the event.';
COMMENT ON COLUMN read_model.loan_timeline.version IS 'Event version within the loan (1-based).';
COMMENT ON COLUMN read_model.loan_timeline.event_type IS 'Event type, e.g. follow_up_logged, repayment_recorded.';
COMMENT ON COLUMN read_model.loan_timeline.business_date IS 'Business date of the event (value date, as-of date, day it happened).';
COMMENT ON COLUMN read_model.loan_timeline.recorded_at IS 'When the engine recorded it.';
COMMENT ON COLUMN read_model.loan_timeline.actor_id IS 'Who sent the command (employee or service id).';
COMMENT ON COLUMN read_model.loan_timeline.summary IS 'One-line human-readable description.';
COMMENT ON COLUMN read_model.loan_timeline.details IS 'The event''s own fields as stored (loan events carry no sensitive data).';

CREATE TABLE read_model.decisions (
    loan_id           uuid   NOT NULL,
    decided_on        date   NOT NULL,
    rule_set_version  text,
    outcome           text   NOT NULL,
    reasons           jsonb  NOT NULL,
    position          bigint NOT NULL,
    decided_by        text   NOT NULL,
    actor_id          text   NOT NULL,
    PRIMARY KEY (loan_id, position)
);
COMMENT ON TABLE read_model.decisions IS 'Credit decisions and their reasons: automated policy runs and underwriters'' approvals or rejections (group portfolio).';
COMMENT ON COLUMN read_model.decisions.loan_id IS 'Loan decided.';
COMMENT ON COLUMN read_model.decisions.decided_on IS 'Business date of the decision.';
COMMENT ON COLUMN read_model.decisions.rule_set_version IS 'Decision policy version (automated decisions); NULL for an underwriter.';
COMMENT ON COLUMN read_model.decisions.outcome IS 'approve, reject or refer.';
COMMENT ON COLUMN read_model.decisions.reasons IS 'Array of rule findings {rule, passed, detail}; for an underwriter''s rejection each reason as {rule: "underwriter", passed: false, detail}.';
COMMENT ON COLUMN read_model.decisions.position IS 'Stream sequence of the commit holding the decision.';
COMMENT ON COLUMN read_model.decisions.decided_by IS 'policy or underwriter.';
COMMENT ON COLUMN read_model.decisions.actor_id IS 'Who sent the command (service id for the policy).';

-- ---------------------------------------------------------------------------------------
-- delinquency group
-- ---------------------------------------------------------------------------------------

CREATE TABLE read_model.installments (
    loan_id          uuid          NOT NULL,
    installment_no   integer       NOT NULL,
    due_date         date          NOT NULL,
    principal_due    numeric(20,2) NOT NULL,
    interest_due     numeric(20,2) NOT NULL,
    principal_paid   numeric(20,2) NOT NULL,
    interest_paid    numeric(20,2) NOT NULL,
    penalty_accrued  numeric(20,2) NOT NULL,
    penalty_paid     numeric(20,2) NOT NULL,
    settled_on       date,
    stale            boolean       NOT NULL DEFAULT false,
    stale_reason     text,
    PRIMARY KEY (loan_id, installment_no)
);
CREATE INDEX installments_due_date ON read_model.installments (due_date);
COMMENT ON TABLE read_model.installments IS 'Installment-level schedule and position of every disbursed loan, for days past due and aging as of any date (group delinquency).';
COMMENT ON COLUMN read_model.installments.loan_id IS 'Loan.';
COMMENT ON COLUMN read_model.installments.installment_no IS 'Installment number, 1-based.';
COMMENT ON COLUMN read_model.installments.due_date IS 'Due date.';
COMMENT ON COLUMN read_model.installments.principal_due IS 'Principal part of the installment.';
COMMENT ON COLUMN read_model.installments.interest_due IS 'Interest part of the installment.';
COMMENT ON COLUMN read_model.installments.principal_paid IS 'Principal paid on it (current position, as of the loan''s position date).';
COMMENT ON COLUMN read_model.installments.interest_paid IS 'Interest paid on it (current position).';
COMMENT ON COLUMN read_model.installments.penalty_accrued IS 'Penalty accrued on it (current position).';
COMMENT ON COLUMN read_model.installments.penalty_paid IS 'Penalty paid on it (current position).';
COMMENT ON COLUMN read_model.installments.settled_on IS 'First payment value date on which the installment was fully paid (principal, interest and accrued penalty, by the domain''s fully_paid), as now known (backdated payments and reversals included); NULL if not fully paid.';
COMMENT ON COLUMN read_model.installments.stale IS 'True while the loan is quarantined by the delinquency projection (see projection.quarantine).';
COMMENT ON COLUMN read_model.installments.stale_reason IS 'Why the rows are stale.';

CREATE TABLE read_model.allocations (
    loan_id            uuid          NOT NULL,
    payment_reference  text          NOT NULL,
    value_date         date          NOT NULL,
    installment_no     integer       NOT NULL,
    principal          numeric(20,2) NOT NULL,
    interest           numeric(20,2) NOT NULL,
    penalty            numeric(20,2) NOT NULL,
    PRIMARY KEY (loan_id, payment_reference, installment_no)
);
CREATE INDEX allocations_value_date ON read_model.allocations (loan_id, value_date);
COMMENT ON TABLE read_model.allocations IS 'How every counted payment is split over installments, as now known: recomputed for the whole loan on every money event (a backdated payment or a reversal restates later allocations) (group delinquency).';
COMMENT ON COLUMN read_model.allocations.loan_id IS 'Loan.';
COMMENT ON COLUMN read_model.allocations.payment_reference IS 'Payment reference.';
COMMENT ON COLUMN read_model.allocations.value_date IS 'Value date of the payment.';
COMMENT ON COLUMN read_model.allocations.installment_no IS 'Installment the part went to.';
COMMENT ON COLUMN read_model.allocations.principal IS 'Principal paid on that installment by this payment.';
COMMENT ON COLUMN read_model.allocations.interest IS 'Interest paid on that installment by this payment.';
COMMENT ON COLUMN read_model.allocations.penalty IS 'Penalty paid on that installment by this payment.';

-- ---------------------------------------------------------------------------------------
-- not owned by a group (kept across rebuilds)
-- ---------------------------------------------------------------------------------------

CREATE TABLE read_model.delinquency_snapshots (
    snapshot_date          date          NOT NULL,
    loan_id                uuid          NOT NULL,
    days_past_due          integer       NOT NULL,
    aging_bucket           text          NOT NULL,
    outstanding_principal  numeric(20,2) NOT NULL,
    overdue_amount         numeric(20,2) NOT NULL,
    PRIMARY KEY (snapshot_date, loan_id)
);
COMMENT ON TABLE read_model.delinquency_snapshots IS 'Daily delinquency snapshots, written on request or by the sweep from installments and allocations with the as-of rules; kept across rebuilds.';
COMMENT ON COLUMN read_model.delinquency_snapshots.snapshot_date IS 'Report date D of the snapshot.';
COMMENT ON COLUMN read_model.delinquency_snapshots.loan_id IS 'Loan on book at D.';
COMMENT ON COLUMN read_model.delinquency_snapshots.days_past_due IS 'Days past due at D.';
COMMENT ON COLUMN read_model.delinquency_snapshots.aging_bucket IS 'Aging bucket at D (current, dpd_1_to_30, dpd_31_to_60, dpd_61_to_90, dpd_90_plus).';
COMMENT ON COLUMN read_model.delinquency_snapshots.outstanding_principal IS 'Outstanding principal at D.';
COMMENT ON COLUMN read_model.delinquency_snapshots.overdue_amount IS 'Principal and interest due before D and unpaid at D.';
