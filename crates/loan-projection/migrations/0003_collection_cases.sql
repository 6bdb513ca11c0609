-- The collections team's queue: one row per collection case (group portfolio), rewritten
-- whole from the case's events (aggregate collection_case) on every change.

CREATE TABLE read_model.collection_cases (
    case_id                     uuid          PRIMARY KEY,
    loan_id                     uuid          NOT NULL,
    customer_id                 uuid          NOT NULL,
    team                        text          NOT NULL,
    status                      text          NOT NULL,
    currency                    text          NOT NULL,
    opened_on                   date          NOT NULL,
    days_past_due_at_opening    integer       NOT NULL,
    overdue_amount_at_opening   numeric(20,2) NOT NULL,
    reason                      text          NOT NULL,
    contact_attempts            integer       NOT NULL,
    last_contact_on             date,
    last_contact_channel        text,
    last_contact_outcome        text,
    promises                    integer       NOT NULL,
    promised_amount             numeric(20,2),
    promised_pay_by             date,
    resolution                  text,
    resolved_on                 date,
    version                     bigint        NOT NULL,
    last_position               bigint        NOT NULL,
    stale                       boolean       NOT NULL DEFAULT false,
    stale_reason                text
);
CREATE INDEX collection_cases_open ON read_model.collection_cases (team, opened_on) WHERE status = 'open';
CREATE INDEX collection_cases_by_loan ON read_model.collection_cases (loan_id);
COMMENT ON TABLE read_model.collection_cases IS 'Collection cases: the collections team''s queue (open cases) and the record of resolved ones; one row per case, rewritten whole on each change (group portfolio).';
COMMENT ON COLUMN read_model.collection_cases.case_id IS 'Collection case id (aggregate collection_case).';
COMMENT ON COLUMN read_model.collection_cases.loan_id IS 'The loan in arrears the case is about.';
COMMENT ON COLUMN read_model.collection_cases.customer_id IS 'The loan''s customer.';
COMMENT ON COLUMN read_model.collection_cases.team IS 'Team the case is assigned to (e.g. collections).';
COMMENT ON COLUMN read_model.collection_cases.status IS 'open or resolved.';
COMMENT ON COLUMN read_model.collection_cases.currency IS 'ISO 4217 code of the loan (amounts of this row).';
COMMENT ON COLUMN read_model.collection_cases.opened_on IS 'Business date the case was opened.';
COMMENT ON COLUMN read_model.collection_cases.days_past_due_at_opening IS 'Days past due of the loan on opened_on.';
COMMENT ON COLUMN read_model.collection_cases.overdue_amount_at_opening IS 'Arrears on opened_on: unpaid principal, interest and penalty of installments due before that day.';
COMMENT ON COLUMN read_model.collection_cases.reason IS 'Why the case was opened, with the figures used.';
COMMENT ON COLUMN read_model.collection_cases.contact_attempts IS 'Contact attempts recorded so far.';
COMMENT ON COLUMN read_model.collection_cases.last_contact_on IS 'Date of the latest contact attempt (by attempt date); NULL if none.';
COMMENT ON COLUMN read_model.collection_cases.last_contact_channel IS 'Channel of that attempt: phone, sms, email, letter or visit.';
COMMENT ON COLUMN read_model.collection_cases.last_contact_outcome IS 'Outcome of that attempt: reached, no_answer, left_message, wrong_number or refused.';
COMMENT ON COLUMN read_model.collection_cases.promises IS 'Promises to pay recorded so far.';
COMMENT ON COLUMN read_model.collection_cases.promised_amount IS 'Amount of the latest promise to pay (recording order); NULL if none.';
COMMENT ON COLUMN read_model.collection_cases.promised_pay_by IS 'Date the latest promise falls due; NULL if none.';
COMMENT ON COLUMN read_model.collection_cases.resolution IS 'cured, paid_off or written_off once resolved; NULL while open.';
COMMENT ON COLUMN read_model.collection_cases.resolved_on IS 'Business date the case was resolved; NULL while open.';
COMMENT ON COLUMN read_model.collection_cases.version IS 'Case version (events applied).';
COMMENT ON COLUMN read_model.collection_cases.last_position IS 'Stream sequence of the last commit applied.';
COMMENT ON COLUMN read_model.collection_cases.stale IS 'True while the case is quarantined by the portfolio projection (see projection.quarantine).';
COMMENT ON COLUMN read_model.collection_cases.stale_reason IS 'Why the row is stale: position, event type and reason of the commit that could not be applied.';

COMMENT ON COLUMN projection.quarantine.aggregate_type IS 'customer, loan or collection_case.';
