-- Lethe ledger on PostgreSQL, migration 0001: the initial schema.
--
-- The same tables, columns, keys and indexes as schema/ledger/0001_initial.sql (SQLite);
-- Tests/LetheLedgerTests/PostgresSchemaTests.swift compares the two table/column lists so they
-- cannot drift. Types map one to one: INTEGER -> BIGINT, REAL -> DOUBLE PRECISION,
-- BLOB -> BYTEA, TEXT -> TEXT COLLATE "C" (byte order, as SQLite's BINARY collation, so rows
-- sort, and therefore encode and hash, identically on both engines). Ids that SQLite allocates
-- as rowids are given explicitly by the writer (largest + 1, under the writers' lock).
--
-- json_valid(text) mirrors SQLite's function (1 valid, 0 not) for the CHECKs and the writer.
CREATE FUNCTION json_valid(t text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $fn$
BEGIN
    PERFORM t::jsonb;
    RETURN 1;
EXCEPTION WHEN others THEN
    RETURN 0;
END
$fn$;

-- Key/value facts about this ledger: origin (checkpoint name), public_key (hex),
-- signing_key (on PostgreSQL a note: the key is host-local, the same on every writing host).
CREATE TABLE ledger_meta (
    key   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value TEXT COLLATE "C" NOT NULL
);

-- The Merkle log: entry `seq` is leaf `seq` (0-based, contiguous).
CREATE TABLE log_entries (
    seq        BIGINT PRIMARY KEY NOT NULL CHECK (seq >= 0),
    kind       TEXT COLLATE "C" NOT NULL,
    subject    TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    leaf_hash  BYTEA NOT NULL CHECK (octet_length(leaf_hash) = 32)
);
CREATE INDEX log_entries_subject ON log_entries(subject, kind);

-- The right edge of the tree (perfect-subtree roots) after the last entry; lets each
-- transaction sign a checkpoint in O(log n). Rebuilt and checked by verify.
CREATE TABLE log_frontier (
    height BIGINT PRIMARY KEY NOT NULL,
    hash   BYTEA NOT NULL CHECK (octet_length(hash) = 32)
);

-- Interior nodes of the tree: the root of every perfect subtree of 2^height leaves
-- starting at leaf idx * 2^height (height >= 1; leaves are log_entries.leaf_hash).
-- Derived from the leaves as they are appended; lets proofs be built in O(log^2 n)
-- lookups. verify recomputes and compares every one.
CREATE TABLE log_nodes (
    height BIGINT NOT NULL CHECK (height >= 1),
    idx    BIGINT NOT NULL CHECK (idx >= 0),
    hash   BYTEA NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (height, idx)
);

-- Signed tree heads. body is the exact signed text:
--   "<origin>\n<tree_size>\n<base64 root>\n"  (C2SP tlog-checkpoint layout).
CREATE TABLE log_checkpoints (
    id         BIGINT PRIMARY KEY NOT NULL,
    origin     TEXT COLLATE "C" NOT NULL,
    tree_size  BIGINT NOT NULL CHECK (tree_size >= 0),
    root_hash  BYTEA NOT NULL CHECK (octet_length(root_hash) = 32),
    body       TEXT COLLATE "C" NOT NULL,
    signature  BYTEA NOT NULL CHECK (octet_length(signature) = 64),
    public_key TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX checkpoints_size ON log_checkpoints(tree_size);

-- ---------------------------------------------------------------- logged records

CREATE TABLE ledger_datasets (
    digest       TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    name         TEXT COLLATE "C",
    sample_count BIGINT NOT NULL CHECK (sample_count >= 0),
    source       TEXT COLLATE "C" NOT NULL,
    recorded_at  TEXT COLLATE "C" NOT NULL,
    entry_seq    BIGINT NOT NULL REFERENCES log_entries(seq)
);

CREATE TABLE ledger_versions (
    id             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    created_at     TEXT COLLATE "C" NOT NULL,
    author         TEXT COLLATE "C" NOT NULL,
    message        TEXT COLLATE "C" NOT NULL,
    spec_digest    TEXT COLLATE "C",
    dataset_digest TEXT COLLATE "C" REFERENCES ledger_datasets(digest),
    bytes_stored   BIGINT NOT NULL CHECK (bytes_stored >= 0),
    bytes_logical  BIGINT NOT NULL CHECK (bytes_logical >= 0),
    entry_seq      BIGINT NOT NULL REFERENCES log_entries(seq)
);

CREATE TABLE ledger_version_parents (
    version_id TEXT COLLATE "C" NOT NULL REFERENCES ledger_versions(id),
    position   BIGINT NOT NULL CHECK (position >= 0),
    parent_id  TEXT COLLATE "C" NOT NULL REFERENCES ledger_versions(id),
    entry_seq  BIGINT NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (version_id, position)
);
CREATE INDEX version_parents_parent ON ledger_version_parents(parent_id);

CREATE TABLE ledger_version_tensors (
    version_id    TEXT COLLATE "C" NOT NULL REFERENCES ledger_versions(id),
    name          TEXT COLLATE "C" NOT NULL,
    dtype         TEXT COLLATE "C" NOT NULL,
    shape         TEXT COLLATE "C" NOT NULL CHECK (json_valid(shape) = 1),
    bytes_logical BIGINT NOT NULL CHECK (bytes_logical >= 0),
    bytes_stored  BIGINT NOT NULL CHECK (bytes_stored >= 0),
    codec         TEXT COLLATE "C" NOT NULL,
    chunk_count   BIGINT NOT NULL CHECK (chunk_count >= 0),
    entry_seq     BIGINT NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (version_id, name)
);

CREATE TABLE ledger_ref_moves (
    id          BIGINT PRIMARY KEY NOT NULL,
    ref         TEXT COLLATE "C" NOT NULL,
    old_version TEXT COLLATE "C" REFERENCES ledger_versions(id),
    new_version TEXT COLLATE "C" NOT NULL REFERENCES ledger_versions(id),
    reason      TEXT COLLATE "C" NOT NULL,
    moved_at    TEXT COLLATE "C" NOT NULL,
    entry_seq   BIGINT NOT NULL REFERENCES log_entries(seq)
);
CREATE INDEX ref_moves_ref ON ledger_ref_moves(ref, id);

CREATE TABLE ledger_requests (
    id             TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    requester      TEXT COLLATE "C" NOT NULL,
    legal_ground   TEXT COLLATE "C" NOT NULL,
    received_at    TEXT COLLATE "C" NOT NULL,
    deadline       TEXT COLLATE "C" NOT NULL,
    dataset_digest TEXT COLLATE "C" NOT NULL REFERENCES ledger_datasets(digest),
    ref            TEXT COLLATE "C",
    sample_count   BIGINT NOT NULL CHECK (sample_count >= 0),
    samples_root   TEXT COLLATE "C" NOT NULL,
    entry_seq      BIGINT NOT NULL REFERENCES log_entries(seq),
    -- Derived: the status of the request's outcome ('received' until one is recorded),
    -- set in the outcome's transaction. Not part of the entry encoding (it is the one
    -- column that changes); verify checks it agrees with ledger_request_outcomes. It
    -- exists so that pending requests are found through a small partial index.
    status         TEXT COLLATE "C" NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'applied', 'rejected', 'failed'))
);
CREATE INDEX forget_requests_deadline ON ledger_requests(deadline);
CREATE INDEX forget_requests_pending ON ledger_requests(deadline) WHERE status = 'received';
CREATE INDEX forget_requests_dataset ON ledger_requests(dataset_digest);

