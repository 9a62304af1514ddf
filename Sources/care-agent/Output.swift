import Agent
import ArgumentParser
import Agent
import Bundle
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

    /// One line on stderr. Errors quote devices and bundles (host names, rpc-error messages,
    /// member names), so the whole line is escaped (``TerminalText``): no control character from
    /// them reaches the terminal, and no newline can forge a second line. Under the journal the
    /// line starts with `<3>`, priority err, so that `journalctl -p err` shows, say, the
    /// agent.conf mistake that kept the service from starting.
    static func error(_ text: String) {
        let line = (stderrIsJournal ? "<3>" : "") + "care-agent: " + TerminalText.escaped(text)
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

/// Reads a secret from a file: the first line, without its newline. Never logged. Refused when
/// other users can read the file (``SecretFile``).
func readSecret(file path: String, what: String) throws -> String {
    let line: String?
    do { line = try SecretFile.firstLine(path, what: "\(what) file") } catch { throw ValidationError("\(error)") }
    guard let line else { throw ValidationError("cannot read the \(what) file \(path)") }
    return line
}

/// Whether this user may read what the agent keeps under its state directory. The service's is
/// 0750 care-agent: a user outside that group must be told so, not "nothing collected yet".
enum StateAccess {
    /// The first of `paths` (outermost first) that exists but cannot be read, as an error line;
    /// nil when each is readable or missing.
    static func problem(reading paths: [String]) -> String? {
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0 else {
                if errno == EACCES { return denied(path) }
                continue
            }
            let isDirectory = info.st_mode & S_IFMT == S_IFDIR
            if access(path, R_OK | (isDirectory ? X_OK : 0)) != 0 { return denied(path) }
        }
        return nil
    }

    private static func denied(_ path: String) -> String {
        "cannot read \(path): permission denied (root and members of the care-agent group may read the agent's state: "
            + "usermod -aG care-agent $USER, then log in again)"
    }
}
