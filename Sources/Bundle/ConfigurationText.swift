import Junos
import XML

/// A device configuration as one statement per line in Junos curly-brace style, each line
/// knowing the hierarchy it sits in, so two captures compare like `show | compare`.
public struct ConfigurationText: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        public var text: String
        /// Enclosing statements, outermost first (`["interfaces", "ge-0/0/0", "unit 0"]`).
        public var hierarchy: [String]
    }

    public var lines: [Line]

    public init(lines: [Line]) { self.lines = lines }

    /// Reads a `get-configuration` reply: XML (`<configuration>`) or text (`<configuration-text>`).
    /// Returns nil when the reply holds no configuration.
    public init?(reply bytes: [UInt8]) {
        guard let reply = try? JunosReply(bytes: bytes) else { return nil }
        if let section = reply.sections(named: "configuration").first {
            var lines: [Line] = []
            for child in section.element.children { Self.render(child, hierarchy: [], into: &lines) }
            self.lines = lines
        } else if let section = reply.sections(named: "configuration-text").first {
            self.lines = Self.lines(fromText: section.element.text)
        } else {
            return nil
        }
    }

    public var text: String { lines.map(\.text).joined(separator: "\n") + (lines.isEmpty ? "" : "\n") }

    private static func render(_ element: XMLElement, hierarchy: [String], into lines: inout [Line]) {
        // Junos metadata attributes (changed-seconds, commit user) are not configuration.
        if element.name == "comment" || element.name == "junos:comment" {
            if let text = element.value { lines.append(Line(text: indent(hierarchy) + "/* \(text) */", hierarchy: hierarchy)) }
            return
        }
        var prefix = ""
        if element.attribute("inactive") != nil { prefix += "inactive: " }
        if element.attribute("protect") != nil { prefix += "protect: " }
        let children = element.children
        if children.isEmpty {
            let value = element.value.map { " " + quoted($0) } ?? ""
            lines.append(Line(text: indent(hierarchy) + prefix + element.name + value + ";", hierarchy: hierarchy))
            return
        }
        // A list entry is keyed by its <name> leaf: `interface ge-0/0/0 { ... }`.
        var statement = element.name
        var body = children
        if let key = children.first, key.name == "name", key.isLeaf, let keyValue = key.value {
            statement += " " + quoted(keyValue)
            body.removeFirst()
        }
        if body.isEmpty {
            lines.append(Line(text: indent(hierarchy) + prefix + statement + ";", hierarchy: hierarchy))
            return
        }
        lines.append(Line(text: indent(hierarchy) + prefix + statement + " {", hierarchy: hierarchy))
        for child in body { render(child, hierarchy: hierarchy + [statement], into: &lines) }
        lines.append(Line(text: indent(hierarchy) + "}", hierarchy: hierarchy))
    }

    private static func indent(_ hierarchy: [String]) -> String { String(repeating: "    ", count: hierarchy.count) }

    private static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && value.unicodeScalars.allSatisfy { scalar in
            !(scalar == " " || scalar == "\"" || scalar == ";" || scalar == "{" || scalar == "}" || scalar == "#" || scalar == "\t" || scalar == "\n")
        }
        return plain ? value : "\"" + value.replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Text configuration: hierarchy follows the braces; indentation is normalised to four spaces.
    static func lines(fromText text: String) -> [Line] {
        var lines: [Line] = []
        var stack: [String] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line == "}" {
                if !stack.isEmpty { stack.removeLast() }
                lines.append(Line(text: indent(stack) + "}", hierarchy: stack))
            } else if line.hasSuffix("{") {
                lines.append(Line(text: indent(stack) + line, hierarchy: stack))
                stack.append(String(line.dropLast()).trimmingCharacters(in: .whitespaces)
                    .replacingOccurrences(of: "inactive: ", with: ""))
            } else {
                lines.append(Line(text: indent(stack) + line, hierarchy: stack))
            }
        }
        return lines
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}

extension Set where Element == Character {
    fileprivate static let whitespaces: Set<Character> = [" ", "\t", "\r"]
}

