// `lethe-eval report`: renders EVALUATION.md and the entropy histograms from the cell JSON files.
//
//   lethe-eval report --results tools/eval/results --out EVALUATION.md [--svg-dir docs/eval] [--seeds 3]
//
// The output is a pure function of the JSON files (no clock, no machine state), so rendering
// twice without new cells gives byte-identical files.
import Foundation
import LetheTensor
import LetheUnlearning

/// Mean and sample standard deviation of a list.
struct Stat {
    var values: [Double]
    var count: Int { values.count }
    var mean: Double { values.reduce(0, +) / Double(max(values.count, 1)) }
    var std: Double? {
        guard values.count > 1 else { return nil }
        let m = mean
        return (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(values.count - 1)).squareRoot()
    }

    /// "m ± s" (or "m" for one value) with `format` applied to value × `scale`; "—" when empty.
    func text(_ format: String, scale: Double = 1) -> String {
        guard !values.isEmpty else { return "—" }
        let m = String(format: format, mean * scale)
        guard let s = std else { return m }
        return m + " ± " + String(format: format, s * scale)
    }
}

/// The cells of one (data, arch, setting), all seeds.
struct CellGroup {
    var data: String, arch: String, setting: String
    var cells: [CellResult]
    var key: String { "\(data)-\(arch)-\(setting)" }

    /// Rows of `method` at step `step` over the seeds that have them.
    func rows(_ method: String, step: Int) -> [(cell: CellResult, row: RowResult, retrain: RowResult?)] {
        cells.compactMap { c in
            guard let s = c.steps.first(where: { $0.step == step }), let r = s.rows.first(where: { $0.method == method }) else { return nil }
            return (c, r, s.rows.first { $0.method == "retrain" })
        }
    }

    var stepCount: Int { cells.map(\.steps.count).max() ?? 0 }
    var methods: [String] {
        var out: [String] = []
        for c in cells { for s in c.steps { for r in s.rows where !out.contains(r.method) { out.append(r.method) } } }
        return out
    }
}

enum Report {
    static let methodNames: [String: String] = [
        "original": "Original", "clean": "Clean (true labels)", "retrain": "Retrain", "pgu": "**PGU**",
        "finetune": "Fine-tune", "neggrad+": "NegGrad+", "random-label": "Random-label",
    ]
    /// The setting's title with the cell's request sizes.
    static func settingTitle(_ g: CellGroup) -> String {
        let sizes = g.cells.first?.steps.map(\.requestSize) ?? []
        let n = sizes.first.map(String.init) ?? "?"
        switch g.setting {
        case "random1000": return "\(n) random samples"
        case "random1000v": return "\(n) random samples, held-out set from the training split"
        case "seq4x250": return "\(sizes.count) sequential requests of \(n) random samples"
        case "seq4x250v": return "\(sizes.count) sequential requests of \(n) random samples, held-out set from the training split"
        case "class0": return "whole class 0"
        case "depoison": return "de-poisoning \(n) label-flipped samples"
        default: return g.setting
        }
    }

    static let unlearners = ["pgu", "finetune", "neggrad+", "random-label"]

    static func run(_ args: [String]) throws {
        let o = try EvalOptions(args, valued: ["results", "out", "svg-dir", "seeds"])
        let resultsDir = try o.required("results")
        let out = try o.required("out")
        let svgDir = o.string("svg-dir") ?? "docs/eval"
        let seeds = try o.int("seeds", default: 3, range: 1...100)
        let cells = try load(resultsDir)
        try FileManager.default.createDirectory(atPath: svgDir, withIntermediateDirectories: true)
        let svgLink = relativePath(from: directory(of: out), to: svgDir)
        var svgs: [(String, String)] = []
        let text = render(cells: cells, seeds: seeds, resultsDir: resultsDir, svgLink: svgLink) { name, svg in svgs.append((name, svg)) }
        for (name, svg) in svgs { try FileBytes.writeAtomically(Array(svg.utf8), to: svgDir + "/" + name) }
        try FileBytes.writeAtomically(Array(text.utf8), to: out)
        FileHandle.standardError.write(Data("report: \(cells.count) cells, \(svgs.count) histograms -> \(out)\n".utf8))
    }

