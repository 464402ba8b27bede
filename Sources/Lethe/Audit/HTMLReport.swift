import Foundation

extension AuditReport {
    /// The report as one self-contained HTML page: inline CSS and inline SVG charts, no scripts,
    /// no external resources, so it can be archived and opened offline.
    public func html(tolerance: Double = 1e-5) -> String {
        let e = SVGChart.esc
        var b = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Lethe audit report — \(e(store))</title>
        <style>
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#222}
        h1{font-size:1.5rem} h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
        h3{font-size:1rem;margin-top:1.2rem}
        table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
        th{background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
        .ok{color:#2e7d32;font-weight:600} .bad{color:#c62828;font-weight:600} code{font-size:.85rem;word-break:break-all}
        .charts{display:flex;flex-wrap:wrap;gap:1rem} svg.chart{background:#fff;border:1px solid #eee}
        </style></head><body>
        <h1>Lethe audit report</h1>
        <p>Store <code>\(e(store))</code> · generated \(e(generatedAt))</p>

        """
        // Summary.
        let applied = requests.filter { $0.status == "applied" }.count
        let overdue = requests.filter { $0.deadlineMet == false }.count
        let reintroduced = requests.filter { !$0.reintroductions.isEmpty }.count
        b += "<h2>Summary</h2><table id=\"summary\">"
        b += row("Tamper-evident log", log.verified ? ok("verified") : bad("FAILED: " + (log.problem ?? "unknown")))
        b += row("Log size / root", "\(log.treeSize) entries · <code>\(e(log.rootHash))</code>")
        b += row("Checkpoint signature", log.checkpointSignatureValid ? ok("valid") : bad("invalid"))
        b += row("Forget requests", "\(requests.count) (\(applied) applied)")
        b += row("Deadlines missed", overdue == 0 ? ok("none") : bad("\(overdue)"))
        b += row("Forgotten data reintroduced", reintroduced == 0 ? ok("never") : bad("\(reintroduced) request(s)"))
        b += "</table>"

        // Charts across requests.
        if !requests.isEmpty {
            let ids = requests.map { String($0.id.prefix(10)) }
            func metric(_ name: String, after: Bool) -> [Double?] {
                requests.map { r in r.metrics.first { $0.name == name }.flatMap { after ? $0.after : $0.before } }
            }
            b += "<h2>Accuracy before and after each request</h2><div class=\"charts\">"
            b += SVGChart.groupedBars(title: "Accuracy on the forgotten samples and on held-out data", categories: ids, series: [
                ("forget before", metric("forget_accuracy", after: false)), ("forget after", metric("forget_accuracy", after: true)),
                ("test before", metric("test_accuracy", after: false)), ("test after", metric("test_accuracy", after: true)),
            ])
            b += "</div>"
        }
        if !timeline.isEmpty {
            b += "<h2>Timeline</h2><div class=\"charts\">"
            b += SVGChart.timeline(title: "Versions, requests and ref moves", events: timeline)
            b += "</div>"
        }

        // Per request.
        for r in requests {
            b += "<h2 id=\"request-\(e(r.id))\">Request <code>\(e(r.id))</code></h2><table>"
            b += row("Requester / legal ground", e(r.requester) + " · " + e(r.legalGround))
            b += row("Status", r.status == "applied" ? ok(r.status) : bad(r.status))
            b += row("Received / deadline / applied", "\(e(r.receivedAt)) / \(e(r.deadline)) / \(e(r.appliedAt ?? "—"))")
            b += row("Deadline met", r.deadlineMet.map { $0 ? ok("yes") : bad("no") } ?? "pending")
            b += row("Method", e(r.method))
            b += row("Samples (Merkle root)", "\(r.sampleCount) · <code>\(e(r.merkleRoot))</code>")
            b += row("Version before → after", "<code>\(e(String(r.versionBefore.prefix(16))))</code> → <code>\(e(String((r.versionAfter ?? "—").prefix(16))))</code>")
            if let p = r.inclusionProof {
                b += row("Log inclusion proof", (p.verified ? ok("verified") : bad("FAILED")) +
                         " · leaf \(p.leafIndex) of \(p.treeSize), \(p.path.count) hashes")
            }
            b += row("Later reintroduction", r.reintroductions.isEmpty ? ok("none") : bad(e(r.reintroductions.joined(separator: "; "))))
            b += "</table>"
            if !r.metrics.isEmpty {
                b += "<h3>Metrics</h3><table><tr><th>metric</th><th>before</th><th>after</th></tr>"
                for m in r.metrics {
                    b += "<tr><td>\(e(m.name))</td><td class=\"num\">\(num(m.before))</td><td class=\"num\">\(num(m.after))</td></tr>"
                }
                b += "</table>"
            }
            b += "<div class=\"charts\">"
            if let h = r.entropyHistogram {
                b += SVGChart.histogram(title: "Prediction entropy on the forgotten samples", h, xLabel: "entropy (nats)")
            }
            if !r.layers.isEmpty {
                b += SVGChart.rhoBars(title: "Orthogonality residual rho per layer", layers: r.layers, tolerance: tolerance)
                b += SVGChart.coreShare(title: "Core gradient space k/d per layer", layers: r.layers)
            }
            b += "</div>"
            if !r.layers.isEmpty {
                b += "<table><tr><th>layer</th><th>d</th><th>k</th><th>gamma</th><th>rho</th></tr>"
                for l in r.layers {
                    b += "<tr><td>\(e(l.layer))</td><td class=\"num\">\(l.d)</td><td class=\"num\">\(l.k)</td><td class=\"num\">\(String(format: "%.4f", l.gamma))</td><td class=\"num\">\(String(format: "%.3e", l.rho))</td></tr>"
                }
                b += "</table>"
            }
            if let phases = r.phases, !phases.isEmpty {
                b += "<h3>Phases and gamma trials</h3><table><tr><th>phase</th><th>seconds</th></tr>"
                for p in phases { b += "<tr><td>\(e(p.phase))</td><td class=\"num\">\(String(format: "%.2f", p.seconds))</td></tr>" }
                b += "</table>"
            }
        }
        b += "\n</body></html>\n"
        return b
    }

    private func row(_ k: String, _ v: String) -> String { "<tr><th>\(SVGChart.esc(k))</th><td>\(v)</td></tr>" }
    private func ok(_ s: String) -> String { "<span class=\"ok\">\(SVGChart.esc(s))</span>" }
    private func bad(_ s: String) -> String { "<span class=\"bad\">\(SVGChart.esc(s))</span>" }
    private func num(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "—" }
        return abs(v) >= 1e-3 || v == 0 ? String(format: "%.4f", v) : String(format: "%.3e", v)
    }
}
