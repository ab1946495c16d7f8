-- Webhook subscriptions of a tenant (PostgreSQL; same types and bytewise text as SQLite). The
-- secret is the HMAC-SHA256 key of the deliveries: the sender needs it in clear, so it is stored
-- as given (shown to the administrator only once). `events` is a JSON array of event names; an
-- empty array takes every event.
CREATE TABLE webhooks (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants(id),
    url TEXT COLLATE "C" NOT NULL,
    events TEXT COLLATE "C" NOT NULL,
    secret TEXT COLLATE "C" NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, active);
