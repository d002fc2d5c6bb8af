-- FormRelay schema, migration 9: the partner each job goes to (issue 15).
-- A name from the sidecar's partners ([partners.NAME] tables; "default" for the
-- one partner of the FORMRELAY_PARTNER_* settings). The bridge writes the
-- form's chosen partner at capture, or '' when the form names none; the
-- sidecar's first claim of the job writes the default partner's name over ''.
-- From then on the job keeps its partner: a settings change does not reroute
-- work in flight. Every existing row starts at '' and so goes to the default
-- partner, as it would have before partners had names.

ALTER TABLE {prefix}formrelay_jobs ADD COLUMN partner VARCHAR(64) NOT NULL DEFAULT '' AFTER source;

-- Each document carries its job's partner too (written with it, never changed), so a
-- document's claim reads that partner's outage pause in its own statement.
ALTER TABLE {prefix}formrelay_documents ADD COLUMN partner VARCHAR(64) NOT NULL DEFAULT '' AFTER job_id;
UPDATE {prefix}formrelay_documents d JOIN {prefix}formrelay_jobs j ON j.id = d.job_id SET d.partner = j.partner WHERE j.partner <> '';

-- The label of the form field a document came from ("Referral letter": the form's
-- words, not the person's): the fhir-r4 profile titles its DocumentReference with it,
-- never with the file name, which is a value. '' for documents made before.
ALTER TABLE {prefix}formrelay_documents ADD COLUMN label VARCHAR(255) NOT NULL DEFAULT '' AFTER field_id;
