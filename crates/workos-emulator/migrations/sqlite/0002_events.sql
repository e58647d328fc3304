-- The event stream behind GET /events (and, later, webhook delivery). Ids are `event_<ULID>`
-- minted while the writer holds the lock, so id order is commit order and paging by id is a
-- primary-key range scan. The secondary indexes end in `id` for the same reason.

CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    event           TEXT NOT NULL,
    data            TEXT NOT NULL,
    organization_id TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX events_event ON events (event, id);
CREATE INDEX events_organization_id ON events (organization_id, id);
CREATE INDEX events_created_at ON events (created_at, id);
