-- The collections rule records its commands in the same outbox.
COMMENT ON COLUMN automation.actions.rule IS 'delinquency_sweep, due_reminder, follow_up_watch or collections.';
COMMENT ON COLUMN automation.actions.name IS 'The command name (evaluate_delinquency, open_collection_case, resolve_collection_case) or the notification kind (due_reminder, follow_up_overdue).';
COMMENT ON COLUMN automation.actions.loan_id IS 'The loan the action is about (for the collections rule: the loan of the case).';
