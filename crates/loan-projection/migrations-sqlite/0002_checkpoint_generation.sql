-- A checkpoint's generation (as projection.checkpoints.generation in PostgreSQL):
-- incremented when a rebuild replaces the tables behind it, so a projector holding
-- views in memory notices the switch even when the rebuilt position equals its own,
-- drops its views and resumes from the stored checkpoint.
ALTER TABLE checkpoints ADD COLUMN generation integer NOT NULL DEFAULT 0;
