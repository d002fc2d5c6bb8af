-- FormRelay schema, migration 11: sealed submissions (issue 16, README "Sealed submissions").
-- jobs.seal_key: the id of the key the snapshot is sealed to (the first 16 hex
-- characters of the SHA-256 of the X25519 public key); the snapshot is then the
-- base64 of a libsodium sealed box holding the JSON the bridge would have stored.
-- NULL: the snapshot is plain JSON (sealing off), or there is none.
-- documents.seal_key: the same for a document's place; `path` then holds the
-- base64 sealed box of {"name": original name, "path": path} and original_name
-- is '' (a file name is a value, and WPForms' stored name holds it).
-- Retention's purge removes the ciphertext and its key id together, so the
-- seal_key index holds only rows that still need their key: `formrelay doctor`
-- lists those ids and `formrelay keys reseal` finds what to re-encrypt with it.

ALTER TABLE {prefix}formrelay_jobs
  ADD COLUMN seal_key VARCHAR(16) NULL AFTER snapshot,
  ADD KEY seal_key (seal_key);

ALTER TABLE {prefix}formrelay_documents
  ADD COLUMN seal_key VARCHAR(16) NULL AFTER path,
  ADD KEY seal_key (seal_key);
