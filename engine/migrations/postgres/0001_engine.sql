-- Engine schema (PostgreSQL; same types as SQLite so that one query set serves both). Ids are UUID text, times fixed-width RFC 3339 UTC text (sortable), JSON as text.
-- Every text column compares bytewise (COLLATE "C"), like SQLite, so that cursors on ids and times order the same.
CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    siren TEXT COLLATE "C" NOT NULL UNIQUE,
    departement TEXT COLLATE "C" NOT NULL,
    journal_seq BIGINT NOT NULL DEFAULT 0,
    journal_head TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE users (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    login TEXT COLLATE "C" NOT NULL,
    display_name TEXT COLLATE "C" NOT NULL,
    admin BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, login)
);

CREATE TABLE desks (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    name TEXT COLLATE "C" NOT NULL,
    parent_id TEXT COLLATE "C" REFERENCES desks(id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE desk_holders (
    desk_id TEXT COLLATE "C" NOT NULL REFERENCES desks(id),
    user_id TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    PRIMARY KEY (desk_id, user_id)
);
CREATE INDEX desk_holders_user ON desk_holders (user_id);

CREATE TABLE delegations (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    from_desk TEXT COLLATE "C" NOT NULL REFERENCES desks(id),
    to_desk TEXT COLLATE "C" NOT NULL REFERENCES desks(id),
    starts_at TEXT COLLATE "C" NOT NULL,
    ends_at TEXT COLLATE "C" NOT NULL,
    circuits TEXT COLLATE "C" NOT NULL
);
CREATE INDEX delegations_from ON delegations (tenant_id, from_desk);

CREATE TABLE circuits (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    name TEXT COLLATE "C" NOT NULL,
    template TEXT COLLATE "C" NOT NULL,
    spec TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (tenant_id, name)
);

CREATE TABLE dossiers (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    circuit_id TEXT COLLATE "C" NOT NULL REFERENCES circuits(id),
    title TEXT COLLATE "C" NOT NULL,
    emitter_desk TEXT COLLATE "C" NOT NULL REFERENCES desks(id),
    emitter_user TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    state TEXT COLLATE "C" NOT NULL,
    current_step BIGINT NOT NULL,
    steps TEXT COLLATE "C" NOT NULL,
    metadata TEXT COLLATE "C" NOT NULL,
    chosen TEXT COLLATE "C" NOT NULL,
    undo TEXT COLLATE "C",
    deadline TEXT COLLATE "C",
    version BIGINT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX dossiers_tenant ON dossiers (tenant_id, id);

-- Which desk must look at which dossier now (current step, rejected or draft back at the emitter,
-- second opinion asked). Listing a desk walks this index with a cursor on the dossier id.
CREATE TABLE inbox (
    tenant_id TEXT COLLATE "C" NOT NULL,
    desk_id TEXT COLLATE "C" NOT NULL,
    dossier_id TEXT COLLATE "C" NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    reason TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, desk_id, dossier_id)
);
CREATE INDEX inbox_dossier ON inbox (dossier_id);

CREATE TABLE documents (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    dossier_id TEXT COLLATE "C" NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    role TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    media_type TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    size BIGINT NOT NULL,
    step BIGINT,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX documents_dossier ON documents (dossier_id);

CREATE TABLE annotations (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    dossier_id TEXT COLLATE "C" NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    user_id TEXT COLLATE "C" NOT NULL,
    desk_id TEXT COLLATE "C" NOT NULL,
    visibility TEXT COLLATE "C" NOT NULL,
    body TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX annotations_dossier ON annotations (dossier_id);

CREATE TABLE opinions (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    dossier_id TEXT COLLATE "C" NOT NULL REFERENCES dossiers(id) ON DELETE CASCADE,
    asked_by TEXT COLLATE "C" NOT NULL,
    desk_id TEXT COLLATE "C" NOT NULL,
    question TEXT COLLATE "C" NOT NULL,
    answer TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL
);

-- Append-only, hash-chained per tenant; dossier_id is not a foreign key so that deleting a
-- draft keeps its history.
CREATE TABLE journal (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    seq BIGINT NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    user_id TEXT COLLATE "C",
    desk_id TEXT COLLATE "C",
    on_behalf_of TEXT COLLATE "C",
    dossier_id TEXT COLLATE "C",
    action TEXT COLLATE "C" NOT NULL,
    detail TEXT COLLATE "C" NOT NULL,
    prev_hash TEXT COLLATE "C" NOT NULL,
    hash TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX journal_dossier ON journal (dossier_id);

CREATE TABLE outbox (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL,
    dossier_id TEXT COLLATE "C",
    kind TEXT COLLATE "C" NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,
    idempotency_key TEXT COLLATE "C" NOT NULL UNIQUE,
    status TEXT COLLATE "C" NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at TEXT COLLATE "C" NOT NULL,
    last_error TEXT COLLATE "C",
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
