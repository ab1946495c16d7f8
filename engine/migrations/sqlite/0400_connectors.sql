-- Connectors: each tenant's connector settings (JSON, checked by seing-connectors) and what
-- was sent for each connector step, so that returns can be matched and a re-delivered job
-- never sends twice.
CREATE TABLE connector_settings (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    settings TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE connector_transmissions (
    dossier_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    -- actes | helios | archive
    kind TEXT NOT NULL,
    -- s2low | drop_folder
    transport TEXT NOT NULL,
    -- the transport's reference: S²LOW transaction number, deposited file name
    reference TEXT NOT NULL,
    -- what returns are matched on: numéro interne, PES file name, SEDA message identifier
    match_key TEXT NOT NULL,
    -- sent | acknowledged | refused | accepted | rejected
    state TEXT NOT NULL,
    detail TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (dossier_id, step)
);

CREATE INDEX connector_transmissions_state ON connector_transmissions (state, tenant_id);
