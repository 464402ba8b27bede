// lethe-eval: experiments and the paper-style evaluation (EVALUATION.md).
// Usage: lethe-eval probe --data digits --arch mlp --forget 100 [--gamma 0.5|auto] [--scaling plain|normalized]
import Foundation
import LetheNN
import LetheTensor
import LetheUnlearning

let args = Array(CommandLine.arguments.dropFirst())
func value(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
func log(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8) ?? Data()) }

BLASThreads.set(Int(value("--threads") ?? "2") ?? 2)
let data = value("--data") ?? "digits"
let arch = value("--arch") ?? "mlp"
let epochs = Int(value("--epochs") ?? "15") ?? 15
let forgetCount = Int(value("--forget") ?? "100") ?? 100
let seed = UInt64(value("--seed") ?? "0") ?? 0

let splits = try DatasetLoader.load(data)
let (valSet, testSet) = splits.test.stratifiedSplit(fraction: 0.5, seed: 7)
var spec = ModelSpec(arch: arch)
if data == "digits" && arch == "mlp" { spec.hidden = [64, 32] }
let model = try Model(spec: spec, inputShape: splits.train.sampleShape, classes: splits.train.classCount, seed: seed)
var t0 = Date()
_ = try Training.train(model, on: splits.train, config: TrainingConfig(epochs: epochs, batchSize: 128, learningRate: 0.05,
                                                                      schedule: .cosine(totalEpochs: epochs, minimum: 0), seed: seed))
log("trained \(arch) on \(data) in \(String(format: "%.1f", Date().timeIntervalSince(t0)))s: test \(try Training.evaluate(model, on: testSet).accuracy)")
t0 = Date()
let bases = try PGUEngine.computeBases(model: model, images: splits.train.images)
log("bases in \(String(format: "%.1f", Date().timeIntervalSince(t0)))s")
var rng = SeededGenerator(seed: seed &+ 99)
let forgetIdx = Array(rng.permutation(splits.train.count).prefix(forgetCount)).sorted()
let forget = splits.train.subset(forgetIdx)
var config = PGUConfiguration()
if let g = value("--gamma"), let v = Double(g) { config.gamma = .fixed(v) }
if let s = value("--scaling"), let v = PGUConfiguration.StepScaling(rawValue: s) { config.stepScaling = v }
if let lr = value("--lr").flatMap(Double.init) { config.learningRate = lr; config.finalLearningRate = lr / 5 }
if let m = value("--max-epochs").flatMap(Int.init) { config.maxEpochs = m }
let engine = PGUEngine(model: model, configuration: config)
engine.progress = { log($0) }
let result = try engine.run(bases: Dictionary(uniqueKeysWithValues: bases.map { ($0.layer, $0) }),
                            forget: LabeledSet(forget), heldOut: LabeledSet(valSet))
log("status \(result.status) gamma \(result.gamma ?? -1) maxRho \(result.maxRho)")
log("forget \(result.forgetAccuracyBefore) -> \(result.forgetAccuracyAfter); held-out \(result.heldOutAccuracyBefore) -> \(result.heldOutAccuracyAfter)")
for l in result.layers { log("  \(l.layer): d \(l.dimension) k \(l.k) rho \(l.rho) |dW| \(l.updateNorm)") }
for t in result.trials { log("  trial gamma \(t.gamma) \(t.outcome) epochs \(t.epochs) \(String(format: "%.1f", t.seconds))s") }
log("timings \(result.timings)")
