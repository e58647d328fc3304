-- workos-emulator schema (SQLite). Times are Unix milliseconds (BIGINT), JSON columns are TEXT.
-- Kept to portable SQL so the PostgreSQL migration is a type-for-type translation.

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL,
    email_norm          TEXT NOT NULL,
    email_verified      INTEGER NOT NULL DEFAULT 0,
    first_name          TEXT,
    last_name           TEXT,
    name                TEXT,
    profile_picture_url TEXT,
    external_id         TEXT,
    metadata            TEXT NOT NULL DEFAULT '{}',
    locale              TEXT,
    password_hash       TEXT,
    last_sign_in_at     BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_norm ON users (email_norm);
CREATE UNIQUE INDEX users_external_id ON users (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE organizations (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '{}',
    external_id        TEXT,
    stripe_customer_id TEXT,
    entitlements       TEXT NOT NULL DEFAULT '[]',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX organizations_external_id ON organizations (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE organization_domains (
    id                    TEXT PRIMARY KEY,
    organization_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain                TEXT NOT NULL,
    state                 TEXT NOT NULL,
    verification_strategy TEXT,
    verification_token    TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX organization_domains_organization_id ON organization_domains (organization_id, id);
CREATE INDEX organization_domains_domain ON organization_domains (domain);

CREATE TABLE organization_memberships (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    role_slugs      TEXT NOT NULL DEFAULT '[]',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX organization_memberships_user_org ON organization_memberships (user_id, organization_id);
CREATE INDEX organization_memberships_user_id ON organization_memberships (user_id, id);
CREATE INDEX organization_memberships_organization_id ON organization_memberships (organization_id, id);

CREATE TABLE roles (
    id                 TEXT PRIMARY KEY,
    slug               TEXT NOT NULL,
    name               TEXT NOT NULL,
    description        TEXT,
    role_type          TEXT NOT NULL,
    organization_id    TEXT REFERENCES organizations (id) ON DELETE CASCADE,
    org_key            TEXT NOT NULL DEFAULT '',
    priority           BIGINT NOT NULL DEFAULT 0,
    is_default         INTEGER NOT NULL DEFAULT 0,
    permissions        TEXT NOT NULL DEFAULT '[]',
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX roles_slug_org ON roles (slug, org_key);

CREATE TABLE permissions (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX permissions_slug ON permissions (slug);

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT,
    ip_address      TEXT,
    user_agent      TEXT,
    auth_method     TEXT NOT NULL,
    status          TEXT NOT NULL,
    impersonator    TEXT,
    expires_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id, id);

CREATE TABLE refresh_tokens (
    token_hash      TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    organization_id TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT,
    revoked_at      BIGINT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE grants (
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX grants_expires_at ON grants (expires_at);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    private_key_der BLOB NOT NULL,
    cert_der        BLOB NOT NULL,
    created_at      BIGINT NOT NULL,
    retire_after    BIGINT
);
