-- Lethe ledger query views: the stable, documented surface for `lethe query`.
--
-- The base tables (ledger_*, log_*) are append-only records covered by the Merkle log;
-- these views give them the names and shapes auditors and scripts use. Times are UTC
-- text 'YYYY-MM-DDTHH:MM:SS.sssZ'; compare them with
--   strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
-- Digests and hashes are lowercase hex. This file is re-applied whenever it changes
-- (its SHA-256 is kept in ledger_meta.views_sha256), so it must start by dropping
-- every view it creates.

DROP VIEW IF EXISTS versions;
DROP VIEW IF EXISTS version_ancestry;
DROP VIEW IF EXISTS tensors;
DROP VIEW IF EXISTS refs;
DROP VIEW IF EXISTS ref_history;
DROP VIEW IF EXISTS datasets;
DROP VIEW IF EXISTS forget_requests;
DROP VIEW IF EXISTS forgotten_samples;
DROP VIEW IF EXISTS layer_stats;
DROP VIEW IF EXISTS request_metrics;
DROP VIEW IF EXISTS phase_timings;
DROP VIEW IF EXISTS rollbacks;
DROP VIEW IF EXISTS gc_deletions;
DROP VIEW IF EXISTS compliance_exceptions;
DROP VIEW IF EXISTS ledger_entries;
DROP VIEW IF EXISTS checkpoints;

-- versions(id, parent, parents, created_at, author, message, spec, dataset_digest,
--          bytes_stored, bytes_logical): every model version; `parent` is the first
--          parent (NULL for a root), `parents` a JSON array of all of them.
CREATE VIEW versions AS
SELECT v.id,
       (SELECT p.parent_id FROM ledger_version_parents p WHERE p.version_id = v.id AND p.position = 0) AS parent,
       (SELECT json_group_array(parent_id)
          FROM (SELECT p.parent_id FROM ledger_version_parents p WHERE p.version_id = v.id ORDER BY p.position)) AS parents,
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
       CASE WHEN o.decided_at IS NULL THEN NULL ELSE o.decided_at <= r.deadline END AS deadline_met,
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
       CASE WHEN d > 0 THEN CAST(k AS REAL) / d END AS k_over_d, gamma, rho
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
SELECT seq, kind, subject, created_at, lower(hex(leaf_hash)) AS leaf_hash FROM log_entries;

-- checkpoints(id, origin, tree_size, root_hash, created_at, public_key, signature, body):
-- signed tree heads (Ed25519 over `body`).
CREATE VIEW checkpoints AS
SELECT id, origin, tree_size, lower(hex(root_hash)) AS root_hash, created_at, public_key,
       lower(hex(signature)) AS signature, body
  FROM log_checkpoints;

-- Examples (README; tested in Tests/LetheLedgerTests/QueryTests.swift):
--
-- Which versions ever contained sample 123 of dataset X (trained on X, directly or through
-- an ancestor, and not descended from a version that forgot it):
--   lethe query --param dataset=X --param sample=123 "
--     SELECT v.id FROM versions v
--      WHERE EXISTS (SELECT 1 FROM version_ancestry a JOIN versions o ON o.id = a.ancestor
--                     WHERE a.version = v.id AND o.dataset_digest = :dataset)
--        AND NOT EXISTS (SELECT 1 FROM version_ancestry a
--                          JOIN forget_requests r ON r.version_after = a.ancestor AND r.status = 'applied'
--                          JOIN forgotten_samples s ON s.request = r.id
--                         WHERE a.version = v.id AND s.dataset_digest = :dataset AND s.sample_id = :sample)
--      ORDER BY v.created_at"
--
-- Requests past their deadline:
--   lethe query "SELECT id, requester, received_at, deadline FROM forget_requests
--                 WHERE status = 'received' AND deadline < strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
--                 ORDER BY deadline"
--
-- Requests whose max ρ exceeded 1e-5:
--   lethe query --param tol=1e-5 "SELECT request, max(rho) AS max_rho FROM layer_stats
--                                  GROUP BY request HAVING max(rho) > :tol ORDER BY request"
--
-- Storage by codec:
--   lethe query "SELECT codec, count(*) AS tensors, sum(bytes_logical) AS logical, sum(bytes_stored) AS stored
--                  FROM tensors GROUP BY codec ORDER BY codec"
--
-- The history of prod:
--   lethe query "SELECT move, moved_at, old_version, new_version, reason FROM ref_history
--                 WHERE ref = 'prod' ORDER BY move"
