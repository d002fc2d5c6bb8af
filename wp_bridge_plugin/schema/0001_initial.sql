-- FormRelay schema, migration 1.
-- The one definition of the tables: read by the sidecar (`formrelay migrate`)
-- and by the WordPress plugin on activation. Both replace {prefix} with the
-- WordPress table prefix, split statements on a line ending in ";", and run
-- each file once, in order, under GET_LOCK('formrelay_migrate'), recording
-- the file's number as `schema_version` in {prefix}formrelay_meta.
-- Times are UTC (written with UTC_TIMESTAMP), DATETIME(3).

CREATE TABLE IF NOT EXISTS {prefix}formrelay_meta (
  name VARCHAR(64) NOT NULL,
  value TEXT NOT NULL,
  updated_at DATETIME(3) NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS {prefix}formrelay_jobs (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  reference VARCHAR(191) NOT NULL,
  source VARCHAR(20) NOT NULL DEFAULT 'wpforms',
  form_id BIGINT UNSIGNED NOT NULL,
  entry_id BIGINT UNSIGNED NOT NULL DEFAULT 0,
  snapshot LONGTEXT NULL,
  status VARCHAR(12) NOT NULL DEFAULT 'pending',
  phase VARCHAR(12) NOT NULL DEFAULT 'record',
  priority SMALLINT NOT NULL DEFAULT 10,
  attempts SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  max_attempts SMALLINT UNSIGNED NOT NULL DEFAULT 10,
  next_attempt_at DATETIME(3) NULL,
  lease_owner VARCHAR(100) NULL,
  lease_expires_at DATETIME(3) NULL,
  partner_record_id VARCHAR(191) NULL,
  key_generation INT UNSIGNED NOT NULL DEFAULT 1,
  last_error TEXT NULL,
  created_at DATETIME(3) NOT NULL,
  started_at DATETIME(3) NULL,
  completed_at DATETIME(3) NULL,
  failed_at DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL,
  -- Non-NULL only while the job waits to be claimed, so the claim index holds
  -- just the queue: claiming reads it in order and never touches history.
  due_priority SMALLINT GENERATED ALWAYS AS (CASE WHEN status IN ('pending', 'retrying') THEN priority END) VIRTUAL,
  PRIMARY KEY (id),
  UNIQUE KEY reference (reference),
  KEY claim (due_priority, id, next_attempt_at),
  KEY lease (status, lease_expires_at),
  KEY status_created (status, created_at),
  KEY form_created (form_id, created_at),
  KEY entry (entry_id),
  KEY partner_record (partner_record_id),
  KEY completed (completed_at),
  KEY created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS {prefix}formrelay_documents (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  job_id BIGINT UNSIGNED NOT NULL,
  field_id VARCHAR(32) NOT NULL,
  position SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  original_name VARCHAR(255) NOT NULL DEFAULT '',
  path TEXT NOT NULL,
  size BIGINT UNSIGNED NULL,
  detected_type VARCHAR(127) NULL,
  sha256 CHAR(64) NULL,
  status VARCHAR(12) NOT NULL DEFAULT 'pending',
  attempts SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  max_attempts SMALLINT UNSIGNED NOT NULL DEFAULT 10,
  next_attempt_at DATETIME(3) NULL,
  lease_owner VARCHAR(100) NULL,
  lease_expires_at DATETIME(3) NULL,
  partner_document_id VARCHAR(191) NULL,
  last_error TEXT NULL,
  created_at DATETIME(3) NOT NULL,
  uploaded_at DATETIME(3) NULL,
  updated_at DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY job_file (job_id, field_id, position),
  KEY due (status, next_attempt_at),
  KEY lease (status, lease_expires_at),
  CONSTRAINT {prefix}formrelay_documents_job FOREIGN KEY (job_id)
    REFERENCES {prefix}formrelay_jobs (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS {prefix}formrelay_log (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  job_id BIGINT UNSIGNED NULL,
  document_id BIGINT UNSIGNED NULL,
  level VARCHAR(8) NOT NULL DEFAULT 'info',
  event VARCHAR(64) NOT NULL,
  message TEXT NOT NULL,
  attempt SMALLINT UNSIGNED NULL,
  http_status SMALLINT UNSIGNED NULL,
  duration_ms INT UNSIGNED NULL,
  actor VARCHAR(60) NULL,
  created_at DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY job (job_id, id),
  KEY document (document_id),
  KEY created (created_at),
  KEY level_created (level, created_at),
  KEY event_created (event, created_at),
  FULLTEXT KEY message (message),
  CONSTRAINT {prefix}formrelay_log_job FOREIGN KEY (job_id)
    REFERENCES {prefix}formrelay_jobs (id) ON DELETE CASCADE,
  -- A restart deletes its job's document rows; their log rows stay with the job.
  CONSTRAINT {prefix}formrelay_log_document FOREIGN KEY (document_id)
    REFERENCES {prefix}formrelay_documents (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
