-- Engine schema. Ids are UUID text, times fixed-width RFC 3339 UTC text (sortable), JSON as text.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    siren TEXT NOT NULL UNIQUE,
    departement TEXT NOT NULL,
    journal_seq BIGINT NOT NULL DEFAULT 0,
    journal_head TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    login TEXT NOT NULL,
    display_name TEXT NOT NULL,
    admin BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, login)
);

CREATE TABLE desks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    parent_id TEXT REFERENCES desks(id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE desk_holders (
    desk_id TEXT NOT NULL REFERENCES desks(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (desk_id, user_id)
);
CREATE INDEX desk_holders_user ON desk_holders (user_id);

CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    from_desk TEXT NOT NULL REFERENCES desks(id),
    to_desk TEXT NOT NULL REFERENCES desks(id),
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    circuits TEXT NOT NULL
);
CREATE INDEX delegations_from ON delegations (tenant_id, from_desk);

CREATE TABLE circuits (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    name TEXT NOT NULL,
    template TEXT NOT NULL,
    spec TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE dossiers (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    circuit_id TEXT NOT NULL REFERENCES circuits(id),
    title TEXT NOT NULL,
    emitter_desk TEXT NOT NULL REFERENCES desks(id),
    emitter_user TEXT NOT NULL REFERENCES users(id),
    state TEXT NOT NULL,
    current_step BIGINT NOT NULL,
    steps TEXT NOT NULL,
    metadata TEXT NOT NULL,
    chosen TEXT NOT NULL,
    undo TEXT,
    deadline TEXT,
    version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX dossiers_tenant ON dossiers (tenant_id, id);

-- Which desk must look at which dossier now (current step, rejected or draft back at the emitter,
-- second opinion asked). Listing a desk walks this index with a cursor on the dossier id.
CREATE TABLE inbox (
    tenant_id TEXT NOT NULL,
    desk_id TEXT NOT NULL,
    dossier_id TEXT NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    PRIMARY KEY (tenant_id, desk_id, dossier_id)
);
CREATE INDEX inbox_dossier ON inbox (dossier_id);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    dossier_id TEXT NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    step BIGINT,
    created_at TEXT NOT NULL
);
CREATE INDEX documents_dossier ON documents (dossier_id);

CREATE TABLE annotations (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    dossier_id TEXT NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    desk_id TEXT NOT NULL,
    visibility TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX annotations_dossier ON annotations (dossier_id);

CREATE TABLE opinions (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    dossier_id TEXT NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    asked_by TEXT NOT NULL,
    desk_id TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    created_at TEXT NOT NULL
);

-- Append-only, hash-chained per tenant; dossier_id is not a foreign key so that deleting a
-- draft keeps its history.
CREATE TABLE journal (
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    at TEXT NOT NULL,
    user_id TEXT,
    desk_id TEXT,
    on_behalf_of TEXT,
    dossier_id TEXT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX journal_dossier ON journal (dossier_id);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    dossier_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
