-- Signing (PostgreSQL, same types and bytewise text as SQLite): each tenant's trust store (CA certificates and CRLs, PEM), the server-held keys
-- (PKCS#11 URIs without any PIN) and the two-phase signature batches with their prepared states.
CREATE TABLE trust_anchors (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    kind TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    pem TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX trust_anchors_tenant ON trust_anchors (tenant_id);

CREATE TABLE server_keys (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    label TEXT COLLATE "C" NOT NULL,
    uri TEXT COLLATE "C" NOT NULL,
    usage TEXT COLLATE "C" NOT NULL,
    owner_id TEXT COLLATE "C" REFERENCES users(id),
    chain_pem TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (tenant_id, label)
);

-- `entries` holds, per dossier, the serialized prepare state and the digests to sign.
CREATE TABLE signature_batches (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    chain TEXT COLLATE "C" NOT NULL,
    entries TEXT COLLATE "C" NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    expires_at TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX signature_batches_expiry ON signature_batches (expires_at);
