-- Organization API keys (wire §10). Only the SHA-256 of a key's value is stored (hex), so a
-- copied database file does not hand out working keys; `obfuscated_value` is what WorkOS shows.

CREATE TABLE api_keys (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    value_hash       TEXT NOT NULL UNIQUE,
    obfuscated_value TEXT NOT NULL,
    permissions      TEXT NOT NULL DEFAULT '[]',
    expires_at       BIGINT,
    last_used_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX api_keys_organization_id ON api_keys (organization_id, id);
