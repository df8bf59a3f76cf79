-- The authz store (PostgreSQL schema `authz`, or SQLite in the standalone binary).

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    -- who may connect to LINE: 'all', 'selected' (per member) or 'none'
    line_mode  TEXT NOT NULL DEFAULT 'none',
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    -- `<username>@<tenant>`: unique across tenants, readable in logs of people's rooms.
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL REFERENCES tenants (id),
    username      TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    -- argon2id PHC string
    password_hash TEXT NOT NULL,
    admin         BIGINT NOT NULL DEFAULT 0,
    disabled      BIGINT NOT NULL DEFAULT 0,
    -- the per-member LINE grant, used when the tenant's mode is 'selected'
    line_allowed  BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE (tenant, username)
);

-- One row per side: `tenant` trusts `other`. Effective only while both rows exist.
CREATE TABLE trusts (
    tenant     TEXT NOT NULL REFERENCES tenants (id),
    other      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, other)
);

CREATE TABLE audit (
    id      TEXT PRIMARY KEY,
    tenant  TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX audit_by_tenant ON audit (tenant, at);

-- Ed25519 signing keys. The newest unretired key signs; all unretired keys are in the JWKS.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    private_der TEXT NOT NULL,
    public_x    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    retired_at  BIGINT
);