CREATE TABLE ledger_request_samples (
    request_id     TEXT COLLATE "C" NOT NULL REFERENCES ledger_requests(id),
    position       BIGINT NOT NULL CHECK (position >= 0),
    dataset_digest TEXT COLLATE "C" NOT NULL REFERENCES ledger_datasets(digest),
    sample_id      TEXT COLLATE "C" NOT NULL,
    sample_hash    TEXT COLLATE "C" NOT NULL CHECK (length(sample_hash) = 64),
    entry_seq      BIGINT NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, position)
);
CREATE INDEX forget_samples_sample ON ledger_request_samples(dataset_digest, sample_id);

-- The decision on a request: at most one per request (received -> applied|rejected|failed).
CREATE TABLE ledger_request_outcomes (
    request_id      TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES ledger_requests(id),
    status          TEXT COLLATE "C" NOT NULL CHECK (status IN ('applied', 'rejected', 'failed')),
    decided_at      TEXT COLLATE "C" NOT NULL,
    version_before  TEXT COLLATE "C" REFERENCES ledger_versions(id),
    version_after   TEXT COLLATE "C" REFERENCES ledger_versions(id),
    method          TEXT COLLATE "C",
    hyperparameters TEXT COLLATE "C" NOT NULL CHECK (json_valid(hyperparameters) = 1),
    seeds           TEXT COLLATE "C" NOT NULL CHECK (json_valid(seeds) = 1),
    thread_count    BIGINT,
    reason          TEXT COLLATE "C",
    entry_seq       BIGINT NOT NULL REFERENCES log_entries(seq)
);
CREATE INDEX request_outcomes_after ON ledger_request_outcomes(version_after);

