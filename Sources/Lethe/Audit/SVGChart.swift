import Foundation

/// Small inline-SVG charts for the self-contained HTML audit report (no scripts, no external files).
enum SVGChart {
    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"]

    /// Grouped vertical bars: one group per category, one bar per series, values in [0, maxValue].
    static func groupedBars(title: String, categories: [String], series: [(name: String, values: [Double?])],
                            maxValue: Double = 1, percent: Bool = true, width: Int = 640, height: Int = 260) -> String {
        let left = 48.0, bottom = 56.0, top = 28.0, right = 12.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        var s = header(width, height, title)
        s += axisY(left: left, top: top, height: plotH, maxValue: maxValue, percent: percent, width: plotW)
        let groupW = plotW / Double(max(categories.count, 1))
        let barW = groupW * 0.8 / Double(max(series.count, 1))
        for (ci, cat) in categories.enumerated() {
            let gx = left + Double(ci) * groupW + groupW * 0.1
            for (si, ser) in series.enumerated() {
                guard ci < ser.values.count, let v = ser.values[ci], v.isFinite else { continue }
                let h = max(0, min(v / maxValue, 1)) * plotH
                let x = gx + Double(si) * barW
                s += rect(x, top + plotH - h, barW - 1, h, palette[si % palette.count],
                          "\(ser.name) \(cat): \(percent ? String(format: "%.1f%%", 100 * v) : String(format: "%.4g", v))")
            }
            s += text(gx + groupW * 0.4, top + plotH + 16, cat, anchor: "middle", size: 11)
        }
        s += legend(series.map(\.name), x: left, y: Double(height) - 14)
        return s + "</svg>"
    }

    /// A histogram with overlaid series sharing bin edges.
    static func histogram(title: String, _ h: Histogram, xLabel: String, width: Int = 640, height: Int = 240) -> String {
        let left = 48.0, bottom = 56.0, top = 28.0, right = 12.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        let names = h.series.keys.sorted()
        let maxCount = Double(max(h.series.values.flatMap { $0 }.max() ?? 1, 1))
        var s = header(width, height, title)
        s += axisY(left: left, top: top, height: plotH, maxValue: maxCount, percent: false, width: plotW)
        let bins = max(h.edges.count - 1, 1)
        let binW = plotW / Double(bins)
        for (si, name) in names.enumerated() {
            guard let counts = h.series[name] else { continue }
            for (i, c) in counts.enumerated() where c > 0 {
                let bh = Double(c) / maxCount * plotH
                s += rect(left + Double(i) * binW, top + plotH - bh, binW - 1, bh, palette[si % palette.count],
                          "\(name) [\(String(format: "%.3g", h.edges[i])), \(String(format: "%.3g", h.edges[min(i + 1, h.edges.count - 1)]))): \(c)",
                          opacity: 0.55)
            }
        }
        if let first = h.edges.first, let last = h.edges.last {
            s += text(left, top + plotH + 16, String(format: "%.2f", first), anchor: "start", size: 11)
            s += text(left + plotW, top + plotH + 16, String(format: "%.2f", last), anchor: "end", size: 11)
            s += text(left + plotW / 2, top + plotH + 16, xLabel, anchor: "middle", size: 11)
        }
        s += legend(names, x: left, y: Double(height) - 14)
        return s + "</svg>"
    }

    /// Horizontal bars of ρ per layer on a log scale from 1e-12 to 1, with the tolerance marked.
    static func rhoBars(title: String, layers: [LayerRow], tolerance: Double, width: Int = 640) -> String {
        let rowH = 22.0, left = 150.0, right = 80.0, top = 28.0
        let height = Int(top + rowH * Double(max(layers.count, 1)) + 36)
        let plotW = Double(width) - left - right
        func x(_ v: Double) -> Double {
            let l = log10(max(v, 1e-12))
            return left + (l + 12) / 12 * plotW
        }
        var s = header(width, height, title)
        for (i, l) in layers.enumerated() {
            let y = top + Double(i) * rowH
            s += text(left - 6, y + 15, l.layer, anchor: "end", size: 11)
            s += rect(left, y + 4, max(x(l.rho) - left, 1), rowH - 8, l.rho <= tolerance ? palette[2] : palette[3],
                      "\(l.layer): rho = \(String(format: "%.3g", l.rho))")
            s += text(x(l.rho) + 4, y + 15, String(format: "%.2g", l.rho), anchor: "start", size: 10)
        }
        let tx = x(tolerance), bottomY = top + rowH * Double(max(layers.count, 1))
        s += "<line x1=\"\(f(tx))\" y1=\"\(f(top))\" x2=\"\(f(tx))\" y2=\"\(f(bottomY))\" stroke=\"#e15759\" stroke-dasharray=\"4 3\"/>"
        s += text(tx, bottomY + 14, "tolerance \(String(format: "%.0e", tolerance))", anchor: "middle", size: 10)
        for e in stride(from: -12, through: 0, by: 3) {
            s += text(x(pow(10, Double(e))), bottomY + 28, "1e\(e)", anchor: "middle", size: 9)
        }
        return s + "</svg>"
    }

