import Foundation

/// A problem in a configuration or inventory file, located so that an editor can jump to it:
/// `agent.conf:12:9: expected a duration such as 30s, 5m or 6h, found "soon"`.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

/// Which section headers a file may have: each kind, and whether it takes a name
/// (`[group core]`) or none (`[agent]`). agent.conf and support.conf each have their own.
public struct SectionGrammar: Sendable {
    /// One section kind.
    public struct Kind: Sendable {
        public var name: String
        public var takesName: Bool
        /// Shown in "expected one name after" errors, e.g. `[group core-routers]`.
        public var example: String?

        public init(_ name: String, takesName: Bool = false, example: String? = nil) {
            self.name = name
            self.takesName = takesName
            self.example = example
        }
    }

    public var kinds: [Kind]
    /// How errors list the allowed headers, e.g. "agent, defaults, group NAME or device NAME".
    public var summary: String
    /// The header an error suggests before the first key, e.g. `[agent]`.
    public var firstSection: String

    public init(kinds: [Kind], summary: String, firstSection: String) {
        self.kinds = kinds
        self.summary = summary
        self.firstSection = firstSection
    }
}

/// The INI-style text of a configuration file (agent.conf, support.conf), split into sections of
/// `key = value` entries, each entry remembering where it was written. Knows nothing about what
/// the keys mean (see `AgentConfiguration`, `SupportConfiguration`).
///
/// Grammar, one statement per line:
/// - `# comment` or `; comment` (whole line, or after a value when preceded by a blank);
/// - `[kind]` or `[kind NAME]` section headers, the kinds a ``SectionGrammar`` allows;
/// - `key = value`; a value may be quoted with `"` to keep `#` or surrounding blanks.
public struct ConfigurationFile: Sendable {
    /// One `key = value` line.
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: String
        public var line: Int
        /// Column where the value starts (1-based).
        public var valueColumn: Int
    }

    /// One `[kind NAME]` section with its entries in file order.
    public struct Section: Sendable {
        public var kind: String
        public var name: String?
        public var line: Int
        public var entries: [Entry]
    }

    public var path: String
    public var sections: [Section]

    public init(path: String, grammar: SectionGrammar) throws(ConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(file: path, line: 0, column: 0, message: "cannot read the file (missing, or not readable by this user)")
        }
        try self.init(path: path, text: String(decoding: data, as: UTF8.self), grammar: grammar)
    }

    public init(path: String, text: String, grammar: SectionGrammar) throws(ConfigurationError) {
        self.path = path
        sections = []
        // Split on Character.isNewline: Swift reads "\r\n" as one Character, so a file saved with
        // Windows line endings would otherwise be one long line (and, starting with "#", ignored).
        // A byte-order mark (editors on Windows add one) is not part of the first line.
        let body = text.unicodeScalars.first == "\u{FEFF}" ? Substring(text.unicodeScalars.dropFirst()) : Substring(text)
        for (index, raw) in body.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let lineNumber = index + 1
            let line = Array(raw)
            var i = 0
            while i < line.count, line[i] == " " || line[i] == "\t" { i += 1 }
            guard i < line.count, line[i] != "#", line[i] != ";" else { continue }
            func fail(_ column: Int, _ message: String) -> ConfigurationError {
                ConfigurationError(file: path, line: lineNumber, column: column, message: message)
            }
            if line[i] == "[" {
                guard let close = line.lastIndex(of: "]") else {
                    throw fail(line.count + 1, "expected \"]\" to close the section header")
                }
                let rest = String(line[(close + 1)...]).trimmingCharacters(in: .whitespaces)
                if !rest.isEmpty && !rest.hasPrefix("#") && !rest.hasPrefix(";") {
                    throw fail(close + 2, "expected the end of the line after \"]\"")
                }
                let words = String(line[(i + 1)..<close]).split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                guard let kind = words.first else { throw fail(i + 2, "expected a section name such as \(grammar.summary)") }
                guard let rule = grammar.kinds.first(where: { $0.name == kind }) else {
                    throw fail(i + 2, "expected \(grammar.summary), found \"\(kind)\"")
                }
                if rule.takesName {
                    guard words.count == 2 else {
                        throw fail(i + 2 + kind.count + 1, "expected one name after \"\(kind)\", as in \(rule.example ?? "[\(kind) NAME]")")
                    }
                } else {
                    guard words.count == 1 else { throw fail(i + 2 + kind.count + 1, "expected \"]\": [\(kind)] takes no name") }
                }
                sections.append(Section(kind: kind, name: words.count > 1 ? words[1] : nil, line: lineNumber, entries: []))
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw fail(line.count + 1, "expected \"key = value\" or a [section] header")
            }
            let key = String(line[i..<equals]).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw fail(i + 1, "expected a key made of letters, digits and dashes before \"=\"")
            }
            var v = equals + 1
            while v < line.count, line[v] == " " || line[v] == "\t" { v += 1 }
            let value: String
            if v < line.count, line[v] == "\"" {
                guard let close = line[(v + 1)...].firstIndex(of: "\"") else {
                    throw fail(line.count + 1, "expected a closing \" for the value started at column \(v + 1)")
                }
                value = String(line[(v + 1)..<close])
                let rest = String(line[(close + 1)...]).trimmingCharacters(in: .whitespaces)
                if !rest.isEmpty && !rest.hasPrefix("#") && !rest.hasPrefix(";") {
                    throw fail(close + 2, "expected the end of the line after the quoted value")
                }
            } else {
                var end = line.count
                // An inline comment needs a blank before it, so that `#` inside a value survives.
                for j in v..<line.count where (line[j] == "#" || line[j] == ";") && j > v && (line[j - 1] == " " || line[j - 1] == "\t") {
                    end = j
                    break
                }
                value = String(line[v..<end]).trimmingCharacters(in: .whitespaces)
            }
            guard !sections.isEmpty else {
                throw fail(i + 1, "expected a section header such as \(grammar.firstSection) before the first key")
            }
            sections[sections.count - 1].entries.append(Entry(key: key, value: value, line: lineNumber, valueColumn: v + 1))
        }
    }
}

/// `90`, `90s`, `5m`, `6h`, `1d`, `1.5s`, `500ms` → a Duration; nil when not one.
public func parseDuration(_ text: String) -> Duration? {
    let t = text.trimmingCharacters(in: .whitespaces)
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
    for (suffix, factor) in units where t.hasSuffix(suffix) {
        let number = t.dropLast(suffix.count)
        // "ms" must not be read as "m" + "s".
        if suffix == "s", number.hasSuffix("m") { continue }
        guard let value = Double(number) else { return nil }
        return milliseconds(value * factor)
    }
    guard let value = Double(t) else { return nil }
    return milliseconds(value)
}

/// Seconds as a Duration; nil when negative, not finite, or beyond a hundred years (`1e17`
/// would overflow Int64 milliseconds and trap, which on SIGHUP would stop the service).
private func milliseconds(_ seconds: Double) -> Duration? {
    guard seconds >= 0, seconds.isFinite, seconds <= 100 * 365 * 86400 else { return nil }
    return .milliseconds(Int64((seconds * 1000).rounded()))
}
