-- FormRelay schema, migration 8: job counts per form and ended status (issue 14).
-- The dashboard's status counts without COUNT(*) over the whole jobs table.
-- Only the ended statuses (completed, failed, cancelled: the history, which
-- grows without bound) are kept here; the waiting ones (pending, processing,
-- retrying: the queue) are counted live from the status indexes, which hold
-- just the queue. So capture (the plugin's INSERT of a pending job) and the
-- claim write nothing here, and a job costs one extra statement: when it ends.
-- The sidecar's state machine (sidecar/store/base.py `_next`, through
-- sidecar/store/counts.py) changes n in the same transaction as the job's
-- status, and retention's deletes subtract what they delete. No triggers:
-- shared hosting often forbids them (binary logging without SUPER: error 1419).
-- A status change adds to one of SLOTS rows chosen at random (slot), so
-- workers ending jobs of one form at once do not queue on a single row; a
-- count is the sum of its slots. `formrelay doctor` compares these rows with
-- the jobs table; sidecar/store/counts.py `recount_jobs` repairs them.

CREATE TABLE IF NOT EXISTS {prefix}formrelay_counts (
  form_id BIGINT UNSIGNED NOT NULL,
  status VARCHAR(12) NOT NULL,
  slot TINYINT UNSIGNED NOT NULL,
  n BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (form_id, status, slot)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT INTO {prefix}formrelay_counts (form_id, status, slot, n)
  SELECT form_id, status, 0, COUNT(*) FROM {prefix}formrelay_jobs
  WHERE status IN ('completed', 'failed', 'cancelled') GROUP BY form_id, status
  ON DUPLICATE KEY UPDATE n = VALUES(n);
