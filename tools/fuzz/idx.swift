// libFuzzer target: the IDX parser (Fashion-MNIST's format) never crashes, whatever the bytes;
// whatever parses has exactly the data its header promises.
import LetheNN

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for rank in [1, 3] {
        if let (shape, values) = try? IDX.parse(bytes, path: "fuzz", expectedRank: rank) {
            precondition(shape.count == rank, "wrong rank")
            precondition(values.count == shape.reduce(1, *), "data does not match the header")
        }
    }
    return 0
}
