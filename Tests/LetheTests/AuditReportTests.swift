import Foundation
import XCTest
@testable import Lethe

/// A report with two requests, as the engine would build it.
func sampleReport() -> AuditReport {
    let layers = [LayerRow(layer: "features.0", d: 9, k: 4, gamma: 0.8, rho: 3e-8),
                  LayerRow(layer: "classifier.1", d: 3136, k: 900, gamma: 0.8, rho: 2e-7)]
    let h = Histogram(edges: [0, 0.5, 1, 1.5, 2], series: ["before": [80, 15, 5, 0], "after": [20, 30, 30, 20]])
    let r1 = RequestAudit(id: "req-0001", requester: "user <42>", legalGround: "GDPR Art. 17(1)(b)", status: "applied",
                          receivedAt: "2026-11-01T10:00:00Z", deadline: "2026-12-01T10:00:00Z", appliedAt: "2026-11-01T10:05:00Z",
                          deadlineMet: true, method: "pgu", sampleCount: 300, merkleRoot: String(repeating: "ab", count: 32),
                          versionBefore: String(repeating: "1", count: 64), versionAfter: String(repeating: "2", count: 64),
                          metrics: [MetricRow(name: "forget_accuracy", before: 0.97, after: 0.90),
                                    MetricRow(name: "test_accuracy", before: 0.91, after: 0.905)],
                          layers: layers, entropyHistogram: h,
                          inclusionProof: InclusionProofRecord(leafIndex: 3, treeSize: 9, leafHash: "aa", path: ["bb", "cc"], rootHash: "dd", verified: true),
                          reintroductions: [])
    var r2 = r1
    r2.id = "req-0002"; r2.status = "failed"; r2.deadlineMet = false; r2.reintroductions = ["ref prod moved to 1111 by rollback"]
    return AuditReport(generatedAt: "2026-11-02T00:00:00Z", store: "/tmp/s/.lethe",
                       log: LogStatus(treeSize: 9, rootHash: "dd", checkpointSignatureValid: true, verified: true),
                       requests: [r1, r2],
                       timeline: [TimelineEvent(time: "2026-11-01T09:00:00Z", kind: "version", label: "1111", detail: "trained"),
                                  TimelineEvent(time: "2026-11-01T10:05:00Z", kind: "request", label: "req-0001", detail: "applied")])
}

final class AuditReportTests: XCTestCase {
    func testHTMLIsSelfContainedEscapedAndHasEveryChart() {
        let html = sampleReport().html()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.contains("<script"), "the report needs no scripts")
        XCTAssertFalse(html.contains("src=\""), "no external resources")
        XCTAssertFalse(html.contains("href=\"http"), "no external resources")
        XCTAssertTrue(html.contains("user &lt;42&gt;"), "text is escaped")
        // Accuracy, timeline, and per request: entropy histogram, rho, k/d.
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2 + 2 * 3)
        XCTAssertTrue(html.contains("Deadlines missed</th><td><span class=\"bad\">1</span>"))
        XCTAssertTrue(html.contains("ref prod moved to 1111 by rollback"))
    }

    func testJSONRoundTrips() throws {
        let r = sampleReport()
        let data = try JSONEncoder().encode(r)
        XCTAssertEqual(try JSONDecoder().decode(AuditReport.self, from: data), r)
    }

    func testHistogramCounts() {
        XCTAssertEqual(Histogram.counts([0, 0.1, 0.6, 2.5, -1, .nan], low: 0, high: 2, bins: 4), [3, 1, 0, 1])
    }
}

extension AuditReportTests {
    func testTimelinePlacesLedgerTimesWithFractionalSeconds() {
        let events = [TimelineEvent(time: "2026-11-01T10:00:00.000Z", kind: "version", label: "a", detail: ""),
                      TimelineEvent(time: "2026-11-01T10:00:10.500Z", kind: "version", label: "b", detail: ""),
                      TimelineEvent(time: "2026-11-01T10:00:20Z", kind: "ref", label: "c", detail: "")]
        let svg = SVGChart.timeline(title: "t", events: events)
        // left margin 90, plot width 640 - 90 - 20 = 530: x = 90, 90 + 530 * 10.5 / 20, 620.
        XCTAssertTrue(svg.contains("cx=\"90"), svg)
        XCTAssertTrue(svg.contains("cx=\"368.2"), svg)
        XCTAssertTrue(svg.contains("cx=\"620"), svg)
    }
}
