import Bundle
import Foundation

/// A device inventory as CSV (RFC 4180 quoting): a header naming at least `name` and `host`,
/// optionally `port` and `group`, in any order; other columns (site, rack, owner...) are ignored.
/// Empty lines and lines starting with `#` are skipped.
public struct InventoryFile: Sendable {
    /// One device and the line it came from.
    public struct Row: Sendable, Equatable {
        public var device: Device
        public var line: Int
    }

    public var path: String
    public var rows: [Row]
    /// The largest inventory CSV read (docs/inventory-sources.md).
    public static let maximumFileSize = 32 << 20
    /// Rows left out when reading with `skippingBadRows` (an `[inventory NAME]` source), each
    /// naming the file, line and device.
    public var skipped: [String] = []

    /// Reads `path`. With `skippingBadRows`, a bad row is left out and reported in ``skipped``
    /// instead of failing the whole file (a missing file or header still fails).
    public init(path: String, skippingBadRows: Bool = false) throws(ConfigurationError) {
        let data: [UInt8]
        switch BoundedFile.contents(of: path, limit: Self.maximumFileSize) {
        case let .success(read): data = read
        case let .failure(.unreadable(code)) where code == ENOENT || code == EACCES:
            throw ConfigurationError(file: path, line: 0, column: 0, message: "cannot read the inventory (missing, or not readable by this user)")
        case let .failure(failure):
            throw ConfigurationError(file: path, line: 0, column: 0, message: failure.message("the inventory", path, limit: Self.maximumFileSize))
        }
        try self.init(path: path, text: String(decoding: data, as: UTF8.self), skippingBadRows: skippingBadRows)
    }

    public init(path: String, text: String, skippingBadRows: Bool = false) throws(ConfigurationError) {
        self.path = path
        rows = []
        let records = try Self.records(text, path: path)
        guard let header = records.first else {
            throw ConfigurationError(file: path, line: 1, column: 1, message: "expected a header line such as name,host,port,group")
        }
        let columns = header.fields.map { $0.value.trimmingCharacters(in: .whitespaces).lowercased() }
        func column(_ name: String) -> Int? { columns.firstIndex(of: name) }
        guard let nameColumn = column("name") else {
            throw ConfigurationError(file: path, line: header.line, column: 1, message: "expected a \"name\" column in the header (name,host,port,group)")
        }
        guard let hostColumn = column("host") else {
            throw ConfigurationError(file: path, line: header.line, column: 1, message: "expected a \"host\" column in the header (name,host,port,group)")
        }
        let portColumn = column("port"), groupColumn = column("group")
        for record in records.dropFirst() {
            do throws(ConfigurationError) {
                rows.append(try Self.row(record, path: path, nameColumn: nameColumn, hostColumn: hostColumn, portColumn: portColumn, groupColumn: groupColumn))
            } catch {
                guard skippingBadRows else { throw error }
                skipped.append("\(error)")
            }
        }
    }

    static func row(_ record: Record, path: String, nameColumn: Int, hostColumn: Int, portColumn: Int?, groupColumn: Int?) throws(ConfigurationError) -> Row {
        func field(_ index: Int?) -> (value: String, column: Int)? {
            guard let index, index < record.fields.count else { return nil }
            let f = record.fields[index]
            return (f.value.trimmingCharacters(in: .whitespaces), f.column)
        }
        guard let name = field(nameColumn), !name.value.isEmpty else {
            throw ConfigurationError(file: path, line: record.line, column: 1, message: "expected a device name in the \"name\" column")
        }
        guard let host = field(hostColumn), !host.value.isEmpty else {
            throw ConfigurationError(file: path, line: record.line, column: record.fields.last.map { $0.column } ?? 1,
                                     message: "expected a host (address or DNS name) for device \(name.value)")
        }
        var device = Device(name: name.value, host: host.value)
        if let port = field(portColumn), !port.value.isEmpty {
            guard let n = Int(port.value), (1...65535).contains(n) else {
                throw ConfigurationError(file: path, line: record.line, column: port.column, message: "expected a TCP port from 1 to 65535 for device \(name.value), found \"\(port.value)\"")
            }
            device.port = n
        }
        if let group = field(groupColumn), !group.value.isEmpty { device.group = group.value }
        return Row(device: device, line: record.line)
    }

    struct Record {
        var fields: [(value: String, column: Int)]
        var line: Int
    }

    /// Splits CSV text into records; a quoted field may hold commas, `""` and line breaks.
    static func records(_ text: String, path: String) throws(ConfigurationError) -> [Record] {
        var records: [Record] = []
        var fields: [(value: String, column: Int)] = []
        var field = ""
        var fieldColumn = 1
        var recordLine = 1
        var line = 1, column = 1
        var inQuotes = false, quoteLine = 0, quoteColumn = 0, wasQuoted = false
        var chars = Array(text.unicodeScalars)[...]
        // Spreadsheets save CSV with a UTF-8 byte-order mark, which is not part of the first column's name.
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        func endRecord() {
            fields.append((field, fieldColumn))
            let blank = fields.count == 1 && fields[0].value.trimmingCharacters(in: .whitespaces).isEmpty && !wasQuoted
            let comment = fields.first?.value.hasPrefix("#") == true
            if !blank && !comment { records.append(Record(fields: fields, line: recordLine)) }
            fields = []
            field = ""
        }
        while let c = chars.popFirst() {
            if inQuotes {
                if c == "\"" {
                    if chars.first == "\"" { field.unicodeScalars.append("\""); chars.removeFirst(); column += 2; continue }
                    inQuotes = false
                } else {
                    field.unicodeScalars.append(c)
                    if c == "\n" { line += 1; column = 0 }
                }
                column += 1
                continue
            }
            switch c {
            case "\"":
                guard field.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw ConfigurationError(file: path, line: line, column: column, message: "expected a quote only at the start of a field")
                }
                field = ""
                inQuotes = true; wasQuoted = true; quoteLine = line; quoteColumn = column
            case ",":
                fields.append((field, fieldColumn))
                field = ""
                fieldColumn = column + 1
            case "\r":
                break
            case "\n":
                endRecord()
                line += 1; column = 0
                recordLine = line; fieldColumn = 1; wasQuoted = false
            default:
                field.unicodeScalars.append(c)
            }
            column += 1
        }
        if inQuotes {
            throw ConfigurationError(file: path, line: quoteLine, column: quoteColumn, message: "expected a closing quote for the field opened here")
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return records
    }
}
