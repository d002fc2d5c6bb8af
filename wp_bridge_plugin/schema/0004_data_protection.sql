-- FormRelay schema, migration 4: data protection (issue 10).
-- error_category: the fixed category of the last partner answer or check
-- (validation, auth, not_found, conflict, too_large, rate_limited, server,
-- network, rejected_file, payload, ...), so a failure is searchable and
-- alertable without reading the partner's text.
-- values_dropped_at: when retention removed the job's submitted values
-- (snapshot, original file names); NULL while they are kept.
-- file_removed_at: when the sidecar removed the document's file from uploads
-- after the partner had it (FORMRELAY_DELETE_DELIVERED_FILES).
-- The keep_values index lets retention find ended jobs that still hold values
-- without reading the ones already dropped.

ALTER TABLE {prefix}formrelay_jobs
  ADD COLUMN error_category VARCHAR(20) NULL AFTER last_error,
  ADD COLUMN values_dropped_at DATETIME(3) NULL AFTER failed_at,
  ADD KEY keep_values (status, values_dropped_at, updated_at);

ALTER TABLE {prefix}formrelay_documents
  ADD COLUMN error_category VARCHAR(20) NULL AFTER last_error,
  ADD COLUMN file_removed_at DATETIME(3) NULL AFTER uploaded_at;
