-- +goose Up
CREATE TABLE workspaces (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- A single row, inserted by the first start, so that concurrent first starts
-- bootstrap exactly once.
CREATE TABLE bootstrap (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    created_at INTEGER NOT NULL
);

CREATE TABLE sources (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    name           TEXT NOT NULL,
    write_key_hash BLOB NOT NULL UNIQUE,
    secret_hash    BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);

-- Message ids already applied, per source, for deduplication. Only a hash
-- is kept; rows older than the deduplication window are pruned.
CREATE TABLE message_ids (
    source_id    TEXT NOT NULL,
    message_hash BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    PRIMARY KEY (source_id, message_hash)
) WITHOUT ROWID;
CREATE INDEX message_ids_received_at ON message_ids (received_at);

-- A workspace's keys, both encrypted under the root key (the master key
-- file): the Tink master keyset that wraps per-person data keys, and the key
-- of the blind index.
CREATE TABLE workspace_keys (
    workspace_id  TEXT PRIMARY KEY REFERENCES workspaces (id),
    master_keyset BLOB NOT NULL,
    index_key     BLOB NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Process-wide keys (the event log's), encrypted under the root key.
CREATE TABLE system_keys (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE identity_rules (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
    rules        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- One row per person. data_key is the person's data key wrapped by the
-- workspace master keyset; it is NULL once the profile was merged into
-- another (merged_into) or erased.
CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    data_key     BLOB,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    merged_into  TEXT,
    event_count  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX profiles_workspace ON profiles (workspace_id, created_at);
CREATE INDEX profiles_merged_into ON profiles (merged_into);

-- The identity graph. blind is a keyed hash of (type, normalised value):
-- the lookup key. value is the identity sealed under the owner's data key.
CREATE TABLE identities (
    workspace_id TEXT NOT NULL,
    blind        BLOB NOT NULL,
    profile_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    value        BLOB NOT NULL,
    first_seen   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, blind)
);
CREATE INDEX identities_profile ON identities (profile_id);

-- Traits, last write wins by event time. A NULL value is a deletion that
-- still wins over older writes.
CREATE TABLE traits (
    profile_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      BLOB,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (profile_id, name)
);

CREATE TABLE profile_groups (
    profile_id TEXT NOT NULL,
    group_key  BLOB NOT NULL,
    group_id   BLOB NOT NULL,
    traits     BLOB,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (profile_id, group_key)
);

-- The merge log. moved holds the blind indexes that moved from merged to
-- survivor (32 bytes each), so that a split can move them back.
CREATE TABLE merges (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    survivor_id  TEXT NOT NULL,
    merged_id    TEXT NOT NULL,
    rule         TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    moved        BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    undone_at    INTEGER
);
CREATE INDEX merges_survivor ON merges (survivor_id);
CREATE INDEX merges_merged ON merges (merged_id);

-- Pairs of profiles an operator split apart: they do not merge again.
CREATE TABLE merge_blocks (
    profile_a  TEXT NOT NULL,
    profile_b  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (profile_a, profile_b)
);

-- The timeline. payload is the event sealed under the profile's data key;
-- type, name and times are kept in the clear for filtering and carry no
-- personal data.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    profile_id   TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    name         TEXT NOT NULL,
    event_time   INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    payload      BLOB NOT NULL
);
-- No (workspace_id, seq) index here: an embedded deployment holds one or a
-- few workspaces, the primary key serves the newest-first listing, and
-- every index costs the single writer a B-tree insert per event.
CREATE INDEX events_profile_time ON events (profile_id, event_time, seq);

-- +goose Down
DROP TABLE events;
DROP TABLE merge_blocks;
DROP TABLE merges;
DROP TABLE profile_groups;
DROP TABLE traits;
DROP TABLE identities;
DROP TABLE profiles;
DROP TABLE identity_rules;
DROP TABLE system_keys;
DROP TABLE workspace_keys;
DROP TABLE message_ids;
DROP TABLE api_tokens;
DROP TABLE sources;
DROP TABLE bootstrap;
DROP TABLE workspaces;
