-- The collections team's queue (group portfolio), as read_model.collection_cases in
-- PostgreSQL (crates/loan-projection/migrations/0003_collection_cases.sql), with the
-- storage types of 0001_read_model.sql. Column meanings: docs/read-models.md.

CREATE TABLE collection_cases (
    case_id                     text PRIMARY KEY,
    loan_id                     text NOT NULL,
    customer_id                 text NOT NULL,
    team                        text NOT NULL,
    status                      text NOT NULL,
    currency                    text NOT NULL,
    opened_on                   text NOT NULL,
    days_past_due_at_opening    integer NOT NULL,
    overdue_amount_at_opening   text NOT NULL,
    reason                      text NOT NULL,
    contact_attempts            integer NOT NULL,
    last_contact_on             text,
    last_contact_channel        text,
    last_contact_outcome        text,
    promises                    integer NOT NULL,
    promised_amount             text,
    promised_pay_by             text,
    resolution                  text,
    resolved_on                 text,
    version                     integer NOT NULL,
    last_position               integer NOT NULL,
    stale                       integer NOT NULL DEFAULT 0,
    stale_reason                text
) STRICT;
CREATE INDEX collection_cases_open ON collection_cases (team, opened_on) WHERE status = 'open';
CREATE INDEX collection_cases_by_loan ON collection_cases (loan_id);
