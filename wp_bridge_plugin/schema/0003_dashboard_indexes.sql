-- FormRelay schema, migration 3: indexes for the wp-admin dashboard (docs/dashboard.md).
-- The jobs list's status counts per form (form_status); its sortable columns
-- (attempts, next_attempt, updated: without them a sort reads every row);
-- failed jobs per hour for the overview's chart (failed); the jobs list's
-- error-text search (FULLTEXT last_error: word-based, as docs/dashboard.md says).
-- The FULLTEXT index is added on its own: InnoDB adds one per statement.

ALTER TABLE {prefix}formrelay_jobs
  ADD KEY form_status (form_id, status, created_at),
  ADD KEY failed (failed_at),
  ADD KEY attempts (attempts),
  ADD KEY next_attempt (next_attempt_at),
  ADD KEY updated (updated_at);

CREATE FULLTEXT INDEX last_error ON {prefix}formrelay_jobs (last_error);
