/// A model description, read from JSON (schema: schema/model-spec.schema.json).
///
/// Either a named architecture with options:
/// `{"arch": "cnn"}`, `{"arch": "mlp", "hidden": [256, 256]}`, `{"arch": "allcnn", "width": 0.25}`,
/// `{"arch": "resnet18", "width": 0.125}`, or an explicit layer list:
/// `{"layers": [{"type": "flatten"}, {"type": "linear", "out": 10}]}`.
/// Input shape and class count normally come from the dataset; `input`/`classes` override them.
public struct ModelSpec: Codable, Sendable, Equatable {
    /// `mlp`, `cnn`, `allcnn` or `resnet18`; nil when `layers` is given.
    public var arch: String?
    /// Hidden sizes: mlp's hidden layers (default [256, 256]); cnn's classifier hidden layer (default [128]).
    public var hidden: [Int]?
    /// cnn's two convolution widths (default [32, 64]).
    public var channels: [Int]?
    /// Width multiplier for allcnn (96/192 base) and resnet18 (64 base); default 1.
    public var width: Double?
    /// Dropout probability before each hidden Linear of mlp/cnn (default 0: no dropout layer).
    public var dropout: Double?
    /// Explicit layers, executed in order and named `0`, `1`, … like a PyTorch `nn.Sequential`.
    public var layers: [LayerSpec]?
    /// Per-sample input shape [C, H, W]; defaults to the dataset's.
    public var input: [Int]?
    /// Number of classes; defaults to the dataset's.
    public var classes: Int?

    /// A spec.
    public init(arch: String? = nil, hidden: [Int]? = nil, channels: [Int]? = nil, width: Double? = nil,
                dropout: Double? = nil, layers: [LayerSpec]? = nil, input: [Int]? = nil, classes: Int? = nil) {
        self.arch = arch; self.hidden = hidden; self.channels = channels; self.width = width
        self.dropout = dropout; self.layers = layers; self.input = input; self.classes = classes
    }

    /// Decodes a spec from JSON bytes.
    public static func decode(json: [UInt8]) throws(NNError) -> ModelSpec {
        do {
            return try JSONCodec.decode(ModelSpec.self, from: json)
        } catch {
            throw .invalidSpec("cannot decode model spec JSON: \(error)")
        }
    }
}

/// One layer of an explicit layer list.
public struct LayerSpec: Codable, Sendable, Equatable {
    /// `linear`, `conv2d`, `relu`, `maxpool2d`, `avgpool2d`, `batchnorm1d`, `batchnorm2d`, `dropout`, `flatten`, `basicblock`.
    public var type: String
    /// Output features / channels (linear, conv2d, basicblock); for the last linear it may be omitted (= classes).
    public var out: Int?
    /// Kernel size (conv2d, maxpool2d, avgpool2d).
    public var kernel: Int?
    /// Stride (conv2d, pools, basicblock).
    public var stride: Int?
    /// Zero padding (conv2d).
    public var padding: Int?
    /// Whether conv2d/linear has a bias (default true).
    public var bias: Bool?
    /// Dropout probability.
    public var p: Double?
    /// Global average pooling (avgpool2d).
    public var global: Bool?

    /// A layer spec.
    public init(type: String, out: Int? = nil, kernel: Int? = nil, stride: Int? = nil, padding: Int? = nil,
                bias: Bool? = nil, p: Double? = nil, global: Bool? = nil) {
        self.type = type; self.out = out; self.kernel = kernel; self.stride = stride; self.padding = padding
        self.bias = bias; self.p = p; self.global = global
    }
}

import Foundation

enum JSONCodec {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(bytes))
    }
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return Array(try e.encode(value))
    }
}