    /// Horizontal bars of k/d per layer (share of the input space that is the protected core).
    static func coreShare(title: String, layers: [LayerRow], width: Int = 640) -> String {
        let rowH = 22.0, left = 150.0, right = 90.0, top = 28.0
        let height = Int(top + rowH * Double(max(layers.count, 1)) + 12)
        let plotW = Double(width) - left - right
        var s = header(width, height, title)
        for (i, l) in layers.enumerated() {
            let y = top + Double(i) * rowH
            let share = l.d > 0 ? Double(l.k) / Double(l.d) : 0
            s += text(left - 6, y + 15, l.layer, anchor: "end", size: 11)
            s += rect(left, y + 4, plotW, rowH - 8, "#eeeeee", "")
            s += rect(left, y + 4, max(share * plotW, 1), rowH - 8, palette[0], "\(l.layer): k/d = \(l.k)/\(l.d)")
            s += text(left + plotW + 4, y + 15, "\(l.k)/\(l.d)", anchor: "start", size: 10)
        }
        return s + "</svg>"
    }

    /// Events on a horizontal time axis, one lane per kind.
    static func timeline(title: String, events: [TimelineEvent], width: Int = 640) -> String {
        let kinds = Array(Set(events.map(\.kind))).sorted()
        let laneH = 26.0, left = 90.0, right = 20.0, top = 28.0
        let height = Int(top + laneH * Double(max(kinds.count, 1)) + 30)
        let plotW = Double(width) - left - right
        // The ledger writes fractional seconds (`2026-11-24T06:28:52.000Z`); accept both forms.
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        let parsed = events.map { (fractional.date(from: $0.time) ?? plain.date(from: $0.time))?.timeIntervalSince1970 }
        let known = parsed.compactMap { $0 }
        let times = parsed.map { $0 ?? known.min() ?? 0 }
        let t0 = times.min() ?? 0, t1 = max(times.max() ?? 1, t0 + 1)
        var s = header(width, height, title)
        for (i, k) in kinds.enumerated() {
            let y = top + Double(i) * laneH + laneH / 2
            s += text(left - 8, y + 4, k, anchor: "end", size: 11)
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotW))\" y2=\"\(f(y))\" stroke=\"#dddddd\"/>"
        }
        for (e, t) in zip(events, times) {
            guard let lane = kinds.firstIndex(of: e.kind) else { continue }
            let x = left + (t - t0) / (t1 - t0) * plotW
            let y = top + Double(lane) * laneH + laneH / 2
            s += "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"5\" fill=\"\(palette[lane % palette.count])\"><title>\(esc(e.time + " " + e.kind + " " + e.label + ": " + e.detail))</title></circle>"
        }
        let order = zip(events, times).sorted { $0.1 < $1.1 }
        if let first = order.first?.0.time, let last = order.last?.0.time {
            let bottomY = top + laneH * Double(max(kinds.count, 1)) + 14
            s += text(left, bottomY, first, anchor: "start", size: 10)
            s += text(left + plotW, bottomY, last, anchor: "end", size: 10)
        }
        return s + "</svg>"
    }

    // MARK: primitives

    static func header(_ w: Int, _ h: Int, _ title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" aria-label=\"\(esc(title))\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\">"
            + "<text x=\"8\" y=\"18\" font-size=\"13\" font-weight=\"600\">\(esc(title))</text>"
    }

    static func axisY(left: Double, top: Double, height: Double, maxValue: Double, percent: Bool, width: Double) -> String {
        var s = ""
        for i in 0...4 {
            let v = maxValue * Double(i) / 4
            let y = top + height - height * Double(i) / 4
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + width))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>"
            s += text(left - 4, y + 4, percent ? String(format: "%.0f%%", 100 * v) : String(format: "%.0f", v), anchor: "end", size: 10)
        }
        return s
    }

    static func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, _ fill: String, _ tip: String, opacity: Double = 1) -> String {
        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(max(w, 0)))\" height=\"\(f(max(h, 0)))\" fill=\"\(fill)\"" +
            (opacity < 1 ? " fill-opacity=\"\(opacity)\"" : "") + ">" + (tip.isEmpty ? "" : "<title>\(esc(tip))</title>") + "</rect>"
    }

    static func text(_ x: Double, _ y: Double, _ t: String, anchor: String, size: Int) -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" text-anchor=\"\(anchor)\" font-size=\"\(size)\">\(esc(t))</text>"
    }

    static func legend(_ names: [String], x: Double, y: Double) -> String {
        var s = "", cx = x
        for (i, n) in names.enumerated() {
            s += rect(cx, y - 9, 10, 10, palette[i % palette.count], "")
            s += text(cx + 14, y, n, anchor: "start", size: 11)
            cx += 14 + Double(n.count) * 7 + 18
        }
        return s
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Escapes text for HTML and SVG.
    static func esc(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }
}
