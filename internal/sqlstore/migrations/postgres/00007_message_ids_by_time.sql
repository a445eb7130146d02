-- +goose Up
-- Message ids keyed by the client's own time for the event (client_time,
-- microseconds) ahead of the hash, so that ids go in, and are pruned, in
-- the order events happen: a batch writes near the end of the index, not
-- one page per event anywhere in a table as large as the deduplication
-- window, and pruning drops whole ranges. A retry resends the same client
-- time, so its key is the same. client_time is 0 when the client sent no
-- time, and -1 for ids recorded before this migration (keyed by hash
-- alone; claims look them up too until the last is pruned).
CREATE TABLE message_ids_by_time (
    client_time  BIGINT NOT NULL,
    source_id    TEXT NOT NULL,
    message_hash BYTEA NOT NULL,
    PRIMARY KEY (client_time, source_id, message_hash)
);
-- The ids whose client time does not say when they may be forgotten (none
-- sent, recorded before this migration, or more than an hour off the time
-- they were received): kept until received_at leaves the window. Pruning
-- by client time skips them.
CREATE TABLE message_ids_expiring (
    client_time  BIGINT NOT NULL,
    source_id    TEXT NOT NULL,
    message_hash BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (client_time, source_id, message_hash)
);
CREATE INDEX message_ids_expiring_received_at ON message_ids_expiring (received_at);
INSERT INTO message_ids_by_time (client_time, source_id, message_hash)
    SELECT -1, source_id, message_hash FROM message_ids;
INSERT INTO message_ids_expiring (client_time, source_id, message_hash, received_at)
    SELECT -1, source_id, message_hash, received_at FROM message_ids;
DROP TABLE message_ids;
ALTER TABLE message_ids_by_time RENAME TO message_ids;
ALTER TABLE message_ids RENAME CONSTRAINT message_ids_by_time_pkey TO message_ids_pkey;

-- +goose Down
CREATE TABLE message_ids_by_hash (
    source_id    TEXT NOT NULL,
    message_hash BYTEA NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (source_id, message_hash)
);
INSERT INTO message_ids_by_hash (source_id, message_hash, received_at)
    SELECT m.source_id, m.message_hash, coalesce(max(e.received_at), 0)
    FROM message_ids m LEFT JOIN message_ids_expiring e
        ON e.client_time = m.client_time AND e.source_id = m.source_id AND e.message_hash = m.message_hash
    GROUP BY m.source_id, m.message_hash;
DROP TABLE message_ids_expiring;
DROP TABLE message_ids;
ALTER TABLE message_ids_by_hash RENAME TO message_ids;
ALTER TABLE message_ids RENAME CONSTRAINT message_ids_by_hash_pkey TO message_ids_pkey;
CREATE INDEX message_ids_received_at ON message_ids (received_at);