    static func load(_ dir: String) throws -> [CellResult] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dir) } catch {
            throw EvalError(description: "cannot list \(dir): \(error.localizedDescription)")
        }
        var cells: [CellResult] = []
        for name in names.sorted() where name.hasSuffix(".json") {
            let path = dir + "/" + name
            let cell: CellResult
            do { cell = try CellJSON.decode(Data(try FileBytes.read(path))) } catch {
                throw EvalError(description: "\(path): not a cell record: \(error)")
            }
            guard cell.format == cellFormatVersion else { throw EvalError(description: "\(path): format \(cell.format), expected \(cellFormatVersion)") }
            guard name == CellJSON.name(data: cell.data, arch: cell.arch, setting: cell.setting, seed: cell.seed) else {
                throw EvalError(description: "\(path): file name does not match its cell (\(cell.data) \(cell.arch) \(cell.setting) seed \(cell.seed))")
            }
            cells.append(cell)
        }
        return cells
    }

    static func directory(of path: String) -> String {
        let d = (path as NSString).deletingLastPathComponent
        return d.isEmpty ? "." : d
    }

    /// `to` relative to directory `from` (both relative to the working directory, or both absolute).
    static func relativePath(from: String, to: String) -> String {
        func parts(_ p: String) -> [String] {
            let abs = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
            return (abs as NSString).standardizingPath.split(separator: "/").map(String.init)
        }
        let a = parts(from), b = parts(to)
        var i = 0
        while i < a.count && i < b.count && a[i] == b[i] { i += 1 }
        let up = Array(repeating: "..", count: a.count - i)
        let rel = (up + b[i...]).joined(separator: "/")
        return rel.isEmpty ? "." : rel
    }

    // MARK: Rendering

    static func groups(_ cells: [CellResult]) -> [CellGroup] {
        var out: [CellGroup] = []
        for m in evalModels {
            for s in EvalSetting.allCases {
                let cs = cells.filter { $0.data == m.data && $0.arch == m.arch && $0.setting == s.rawValue }.sorted { $0.seed < $1.seed }
                if !cs.isEmpty { out.append(CellGroup(data: m.data, arch: m.arch, setting: s.rawValue, cells: cs)) }
            }
        }
        return out
    }

    static func seedList(_ cells: [CellResult]) -> String { cells.map { String($0.seed) }.joined(separator: ", ") }

    static func seconds(_ v: Double) -> String { v < 10 ? String(format: "%.2f", v) : String(format: "%.1f", v) }

    static func render(cells: [CellResult], seeds: Int, resultsDir: String, svgLink: String,
                       writeSVG: (String, String) -> Void) -> String {
        let gs = groups(cells)
        var md = """
            # Evaluation: PGU against retraining and the usual baselines

            Generated by `tools/eval/run` (`lethe-eval report`) from the per-cell records in `\(resultsDir)/`;
            do not edit by hand. Every number below was measured by `lethe-eval cell`; a cell is one
            (dataset, model, setting, seed). Figures are mean ± sample standard deviation over the seeds
            listed with each table (a single seed shows no ±).


            """
        md += summarySection(gs)
        md += Acceptance.section(gs)
        md += methodSection(cells)
        md += machineSection(cells)
        md += "## Results\n\n"
        if gs.isEmpty { md += "No cell has been run yet.\n\n" }
        for g in gs {
            md += groupSection(g, svgLink: svgLink, writeSVG: writeSVG)
        }
        md += notRunSection(cells, seeds: seeds)
        md += commandsSection(cells)
        md += cellsAppendix(cells)
        return md
    }

    /// One line per (data, arch, setting) at its last request: PGU next to Retrain and Original.
    static func summarySection(_ gs: [CellGroup]) -> String {
        var md = "## Summary\n\nLast request of each setting, mean over seeds; each cell reads Original → **PGU** / Retrain "
        md += "(the exact reference). Details, the baselines and standard deviations follow under Results.\n\n"
        md += "| data | model | setting | seeds | D_f acc % | test acc % | entropy-MIA % | loss-MIA AUC | PGU speed-up vs Retrain |\n"
        md += "|---|---|---|---:|---:|---:|---:|---:|---:|\n"
        for g in gs {
            let step = g.stepCount
            func m(_ method: String, _ f: (RowResult) -> Double?, _ format: String, _ scale: Double) -> String {
                let s = stat(g.rows(method, step: step), f)
                return s.count == 0 ? "no signal" : String(format: format, s.mean * scale)
            }
            func triple(_ f: @escaping (RowResult) -> Double?, _ format: String, _ scale: Double = 100) -> String {
                "\(m("original", f, format, scale)) → **\(m("pgu", f, format, scale))** / \(m("retrain", f, format, scale))"
            }
            let speed = Stat(values: g.rows("pgu", step: step).compactMap { r in r.retrain.map { $0.seconds / max(r.row.seconds, 1e-9) } })
            md += "| \(g.data) | \(g.arch) | \(settingTitle(g)) | \(g.cells.count) | \(triple({ $0.forgetAccuracy }, "%.1f")) | "
            md += "\(triple({ $0.testAccuracy }, "%.1f")) | \(triple({ $0.entropyMIA }, "%.1f")) | \(triple({ $0.lossMIAAUC }, "%.3f", 1)) | "
            md += (speed.count == 0 ? "—" : String(format: "%.1f×", speed.mean)) + " |\n"
        }
        md += "\n"
        for g in gs where g.setting == "depoison" {
            let step = g.stepCount
            func m(_ method: String) -> String {
                let s = stat(g.rows(method, step: step), { $0.trueLabelAccuracy })
                return s.count == 0 ? "—" : String(format: "%.1f", 100 * s.mean)
            }
            md += "De-poisoning (\(g.data) \(g.arch)): D_f accuracy above is on the wrong labels; on the true labels it is "
            md += "\(m("original")) → **\(m("pgu"))** / \(m("retrain")), and \(m("clean")) for the model trained on clean labels.\n\n"
        }
        return md
    }

    static func methodSection(_ cells: [CellResult]) -> String {
        var md = """
            ## Method

            - **Data.** `digits` (scikit-learn's 1797 8×8 digits, 80/20 stratified split: 1438 training samples) and
              Fashion-MNIST (60000 / 10000). The test split is cut into stratified halves (seed 7): *validation*
              (PGU's stopping rule and collapse guard use it) and *test* (reported). D_r accuracy is on a seeded
              subsample of at most 5000 retained training samples; the same subsample is the attack's member set.
            - **Models and training.** `mlp` (digits: hidden [64, 32]; Fashion-MNIST: [256, 256]), `cnn`, `allcnn` at
              width 0.5. Original, Retrain and the de-poisoning clean model are trained alike: SGD, batch 128,
              learning rate 0.05 with a cosine schedule to 0, 15 epochs, initialisation and shuffling from the
              cell's seed. Retrain starts from the same initialisation as Original and trains on D_r only.
            - **Settings.** `random1000`: forget 1000 random training samples (digits: 100). `random1000v`: the
              same, but 5000 stratified training samples (digits: 500) are held out of every model's training and
              are the held-out set of PGU's stopping rule and the "validation" set (the CLI's `--data SOURCE:N+V`);
              the test half is the same as in `random1000`. `seq4x250`: four
              requests of 250 random samples each (digits: 25), measured after every request against a model
              retrained on what is left; PGU runs each request from the previous request's retained bases and
              weights, and the baselines are likewise applied to their own previous model with the new request.
              `seq4x250v`: the same requests' sizes with `random1000v`'s held-out set (and so its Original).
              `class0`: forget every training sample of class 0 (PGU in class mode: stop when the class's accuracy
              reaches `classTargetAccuracy` of the configuration below, chance when it is absent).
              `depoison`: the labels of 500 random training samples (digits: 50) are swapped within the class pairs
              \(poisonPairs.map { "(\($0.0), \($0.1))" }.joined(separator: ", ")) (Fashion-MNIST look-alikes: T-shirt/Shirt,
              Pullover/Coat, Sandal/Sneaker, Trouser/Dress, Bag/Ankle boot); Original is trained on the poisoned
              set, *Clean* on the true labels, Retrain on the poisoned set without those samples, and PGU runs in
              de-poisoning mode on the samples with their wrong labels (with `depoisonToFalsePositiveRate` in the
              configuration: until those labels are given to the poisoned samples no more often than to validation
              samples of other classes; without it, the paper's rule: until validation accuracy stops improving).
              There "D_f acc" is accuracy on the wrong
              (poisoned) labels and "D_f true-label acc" on their true labels; test accuracy is on clean test labels.
            - **Rows.** Original; Retrain (the exact reference); PGU (`PGUEngine` from the original's bases, the
              configuration below); Fine-tune (epochs over D_r at a constant learning rate); NegGrad+ (ascent on D_f,
              descent on D_r, β = 0.95; on a whole class, in records from 64135c7 on, it stops once the last 512
              forget samples it stepped on are at the class target — unstopped, its ascent left non-finite weights);
              Random-label (D_f with random wrong labels mixed with D_r batches).
            - **Columns.** Accuracies on D_f (every sample forgotten so far), D_r and test; the entropy membership
              attack (logistic regression on softmax entropy, D_r members vs test non-members) applied to D_f:
              the fraction of D_f it calls members, or *no signal* when the attack cannot separate its own
              training sets; loss-MIA AUC (test loss vs D_f loss; 0.5 = indistinguishable); mean Jensen–Shannon
              divergence of D_f softmax outputs to Retrain's; L2 distance of all parameters to Original; wall
              seconds of the method; speed-up = Retrain seconds / method seconds, per seed, then averaged (in
              brackets the same ratio of process CPU seconds, which other load on the machine hardly moves); PGU's
              largest orthogonality residual ρ over layers (tolerance 1e-5) and the γ it chose.
            - **Timing.** Retrain, PGU and the baselines run in the same process on the same thread count, one
              after the other. Original's and Retrain's weights may come from a cache of an earlier run with the
              same seed and training set (the training is deterministic): their time is then the recorded one,
              marked †. PGU's time excludes
              computing the original's bases (one pass over the training set), which a store does once per
              version; it is listed separately.


            """
        // Recipes and configurations as recorded.
        let baselineRecipes = Set(cells.map { "fine-tune \($0.baselines.fineTuneEpochs) epochs over D_r, NegGrad+ and random-label \($0.baselines.forgetEpochs) passes over D_f, learning rate \($0.baselines.learningRate)" })
        for b in baselineRecipes.sorted() { md += "Baselines as run: \(b).\n\n" }
        var configs: [(String, [String])] = []
        for c in cells {
            var p = c.pgu
            if case .object(var o) = p { o["mode"] = nil; o["seed"] = nil; p = .object(o) }
            let text = p.compact
            if let i = configs.firstIndex(where: { $0.0 == text }) { configs[i].1.append(cellName(c)) } else { configs.append((text, [cellName(c)])) }
        }
        if configs.count == 1 {
            md += "PGU configuration of every cell (`PGUConfiguration` fields; the mode follows the setting, the seed the cell): \(configs[0].0).\n\n"
        } else {
            md += "PGU configurations differ between cells (`PGUConfiguration` fields; mode and seed aside):\n\n"
            for (text, names) in configs { md += "- \(text): \(names.joined(separator: ", "))\n" }
            md += "\n"
        }
        return md
    }

    static func cellName(_ c: CellResult) -> String { "\(c.data)-\(c.arch)-\(c.setting)-s\(c.seed)" }

    static func machineSection(_ cells: [CellResult]) -> String {
        var md = "## Machine\n\n"
        guard !cells.isEmpty else { return md + "No cell has been run yet.\n\n" }
        let machines = Set(cells.map { "\($0.machine.processors) processors (\($0.machine.cpu)), \($0.machine.threads) BLAS and layer threads"
                + ", OpenBLAS kernel \($0.machine.blasKernel ?? "not recorded")" })
        for m in machines.sorted() { md += "- \(m)\n" }
        let starts = cells.compactMap(\.machine.loadStart.first), ends = cells.compactMap(\.machine.loadEnd.first)
        if let lo = (starts + ends).min(), let hi = (starts + ends).max() {
            md += String(format: "- 1-minute load average at the start and end of the cells: %.2f to %.2f", lo, hi)
            md += " (per cell in the appendix). The machine is shared; wall times are only comparable within a cell.\n"
        }
        let commits = Set(cells.map { $0.commit ?? "unrecorded" })
        md += "- Code: commit\(commits.count > 1 ? "s" : "") \(commits.sorted().map { "`\($0)`" }.joined(separator: ", ")).\n\n"
        return md
    }

    static func stat(_ rows: [(cell: CellResult, row: RowResult, retrain: RowResult?)], _ f: (RowResult) -> Double?) -> Stat {
        Stat(values: rows.compactMap { f($0.row) })
    }

    static func groupSection(_ g: CellGroup, svgLink: String, writeSVG: (String, String) -> Void) -> String {
        let title = settingTitle(g)
        var md = "### \(g.data) · \(g.arch) · \(title)\n\n"
        let first = g.cells[0]
        let sizes = first.steps.map { "\($0.requestSize)" }.joined(separator: " + ")
        md += "Seeds \(seedList(g.cells)); |D_f| = \(sizes)"
        if let last = first.steps.last { md += ", |D_r| = \(last.retainCount)" }
        md += ". Bases of the original: \(Stat(values: g.cells.map(\.basesSeconds)).text("%.2f")) s (once per version, not in PGU's time)."
        let steps = Set(g.cells.compactMap { $0.details["pguSteps"] })
        if !steps.isEmpty { md += " PGU steps: \(steps.sorted().joined(separator: ", "))." }
        md += "\n\n"
        let isClass = g.setting == "class0", isPoison = g.setting == "depoison"
        let sequential = g.stepCount > 1
        var header = (sequential ? ["step"] : []) + ["method", "D_f acc %", "D_r acc %", "test acc %"]
        if isClass { header += ["class-0 test %", "other classes test %"] }
        if isPoison { header += ["D_f true-label acc %"] }
        header += ["entropy-MIA % of D_f", "loss-MIA AUC", "JS to Retrain (D_f)", "L2 to Original", "wall s", "speed-up vs Retrain", "max ρ (γ)"]
        md += "| " + header.joined(separator: " | ") + " |\n"
        md += "|" + header.enumerated().map { $0.offset < (sequential ? 2 : 1) ? "---" : "---:" }.joined(separator: "|") + "|\n"
        var anyCached = false
        for step in 1...max(g.stepCount, 1) {
            for method in g.methods {
                let rows = g.rows(method, step: step)
                guard !rows.isEmpty else { continue }
                var cells: [String] = sequential ? ["\(step)"] : []
                cells.append(methodNames[method] ?? method)
                cells.append(stat(rows, { $0.forgetAccuracy }).text("%.2f", scale: 100))
                cells.append(stat(rows, { $0.retainAccuracy }).text("%.2f", scale: 100))
                cells.append(stat(rows, { $0.testAccuracy }).text("%.2f", scale: 100))
                if isClass {
                    cells.append(stat(rows, { $0.classTestAccuracy }).text("%.2f", scale: 100))
                    cells.append(stat(rows, { $0.otherClassesTestAccuracy }).text("%.2f", scale: 100))
                }
                if isPoison { cells.append(stat(rows, { $0.trueLabelAccuracy }).text("%.2f", scale: 100)) }
                let mia = stat(rows, { $0.entropyMIA })
                let noSignal = rows.count - mia.count
                if mia.count == 0 { cells.append("no signal") } else {
                    cells.append(mia.text("%.1f", scale: 100) + (noSignal > 0 ? " (no signal in \(noSignal) of \(rows.count))" : ""))
                }
                cells.append(stat(rows, { $0.lossMIAAUC }).text("%.3f"))
                cells.append(method == "retrain" ? "0" : stat(rows, { $0.jsToRetrain }).text("%.4f"))
                cells.append(stat(rows, { $0.weightDistanceToOriginal }).text("%.2f"))
                let cached = rows.contains { $0.row.secondsCached }
                anyCached = anyCached || cached
                let t = stat(rows, { $0.seconds })
                cells.append(t.count == 0 ? "—" : (t.std.map { seconds(t.mean) + " ± " + seconds($0) } ?? seconds(t.mean)) + (cached ? " †" : ""))
                if method == "original" || method == "clean" {
                    cells.append("—")
                } else {
                    let speed = Stat(values: rows.compactMap { r in r.retrain.map { $0.seconds / max(r.row.seconds, 1e-9) } })
                    let cpuSpeed = Stat(values: rows.compactMap { r in
                        guard let rc = r.retrain?.cpuSeconds, let mc = r.row.cpuSeconds else { return nil }
                        return rc / max(mc, 1e-9)
                    })
                    cells.append(speed.count == 0 ? "—" : speed.text("%.1f") + "×" + (cpuSpeed.count == speed.count ? " (CPU " + cpuSpeed.text("%.1f") + "×)" : ""))
                }
                if method == "pgu" {
                    let infos = g.cells.compactMap { c in c.steps.first { $0.step == step }?.pguRun }
                    let rho = infos.map(\.maxRho).max() ?? 0
                    let gammas = infos.map { $0.gamma.map { String(format: "%.2f", $0) } ?? "none" }.joined(separator: ", ")
                    cells.append(String(format: "%.1e", rho) + " (\(gammas))")
                } else {
                    cells.append("—")
                }
                md += "| " + cells.joined(separator: " | ") + " |\n"
            }
        }
        md += "\n"
        if anyCached { md += "† training time recorded when the cached weights were trained (an earlier cell, same seed and recipe).\n\n" }
        md += pguNotes(g)
        md += discussion(g)
        // Histogram of the last step.
        let step = g.stepCount
        let name = "\(g.key).svg"
        let series = ["original", "retrain", "pgu"].map { m -> (String, [Int]) in
            let rows = g.rows(m, step: step)
            var sum = [Int](repeating: 0, count: histogramBins)
            for r in rows { for (i, v) in r.row.entropyHistogram.enumerated() where i < sum.count { sum[i] += v } }
            return (m, sum)
        }
        let classes = Int(first.details["classes"] ?? "") ?? 10
        writeSVG(name, EntropyHistogramSVG.render(title: "\(g.data) \(g.arch), \(title)\(sequential ? ", after request \(step)" : ""): D_f entropies (seeds \(seedList(g.cells)))",
                                                  series: series, maxEntropy: log(Double(classes))))
        md += "![Entropy of D_f softmax outputs, Retrain vs PGU](\(svgLink)/\(name))\n\n"
        md += "*Softmax entropy of D_f\(sequential ? " after the last request" : ""), all seeds pooled: Retrain (blue), PGU (orange), Original (grey outline). "
        md += "An unlearned model should look like Retrain: low-entropy (confident) outputs are what the membership attack flags.*\n\n"
        return md
    }

    static func pguNotes(_ g: CellGroup) -> String {
        var md = ""
        var failures: [String] = []
        var trials: [String] = []
        for c in g.cells {
            for s in c.steps {
                guard let p = s.pguRun else { continue }
                if p.status != "applied" { failures.append("seed \(c.seed) step \(s.step): \(p.status)") }
                trials.append(p.trials.map { String(format: "%.2f", $0.gamma) + ":" + $0.outcome + "/\($0.epochs)ep" }.joined(separator: " "))
            }
        }
        if !failures.isEmpty {
            md += "**PGU did not commit** (the model is left unchanged, as `lethe forget` would refuse the request): "
            md += failures.joined(separator: "; ") + ".\n\n"
        }
        let epochs = g.cells.flatMap { c in c.steps.compactMap { $0.pguRun?.trials.reduce(0) { $0 + $1.epochs } } }
        let trialCounts = g.cells.flatMap { c in c.steps.compactMap { $0.pguRun?.trials.count } }
        md += "PGU γ trials per request: \(Stat(values: trialCounts.map(Double.init)).text("%.1f")); epochs over D_f summed over trials: \(Stat(values: epochs.map(Double.init)).text("%.1f")).\n\n"
        // Layers the committed update left out (γ 1, the whole input space protected).
        var leftOut: [String] = []
        for c in g.cells {
            for s in c.steps {
                let names = (s.pguRun?.layers ?? []).filter { $0.gamma == 1 && $0.k == $0.dimension }.map(\.layer)
                if !names.isEmpty { leftOut.append("seed \(c.seed)\(g.stepCount > 1 ? " step \(s.step)" : ""): " + names.joined(separator: ", ")) }
            }
        }
        if !leftOut.isEmpty {
            md += "Layers left out of the committed update (γ 1; class requests leave out the layer they move most when the other classes pay more than 2 points): "
                + leftOut.joined(separator: "; ") + ".\n\n"
        }
        return md
    }

    /// Sentences comparing PGU with Retrain at the group's last step, from the numbers alone.
    static func discussion(_ g: CellGroup) -> String {
        let step = g.stepCount
        func mean(_ m: String, _ f: (RowResult) -> Double?) -> Double? {
            let s = stat(g.rows(m, step: step), f)
            return s.count == 0 ? nil : s.mean
        }
        var metrics: [(name: String, f: (RowResult) -> Double?, unit: String)] = [
            ("D_f accuracy", { $0.forgetAccuracy }, "pp"), ("D_r accuracy", { $0.retainAccuracy }, "pp"),
            ("test accuracy", { $0.testAccuracy }, "pp"), ("entropy-MIA fraction", { $0.entropyMIA }, "pp"),
            ("loss-MIA AUC", { $0.lossMIAAUC }, "points"),
        ]
        if g.setting == "class0" { metrics.append(("class-0 test accuracy", { $0.classTestAccuracy }, "pp")) }
        if g.setting == "depoison" { metrics.append(("D_f true-label accuracy", { $0.trueLabelAccuracy }, "pp")) }
        var md = "**Where PGU is closest to and furthest from Retrain\(g.stepCount > 1 ? " (after request \(step))" : "").** "
        var gaps: [(name: String, gap: Double, pgu: Double, retrain: Double, original: Double?)] = []
        for m in metrics {
            guard let p = mean("pgu", m.f), let r = mean("retrain", m.f) else { continue }
            gaps.append((m.name, abs(p - r) * 100, p, r, mean("original", m.f)))
        }
        func fmt(_ v: Double) -> String { String(format: "%.1f", v * 100) }
        if let close = gaps.min(by: { $0.gap < $1.gap }), let far = gaps.max(by: { $0.gap < $1.gap }) {
            md += "Closest on \(close.name) (PGU \(fmt(close.pgu)) vs Retrain \(fmt(close.retrain)), \(String(format: "%.1f", close.gap)) apart); "
            md += "furthest on \(far.name) (PGU \(fmt(far.pgu)) vs Retrain \(fmt(far.retrain)), \(String(format: "%.1f", far.gap)) apart"
            if let o = far.original { md += "; Original \(fmt(o))" }
            md += "). "
        }
        // Original's distance to Retrain against PGU's, per metric where Original differs from Retrain by ≥ 1.
        var closes: [String] = []
        for x in gaps {
            guard let o = x.original, abs(o - x.retrain) * 100 >= 1 else { continue }
            let overshoot = (x.pgu - x.retrain) * (o - x.retrain) < 0
            closes.append("\(x.name) \(String(format: "%.1f", abs(o - x.retrain) * 100)) → \(String(format: "%.1f", x.gap))\(overshoot ? " (past Retrain, on the other side)" : "")")
        }
        if !closes.isEmpty { md += "Distance to Retrain, Original → PGU: " + closes.joined(separator: "; ") + ". " }
        // Per seed: PGU − Retrain on D_f (Retrain's own D_f accuracy varies by about a point from seed to seed).
        let perSeed = g.rows("pgu", step: step).compactMap { r in r.retrain.map { (r.cell.seed, (r.row.forgetAccuracy - $0.forgetAccuracy) * 100) } }
        if perSeed.count > 1 {
            md += "PGU − Retrain on D_f per seed: " + perSeed.sorted { $0.0 < $1.0 }.map { String(format: "%+.1f", $0.1) + " (s\($0.0))" }.joined(separator: ", ") + ". "
        }
        // JS ranking among the unlearning methods.
        let js = unlearners.compactMap { m in mean(m, { $0.jsToRetrain }).map { (m, $0) } }.sorted { $0.1 < $1.1 }
        if let pos = js.firstIndex(where: { $0.0 == "pgu" }), let pjs = mean("pgu", { $0.jsToRetrain }) {
            md += String(format: "JS divergence to Retrain on D_f: PGU %.4f", pjs)
            if let o = mean("original", { $0.jsToRetrain }) { md += String(format: " (Original %.4f)", o) }
            md += ", rank \(pos + 1) of \(js.count) unlearning methods"
            if pos > 0 { md += String(format: " (lowest: %@ %.4f)", (methodNames[js[0].0] ?? js[0].0) as NSString, js[0].1) }
            md += ". "
            if let o = mean("original", { $0.jsToRetrain }), pjs > o {
                md += "By this measure PGU's D_f outputs are further from Retrain's than Original's were. "
            }
        }
        // Test accuracy kept?
        if let p = mean("pgu", { $0.testAccuracy }), let o = mean("original", { $0.testAccuracy }) {
            if abs(p - o) < 5e-5 {
                md += String(format: "Test accuracy stayed at %.2f%%. ", 100 * o)
            } else {
                md += String(format: "Test accuracy %@ from %.2f%% to %.2f%%. ", (p > o ? "rose" : "fell") as NSString, 100 * o, 100 * p)
            }
        }
        // Did PGU change the model at all?
        let unchanged = g.rows("pgu", step: step).filter { $0.row.weightDistanceToOriginal == 0 }.count
        if unchanged > 0 {
            md += "**In \(unchanged) of \(g.rows("pgu", step: step).count) seeds PGU left the weights exactly as they were** (L2 to Original 0): "
            md += "its run committed the starting point, so every metric of that seed equals Original's. "
        }
        // Speed.
        let speed = Stat(values: g.rows("pgu", step: step).compactMap { r in r.retrain.map { $0.seconds / max(r.row.seconds, 1e-9) } })
        if speed.count > 0, let pt = mean("pgu", { $0.seconds }), let rt = mean("retrain", { $0.seconds }) {
            md += "PGU took \(seconds(pt)) s against Retrain's \(seconds(rt)) s (speed-up \(speed.text("%.1f"))×"
            let withBases = Stat(values: g.cells.compactMap { c -> Double? in
                guard let s = c.steps.first(where: { $0.step == step }), let p = s.rows.first(where: { $0.method == "pgu" }),
                      let r = s.rows.first(where: { $0.method == "retrain" }) else { return nil }
                return r.seconds / max(p.seconds + c.basesSeconds, 1e-9)
            })
            md += "; \(withBases.text("%.1f"))× counting the bases as well"
            let cpuSpeed = Stat(values: g.rows("pgu", step: step).compactMap { r in
                guard let rc = r.retrain?.cpuSeconds, let pc = r.row.cpuSeconds else { return nil }
                return rc / max(pc, 1e-9)
            })
            if cpuSpeed.count > 0 { md += "; in CPU seconds \(cpuSpeed.text("%.1f"))× over \(cpuSpeed.count) seed\(cpuSpeed.count == 1 ? "" : "s")" }
            md += "). "
            if rt < 1 { md += "Every method takes well under a second here, so these wall times measure fixed overheads more than the methods' cost. " }
        }
        if g.setting == "depoison", let p = mean("pgu", { $0.trueLabelAccuracy }), let o = mean("original", { $0.trueLabelAccuracy }),
           let c = mean("clean", { $0.trueLabelAccuracy }), let r = mean("retrain", { $0.trueLabelAccuracy }) {
            md += String(format: "On the poisoned samples' true labels PGU went from %.1f%% to %.1f%% (clean model %.1f%%, Retrain %.1f%%). ", 100 * o, 100 * p, 100 * c, 100 * r)
        }
        return md + "\n\n"
    }

    static func expectedCells(seeds: Int) -> [String] {
        var out: [String] = []
        for m in evalModels { for s in EvalSetting.allCases { for seed in 0..<seeds { out.append("\(m.data)-\(m.arch)-\(s.rawValue)-s\(seed)") } } }
        return out
    }

    static func notRunSection(_ cells: [CellResult], seeds: Int) -> String {
        let have = Set(cells.map(cellName))
        let missing = expectedCells(seeds: seeds).filter { !have.contains($0) }
        var md = "## Cells not run yet\n\n"
        guard !missing.isEmpty else { return md + "None: every cell of the grid (\(seeds) seeds) has a record.\n\n" }
        md += "The grid is {digits mlp, Fashion-MNIST mlp, cnn, allcnn (width 0.5)} × {\(EvalSetting.allCases.map(\.rawValue).joined(separator: ", "))} × seeds 0–\(seeds - 1). "
        md += "These \(missing.count) cells have no record yet, so their tables above are missing or have fewer seeds; "
        md += "`tools/eval/run --only PATTERN` runs them (a cell's name is its record's file name):\n\n"
        for m in evalModels {
            let prefix = "\(m.data)-\(m.arch)-"
            let ms = missing.filter { $0.hasPrefix(prefix) }
            guard !ms.isEmpty else { continue }
            var bySetting: [String] = []
            for s in EvalSetting.allCases {
                let seedsMissing = ms.filter { $0.hasPrefix(prefix + s.rawValue + "-s") }.map { String($0.split(separator: "-").last ?? "") }
                if !seedsMissing.isEmpty { bySetting.append("\(s.rawValue) (\(seedsMissing.joined(separator: ", ")))") }
            }
            md += "- \(m.data) \(m.arch): not run yet — " + bySetting.joined(separator: "; ") + "\n"
        }
        if missing.contains(where: { $0.hasPrefix("fashion-mnist-allcnn-") }) {
            md += """

                allcnn (width 0.5) does not fit the time this evaluation has: one epoch of it costs 10.9× the `cnn`'s CPU time
                (45.7 against 4.2 user seconds for `lethe train --arch allcnn --width 0.5 --epochs 1 --threads 1` and `--arch cnn`
                on the first 3000 Fashion-MNIST training images), so one 15-epoch training takes about 3.8 CPU hours at one
                thread, and every cell needs at least two (Original and Retrain; sequential requests four more).

                """
        }
        return md + "\n"
    }

    static func commandsSection(_ cells: [CellResult]) -> String {
        var md = """
            ## Reproducing

            ```sh
            tools/eval/run                       # every cell without a record (3 seeds), then this file
            tools/eval/run --quick               # digits mlp cells only (minutes)
            tools/eval/run --only fashion-mnist-mlp          # one model's missing cells
            tools/eval/run --only fashion-mnist-mlp-random1000-s0 --force   # re-run one cell
            tools/eval/run --render              # only re-render this file from the records
            ```

            `tools/eval/run` installs the Debian packages (`tools/install-deps`), builds `lethe-eval` in release
            mode, runs `lethe-eval cell` for each missing cell (records in `tools/eval/results/`, written
            atomically, so an interrupted run resumes where it stopped) and `lethe-eval report`. Original and Retrain
            weights are cached in `.build/eval-cache` (not committed; delete it after changing the training code). A record
            keeps the PGU configuration and commit it ran with, so after changing PGU's defaults re-run the affected
            cells with `--force` (the Method section lists every configuration in use). A record's exact command, e.g.:


            """
        if let c = cells.first { md += "```sh\n\(c.command)\n```\n\n" } else { md += "(no record yet)\n\n" }
        return md
    }

    static func cellsAppendix(_ cells: [CellResult]) -> String {
        var md = "## Appendix: cells\n\n| cell | commit | started (UTC) | total s | load avg at start / end | PGU status per request |\n|---|---|---|---:|---|---|\n"
        for c in cells.sorted(by: { cellName($0) < cellName($1) }) {
            let load = String(format: "%.2f / %.2f", c.machine.loadStart.first ?? .nan, c.machine.loadEnd.first ?? .nan)
            let status = c.steps.map { $0.pguRun?.status ?? "—" }.joined(separator: ", ")
            md += "| \(cellName(c)) | \(c.commit ?? "—") | \(c.started) | \(seconds(c.totalSeconds)) | \(load) | \(status) |\n"
        }
        return md
    }
}
