-- FormRelay schema, migration 6: how often each worker beats.
-- beat_seconds: the worker's heartbeat interval (FORMRELAY_HEARTBEAT_SECONDS).
-- The sweep releases the leases of a worker not seen for 2 beats plus a
-- margin (sidecar/store/workers.py), each worker judged by its own interval.
-- 0 (rows of workers older than this migration): never judged gone.

ALTER TABLE {prefix}formrelay_workers
  ADD COLUMN beat_seconds SMALLINT UNSIGNED NOT NULL DEFAULT 0 AFTER threads;
