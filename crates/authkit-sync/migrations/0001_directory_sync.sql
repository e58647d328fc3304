-- Directory Sync tables of the app. Portable SQL (TEXT, BIGINT, composite keys, ON CONFLICT)
-- so SQLite and PostgreSQL share one schema. Every table carries organization_id and every
-- query authkit-sync makes filters on it. Timestamps are the ISO-8601 strings WorkOS sent;
-- JSON columns hold serialised JSON text.

CREATE TABLE IF NOT EXISTS directories (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    directory_type  TEXT NOT NULL,
    state           TEXT NOT NULL,
    domain          TEXT,
    external_key    TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS directories_by_organization ON directories (organization_id, id);

CREATE TABLE IF NOT EXISTS directory_users (
    id                TEXT PRIMARY KEY,
    organization_id   TEXT NOT NULL,
    directory_id      TEXT NOT NULL,
    idp_id            TEXT NOT NULL,
    email             TEXT,
    first_name        TEXT,
    last_name         TEXT,
    name              TEXT,
    state             TEXT NOT NULL,
    role_slug         TEXT,
    roles             TEXT NOT NULL,
    custom_attributes TEXT NOT NULL,
    raw_attributes    TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS directory_users_by_organization ON directory_users (organization_id, id);
CREATE INDEX IF NOT EXISTS directory_users_by_directory ON directory_users (directory_id);

CREATE TABLE IF NOT EXISTS directory_groups (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    directory_id    TEXT NOT NULL,
    idp_id          TEXT NOT NULL,
    name            TEXT NOT NULL,
    raw_attributes  TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS directory_groups_by_organization ON directory_groups (organization_id, id);
CREATE INDEX IF NOT EXISTS directory_groups_by_directory ON directory_groups (directory_id);

CREATE TABLE IF NOT EXISTS directory_group_memberships (
    group_id        TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    directory_id    TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX IF NOT EXISTS directory_group_memberships_by_organization
    ON directory_group_memberships (organization_id, group_id);
CREATE INDEX IF NOT EXISTS directory_group_memberships_by_user
    ON directory_group_memberships (user_id);

-- Where the Events API stream was last read. One row per stream (name = 'events').
-- event_id NULL + range_start set: the first fetch uses range_start (after a backfill).
CREATE TABLE IF NOT EXISTS sync_cursor (
    name        TEXT PRIMARY KEY,
    event_id    TEXT,
    range_start TEXT,
    updated_at  TEXT NOT NULL
);

-- Every event id ever applied (or deliberately skipped): the exactly-once ledger. Written in
-- the same transaction as the change and the cursor.
CREATE TABLE IF NOT EXISTS applied_events (
    event_id         TEXT PRIMARY KEY,
    event_type       TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    event_created_at TEXT NOT NULL,
    applied_at       TEXT NOT NULL
);

-- Deleted objects, so a late update cannot bring a deleted row back. kind is
-- 'directory', 'user' or 'group'; scoped by organization like everything else.
CREATE TABLE IF NOT EXISTS sync_tombstones (
    kind            TEXT NOT NULL,
    id              TEXT NOT NULL,
    organization_id TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    deleted_at      TEXT NOT NULL,
    PRIMARY KEY (kind, id, organization_id)
);
