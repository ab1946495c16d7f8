-- Access control of the API (PostgreSQL, same types and bytewise text as SQLite): password hashes, API tokens, sessions, login attempts and
-- idempotency keys. Secrets are stored only as hashes (argon2id for passwords, SHA-256 for
-- random tokens and session ids).
CREATE TABLE credentials (
    user_id TEXT COLLATE "C" PRIMARY KEY REFERENCES users(id),
    password_hash TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

-- An operator token has neither tenant nor user; every other token acts as one user of one tenant.
CREATE TABLE api_tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" REFERENCES tenants(id),
    user_id TEXT COLLATE "C" REFERENCES users(id),
    role TEXT COLLATE "C" NOT NULL,
    label TEXT COLLATE "C" NOT NULL,
    token_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    revoked BIGINT NOT NULL DEFAULT 0,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

CREATE TABLE sessions (
    id_hash TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    csrf_token TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE login_attempts (
    attempt_key TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (attempt_key, at);

CREATE TABLE idempotency_keys (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    idem_key TEXT COLLATE "C" NOT NULL,
    request_hash TEXT COLLATE "C" NOT NULL,
    dossier_id TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
