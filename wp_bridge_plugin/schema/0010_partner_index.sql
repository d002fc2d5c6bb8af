-- FormRelay schema, migration 10: the dashboard's partner filter (docs/dashboard.md).
-- The jobs list filters on `partner` (the default partner's filter also takes '',
-- the jobs not yet claimed) and counts the filtered jobs per status: without an
-- index both read every row of the jobs table (wide: the snapshot is inline).
-- partner_status (partner, status, created_at) mirrors form_status (migration 3):
-- a partner's status counts read its range of the index alone, and its status
-- views read it in creation order. partner (partner, and InnoDB's id after it):
-- a partner's jobs newest first, the list's default order, without a sort, so
-- LIMIT stops at the page. Neither changes at capture's cost beyond an index
-- entry; `partner` changes once, at the first claim.

ALTER TABLE {prefix}formrelay_jobs
  ADD KEY partner_status (partner, status, created_at),
  ADD KEY partner (partner);
