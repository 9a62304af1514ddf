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

    static func error(_ text: String) {
        FileHandle.standardError.write(Data(("care-agent: " + text + "\n").utf8))
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
