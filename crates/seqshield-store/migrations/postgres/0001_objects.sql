-- seqshield object store, schema 1 (PostgreSQL). Keep in step with
-- migrations/sqlite/0001_objects.sql: same tables, columns and meaning.
CREATE TABLE objects (
    id              TEXT PRIMARY KEY NOT NULL,
    name            TEXT NOT NULL,
    dataset         TEXT NOT NULL,
    classification  TEXT NOT NULL CHECK (classification IN ('public', 'internal', 'restricted', 'controlled')),
    owner           TEXT NOT NULL,
    size            BIGINT NOT NULL CHECK (size >= 0),
    segment_size    BIGINT NOT NULL,
    part_segments   BIGINT NOT NULL,
    encrypted       BIGINT NOT NULL CHECK (encrypted IN (0, 1)),
    content_type    TEXT NOT NULL,
    key_ids         TEXT NOT NULL,
    header          BYTEA,
    trailer         BYTEA,
    merkle_root     TEXT,
    state           TEXT NOT NULL CHECK (state IN ('uploading', 'available', 'shredded')),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    committed_at    BIGINT
);
CREATE INDEX objects_by_state ON objects (state, created_at);
CREATE INDEX objects_by_dataset ON objects (dataset, name);

-- One row per received and verified part: the Merkle subtree root over its
-- segments' leaves (parts are power-of-two runs of segments, so these are
-- nodes of the object's tree).
CREATE TABLE parts (
    object_id   TEXT NOT NULL,
    part        BIGINT NOT NULL,
    root        BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (object_id, part)
);

-- Copies of an object in another store (cloud bursting). `header` is the
-- header re-wrapped for that store's KEK, or NULL when the copy holds only
-- ciphertext.
CREATE TABLE replicas (
    object_id   TEXT NOT NULL,
    store       TEXT NOT NULL,
    header      BYTEA,
    key_ids     TEXT NOT NULL,
    merkle_root TEXT NOT NULL,
    synced_at   BIGINT NOT NULL,
    PRIMARY KEY (object_id, store)
);
