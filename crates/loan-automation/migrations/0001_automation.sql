-- The automation worker's own state: progress, and the outbox of every action it decided.
-- Written by loan-automation only; the read models (schema read_model) are never touched.

CREATE SCHEMA IF NOT EXISTS automation;
COMMENT ON SCHEMA automation IS 'Automation rules (process managers): worker progress and the outbox of actions with their reasons. Written by loan-automation only.';

CREATE TABLE automation.workers (
    worker            text        PRIMARY KEY,
    last_sequence     bigint      NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    swept_through_on  date,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE automation.workers IS 'One row per automation worker: how far it has read the event stream and which calendar days its rules have run for. Moves in the same transaction as the actions those inputs caused.';
COMMENT ON COLUMN automation.workers.worker IS 'Worker name (also its durable JetStream consumer: automation-<worker>).';
COMMENT ON COLUMN automation.workers.last_sequence IS 'Stream sequence (log position) of the last commit folded into the rules'' state; 0 before the first.';
COMMENT ON COLUMN automation.workers.swept_through_on IS 'Last calendar day the day rules ran for; the next run covers every day after it up to today, in order. NULL before the first run (the worker then starts at --start-date or today).';
COMMENT ON COLUMN automation.workers.updated_at IS 'When the row last moved.';

CREATE TABLE automation.actions (
    action_id       uuid        PRIMARY KEY,
    dispatch_order  bigserial   NOT NULL UNIQUE,
    rule            text        NOT NULL,
    business_on     date        NOT NULL,
    loan_id         uuid        NOT NULL,
    effect          text        NOT NULL CHECK (effect IN ('command', 'notification')),
    name            text        NOT NULL,
    reason          text        NOT NULL,
    correlation_id  uuid        NOT NULL,
    body            jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 0,
    completed_at    timestamptz,
    outcome         text,
    last_error      text
);
COMMENT ON TABLE automation.actions IS 'The outbox: every action a rule decided, with why. Inserted once (the id is deterministic; a repeat is ignored), in the same transaction as the worker progress that caused it; sent afterwards and marked completed. Pending rows are resent with the same id after a crash.';
COMMENT ON COLUMN automation.actions.action_id IS 'UUID v5 of rule and subject (loan and date, or loan and installment): the command_id of a command, the id and Nats-Msg-Id of a notification.';
COMMENT ON COLUMN automation.actions.dispatch_order IS 'Order in which actions were decided, and are sent.';
COMMENT ON COLUMN automation.actions.rule IS 'delinquency_sweep, due_reminder or follow_up_watch.';
COMMENT ON COLUMN automation.actions.business_on IS 'The business day the rule fired for.';
COMMENT ON COLUMN automation.actions.loan_id IS 'The loan the action is about.';
COMMENT ON COLUMN automation.actions.effect IS 'command (sent to the command service) or notification (published on <prefix>.notify.<kind>).';
COMMENT ON COLUMN automation.actions.name IS 'The command name (evaluate_delinquency) or the notification kind (due_reminder, follow_up_overdue).';
COMMENT ON COLUMN automation.actions.reason IS 'Why the rule fired, with the figures it used.';
COMMENT ON COLUMN automation.actions.correlation_id IS 'The command''s correlation_id: the same for every action of one rule on one day.';
COMMENT ON COLUMN automation.actions.body IS 'The command payload, or the notification body as published.';
COMMENT ON COLUMN automation.actions.recorded_at IS 'When the action was decided.';
COMMENT ON COLUMN automation.actions.attempts IS 'Send attempts so far.';
COMMENT ON COLUMN automation.actions.completed_at IS 'When the command service answered or the notification stream acknowledged; NULL while pending.';
COMMENT ON COLUMN automation.actions.outcome IS 'ok, published, or the error code of a refused command (refusals are final: the loan moved on, e.g. it was paid off).';
COMMENT ON COLUMN automation.actions.last_error IS 'Last transient failure (no reply, unavailable); the action stays pending and is retried with the same id.';

CREATE INDEX actions_pending ON automation.actions (dispatch_order) WHERE completed_at IS NULL;
CREATE INDEX actions_by_loan ON automation.actions (loan_id, business_on);