CREATE TABLE ledger_layer_stats (
    request_id TEXT COLLATE "C" NOT NULL REFERENCES ledger_requests(id),
    position   BIGINT NOT NULL CHECK (position >= 0),
    layer      TEXT COLLATE "C" NOT NULL,
    d          BIGINT NOT NULL,
    k          BIGINT NOT NULL,
    gamma      DOUBLE PRECISION,
    rho        DOUBLE PRECISION,
    entry_seq  BIGINT NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, position)
);

CREATE TABLE ledger_request_metrics (
    request_id TEXT COLLATE "C" NOT NULL REFERENCES ledger_requests(id),
    name       TEXT COLLATE "C" NOT NULL,
    before     DOUBLE PRECISION,
    after      DOUBLE PRECISION,
    entry_seq  BIGINT NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, name)
);

CREATE TABLE ledger_phase_timings (
    request_id TEXT COLLATE "C" NOT NULL REFERENCES ledger_requests(id),
    position   BIGINT NOT NULL CHECK (position >= 0),
    phase      TEXT COLLATE "C" NOT NULL,
    seconds    DOUBLE PRECISION NOT NULL,
    entry_seq  BIGINT NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, position)
);

CREATE TABLE ledger_rollbacks (
    id             BIGINT PRIMARY KEY NOT NULL,
    ref            TEXT COLLATE "C" NOT NULL,
    from_version   TEXT COLLATE "C" REFERENCES ledger_versions(id),
    to_version     TEXT COLLATE "C" NOT NULL REFERENCES ledger_versions(id),
    mode           TEXT COLLATE "C" NOT NULL CHECK (mode IN ('plain', 'reapply', 'force')),
    reason         TEXT COLLATE "C",
    result_version TEXT COLLATE "C" REFERENCES ledger_versions(id),
    performed_at   TEXT COLLATE "C" NOT NULL,
    entry_seq      BIGINT NOT NULL REFERENCES log_entries(seq)
);

CREATE TABLE ledger_gc_deletions (
    id         BIGINT PRIMARY KEY NOT NULL,
    object     TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    bytes      BIGINT NOT NULL CHECK (bytes >= 0),
    reason     TEXT COLLATE "C" NOT NULL,
    deleted_at TEXT COLLATE "C" NOT NULL,
    entry_seq  BIGINT NOT NULL REFERENCES log_entries(seq)
);

CREATE TABLE ledger_compliance_exceptions (
    id          BIGINT PRIMARY KEY NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL,
    author      TEXT COLLATE "C" NOT NULL,
    request_ids TEXT COLLATE "C" NOT NULL CHECK (json_valid(request_ids) = 1),
    created_at  TEXT COLLATE "C" NOT NULL,
    entry_seq   BIGINT NOT NULL REFERENCES log_entries(seq)
);

-- verify reads each table in (entry_seq, primary key) order, the order of the canonical encoding.
CREATE INDEX datasets_entry ON ledger_datasets(entry_seq, digest);
CREATE INDEX versions_entry ON ledger_versions(entry_seq, id);
CREATE INDEX version_parents_entry ON ledger_version_parents(entry_seq, version_id, position);
CREATE INDEX version_tensors_entry ON ledger_version_tensors(entry_seq, version_id, name);
CREATE INDEX ref_moves_entry ON ledger_ref_moves(entry_seq);
CREATE INDEX forget_requests_entry ON ledger_requests(entry_seq, id);
CREATE INDEX forget_samples_entry ON ledger_request_samples(entry_seq, request_id, position);
CREATE INDEX request_outcomes_entry ON ledger_request_outcomes(entry_seq, request_id);
CREATE INDEX layer_stats_entry ON ledger_layer_stats(entry_seq, request_id, position);
CREATE INDEX request_metrics_entry ON ledger_request_metrics(entry_seq, request_id, name);
CREATE INDEX phase_timings_entry ON ledger_phase_timings(entry_seq, request_id, position);
CREATE INDEX rollbacks_entry ON ledger_rollbacks(entry_seq);
CREATE INDEX gc_deletions_entry ON ledger_gc_deletions(entry_seq);
CREATE INDEX compliance_exceptions_entry ON ledger_compliance_exceptions(entry_seq);
