import XCTest
@testable import LetheLedger

/// The statement rewriting and URL masking of the PostgreSQL backend (no server needed).
final class PostgresTextTests: XCTestCase {
    func testNumberedPlaceholdersBecomeDollarOutsideLiteralsAndComments() {
        XCTAssertEqual(PostgresConnection.rewritePlaceholders("SELECT a FROM t WHERE b = ?1 AND c IN (?2, ?10)"),
                       "SELECT a FROM t WHERE b = $1 AND c IN ($2, $10)")
        XCTAssertEqual(PostgresConnection.rewritePlaceholders("SELECT '?1', \"?2\", ? -- ?3\nFROM x WHERE y = ?4"),
                       "SELECT '?1', \"?2\", ? -- ?3\nFROM x WHERE y = $4")
    }

    func testNamedParametersBecomeNumberedAndCastsStay() {
        let r = LedgerQuery.rewriteNamedParameters("SELECT :a, x::text, ':b', :a_2, :a FROM t -- :c\nWHERE y > :tol")
        XCTAssertEqual(r.sql, "SELECT $1, x::text, ':b', $2, $1 FROM t -- :c\nWHERE y > $3")
        XCTAssertEqual(r.names, ["a", "a_2", "tol"])
    }

    func testSkeletonHidesLiteralsAndComments() {
        let k = LedgerQuery.skeleton("SELECT 'pg_read_file(1); x' /* set_config( */ , \"Q\" -- ;\nFROM T")
        XCTAssertEqual(k.split(whereSeparator: \.isWhitespace).joined(separator: " "), "select , from t")
    }

    func testPasswordsAreMasked() {
        XCTAssertEqual(PostgresConnection.redact("postgresql://lethe:s3cr:et@db:5432/ledger?sslmode=require"),
                       "postgresql://lethe:***@db:5432/ledger?sslmode=require")
        XCTAssertEqual(PostgresConnection.redact("postgres://db/ledger?user=x&password=hunter2&sslmode=require"),
                       "postgres://db/ledger?user=x&password=***&sslmode=require")
        XCTAssertEqual(PostgresConnection.redact("postgresql://lethe@db/ledger"), "postgresql://lethe@db/ledger")
        XCTAssertEqual(Ledger.redactedURL("/tmp/ledger.sqlite"), nil)
    }

    func testTransientErrorsAreTheRetryableSQLStates() {
        for state in ["40001", "40P01", "55P03", "08006", "08001", "57P01"] {
            XCTAssertTrue(PostgresConnection.isTransient(.postgres(sqlstate: state, message: "m", sql: "s")), state)
        }
        for state in ["23505", "42P01", "25006", "57014"] {
            XCTAssertFalse(PostgresConnection.isTransient(.postgres(sqlstate: state, message: "m", sql: "s")), state)
        }
        XCTAssertFalse(PostgresConnection.isTransient(.invalid("x")))
        XCTAssertEqual(LedgerError.postgres(sqlstate: "23505", message: "duplicate key", sql: "INSERT INTO t\n  VALUES (1)").description,
                       "PostgreSQL error SQLSTATE 23505: duplicate key (SQL: INSERT INTO t VALUES (1))")
    }
}
