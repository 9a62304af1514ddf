import Foundation
import Logging

/// A swift-log handler writing one line per message to stderr, in the form its reader wants:
/// under systemd, whose journal stamps each line itself and reads a leading `<N>` as the syslog
/// priority (`SyslogLevelPrefix=yes`, the default), `<3>message key=value`; on a terminal or in a
/// file, `2026-12-04T18:00:00Z error care-agent: message key=value`.
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
    let write: @Sendable (String) -> Void

    /// Writes to stderr in `format` (detected from the environment when nil).
    public init(label: String, format: Format? = nil) {
        self.init(label: label, format: format ?? .detect()) { line in
            FileHandle.standardError.write(Data(line.utf8))
        }
    }

    /// Writes each finished line (with its newline) to `write`: for tests.
    public init(label: String, format: Format, write: @escaping @Sendable (String) -> Void) {
        self.label = label
        self.format = format
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
        write(Self.line(format: format, label: label, level: event.level, message: "\(event.message)", metadata: merged))
    }

    /// One line: `<N>message k=v` or `time level label: message k=v`. Line breaks inside the
    /// message or a value are written as `\n`: in the journal each line is an entry of its own, and
    /// only the first would carry the priority.
    static func line(format: Format, label: String, level: Logger.Level, message: String, metadata: Logger.Metadata,
                     date: Date = Date()) -> String {
        var text = message
        if !metadata.isEmpty {
            text += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        text = text.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
        switch format {
        case .journal:
            return "<\(syslogPriority(level))>\(text)\n"
        case .plain:
            let time = date.formatted(.iso8601)
            return "\(time) \(level) \(label): \(text)\n"
        }
    }
}
