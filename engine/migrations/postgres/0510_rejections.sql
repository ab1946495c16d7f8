-- Why a rejected dossier went back to its emitter (JSON: origin, reason, step, at), so that a
-- refusal from outside shows its reasons like a desk's rejection; cleared when it is recycled.
ALTER TABLE dossiers ADD COLUMN rejection TEXT;

-- The outbox job (idempotency key) that made a send: a job delivered again finds its own send,
-- while the job of a resubmitted dossier (a new round) sends again over an earlier round's row.
ALTER TABLE connector_transmissions ADD COLUMN job_key TEXT;
