-- Projects: the tenant-scoped resource of the reference backend. Every query filters on
-- organization_id; the index makes "list my organization's projects" a range scan.
CREATE TABLE IF NOT EXISTS projects (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS projects_by_organization ON projects (organization_id, id);
