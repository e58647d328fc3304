-- Webhook endpoints and the durable delivery queue. A delivery row is written in the same
-- transaction as the event it carries (one per subscribed, enabled endpoint), so an event is
-- never lost between "recorded" and "queued". The endpoint secret is kept as given: it is needed
-- to sign (WorkOS shows it in the dashboard too).

CREATE TABLE webhook_endpoints (
    id           TEXT PRIMARY KEY,
    endpoint_url TEXT NOT NULL,
    secret       TEXT NOT NULL,
    status       TEXT NOT NULL,
    events       TEXT NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at, id);
CREATE INDEX webhook_deliveries_endpoint_id ON webhook_deliveries (endpoint_id, id);
