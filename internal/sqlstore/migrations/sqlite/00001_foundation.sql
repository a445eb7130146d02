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

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    source_id    TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    type         TEXT NOT NULL,
    name         TEXT NOT NULL,
    event_time   INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    payload      BLOB NOT NULL
);
CREATE INDEX events_workspace_seq ON events (workspace_id, seq);

-- +goose Down
DROP TABLE events;
DROP TABLE message_ids;
DROP TABLE api_tokens;
DROP TABLE sources;
DROP TABLE bootstrap;
DROP TABLE workspaces;
