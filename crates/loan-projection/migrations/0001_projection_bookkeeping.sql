-- Projector bookkeeping: checkpoints, quarantined aggregates, dead letters, rebuilds.
-- Schema `projection` is never renamed (a rebuild renames `read_model` only).

CREATE SCHEMA IF NOT EXISTS projection;
COMMENT ON SCHEMA projection IS 'Projector bookkeeping (checkpoints, quarantine, dead letters, rebuilds). Written by loan-projection only.';

CREATE TABLE projection.checkpoints (
    projection      text        PRIMARY KEY,
    last_sequence   bigint      NOT NULL DEFAULT 0 CHECK (last_sequence >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    last_error_at   timestamptz,
    generation      bigint      NOT NULL DEFAULT 0,
    schema_name     text        NOT NULL DEFAULT 'read_model'
);
COMMENT ON TABLE projection.checkpoints IS 'One row per projection (group, or a rebuild in progress): the last stream sequence whose effect is in the read model. Updated in the same transaction as the rows of each batch.';
COMMENT ON COLUMN projection.checkpoints.projection IS 'Projection name: a group (portfolio, delinquency) or a rebuild in progress (<group>@rebuild_<n>).';
COMMENT ON COLUMN projection.checkpoints.last_sequence IS 'Stream sequence (log position) of the last commit applied; 0 before the first. Messages at or below it are skipped on redelivery.';
COMMENT ON COLUMN projection.checkpoints.updated_at IS 'When the checkpoint last moved (commit time of the batch).';
COMMENT ON COLUMN projection.checkpoints.last_error IS 'Last failure of this projection (a batch that could not be written, a quarantined aggregate); NULL after a clean batch following it.';
COMMENT ON COLUMN projection.checkpoints.last_error_at IS 'When last_error was recorded.';
COMMENT ON COLUMN projection.checkpoints.generation IS 'Incremented when the tables behind this checkpoint are replaced (rebuild switch-over); a running projector that sees another generation drops its in-memory state and resumes from last_sequence.';
COMMENT ON COLUMN projection.checkpoints.schema_name IS 'Schema holding this projection''s tables: read_model for a live group, read_model_rebuild_<n> for a rebuild in progress.';

CREATE TABLE projection.quarantine (
    projection      text        NOT NULL,
    aggregate_type  text        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    position        bigint      NOT NULL,
    event_type      text,
    reason          text        NOT NULL,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, aggregate_type, aggregate_id)
);
COMMENT ON TABLE projection.quarantine IS 'Aggregates a projection could not apply (poisoned): their rows are flagged stale and every later commit of theirs is dead-lettered until replay_aggregate applies them again.';
COMMENT ON COLUMN projection.quarantine.projection IS 'Projection that quarantined the aggregate.';
COMMENT ON COLUMN projection.quarantine.aggregate_type IS 'customer or loan.';
COMMENT ON COLUMN projection.quarantine.aggregate_id IS 'Id of the quarantined aggregate.';
COMMENT ON COLUMN projection.quarantine.position IS 'Stream sequence of the first commit that could not be applied.';
COMMENT ON COLUMN projection.quarantine.event_type IS 'Event type of that commit''s offending event, when it could be read.';
COMMENT ON COLUMN projection.quarantine.reason IS 'Why it could not be applied (decode failure, unknown or newer event type, inconsistent state).';
COMMENT ON COLUMN projection.quarantine.quarantined_at IS 'When the aggregate was quarantined.';

CREATE TABLE projection.dead_letters (
    projection      text        NOT NULL,
    position        bigint      NOT NULL,
    subject         text        NOT NULL,
    aggregate_type  text,
    aggregate_id    uuid,
    event_type      text,
    reason          text        NOT NULL,
    payload         jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    PRIMARY KEY (projection, position)
);
COMMENT ON TABLE projection.dead_letters IS 'Commits a projection did not apply: the poisoned commit and every later commit of a quarantined aggregate. Never silently skipped.';
COMMENT ON COLUMN projection.dead_letters.projection IS 'Projection that did not apply the commit.';
COMMENT ON COLUMN projection.dead_letters.position IS 'Stream sequence of the commit.';
COMMENT ON COLUMN projection.dead_letters.subject IS 'NATS subject of the message (<prefix>.events.<aggregate>.<id>).';
COMMENT ON COLUMN projection.dead_letters.aggregate_type IS 'Aggregate type from the subject (NULL when the subject does not name one).';
COMMENT ON COLUMN projection.dead_letters.aggregate_id IS 'Aggregate id from the subject (NULL when the subject does not name one).';
COMMENT ON COLUMN projection.dead_letters.event_type IS 'Event type of the offending event, when it could be read.';
COMMENT ON COLUMN projection.dead_letters.reason IS 'Why the commit was not applied.';
COMMENT ON COLUMN projection.dead_letters.payload IS 'The message as stored (the commit JSON; sensitive fields stay encrypted), or {"unparsed": <text>} when it is not JSON.';
COMMENT ON COLUMN projection.dead_letters.recorded_at IS 'When it was dead-lettered.';
COMMENT ON COLUMN projection.dead_letters.resolved_at IS 'When a replay of the aggregate applied it; NULL while unresolved.';

CREATE SEQUENCE projection.rebuild_number;
COMMENT ON SEQUENCE projection.rebuild_number IS 'Numbers rebuilds: a rebuild writes into schema read_model_rebuild_<n>.';

CREATE TABLE projection.rebuilds (
    rebuild_number  bigint      PRIMARY KEY,
    projection      text        NOT NULL,
    schema_name     text        NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    last_sequence   bigint,
    outcome         text
);
COMMENT ON TABLE projection.rebuilds IS 'History of rebuilds: which group, into which schema, how far, and whether it was switched in.';
COMMENT ON COLUMN projection.rebuilds.rebuild_number IS 'From projection.rebuild_number.';
COMMENT ON COLUMN projection.rebuilds.projection IS 'The group rebuilt.';
COMMENT ON COLUMN projection.rebuilds.schema_name IS 'Schema the rebuild wrote into (read_model_rebuild_<n>).';
COMMENT ON COLUMN projection.rebuilds.started_at IS 'When the rebuild started.';
COMMENT ON COLUMN projection.rebuilds.finished_at IS 'When it was switched in or abandoned.';
COMMENT ON COLUMN projection.rebuilds.last_sequence IS 'Stream sequence the rebuilt tables were at when switched in.';
COMMENT ON COLUMN projection.rebuilds.outcome IS 'switched, or failed: <reason>; NULL while running.';
