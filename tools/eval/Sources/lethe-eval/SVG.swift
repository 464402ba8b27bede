// Entropy histograms as hand-written SVG (no plotting library): Retrain and PGU as translucent
// bars, Original as a grey step outline, each normalised to the fraction of D_f per bin.
import Foundation

enum EntropyHistogramSVG {
    static let colors: [String: (fill: String, label: String)] = [
        "retrain": ("#1f77b4", "Retrain"), "pgu": ("#ff7f0e", "PGU"), "original": ("#7f7f7f", "Original"),
    ]

    /// - Parameters:
    ///   - series: (method, bin counts) with equal bin counts over [0, maxEntropy].
    static func render(title: String, series: [(String, [Int])], maxEntropy: Double) -> String {
        let width = 560.0, height = 300.0
        let left = 56.0, right = 16.0, top = 40.0, bottom = 46.0
        let plotW = width - left - right, plotH = height - top - bottom
        let bins = series.first?.1.count ?? 1
        let fractions = series.map { (name, counts) -> (String, [Double]) in
            let total = Double(max(counts.reduce(0, +), 1))
            return (name, counts.map { Double($0) / total })
        }
        let peak = max(fractions.flatMap(\.1).max() ?? 0, 1e-9)
        let yMax = niceCeiling(peak)
        func x(_ bin: Double) -> Double { left + plotW * bin / Double(bins) }
        func y(_ f: Double) -> Double { top + plotH * (1 - f / yMax) }
        func n(_ v: Double) -> String { String(format: "%.1f", v) }

        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(n(width / 2))" y="16" text-anchor="middle" font-size="12">\(escape(title))</text>

            """
        // Axes, ticks and grid.
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top + plotH))\" x2=\"\(n(left + plotW))\" y2=\"\(n(top + plotH))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(top + plotH))\" stroke=\"black\"/>\n"
        for i in 0...4 {
            let f = yMax * Double(i) / 4
            s += "<line x1=\"\(n(left - 4))\" y1=\"\(n(y(f)))\" x2=\"\(n(left + plotW))\" y2=\"\(n(y(f)))\" stroke=\"\(i == 0 ? "black" : "#dddddd")\"/>\n"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(y(f) + 4))\" text-anchor=\"end\">\(String(format: "%.2f", f))</text>\n"
        }
        for i in 0...4 {
            let e = maxEntropy * Double(i) / 4
            let px = left + plotW * Double(i) / 4
            s += "<line x1=\"\(n(px))\" y1=\"\(n(top + plotH))\" x2=\"\(n(px))\" y2=\"\(n(top + plotH + 4))\" stroke=\"black\"/>\n"
            s += "<text x=\"\(n(px))\" y=\"\(n(top + plotH + 16))\" text-anchor=\"middle\">\(String(format: "%.2f", e))</text>\n"
        }
        s += "<text x=\"\(n(left + plotW / 2))\" y=\"\(n(height - 8))\" text-anchor=\"middle\">softmax entropy of D_f samples (nats; ln 10 = \(String(format: "%.2f", maxEntropy)) is uniform)</text>\n"
        s += "<text transform=\"translate(14 \(n(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">fraction of D_f</text>\n"
        // Bars for retrain and PGU, the original as an outline.
        for (name, f) in fractions where name != "original" {
            let color = colors[name]?.fill ?? "black"
            for (i, v) in f.enumerated() where v > 0 {
                s += "<rect x=\"\(n(x(Double(i))))\" y=\"\(n(y(v)))\" width=\"\(n(plotW / Double(bins)))\" height=\"\(n(top + plotH - y(v)))\" fill=\"\(color)\" fill-opacity=\"0.45\"/>\n"
            }
        }
        if let (_, f) = fractions.first(where: { $0.0 == "original" }) {
            var d = "M\(n(x(0))),\(n(y(0)))"
            for (i, v) in f.enumerated() { d += " L\(n(x(Double(i)))),\(n(y(v))) L\(n(x(Double(i + 1)))),\(n(y(v)))" }
            d += " L\(n(x(Double(bins)))),\(n(y(0)))"
            s += "<path d=\"\(d)\" fill=\"none\" stroke=\"#555555\" stroke-width=\"1.2\" stroke-dasharray=\"4 2\"/>\n"
        }
        // Legend.
        var ly = top + 6
        for name in ["retrain", "pgu", "original"] where fractions.contains(where: { $0.0 == name }) {
            let lx = left + plotW - 120
            if name == "original" {
                s += "<line x1=\"\(n(lx))\" y1=\"\(n(ly + 5))\" x2=\"\(n(lx + 14))\" y2=\"\(n(ly + 5))\" stroke=\"#555555\" stroke-dasharray=\"4 2\"/>\n"
            } else {
                s += "<rect x=\"\(n(lx))\" y=\"\(n(ly))\" width=\"14\" height=\"10\" fill=\"\(colors[name]?.fill ?? "black")\" fill-opacity=\"0.45\"/>\n"
            }
            s += "<text x=\"\(n(lx + 20))\" y=\"\(n(ly + 9))\">\(colors[name]?.label ?? name)</text>\n"
            ly += 16
        }
        return s + "</svg>\n"
    }

    /// The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ v.
    static func niceCeiling(_ v: Double) -> Double {
        let p = pow(10, (log10(v)).rounded(.down))
        for m in [1.0, 2.0, 2.5, 5.0, 10.0] where m * p >= v - 1e-12 { return m * p }
        return 10 * p
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
