-- FormRelay schema, migration 7: incidents and their alert messages (issue 12).
-- An incident is a condition that needs people: delivery paused, jobs failed,
-- a backlog, no live worker, the uploads directory unreadable
-- (sidecar/incidents.py names each kind). open_key is the kind while the
-- incident is open and NULL once resolved: the unique key lets at most one
-- incident of each kind be open, so several hosts cannot open it twice.
-- summary and details (JSON) carry ids, counts, form names and categories:
-- never a submitted value. The plugin's wp-admin notices read this table.
-- The cleaner deletes incidents resolved over FORMRELAY_KEEP_COMPLETED_DAYS ago.
-- digest_seq / digest_at: the last message cut for the incident (0 = "opened")
-- and when (the database's clock); failures after digest_at go in the next digest.
-- Times are UTC (UTC_TIMESTAMP), DATETIME(3).

CREATE TABLE IF NOT EXISTS {prefix}formrelay_incidents (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  kind VARCHAR(32) NOT NULL,
  severity VARCHAR(16) NOT NULL,
  open_key VARCHAR(32) NULL,
  summary VARCHAR(255) NOT NULL,
  details LONGTEXT NOT NULL,
  opened_at DATETIME(3) NOT NULL,
  updated_at DATETIME(3) NOT NULL,
  resolved_at DATETIME(3) NULL,
  digest_seq INT UNSIGNED NOT NULL DEFAULT 0,
  digest_at DATETIME(3) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY open_key (open_key),
  KEY opened_at (opened_at),
  KEY resolved_at (resolved_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per message per channel (the outbox): "opened", each "digest" (seq
-- 1, 2, ...) and "resolved". The unique key makes each message exist once
-- whichever host writes it; a sender leases a row, sends, and marks it sent,
-- retrying with backoff, so a slow or failing channel never holds up delivery.
-- last_error: a status code or an exception class, never a response body.
-- facts (JSON): what this message says (counts, form ids and names, categories),
-- fixed when the message is cut, so a retry sends the same text.

CREATE TABLE IF NOT EXISTS {prefix}formrelay_alerts (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  incident_id BIGINT UNSIGNED NOT NULL,
  message VARCHAR(16) NOT NULL,
  seq INT UNSIGNED NOT NULL DEFAULT 0,
  channel VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL DEFAULT 'pending',
  attempts SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(3) NOT NULL,
  lease_owner VARCHAR(160) NULL,
  lease_expires_at DATETIME(3) NULL,
  sent_at DATETIME(3) NULL,
  last_error VARCHAR(255) NULL,
  facts LONGTEXT NULL,
  created_at DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY one_message (incident_id, message, seq, channel),
  KEY due (status, next_attempt_at),
  CONSTRAINT {prefix}formrelay_alerts_incident FOREIGN KEY (incident_id)
    REFERENCES {prefix}formrelay_incidents (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
