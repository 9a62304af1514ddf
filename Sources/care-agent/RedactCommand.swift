import ArgumentParser
import Foundation
import Junos
import XML

/// `care-agent redact FILE`: prints a configuration (XML, curly-brace text or `set` commands)
/// with every secret replaced, as it would leave the machine.
struct RedactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redact",
        abstract: "Print a Junos configuration (XML, text or set format) with its secrets redacted."
    )

    @Argument(help: "A configuration file or any XML reply.")
    var file: String

    @Option(name: .customLong("keyword"), help: "Another statement whose value is secret (repeatable).")
    var keywords: [String] = []

    @Option(name: .customLong("pattern"), help: "A regular expression whose matches are secret (repeatable).")
    var patterns: [String] = []

    @Option(name: .customLong("path"), help: "A statement path whose value is secret, such as snmp/trap-group/name (repeatable).")
    var paths: [String] = []

    func validate() throws {
        _ = try makeRedactor()
    }

    private func makeRedactor() throws -> ConfigurationRedactor {
        do {
            return try ConfigurationRedactor(extraKeywords: Set(keywords), extraPatterns: patterns, extraPaths: paths)
        } catch let error as RedactionRuleError {
            throw ValidationError("--path: \(error)")
        } catch {
            throw ValidationError("a --pattern is not a valid regular expression: \(error)")
        }
    }

    func run() throws {
        let redactor = try makeRedactor()
        do {
            let bytes = try CLIError.read(file)
            let firstByte = bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 && $0 != 0xEF && $0 != 0xBB && $0 != 0xBF }
            if firstByte == UInt8(ascii: "<") {
                let redacted: [UInt8]
                do { redacted = try redactor.redact(xml: bytes) } catch { throw CLIError.message("file is \(error)") }
                FileHandle.standardOutput.write(Data(redacted))
                FileHandle.standardOutput.write(Data("\n".utf8))
            } else {
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw CLIError.message("file is neither XML nor UTF-8 text")
                }
                FileHandle.standardOutput.write(Data(redactor.redact(text: text).utf8))
            }
        } catch {
            CLIError.report("redact", file: file, error)
            throw ExitCode(1)
        }
    }
}
