import Foundation
import Logging
import Synchronization

/// A swift-log handler writing one line per message to stderr, in the form its reader wants:
/// under systemd, whose journal stamps each entry itself, each message goes to the journal's
/// native socket with `PRIORITY=` and the metadata as fields of their own (`DEVICE=`, `RPC=`,
/// `GROUP=`...: `journalctl -u care-agent DEVICE=mx1`), or, should that socket refuse it, to
/// stderr as `<3>message key=value` (the `<N>` priority prefix journald reads with
/// `SyslogLevelPrefix=yes`, the default); on a terminal or in a file,
/// `2026-12-04T18:00:00Z error care-agent: message key=value`.
public struct StandardErrorLogHandler: LogHandler {
    /// How lines look.
    public enum Format: Sendable, Equatable {
        /// `<N>` priority prefix, no timestamp: stderr is connected to the journal.
        case journal
        /// Timestamp, level and label: a terminal, a pipe or a file.
        case plain

        /// `.journal` when stderr is the stream systemd connected to the journal: `$JOURNAL_STREAM`
        /// names its `device:inode`. Compared with stderr's own, so a child whose stderr was
        /// redirected (it inherits the variable) writes plain lines.
        public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment,
                                  descriptor: Int32 = STDERR_FILENO) -> Format {
            guard let value = environment["JOURNAL_STREAM"] else { return .plain }
            let parts = value.split(separator: ":")
            guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return .plain }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { return .plain }
            return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode ? .journal : .plain
        }
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: Format
    let journal: JournalSocket?
    let write: @Sendable (String) -> Void

    /// Writes to stderr in `format` (detected from the environment when nil); in the journal's
    /// case through its native socket first.
    public init(label: String, format: Format? = nil) {
        let format = format ?? .detect()
        self.init(label: label, format: format, journal: format == .journal ? JournalSocket.shared : nil) { line in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Writes each finished line (with its newline) to `write`, and journal entries to `journal`
    /// when given: for tests.
    public init(label: String, format: Format, journal: JournalSocket? = nil, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.format = format
        self.journal = journal
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The syslog priority journald reads from `<N>`: emerg 0 ... debug 7.
    public static func syslogPriority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let journal, journal.send(Self.journalEntry(label: label, level: event.level, message: "\(event.message)", metadata: merged)) {
            return
        }
        write(Self.line(format: format, label: label, level: event.level, message: "\(event.message)", metadata: merged))
    }

    /// The fields of one native journal entry: MESSAGE (with the metadata as `key=value`, as on
    /// a terminal), PRIORITY, SYSLOG_IDENTIFIER, and each metadata key as a field of its own,
    /// named in journal style (`duration-ms` → `DURATION_MS`).
    static func journalEntry(label: String, level: Logger.Level, message: String, metadata: Logger.Metadata) -> [(String, String)] {
        var text = message
        if !metadata.isEmpty { text += " " + pairs(metadata) }
        var fields = [("MESSAGE", text), ("PRIORITY", "\(syslogPriority(level))"), ("SYSLOG_IDENTIFIER", label)]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            guard let name = journalFieldName(key) else { continue }
            fields.append((name, "\(value)"))
        }
        return fields
    }

    /// `key=value` pairs in key order, logfmt style: a value with a blank, `=` or `"` is quoted
    /// (inner `"` and `\` escaped), so that a log shipper (Loki, Vector) reads `error=Couldn't
    /// connect to server` whole rather than cut at the first blank.
    static func pairs(_ metadata: Logger.Metadata) -> String {
        metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\(quoted("\($0.value)"))" }.joined(separator: " ")
    }

    static func quoted(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\t" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// `duration-ms` → `DURATION_MS`; nil for names the journal does not allow or reserves
    /// (its own fields start with `_`; at most 64 characters; not our three).
    /// `text` with C0 and C1 control characters (not the tab) written out.
    static func escapingControls(_ text: String) -> String {
        func isControl(_ scalar: Unicode.Scalar) -> Bool {
            (scalar.value < 0x20 && scalar != "\t") || (0x7F ... 0x9F).contains(scalar.value)
        }
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            guard isControl(scalar) else { out.unicodeScalars.append(scalar); continue }
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\u{1B}": out += "\\e"
            default:
                let hex = String(scalar.value, radix: 16)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            }
        }
        return out
    }

    static func journalFieldName(_ key: String) -> String? {
        let name = String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
        guard let first = name.first, first.isLetter, name.count <= 64,
              !["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(name) else { return nil }
        return name
    }

    /// One line: `<N>message k=v` or `time level label: message k=v`. Line breaks inside the
    /// message or a value are written as `\n`: in the journal each line is an entry of its own, and
    /// only the first would carry the priority. Other control characters are written as `\e`,
    /// `\xHH`: values quote what devices send (syslog evidence, rpc-error text), and an escape
    /// sequence must not reach the terminal of whoever reads the log.
    static func line(format: Format, label: String, level: Logger.Level, message: String, metadata: Logger.Metadata,
                     date: Date = Date()) -> String {
        var text = message
        if !metadata.isEmpty { text += " " + pairs(metadata) }
        text = escapingControls(text)
        switch format {
        case .journal:
            return "<\(syslogPriority(level))>\(text)\n"
        case .plain:
            let time = date.formatted(.iso8601)
            return "\(time) \(level) \(label): \(text)\n"
        }
    }
}

/// The journal's native socket (`/run/systemd/journal/socket`): one datagram per entry, in the
/// journal export format (`KEY=value` lines; a value with a line break as `KEY`, newline, its
/// 64-bit little-endian length, the bytes). One socket for the process, opened at first use.
public final class JournalSocket: Sendable {
    public static let shared = JournalSocket(path: "/run/systemd/journal/socket")

    public let path: String
    private let descriptor = Mutex<Int32?>(nil)

    public init(path: String) { self.path = path }

    deinit { descriptor.withLock { if let fd = $0 { close(fd) } } }

    /// The datagram for `fields`.
    static func datagram(_ fields: [(String, String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for (key, value) in fields {
            bytes += Array(key.utf8)
            if value.contains("\n") || value.contains("\r") {
                let data = Array(value.utf8)
                bytes.append(0x0A)
                var length = UInt64(data.count).littleEndian
                withUnsafeBytes(of: &length) { bytes += $0 }
                bytes += data
            } else {
                bytes.append(UInt8(ascii: "="))
                bytes += Array(value.utf8)
            }
            bytes.append(0x0A)
        }
        return bytes
    }

    /// Sends one entry; false when the journal did not take it (no socket, too large...), so
    /// that the caller writes it elsewhere.
    public func send(_ fields: [(String, String)]) -> Bool {
        let bytes = Self.datagram(fields)
        return descriptor.withLock { fd -> Bool in
            if fd == nil {
                let opened = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                guard opened >= 0 else { return false }
                fd = opened
            }
            guard let socketFD = fd else { return false }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let path = Array(self.path.utf8)
            guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in path.enumerated() { raw[i] = byte }
            }
            let sent = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(socketFD, bytes, bytes.count, Int32(MSG_NOSIGNAL), $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            return sent == bytes.count
        }
    }
}
