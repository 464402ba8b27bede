/// Element types of stored tensors, named as safetensors names them.
public enum DType: String, Sendable, CaseIterable, Codable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    /// Whether the elements are IEEE or brain floating point (codecs group their bytes).
    public var isFloatingPoint: Bool { self == .f16 || self == .bf16 || self == .f32 || self == .f64 }

    /// Rank in the safetensors reference writer's dtype order (declaration order of its
    /// `Dtype` enum); the writer lays out larger ranks first.
    public var referenceOrder: Int {
        switch self {
        case .bool: return 0
        case .u8: return 1
        case .i8: return 2
        case .i16: return 3
        case .u16: return 4
        case .f16: return 5
        case .bf16: return 6
        case .i32: return 7
        case .u32: return 8
        case .f32: return 9
        case .f64: return 10
        case .i64: return 11
        case .u64: return 12
        }
    }
}

/// A named tensor as raw little-endian bytes, the unit the store and safetensors move.
public struct NamedTensor: Sendable, Equatable {
    /// PyTorch state_dict name (`features.0.weight`).
    public var name: String
    /// Element type.
    public var dtype: DType
    /// Extents, outermost first.
    public var shape: [Int]
    /// `shape.product · dtype.byteSize` little-endian bytes.
    public var data: [UInt8]

    /// A named tensor; the byte count must match shape and dtype.
    public init(name: String, dtype: DType, shape: [Int], data: [UInt8]) {
        precondition(data.count == shape.reduce(1, *) * dtype.byteSize,
                     "\(name): \(data.count) bytes for shape \(shape) of \(dtype.rawValue)")
        self.name = name; self.dtype = dtype; self.shape = shape; self.data = data
    }

    /// An F32 tensor from a Float tensor.
    public init(name: String, _ tensor: Tensor<Float>) {
        self.name = name; self.dtype = .f32; self.shape = tensor.shape
        self.data = tensor.scalars.withUnsafeBytes { Array($0) }
    }

    /// An I64 tensor from integers (e.g. `num_batches_tracked`).
    public init(name: String, int64 values: [Int64], shape: [Int]) {
        self.name = name; self.dtype = .i64; self.shape = shape
        self.data = values.withUnsafeBytes { Array($0) }
    }

    /// Number of elements.
    public var elementCount: Int { shape.reduce(1, *) }

    /// The elements as Float32 (F32 copied; F64, F16, BF16 and integer types converted), or nil for BOOL.
    public func floats() -> [Float]? {
        let n = elementCount
        return data.withUnsafeBytes { raw -> [Float]? in
            switch dtype {
            case .f32: return (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
            case .f64: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self)) }
            case .f16: return (0..<n).map { Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
            case .bf16: return (0..<n).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
            case .u8: return (0..<n).map { Float(raw[$0]) }
            case .i8: return (0..<n).map { Float(Int8(bitPattern: raw[$0])) }
            case .i16: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
            case .u16: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            case .i32: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .u32: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
            case .i64: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .u64: return (0..<n).map { Float(raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
            case .bool: return nil
            }
        }
    }

    /// The elements as Int64 for integer dtypes, or nil.
    public func int64s() -> [Int64]? {
        let n = elementCount
        return data.withUnsafeBytes { raw -> [Int64]? in
            switch dtype {
            case .i64: return (0..<n).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self) }
            case .i32: return (0..<n).map { Int64(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .u8, .bool: return (0..<n).map { Int64(raw[$0]) }
            case .i8: return (0..<n).map { Int64(Int8(bitPattern: raw[$0])) }
            case .i16: return (0..<n).map { Int64(raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
            case .u16: return (0..<n).map { Int64(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) }
            case .u32: return (0..<n).map { Int64(raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
            default: return nil
            }
        }
    }

    /// A Float tensor view (converted as in `floats()`), or nil for BOOL.
    public func floatTensor() -> Tensor<Float>? {
        floats().map { Tensor(shape: shape, scalars: $0) }
    }
}
