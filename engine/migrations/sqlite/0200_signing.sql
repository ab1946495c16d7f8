-- Signing: each tenant's trust store (CA certificates and CRLs, PEM), the server-held keys
-- (PKCS#11 URIs without any PIN) and the two-phase signature batches with their prepared states.
CREATE TABLE trust_anchors (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    pem TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX trust_anchors_tenant ON trust_anchors (tenant_id);

CREATE TABLE server_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    label TEXT NOT NULL,
    uri TEXT NOT NULL,
    usage TEXT NOT NULL,
    owner_id TEXT REFERENCES users(id),
    chain_pem TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (tenant_id, label)
);

-- `entries` holds, per dossier, the serialized prepare state and the digests to sign.
CREATE TABLE signature_batches (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    chain TEXT NOT NULL,
    entries TEXT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX signature_batches_expiry ON signature_batches (expires_at);
