-- FormRelay schema, migration 5: nonces of accepted signed requests (issue 11).
-- Every signed request (the bridge's notify, the dashboard's admin POSTs)
-- carries a random 128-bit nonce; the sidecar inserts SHA-256("<purpose>\n<nonce>")
-- here and refuses the request when the key is already present (a replay),
-- so every web process on every host shares one memory that survives restarts.
-- expires_at (UTC, computed by the database) is past the end of the signature's
-- timestamp window; expired rows are deleted in small batches by the sidecar.

CREATE TABLE IF NOT EXISTS {prefix}formrelay_nonces (
  nonce_key BINARY(32) NOT NULL,
  expires_at DATETIME NOT NULL,
  PRIMARY KEY (nonce_key),
  KEY expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
