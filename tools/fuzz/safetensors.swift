// libFuzzer target: the safetensors parser must never crash, whatever the bytes.
// Built by tools/fuzz/run against the LetheTensor module.
import LetheTensor

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let (header, tensors) = try? Safetensors.decode(bytes) {
        // Whatever parses must re-encode to the same bytes with its own header.
        let again = Safetensors.encode(tensors, header: header.rawJSON)
        precondition(again.count == bytes.count, "re-encoding changed the size")
    }
    return 0
}
