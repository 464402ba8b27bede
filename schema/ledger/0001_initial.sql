-- Lethe ledger, migration 0001: the initial schema.
--
-- Every table below the "logged records" line is append-only: rows are inserted, never
-- updated or deleted (the one exception is the derived ledger_requests.status), and each row names (entry_seq) the log entry whose canonical
-- encoding covers it. `lethe verify` re-encodes every entry from these rows and
-- recomputes the RFC 6962 Merkle log, so any edit, insertion, deletion or reordering
-- is detected. Current state (a request's status, where a ref points) is derived in
-- the views of schema/views.sql rather than stored in mutable columns.
--
-- Times are UTC text 'YYYY-MM-DDTHH:MM:SS.sssZ' (strftime('%Y-%m-%dT%H:%M:%fZ')), so
-- they sort and compare as strings. Digests are lowercase hex text.

-- Key/value facts about this ledger: origin (checkpoint name), public_key (hex),
-- signing_key (path of the PEM, relative to the database's directory when inside it).
CREATE TABLE ledger_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

-- The Merkle log: entry `seq` is leaf `seq` (0-based, contiguous).
CREATE TABLE log_entries (
    seq        INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 0),
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    leaf_hash  BLOB NOT NULL CHECK (length(leaf_hash) = 32)
) STRICT;
CREATE INDEX log_entries_subject ON log_entries(subject, kind);

-- The right edge of the tree (perfect-subtree roots) after the last entry; lets each
-- transaction sign a checkpoint in O(log n). Rebuilt and checked by verify.
CREATE TABLE log_frontier (
    height INTEGER PRIMARY KEY NOT NULL,
    hash   BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- Interior nodes of the tree: the root of every perfect subtree of 2^height leaves
-- starting at leaf idx * 2^height (height >= 1; leaves are log_entries.leaf_hash).
-- Derived from the leaves as they are appended; lets proofs be built in O(log^2 n)
-- lookups. verify recomputes and compares every one.
CREATE TABLE log_nodes (
    height INTEGER NOT NULL CHECK (height >= 1),
    idx    INTEGER NOT NULL CHECK (idx >= 0),
    hash   BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (height, idx)
) STRICT, WITHOUT ROWID;

-- Signed tree heads. body is the exact signed text:
--   "<origin>\n<tree_size>\n<base64 root>\n"  (C2SP tlog-checkpoint layout).
CREATE TABLE log_checkpoints (
    id         INTEGER PRIMARY KEY NOT NULL,
    origin     TEXT NOT NULL,
    tree_size  INTEGER NOT NULL CHECK (tree_size >= 0),
    root_hash  BLOB NOT NULL CHECK (length(root_hash) = 32),
    body       TEXT NOT NULL,
    signature  BLOB NOT NULL CHECK (length(signature) = 64),
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX checkpoints_size ON log_checkpoints(tree_size);

-- ---------------------------------------------------------------- logged records

CREATE TABLE ledger_datasets (
    digest       TEXT PRIMARY KEY NOT NULL,
    name         TEXT,
    sample_count INTEGER NOT NULL CHECK (sample_count >= 0),
    source       TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    entry_seq    INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;

CREATE TABLE ledger_versions (
    id             TEXT PRIMARY KEY NOT NULL,
    created_at     TEXT NOT NULL,
    author         TEXT NOT NULL,
    message        TEXT NOT NULL,
    spec_digest    TEXT,
    dataset_digest TEXT REFERENCES ledger_datasets(digest),
    bytes_stored   INTEGER NOT NULL CHECK (bytes_stored >= 0),
    bytes_logical  INTEGER NOT NULL CHECK (bytes_logical >= 0),
    entry_seq      INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;

CREATE TABLE ledger_version_parents (
    version_id TEXT NOT NULL REFERENCES ledger_versions(id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    parent_id  TEXT NOT NULL REFERENCES ledger_versions(id),
    entry_seq  INTEGER NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (version_id, position)
) STRICT;
CREATE INDEX version_parents_parent ON ledger_version_parents(parent_id);

CREATE TABLE ledger_version_tensors (
    version_id    TEXT NOT NULL REFERENCES ledger_versions(id),
    name          TEXT NOT NULL,
    dtype         TEXT NOT NULL,
    shape         TEXT NOT NULL CHECK (json_valid(shape)),
    bytes_logical INTEGER NOT NULL CHECK (bytes_logical >= 0),
    bytes_stored  INTEGER NOT NULL CHECK (bytes_stored >= 0),
    codec         TEXT NOT NULL,
    chunk_count   INTEGER NOT NULL CHECK (chunk_count >= 0),
    entry_seq     INTEGER NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (version_id, name)
) STRICT;

CREATE TABLE ledger_ref_moves (
    id          INTEGER PRIMARY KEY NOT NULL,
    ref         TEXT NOT NULL,
    old_version TEXT REFERENCES ledger_versions(id),
    new_version TEXT NOT NULL REFERENCES ledger_versions(id),
    reason      TEXT NOT NULL,
    moved_at    TEXT NOT NULL,
    entry_seq   INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;
CREATE INDEX ref_moves_ref ON ledger_ref_moves(ref, id);

CREATE TABLE ledger_requests (
    id             TEXT PRIMARY KEY NOT NULL,
    requester      TEXT NOT NULL,
    legal_ground   TEXT NOT NULL,
    received_at    TEXT NOT NULL,
    deadline       TEXT NOT NULL,
    dataset_digest TEXT NOT NULL REFERENCES ledger_datasets(digest),
    ref            TEXT,
    sample_count   INTEGER NOT NULL CHECK (sample_count >= 0),
    samples_root   TEXT NOT NULL,
    entry_seq      INTEGER NOT NULL REFERENCES log_entries(seq),
    -- Derived: the status of the request's outcome ('received' until one is recorded),
    -- set in the outcome's transaction. Not part of the entry encoding (it is the one
    -- column that changes); verify checks it agrees with ledger_request_outcomes. It
    -- exists so that pending requests are found through a small partial index.
    status         TEXT NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'applied', 'rejected', 'failed'))
) STRICT;
CREATE INDEX forget_requests_deadline ON ledger_requests(deadline);
CREATE INDEX forget_requests_pending ON ledger_requests(deadline) WHERE status = 'received';
CREATE INDEX forget_requests_dataset ON ledger_requests(dataset_digest);

CREATE TABLE ledger_request_samples (
    request_id     TEXT NOT NULL REFERENCES ledger_requests(id),
    position       INTEGER NOT NULL CHECK (position >= 0),
    dataset_digest TEXT NOT NULL REFERENCES ledger_datasets(digest),
    sample_id      TEXT NOT NULL,
    sample_hash    TEXT NOT NULL CHECK (length(sample_hash) = 64),
    entry_seq      INTEGER NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, position)
) STRICT;
CREATE INDEX forget_samples_sample ON ledger_request_samples(dataset_digest, sample_id);

-- The decision on a request: at most one per request (received -> applied|rejected|failed).
CREATE TABLE ledger_request_outcomes (
    request_id      TEXT PRIMARY KEY NOT NULL REFERENCES ledger_requests(id),
    status          TEXT NOT NULL CHECK (status IN ('applied', 'rejected', 'failed')),
    decided_at      TEXT NOT NULL,
    version_before  TEXT REFERENCES ledger_versions(id),
    version_after   TEXT REFERENCES ledger_versions(id),
    method          TEXT,
    hyperparameters TEXT NOT NULL CHECK (json_valid(hyperparameters)),
    seeds           TEXT NOT NULL CHECK (json_valid(seeds)),
    thread_count    INTEGER,
    reason          TEXT,
    entry_seq       INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;
CREATE INDEX request_outcomes_after ON ledger_request_outcomes(version_after);

CREATE TABLE ledger_layer_stats (
    request_id TEXT NOT NULL REFERENCES ledger_requests(id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    layer      TEXT NOT NULL,
    d          INTEGER NOT NULL,
    k          INTEGER NOT NULL,
    gamma      REAL,
    rho        REAL,
    entry_seq  INTEGER NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, position)
) STRICT;

CREATE TABLE ledger_request_metrics (
    request_id TEXT NOT NULL REFERENCES ledger_requests(id),
    name       TEXT NOT NULL,
    before     REAL,
    after      REAL,
    entry_seq  INTEGER NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, name)
) STRICT;

CREATE TABLE ledger_phase_timings (
    request_id TEXT NOT NULL REFERENCES ledger_requests(id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    phase      TEXT NOT NULL,
    seconds    REAL NOT NULL,
    entry_seq  INTEGER NOT NULL REFERENCES log_entries(seq),
    PRIMARY KEY (request_id, position)
) STRICT;

CREATE TABLE ledger_rollbacks (
    id             INTEGER PRIMARY KEY NOT NULL,
    ref            TEXT NOT NULL,
    from_version   TEXT REFERENCES ledger_versions(id),
    to_version     TEXT NOT NULL REFERENCES ledger_versions(id),
    mode           TEXT NOT NULL CHECK (mode IN ('plain', 'reapply', 'force')),
    reason         TEXT,
    result_version TEXT REFERENCES ledger_versions(id),
    performed_at   TEXT NOT NULL,
    entry_seq      INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;

CREATE TABLE ledger_gc_deletions (
    id         INTEGER PRIMARY KEY NOT NULL,
    object     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    bytes      INTEGER NOT NULL CHECK (bytes >= 0),
    reason     TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    entry_seq  INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;

CREATE TABLE ledger_compliance_exceptions (
    id          INTEGER PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    author      TEXT NOT NULL,
    request_ids TEXT NOT NULL CHECK (json_valid(request_ids)),
    created_at  TEXT NOT NULL,
    entry_seq   INTEGER NOT NULL REFERENCES log_entries(seq)
) STRICT;

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
