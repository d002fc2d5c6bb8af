-- FormRelay schema, migration 2: worker heartbeats.
-- One row per running worker process (`formrelay worker` / `run`), id
-- "host:pid". A worker writes last_seen when it starts and then every few
-- seconds, and deletes its row when it stops cleanly; rows not seen for a day
-- are pruned. Times are UTC (UTC_TIMESTAMP), DATETIME(3).

CREATE TABLE IF NOT EXISTS {prefix}formrelay_workers (
  id VARCHAR(100) NOT NULL,
  host VARCHAR(100) NOT NULL,
  pid INT UNSIGNED NOT NULL,
  version VARCHAR(32) NOT NULL,
  worker_type VARCHAR(12) NOT NULL,
  threads SMALLINT UNSIGNED NOT NULL,
  started_at DATETIME(3) NOT NULL,
  last_seen DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  KEY last_seen (last_seen)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
