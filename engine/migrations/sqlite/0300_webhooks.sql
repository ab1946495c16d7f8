-- Webhook subscriptions of a tenant. The secret is the HMAC-SHA256 key of the deliveries: the
-- sender needs it in clear, so it is stored as given (shown to the administrator only once).
-- `events` is a JSON array of event names; an empty array takes every event.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    active BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, active);