/// Line diff (Myers' O(ND) algorithm) rendered like Junos `show | compare`: each group of
/// changes under an `[edit ...]` header naming the hierarchy it is in.
public enum ConfigurationDiff {
    public enum Edit: Equatable, Sendable {
        case same(Int, Int)
        case removed(Int)
        case added(Int)
    }

    /// The edit script turning `a` into `b`. Past `maximumEdits` differences it stops looking for
    /// the shortest script and reports the differing middle as removed then added.
    public static func edits(_ a: [String], _ b: [String], maximumEdits: Int = 4000) -> [Edit] {
        var prefix = 0
        while prefix < a.count, prefix < b.count, a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix, suffix < b.count - prefix, a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let x = Array(a[prefix ..< a.count - suffix]), y = Array(b[prefix ..< b.count - suffix])
        var out: [Edit] = (0 ..< prefix).map { .same($0, $0) }
        out += middle(x, y, maximumEdits: maximumEdits).map { edit in
            switch edit {
            case let .same(i, j): return .same(i + prefix, j + prefix)
            case let .removed(i): return .removed(i + prefix)
            case let .added(j): return .added(j + prefix)
            }
        }
        out += (0 ..< suffix).map { .same(a.count - suffix + $0, b.count - suffix + $0) }
        return out
    }

    private static func middle(_ a: [String], _ b: [String], maximumEdits: Int) -> [Edit] {
        let n = a.count, m = b.count
        if n == 0 { return (0 ..< m).map { .added($0) } }
        if m == 0 { return (0 ..< n).map { .removed($0) } }
        let maxD = min(n + m, maximumEdits)
        let offset = maxD + 1
        var v = [Int](repeating: 0, count: 2 * maxD + 3)
        var trace: [[Int]] = []
        var found = false
        search: for d in 0 ... maxD {
            trace.append(v)
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                    x = v[offset + k + 1]
                } else {
                    x = v[offset + k - 1] + 1
                }
                var y = x - k
                while x < n, y < m, a[x] == b[y] { x += 1; y += 1 }
                v[offset + k] = x
                if x >= n && y >= m { found = true; trace.append(v); break search }
            }
        }
        guard found else { return (0 ..< n).map { .removed($0) } + (0 ..< m).map { .added($0) } }
        // Walk back through the saved frontiers.
        var edits: [Edit] = []
        var x = n, y = m
        for d in stride(from: trace.count - 2, to: 0, by: -1) {
            let v = trace[d]
            let k = x - y
            let dd = d - 1 + 1
            let prevK = (k == -dd || (k != dd && v[offset + k - 1] < v[offset + k + 1])) ? k + 1 : k - 1
            let prevX = v[offset + prevK], prevY = prevX - prevK
            while x > prevX && y > prevY { x -= 1; y -= 1; edits.append(.same(x, y)) }
            if x == prevX { y -= 1; edits.append(.added(y)) } else { x -= 1; edits.append(.removed(x)) }
        }
        while x > 0 && y > 0 { x -= 1; y -= 1; edits.append(.same(x, y)) }
        return edits.reversed()
    }

    /// `show | compare` style text; empty when the configurations are the same.
    public static func render(from old: ConfigurationText, to new: ConfigurationText) -> String {
        let edits = edits(old.lines.map(\.text), new.lines.map(\.text))
        var out = ""
        var header: [String]? = nil
        for edit in edits {
            let line: ConfigurationText.Line
            let mark: String
            switch edit {
            case .same:
                header = nil
                continue
            case let .removed(i): line = old.lines[i]; mark = "-"
            case let .added(j): line = new.lines[j]; mark = "+"
            }
            // A run of changes goes under the hierarchy of its first line; deeper lines of the run
            // (the inside of an added block) keep their indentation relative to it, as Junos shows.
            if header == nil || !line.hierarchy.starts(with: header!) {
                header = line.hierarchy
                out += line.hierarchy.isEmpty ? "[edit]\n" : "[edit \(line.hierarchy.joined(separator: " "))]\n"
            }
            let body = String(line.text.dropFirst(4 * header!.count))
            out += mark + "  " + body + "\n"
        }
        return out
    }
}
