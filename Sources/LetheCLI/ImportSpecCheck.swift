import Lethe
import LetheNN

/// Checks the model spec given to `lethe import --spec` before anything is written: it must be a
/// model spec with known architecture or layer types, and when it states its `input` shape and
/// `classes` the file's tensors must be exactly its state_dict (names and shapes). Without them
/// the shapes are checked when the version is first used with a dataset (`lethe bases`, `forget`).
func checkImportSpec(_ bytes: [UInt8], file: String) throws {
    let spec = try ModelSpec.decode(json: bytes)
    try spec.checkNames()
    guard let input = spec.input, let classes = spec.classes else { return }
    let header = try Store.readSafetensorsHeader(file)
    try spec.check(against: header.entries.map { ($0.name, $0.shape) }, input: input, classes: classes)
}
