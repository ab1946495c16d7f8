-- Connectors: each tenant's connector settings (JSON, checked by seing-connectors) and what
-- was sent for each connector step, so that returns can be matched and a re-delivered job
-- never sends twice.
CREATE TABLE connector_settings (
    tenant_id TEXT COLLATE "C" PRIMARY KEY REFERENCES tenants (id),
    settings TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE connector_transmissions (
    dossier_id TEXT COLLATE "C" NOT NULL,
    step BIGINT NOT NULL,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    -- actes | helios | archive
    kind TEXT COLLATE "C" NOT NULL,
    -- s2low | drop_folder
    transport TEXT COLLATE "C" NOT NULL,
    -- the transport's reference: S²LOW transaction number, deposited file name
    reference TEXT COLLATE "C" NOT NULL,
    -- what returns are matched on: numéro interne, PES file name, SEDA message identifier
    match_key TEXT COLLATE "C" NOT NULL,
    -- sent | acknowledged | refused | accepted | rejected
    state TEXT COLLATE "C" NOT NULL,
    detail TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (dossier_id, step)
);

CREATE INDEX connector_transmissions_state ON connector_transmissions (state, tenant_id);
