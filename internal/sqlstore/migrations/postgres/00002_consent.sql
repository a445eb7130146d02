-- +goose Up
-- A workspace's purposes of processing. Purposes referred to by a ledger
-- entry are retired, never deleted.
CREATE TABLE purposes (
    workspace_id             TEXT NOT NULL REFERENCES workspaces (id),
    key                      TEXT NOT NULL,
    name                     TEXT NOT NULL,
    description              TEXT NOT NULL,
    regime                   TEXT NOT NULL,
    document_version         TEXT NOT NULL,
    require_current_document BIGINT NOT NULL,
    retired                  BIGINT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key)
);

-- External vocabularies' names for purposes.
CREATE TABLE consent_mappings (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    vocabulary   TEXT NOT NULL,
    external     TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    PRIMARY KEY (workspace_id, vocabulary, external)
);

-- The append-only consent ledger. pii holds location and hardware id,
-- sealed under the profile's data key; nothing here is updated in place
-- except the profile it belongs to (merges and splits move entries).
CREATE TABLE consent_ledger (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL,
    profile_id        TEXT NOT NULL,
    origin_profile_id TEXT NOT NULL,
    purpose           TEXT NOT NULL,
    state             TEXT NOT NULL,
    collected_at      BIGINT NOT NULL,
    received_at       BIGINT NOT NULL,
    source            TEXT NOT NULL,
    source_name       TEXT NOT NULL,
    document          TEXT NOT NULL,
    pii               BYTEA,
    message_id        TEXT NOT NULL,
    merge_id          TEXT NOT NULL
);
CREATE INDEX consent_ledger_profile ON consent_ledger (profile_id, purpose, collected_at);
CREATE INDEX consent_ledger_purpose ON consent_ledger (workspace_id, purpose);

-- Partner feeds: each has a secret (sealed under the root key) that signs
-- its requests.
CREATE TABLE consent_feeds (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);

-- Each workspace's signing key for consent receipts: Ed25519, the private
-- half sealed under the root key.
CREATE TABLE signing_keys (
    workspace_id   TEXT PRIMARY KEY REFERENCES workspaces (id),
    key_id         TEXT NOT NULL,
    public_key     BYTEA NOT NULL,
    private_sealed BYTEA NOT NULL,
    created_at     BIGINT NOT NULL
);

-- The transactional outbox: records written with the state change that
-- caused them (consent changes, deliveries), relayed to the bus afterwards.
-- payload is sealed under the profile's data key.
CREATE TABLE outbox (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    profile_id   TEXT NOT NULL,
    topic        TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

-- +goose Down
DROP TABLE outbox;
DROP TABLE signing_keys;
DROP TABLE consent_feeds;
DROP TABLE consent_ledger;
DROP TABLE consent_mappings;
DROP TABLE purposes;
