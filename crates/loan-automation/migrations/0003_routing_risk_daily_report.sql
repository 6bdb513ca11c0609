-- Issue 7: lead routing, risk alerts and the daily report record their actions in the same
-- outbox; a segment alert or a day's report is about no single loan.
ALTER TABLE automation.actions ALTER COLUMN loan_id DROP NOT NULL;
COMMENT ON COLUMN automation.actions.rule IS 'delinquency_sweep, due_reminder, follow_up_watch, collections, lead_routing, risk_alerts or daily_report.';
COMMENT ON COLUMN automation.actions.name IS 'The command name (evaluate_delinquency, open_collection_case, resolve_collection_case, assign_officer) or the notification kind (due_reminder, follow_up_overdue, lead_unrouted, risk_alert, credit_score_drop, daily_report).';
COMMENT ON COLUMN automation.actions.loan_id IS 'The loan the action is about (for collections: the loan of the case; for lead routing: the lead); NULL for a segment''s risk alert, a customer''s credit score drop and a daily report.';

CREATE INDEX actions_by_rule ON automation.actions (rule, business_on);

CREATE TABLE automation.daily_reports (
    business_on            date          PRIMARY KEY,
    new_leads              bigint        NOT NULL CHECK (new_leads >= 0),
    approvals              bigint        NOT NULL CHECK (approvals >= 0),
    disbursed_amount       numeric(20,2) NOT NULL,
    repaid_amount          numeric(20,2) NOT NULL,
    newly_overdue          bigint        NOT NULL CHECK (newly_overdue >= 0),
    active_loans           bigint        NOT NULL CHECK (active_loans >= 0),
    outstanding_principal  numeric(20,2) NOT NULL,
    par30_principal        numeric(20,2) NOT NULL,
    par30                  numeric(9,4)  NOT NULL,
    notification_id        uuid          NOT NULL UNIQUE,
    reason                 text          NOT NULL,
    recorded_at            timestamptz   NOT NULL DEFAULT now()
);
COMMENT ON TABLE automation.daily_reports IS 'The daily report read model: one row per business date, written in the same transaction as the daily_report notification that publishes it (the first report of a date stands; never updated).';
COMMENT ON COLUMN automation.daily_reports.business_on IS 'The business day reported on (the lender''s time zone).';
COMMENT ON COLUMN automation.daily_reports.new_leads IS 'lead_captured events recorded on the day.';
COMMENT ON COLUMN automation.daily_reports.approvals IS 'application_approved events recorded on the day (underwriter or policy).';
COMMENT ON COLUMN automation.daily_reports.disbursed_amount IS 'Principal of the loan_disbursed events recorded on the day.';
COMMENT ON COLUMN automation.daily_reports.repaid_amount IS 'Amounts of the repayment_recorded events recorded on the day, gross of reversals.';
COMMENT ON COLUMN automation.daily_reports.newly_overdue IS 'Loans with a loan_status_changed to overdue recorded on the day.';
COMMENT ON COLUMN automation.daily_reports.active_loans IS 'Loans in servicing at the end of the day (disbursed on or before it, not fully paid, not written off).';
COMMENT ON COLUMN automation.daily_reports.outstanding_principal IS 'Outstanding principal of those loans as of the day (payments value-dated on or before it).';
COMMENT ON COLUMN automation.daily_reports.par30_principal IS 'Outstanding principal of those loans more than 30 days past due on the day.';
COMMENT ON COLUMN automation.daily_reports.par30 IS 'par30_principal / outstanding_principal, half-up to 4 decimals; 0 on an empty book.';
COMMENT ON COLUMN automation.daily_reports.notification_id IS 'Id of the daily_report notification (and its Nats-Msg-Id): UUID v5 of the date.';
COMMENT ON COLUMN automation.daily_reports.reason IS 'The report in words, as in the notification.';
COMMENT ON COLUMN automation.daily_reports.recorded_at IS 'When the report was made.';
