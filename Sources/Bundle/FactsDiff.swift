/// One difference between two JSON documents, at a path like
/// `inventory.chassis.modules[name=FPC 0].serialNumber`.
public struct JSONChange: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case added, removed, changed }

    public var kind: Kind
    public var path: String
    /// Top-level key the change is under (`inventory`, `software`, ...).
    public var section: String
    public var old: String?
    public var new: String?
    /// Whether the added/removed value is a whole object (a FRU, an alarm), not a single field.
    public var isElement: Bool

    public var description: String {
        switch kind {
        case .added: return "+ \(path): \(new ?? "")"
        case .removed: return "- \(path): \(old ?? "")"
        case .changed: return "~ \(path): \(old ?? "") → \(new ?? "")"
        }
    }
}

/// Structural comparison of two JSON values. Lists whose items all carry a unique identifying
/// field (see ``JSONValue/identityKeys``) are matched by that field, so a FRU inserted in slot 0
/// shows as one added FRU rather than every later slot "changed".
public enum JSONDiff {
    public static func changes(from old: JSONValue, to new: JSONValue) -> [JSONChange] {
        var out: [JSONChange] = []
        compare(old, new, path: "", section: "", into: &out)
        return out
    }

    private static func empty(like value: JSONValue) -> JSONValue {
        switch value {
        case .object: return .object([])
        case .array: return .array([])
        default: return .null
        }
    }

    private static func compare(_ a: JSONValue, _ b: JSONValue, path: String, section: String,
                                into out: inout [JSONChange]) {
        switch (a, b) {
        case (.null, _) where b.isScalar:
            out.append(added(b, path, section))
        case (_, .null) where a.isScalar:
            out.append(removed(a, path, section))
        case let (.object(x), .object(y)):
            let keys = Set(x.map(\.key)).union(y.map(\.key)).sorted()
            for key in keys {
                let sub = path.isEmpty ? key : "\(path).\(key)"
                let sec = section.isEmpty ? key : section
                // A field missing on one side compares with an empty value of the other's kind, so a
                // whole new section shows item by item rather than as one unreadable blob.
                switch (a[key] ?? .null, b[key] ?? .null) {
                case (.null, .null): break
                case let (.null, new): compare(Self.empty(like: new), new, path: sub, section: sec, into: &out)
                case let (old, .null): compare(old, Self.empty(like: old), path: sub, section: sec, into: &out)
                case let (old, new): compare(old, new, path: sub, section: sec, into: &out)
                }
            }
        case let (.array(x), .array(y)):
            if let key = identityKey(x, y) {
                let oldItems = Dictionary(uniqueKeysWithValues: x.map { ($0[key]!.description, $0) })
                let newItems = Dictionary(uniqueKeysWithValues: y.map { ($0[key]!.description, $0) })
                for item in x {
                    let id = item[key]!.description
                    let sub = "\(path)[\(key)=\(id)]"
                    if let other = newItems[id] { compare(item, other, path: sub, section: section, into: &out) }
                    else { removedItem(item, sub, section, into: &out) }
                }
                for item in y where oldItems[item[key]!.description] == nil {
                    addedItem(item, "\(path)[\(key)=\(item[key]!.description)]", section, into: &out)
                }
            } else if x.allSatisfy(\.isScalar) && y.allSatisfy(\.isScalar) {
                // Lists of plain values (feature names, addresses) compare as sets.
                let oldSet = Set(x.map(\.description)), newSet = Set(y.map(\.description))
                for value in x.map(\.description) where !newSet.contains(value) { out.append(removed(.string(value), path, section)) }
                for value in y.map(\.description) where !oldSet.contains(value) { out.append(added(.string(value), path, section)) }
            } else {
                for i in 0 ..< max(x.count, y.count) {
                    let sub = "\(path)[\(i)]"
                    if i < x.count && i < y.count { compare(x[i], y[i], path: sub, section: section, into: &out) }
                    else if i < x.count { removedItem(x[i], sub, section, into: &out) }
                    else { addedItem(y[i], sub, section, into: &out) }
                }
            }
        default:
            if a != b {
                out.append(JSONChange(kind: .changed, path: path, section: section, old: a.description, new: b.description, isElement: false))
            }
        }
    }

    /// A list item that came or went: one change when it has fields to name it by, otherwise
    /// (a wrapper such as a per-RE section) its contents one by one.
    private static func addedItem(_ item: JSONValue, _ path: String, _ section: String, into out: inout [JSONChange]) {
        if case let .object(pairs) = item, !pairs.contains(where: { $0.value.isScalar && $0.value != .null }) {
            compare(.object([]), item, path: path, section: section, into: &out)
        } else {
            out.append(added(item, path, section))
        }
    }

    private static func removedItem(_ item: JSONValue, _ path: String, _ section: String, into out: inout [JSONChange]) {
        if case let .object(pairs) = item, !pairs.contains(where: { $0.value.isScalar && $0.value != .null }) {
            compare(item, .object([]), path: path, section: section, into: &out)
        } else {
            out.append(removed(item, path, section))
        }
    }

    private static func added(_ value: JSONValue, _ path: String, _ section: String) -> JSONChange {
        JSONChange(kind: .added, path: path, section: section, old: nil, new: value.summary(), isElement: !value.isScalar)
    }

    private static func removed(_ value: JSONValue, _ path: String, _ section: String) -> JSONChange {
        JSONChange(kind: .removed, path: path, section: section, old: value.summary(), new: nil, isElement: !value.isScalar)
    }

    /// The first identity field every object in both lists has as a scalar, unique within each list.
    static func identityKey(_ x: [JSONValue], _ y: [JSONValue]) -> String? {
        let all = x + y
        guard !all.isEmpty, all.allSatisfy({ if case .object = $0 { return true } else { return false } }) else { return nil }
        for key in JSONValue.identityKeys {
            guard all.allSatisfy({ $0[key]?.isScalar == true && $0[key] != .null }) else { continue }
            let xs = x.map { $0[key]!.description }, ys = y.map { $0[key]!.description }
            if Set(xs).count == xs.count && Set(ys).count == ys.count { return key }
        }
        return nil
    }
}
