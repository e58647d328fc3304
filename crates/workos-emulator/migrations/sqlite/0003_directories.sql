-- Directory Sync: directories (one SCIM endpoint each, its bearer token stored as a SHA-256),
-- their users and groups, and group membership. Everything belonging to a directory goes with
-- it (ON DELETE CASCADE), and directories go with their organization.

CREATE TABLE directories (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    type            TEXT NOT NULL,
    state           TEXT NOT NULL,
    external_key    TEXT NOT NULL,
    domain          TEXT,
    scim_token_hash TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX directories_organization_id ON directories (organization_id, id);

CREATE TABLE directory_users (
    id                TEXT PRIMARY KEY,
    directory_id      TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    organization_id   TEXT NOT NULL,
    idp_id            TEXT NOT NULL,
    user_name         TEXT NOT NULL,
    user_name_norm    TEXT NOT NULL,
    external_id       TEXT,
    email             TEXT,
    email_norm        TEXT,
    first_name        TEXT,
    last_name         TEXT,
    name              TEXT,
    state             TEXT NOT NULL,
    raw_attributes    TEXT NOT NULL DEFAULT '{}',
    custom_attributes TEXT NOT NULL DEFAULT '{}',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE UNIQUE INDEX directory_users_user_name ON directory_users (directory_id, user_name_norm);
CREATE INDEX directory_users_directory_id ON directory_users (directory_id, id);
CREATE INDEX directory_users_external_id ON directory_users (directory_id, external_id);
CREATE INDEX directory_users_idp_id ON directory_users (idp_id, id);
CREATE INDEX directory_users_email_norm ON directory_users (email_norm, id);

CREATE TABLE directory_groups (
    id              TEXT PRIMARY KEY,
    directory_id    TEXT NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    idp_id          TEXT NOT NULL,
    name            TEXT NOT NULL,
    external_id     TEXT,
    raw_attributes  TEXT NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX directory_groups_directory_id ON directory_groups (directory_id, id);
CREATE INDEX directory_groups_external_id ON directory_groups (directory_id, external_id);

CREATE TABLE directory_group_members (
    group_id   TEXT NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES directory_users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX directory_group_members_user_id ON directory_group_members (user_id, group_id);
