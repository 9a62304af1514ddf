import ArgumentParser
import Agent
import Foundation
import Logging

/// Where the CLI writes: stdout for results, stderr for diagnostics, one line per failure.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func out(bytes: [UInt8]) {
        FileHandle.standardOutput.write(Data(bytes))
    }

    /// Whether stderr is the journal (under systemd).
    static let stderrIsJournal = StandardErrorLogHandler.Format.detect() == .journal

    /// There the journal reads `<3>` as priority err, so that `journalctl -p err` shows, say, the
    /// agent.conf mistake that kept the service from starting; one entry per message.
    static func error(_ text: String) {
        let line = stderrIsJournal ? "<3>care-agent: " + text.replacingOccurrences(of: "\n", with: "\\n") : "care-agent: " + text
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A Logger writing to stderr at the level from CARE_AGENT_LOG_LEVEL (default warning).
    static func logger(_ label: String, level: Logger.Level? = nil) -> Logger {
        var logger = Logger(label: label) { StandardErrorLogHandler(label: $0) }
        let env = ProcessInfo.processInfo.environment["CARE_AGENT_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? env ?? .warning
        return logger
    }
}

/// Reads a secret from a file: the first line, without its newline. Never logged.
func readSecret(file path: String, what: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("cannot read the \(what) file \(path)")
    }
    let text = String(decoding: data, as: UTF8.self)
    return String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
}
