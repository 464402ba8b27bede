-- Lethe ledger query views on PostgreSQL: the same views, columns and meanings as
-- schema/views.sql (SQLite), written in PostgreSQL's dialect. Times are UTC text
-- 'YYYY-MM-DDTHH:MM:SS.sssZ'; compare them with
--   to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
-- Digests and hashes are lowercase hex. Booleans are 1/0 integers, as on SQLite. This file is
-- re-applied whenever it changes (its SHA-256 is kept in ledger_meta.views_sha256), so it must
-- start by dropping every view it creates.

DROP VIEW IF EXISTS versions CASCADE;
DROP VIEW IF EXISTS version_ancestry CASCADE;
DROP VIEW IF EXISTS tensors CASCADE;
DROP VIEW IF EXISTS refs CASCADE;
DROP VIEW IF EXISTS ref_history CASCADE;
DROP VIEW IF EXISTS datasets CASCADE;
DROP VIEW IF EXISTS forget_requests CASCADE;
DROP VIEW IF EXISTS forgotten_samples CASCADE;
DROP VIEW IF EXISTS layer_stats CASCADE;
DROP VIEW IF EXISTS request_metrics CASCADE;
DROP VIEW IF EXISTS phase_timings CASCADE;
DROP VIEW IF EXISTS rollbacks CASCADE;
DROP VIEW IF EXISTS gc_deletions CASCADE;
DROP VIEW IF EXISTS compliance_exceptions CASCADE;
DROP VIEW IF EXISTS ledger_entries CASCADE;
DROP VIEW IF EXISTS checkpoints CASCADE;

-- versions(id, parent, parents, created_at, author, message, spec, dataset_digest,
--          bytes_stored, bytes_logical): every model version; `parent` is the first
--          parent (NULL for a root), `parents` a JSON array of all of them.
CREATE VIEW versions AS
SELECT v.id,
       (SELECT p.parent_id FROM ledger_version_parents p WHERE p.version_id = v.id AND p.position = 0) AS parent,
       (SELECT coalesce('[' || string_agg(to_json(p.parent_id)::text, ',' ORDER BY p.position) || ']', '[]')
          FROM ledger_version_parents p WHERE p.version_id = v.id) AS parents,
       v.created_at, v.author, v.message, v.spec_digest AS spec, v.dataset_digest,
       v.bytes_stored, v.bytes_logical
  FROM ledger_versions v;

-- version_ancestry(version, ancestor, depth): every ancestor of every version through
-- all parents (depth 0 is the version itself).
CREATE VIEW version_ancestry AS
WITH RECURSIVE anc(version, ancestor, depth) AS (
    SELECT id, id, 0 FROM ledger_versions
    UNION
    SELECT a.version, p.parent_id, a.depth + 1
      FROM anc a JOIN ledger_version_parents p ON p.version_id = a.ancestor
)
SELECT version, ancestor, min(depth) AS depth FROM anc GROUP BY version, ancestor;

-- tensors(version, name, dtype, shape, bytes_logical, bytes_stored, codec, chunk_count):
-- the tensors of each version; shape is a JSON array.
CREATE VIEW tensors AS
SELECT version_id AS version, name, dtype, shape, bytes_logical, bytes_stored, codec, chunk_count
  FROM ledger_version_tensors;

-- refs(name, version, updated_at, reason): where each ref points now (its last move).
CREATE VIEW refs AS
SELECT m.ref AS name, m.new_version AS version, m.moved_at AS updated_at, m.reason
  FROM ledger_ref_moves m
 WHERE m.id = (SELECT max(x.id) FROM ledger_ref_moves x WHERE x.ref = m.ref);

-- ref_history(move, ref, moved_at, old_version, new_version, reason, entry): every ref
-- move in order; `entry` is its log entry.
CREATE VIEW ref_history AS
SELECT id AS move, ref, moved_at, old_version, new_version, reason, entry_seq AS entry
  FROM ledger_ref_moves;

-- datasets(digest, name, sample_count, source, recorded_at).
CREATE VIEW datasets AS
SELECT digest, name, sample_count, source, recorded_at FROM ledger_datasets;

-- forget_requests(id, requester, legal_ground, status, received_at, deadline, decided_at,
--   applied_at, deadline_met, version_before, version_after, method, sample_count,
--   merkle_root, dataset_digest, ref, thread_count, hyperparameters, seeds, reason):
-- status is 'received' until an outcome (applied | rejected | failed) is recorded;
-- deadline_met is 1/0 once decided, NULL while pending.
CREATE VIEW forget_requests AS
SELECT r.id, r.requester, r.legal_ground,
       r.status,
       r.received_at, r.deadline,
       o.decided_at,
       CASE WHEN o.status = 'applied' THEN o.decided_at END AS applied_at,
       CASE WHEN o.decided_at IS NULL THEN NULL WHEN o.decided_at <= r.deadline THEN 1 ELSE 0 END AS deadline_met,
       o.version_before, o.version_after, o.method,
       r.sample_count, r.samples_root AS merkle_root, r.dataset_digest, r.ref,
       o.thread_count, o.hyperparameters, o.seeds, o.reason
  FROM ledger_requests r
  LEFT JOIN ledger_request_outcomes o ON o.request_id = r.id;

-- forgotten_samples(request, dataset_digest, sample_id, sample_hash, position, status):
-- the samples named by each request (ids and SHA-256 only; the data is never stored).
CREATE VIEW forgotten_samples AS
SELECT s.request_id AS request, s.dataset_digest, s.sample_id, s.sample_hash, s.position, r.status
  FROM ledger_request_samples s
  JOIN ledger_requests r ON r.id = s.request_id;

-- layer_stats(request, position, layer, d, k, k_over_d, gamma, rho): per-layer PGU figures.
CREATE VIEW layer_stats AS
SELECT request_id AS request, position, layer, d, k,
       CASE WHEN d > 0 THEN CAST(k AS DOUBLE PRECISION) / d END AS k_over_d, gamma, rho
  FROM ledger_layer_stats;

-- request_metrics(request, metric, before, after).
CREATE VIEW request_metrics AS
SELECT request_id AS request, name AS metric, before, after FROM ledger_request_metrics;

-- phase_timings(request, position, phase, seconds).
CREATE VIEW phase_timings AS
SELECT request_id AS request, position, phase, seconds FROM ledger_phase_timings;

-- rollbacks(id, ref, from_version, to_version, mode, reason, result_version, performed_at).
CREATE VIEW rollbacks AS
SELECT id, ref, from_version, to_version, mode, reason, result_version, performed_at FROM ledger_rollbacks;

-- gc_deletions(id, object, kind, bytes, reason, deleted_at).
CREATE VIEW gc_deletions AS
SELECT id, object, kind, bytes, reason, deleted_at FROM ledger_gc_deletions;

-- compliance_exceptions(id, kind, reason, author, request_ids, created_at).
CREATE VIEW compliance_exceptions AS
SELECT id, kind, reason, author, request_ids, created_at FROM ledger_compliance_exceptions;

-- ledger_entries(seq, kind, subject, created_at, leaf_hash): the Merkle log's leaves.
CREATE VIEW ledger_entries AS
SELECT seq, kind, subject, created_at, encode(leaf_hash, 'hex') AS leaf_hash FROM log_entries;

-- checkpoints(id, origin, tree_size, root_hash, created_at, public_key, signature, body):
-- signed tree heads (Ed25519 over `body`).
CREATE VIEW checkpoints AS
SELECT id, origin, tree_size, encode(root_hash, 'hex') AS root_hash, created_at, public_key,
       encode(signature, 'hex') AS signature, body
  FROM log_checkpoints;
