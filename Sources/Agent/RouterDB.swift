import Bundle
import Foundation

/// An Oxidized `router.db`: one device per line, fields split by a delimiter (Oxidized's
/// `source.csv.delimiter`, `:` by default) and named by column (`source.csv.map`, default
/// `name: 0, model: 1`; `ssh_port` of `vars_map` is `port` here). Lines starting with `#` and
/// blank lines are skipped, as Oxidized does.
public struct RouterDB: Sendable {
    public var path: String
    public var text: String

    public static let maximumFileSize = 32 << 20

    public init(path: String) throws(InventorySourceError) {
        let data: [UInt8]
        switch BoundedFile.contents(of: path, limit: Self.maximumFileSize) {
        case let .success(read): data = read
        case let .failure(failure): throw InventorySourceError(source: path, failure.message("the router.db", path, limit: Self.maximumFileSize))
        }
        self.init(path: path, text: String(decoding: data, as: UTF8.self))
    }

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }

    /// The devices whose model is one of `settings.models`; a line with too few fields or a bad
    /// port is skipped with a message naming it.
    public func yield(source: String, settings: RouterDBSettings, defaultGroup: String) -> InventoryYield {
        var out = InventoryYield(source: source)
        let models = Set(settings.models.map { $0.lowercased() })
        let needed = (settings.fields.values.max() ?? 0) + 1
        var lineNumber = 0
        // isNewline: "\r\n" is one Character in Swift, and a CRLF file must split as well.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = String(raw)
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.trimmingCharacters(in: .whitespaces).hasPrefix("#") { continue }
            let fields = line.components(separatedBy: settings.delimiter)
            let where_ = "\(path):\(lineNumber)"
            func field(_ name: String) -> String? {
                guard let index = settings.fields[name], index < fields.count else { return nil }
                let value = fields[index].trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value
            }
            guard let name = field("name") else {
                out.skipped.append("inventory \(source): \(where_) skipped: no device name in column \(settings.fields["name"] ?? 0)")
                continue
            }
            if !models.isEmpty {
                guard let model = field("model")?.lowercased(), models.contains(model) else { continue }
            }
            if let ipColumn = settings.fields["ip"], field("ip") == nil {
                out.skipped.append("inventory \(source): device \(name) (\(where_)) skipped: no address in column \(ipColumn) (\(fields.count) fields split by \"\(settings.delimiter)\", the map needs \(needed))"
                    + (settings.delimiter == ":" && fields.count > needed ? "; an IPv6 address needs another delimiter" : ""))
                continue
            }
            var device = Device(name: name, host: field("ip") ?? name, group: defaultGroup)
            if settings.groupsAreCareAgentGroups, let group = field("group") { device.group = group }
            if let port = field("port") {
                guard let n = Int(port), (1...65535).contains(n) else {
                    out.skipped.append("inventory \(source): device \(name) (\(where_)) skipped: port \"\(port)\" is not a TCP port from 1 to 65535")
                    continue
                }
                device.port = n
            }
            out.entries.append(InventoryEntry(device: device, origin: where_))
        }
        return out
    }
}
