import Foundation

/// A JSON document as a value, so tools can show and compare facts.json whatever shape
/// DeviceFacts has in the version that wrote it.
public indirect enum JSONValue: Sendable, Equatable, Decodable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Keys sorted, so output is stable.
    case object([(key: String, value: JSONValue)])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .integer(value) }
        else if let value = try? container.decode(Double.self) { self = .double(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else {
            let dictionary = try container.decode([String: JSONValue].self)
            self = .object(dictionary.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
        }
    }

    public init(json bytes: [UInt8]) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.integer(x), .double(y)), let (.double(y), .integer(x)): return Double(x) == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case let .object(pairs) = self { return pairs.first { $0.key == key }?.value }
        return nil
    }

    /// `[]` or `{}`.
    public var isEmptyContainer: Bool {
        switch self {
        case let .array(items): return items.isEmpty
        case let .object(pairs): return pairs.isEmpty
        default: return false
        }
    }

    public var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    /// Scalars as plain text (strings unquoted); containers as compact JSON.
    public var description: String {
        switch self {
        case .null: return "null"
        case let .bool(value): return value ? "true" : "false"
        case let .integer(value): return String(value)
        case let .double(value): return value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
        case let .string(value): return value
        case .array, .object: return compactJSON
        }
    }

    /// One-line JSON.
    public var compactJSON: String {
        switch self {
        case let .string(value): return Self.quoted(value)
        case let .array(items): return "[" + items.map(\.compactJSON).joined(separator: ",") + "]"
        case let .object(pairs): return "{" + pairs.map { Self.quoted($0.key) + ":" + $0.value.compactJSON }.joined(separator: ",") + "}"
        default: return description
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// A short one-line summary of an object: its identifying field first, then up to `limit`
    /// other scalar fields (`name=FPC 0 serial-number=ABC123 ...`).
    public func summary(limit: Int = 5) -> String {
        guard case let .object(pairs) = self else { return description }
        let scalars = pairs.filter {
            $0.value.isScalar && $0.value != .null && $0.value != .string("") && !JSONValue.hiddenInSummary.contains($0.key)
        }
        let identity = JSONValue.identityKeys.compactMap { key in scalars.first { $0.key == key } }.prefix(1)
        let rest = scalars.filter { pair in !identity.contains { $0.key == pair.key } }
        let shown = Array(identity) + rest.prefix(limit - identity.count)
        var text = shown.map { pair in
            let value = pair.value.description
            return value.contains(" ") ? "\(pair.key)=\"\(value)\"" : "\(pair.key)=\(value)"
        }.joined(separator: " ")
        if shown.count < scalars.count { text += " …" }
        return text.isEmpty ? compactJSON : text
    }

    /// Bookkeeping fields that say nothing to a reader (tree depth is shown by indentation).
    static let hiddenInSummary: Set<String> = ["depth"]

    /// Fields that name an element of a list (a FRU, an RE, an alarm, a file), most specific first.
    /// Used to match list items between two captures instead of comparing by position.
    static let identityKeys = [
        "name", "slot", "section", "routingEngine", "re-name", "reName", "member", "memberId", "node", "nodeId",
        "fileName", "file", "path", "mountedOn", "mountPoint", "filesystem", "filesystemName",
        "description", "id",
    ]
}
