import Bundle
import Foundation
import Yams

/// An Ansible inventory, INI or YAML, as Ansible's `ini` and `yaml` inventory plugins read it:
/// groups of hosts, `children`, group and host variables, `host:port`, and host ranges
/// (`r[01:20].example.net`, `sw-[a:f]`, `[1:9:2]`). Only what describes hosts is interpreted;
/// Jinja templates and inventory plugins other than these two are not run.
///
/// Hostile input stays bounded: the file size, the hosts a range expands to, the groups and
/// the YAML nodes visited are capped, `children` are walked with a work list (no recursion),
/// and a cycle among groups is reported rather than followed.
public struct AnsibleInventory: Sendable {
    /// One host, its own variables and where it was first defined.
    public struct Host: Sendable, Equatable {
        public var name: String
        public var variables: [String: String]
        /// Groups naming the host directly.
        public var groups: [String]
        public var line: Int
    }

    /// One group: its variables and child groups.
    public struct Group: Sendable, Equatable {
        public var name: String
        public var variables: [String: String] = [:]
        public var children: [String] = []
    }

    public var path: String
    /// In the order first defined.
    public private(set) var hosts: [Host] = []
    public private(set) var groups: [String: Group] = ["all": Group(name: "all"), "ungrouped": Group(name: "ungrouped")]
    /// Lines or entries that could not be used, each naming the file and line.
    public private(set) var problems: [String] = []
    private var hostIndex: [String: Int] = [:]

    /// Bounds on what one file may hold.
    public static let maximumFileSize = 32 << 20
    public static let maximumHosts = 100_000
    public static let maximumGroups = 10_000
    static let maximumYAMLNodes = 2_000_000

    /// Reads `path`, INI or YAML (by the `.yml`/`.yaml` extension, else by content).
    public init(path: String) throws(InventorySourceError) {
        let data: [UInt8]
        switch BoundedFile.contents(of: path, limit: Self.maximumFileSize) {
        case let .success(read): data = read
        case let .failure(failure): throw InventorySourceError(source: path, failure.message("the Ansible inventory", path, limit: Self.maximumFileSize))
        }
        try self.init(path: path, text: String(decoding: data, as: UTF8.self))
    }

    public init(path: String, text: String) throws(InventorySourceError) {
        self.path = path
        let lower = path.lowercased()
        let firstLine = text.split(whereSeparator: \.isNewline).first { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("#") && !t.hasPrefix(";")
        }.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        let isYAML = lower.hasSuffix(".yml") || lower.hasSuffix(".yaml") || firstLine == "---"
            || (!firstLine.hasPrefix("[") && firstLine.hasSuffix(":") && !firstLine.contains("="))
        if isYAML { try parseYAML(text) } else { parseINI(text) }
    }

    // MARK: Building

    private mutating func group(_ name: String) -> Bool {
        if groups[name] != nil { return true }
        guard groups.count < Self.maximumGroups else { return false }
        groups[name] = Group(name: name)
        return true
    }

    /// Adds (or extends) the hosts a host pattern names, in `group`.
    private mutating func addHosts(_ pattern: String, variables: [String: String], group groupName: String, line: Int) {
        var pattern = pattern
        var variables = variables
        // `host:port` (not an IPv6 address, which has several colons; those need ansible_port).
        if let colon = pattern.lastIndex(of: ":"), Self.colonsOutsideRanges(pattern) == 1 {
            let port = pattern[pattern.index(after: colon)...]
            if !port.isEmpty, port.allSatisfy(\.isNumber) {
                if variables["ansible_port"] == nil { variables["ansible_port"] = String(port) }
                pattern = String(pattern[..<colon])
            }
        }
        let names: [String]
        switch Self.expand(pattern, limit: Self.maximumHosts - hosts.count) {
        case let .success(list): names = list
        case let .failure(message):
            problems.append("\(path):\(line): host \(pattern) skipped: \(message)")
            return
        }
        guard self.group(groupName) else {
            problems.append("\(path):\(line): group \(groupName) skipped: more than \(Self.maximumGroups) groups")
            return
        }
        for name in names {
            if let index = hostIndex[name] {
                hosts[index].variables.merge(variables) { _, new in new }
                if !hosts[index].groups.contains(groupName) { hosts[index].groups.append(groupName) }
            } else {
                guard hosts.count < Self.maximumHosts else {
                    problems.append("\(path):\(line): host \(name) skipped: more than \(Self.maximumHosts) hosts")
                    return
                }
                hostIndex[name] = hosts.count
                hosts.append(Host(name: name, variables: variables, groups: [groupName], line: line))
            }
        }
    }

    /// Expands Ansible's host ranges: `[01:20]` (leading zeros kept), `[a:f]`, `[0:10:2]`, up
    /// to 4 in one name; at most `limit` names.
    static func expand(_ pattern: String, limit: Int) -> Result<[String], RangeError> {
        var names = [""]
        var rest = Substring(pattern)
        var ranges = 0
        while !rest.isEmpty {
            guard let open = rest.firstIndex(of: "[") else {
                names = names.map { $0 + rest }
                break
            }
            let head = rest[..<open]
            guard let close = rest[open...].firstIndex(of: "]") else { return .failure(RangeError("unclosed [ in a host range")) }
            ranges += 1
            guard ranges <= 4 else { return .failure(RangeError("more than 4 ranges in one host name")) }
            let parts = rest[rest.index(after: open)..<close].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            rest = rest[rest.index(after: close)...]
            guard parts.count == 2 || parts.count == 3 else { return .failure(RangeError("expected a range such as [01:20] or [a:f]")) }
            let step = parts.count == 3 ? Int(parts[2]) : 1
            guard let step, step > 0 else { return .failure(RangeError("expected a positive step in the range")) }
            var values: [String] = []
            if let start = Int(parts[0]), let end = Int(parts[1]) {
                guard start <= end else { return .failure(RangeError("range start \(parts[0]) is after its end \(parts[1])")) }
                guard (end - start) / step + 1 <= limit else { return .failure(RangeError("the range names more than \(limit) hosts")) }
                let width = parts[0].count
                for n in stride(from: start, through: end, by: step) {
                    let digits = String(n)
                    values.append(parts[0].hasPrefix("0") && digits.count < width ? String(repeating: "0", count: width - digits.count) + digits : digits)
                }
            } else if parts[0].count == 1, parts[1].count == 1, let a = parts[0].unicodeScalars.first, let b = parts[1].unicodeScalars.first,
                      a.isASCII, b.isASCII, a.properties.isAlphabetic, b.properties.isAlphabetic, a.value <= b.value {
                for v in stride(from: a.value, through: b.value, by: step) { values.append(String(UnicodeScalar(v)!)) }
            } else {
                return .failure(RangeError("expected a numeric ([01:20]) or alphabetic ([a:f]) range, found [\(parts.joined(separator: ":"))]"))
            }
            guard names.count * values.count <= limit else { return .failure(RangeError("the range names more than \(limit) hosts")) }
            names = names.flatMap { prefix in values.map { prefix + head + $0 } }
        }
        return .success(names)
    }

    /// Colons not inside `[...]`: one means `host:port`; several, an IPv6 address.
    static func colonsOutsideRanges(_ text: String) -> Int {
        var inside = false, count = 0
        for c in text {
            if c == "[" { inside = true } else if c == "]" { inside = false } else if c == ":" && !inside { count += 1 }
        }
        return count
    }

    struct RangeError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: INI

    private mutating func parseINI(_ text: String) {
        enum State { case hosts(String), vars(String), children(String) }
        var state = State.hosts("ungrouped")
        var lineNumber = 0
        // isNewline: "\r\n" is one Character in Swift, and a CRLF file must split as well.
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard let close = line.lastIndex(of: "]") else {
                    problems.append("\(path):\(lineNumber): expected a section header such as [junos], [junos:vars] or [junos:children]")
                    state = .vars("")
                    continue
                }
                let header = String(line[line.index(after: line.startIndex)..<close]).trimmingCharacters(in: .whitespaces)
                let parts = header.split(separator: ":", maxSplits: 1).map(String.init)
                let name = parts.first ?? ""
                guard !name.isEmpty, name.allSatisfy({ !$0.isWhitespace }), self.group(name) else {
                    problems.append("\(path):\(lineNumber): section [\(header)] skipped: expected a group name without blanks (or too many groups)")
                    state = .vars("")
                    continue
                }
                switch parts.count > 1 ? parts[1] : "hosts" {
                case "hosts": state = .hosts(name)
                case "vars": state = .vars(name)
                case "children": state = .children(name)
                default:
                    problems.append("\(path):\(lineNumber): section [\(header)] skipped: expected :vars or :children after the group name")
                    state = .vars("")
                }
                continue
            }
            switch state {
            case let .hosts(group):
                let words = Self.shellWords(line)
                guard let name = words.first else { continue }
                var variables: [String: String] = [:]
                for word in words.dropFirst() {
                    guard let equals = word.firstIndex(of: "="), equals != word.startIndex else {
                        problems.append("\(path):\(lineNumber): host \(name): expected key=value after the host name, found \"\(word)\"")
                        continue
                    }
                    variables[String(word[..<equals])] = String(word[word.index(after: equals)...])
                }
                addHosts(name, variables: variables, group: group, line: lineNumber)
            case let .vars(group):
                guard !group.isEmpty else { continue }
                guard let equals = line.firstIndex(of: "=") else {
                    problems.append("\(path):\(lineNumber): expected key=value in [\(group):vars]")
                    continue
                }
                let key = line[..<equals].trimmingCharacters(in: .whitespaces)
                let value = Self.shellWords(String(line[line.index(after: equals)...])).joined(separator: " ")
                groups[group]?.variables[key] = value
            case let .children(group):
                let child = line.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
                guard self.group(child) else {
                    problems.append("\(path):\(lineNumber): child group \(child) skipped: more than \(Self.maximumGroups) groups")
                    continue
                }
                if !(groups[group]?.children.contains(child) ?? true) { groups[group]?.children.append(child) }
            }
        }
    }

    /// Splits a host line as Python's shlex does for Ansible: blanks separate words, quotes
    /// group, `#` outside quotes starts a comment.
    static func shellWords(_ line: String) -> [String] {
        var words: [String] = []
        var word = ""
        var quote: Character?
        var inWord = false
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
                continue
            }
            if c == "\"" || c == "'" { quote = c; inWord = true; continue }
            if c == "#" && !inWord { break }
            if c.isWhitespace {
                if inWord { words.append(word); word = ""; inWord = false }
                continue
            }
            word.append(c)
            inWord = true
        }
        if inWord { words.append(word) }
        return words
    }

    // MARK: YAML

    private mutating func parseYAML(_ text: String) throws(InventorySourceError) {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            // Yams quotes the offending line whole: a one-line JSON export made it 28 MB, in the
            // log and in `status` at every refresh.
            let reason = "\(error)"
            throw InventorySourceError(source: path, "the Ansible inventory \(path) is not valid YAML: \(reason.prefix(300))\(reason.count > 300 ? "..." : "")")
        }
        guard let root else { return }
        guard case let .mapping(top) = root else {
            throw InventorySourceError(source: path, "expected the Ansible inventory \(path) to be a mapping of groups (all:, hosts:, children:)")
        }
        var visited = 0
        // (group name, its mapping), walked with a work list: children are not followed by recursion.
        var work: [(String, Node, Int)] = []
        for (key, value) in top {
            guard let name = key.string else { continue }
            work.append((name, value, key.mark?.line ?? 0))
        }
        work.reverse()
        var seenGroupBodies = 0
        while case let (name, body, line)? = work.popLast() {
            visited += 1
            seenGroupBodies += 1
            guard visited < Self.maximumYAMLNodes, seenGroupBodies <= Self.maximumGroups * 4 else {
                problems.append("\(path): stopped reading: more than \(Self.maximumGroups) groups")
                return
            }
            guard self.group(name) else {
                // Its hosts are left out: said, not silent (a read with nothing skipped was read whole).
                problems.append("\(path):\(line): group \(name) skipped: more than \(Self.maximumGroups) groups")
                continue
            }
            guard case let .mapping(groupMap) = body else {
                if case .scalar = body, body.null != nil { continue }
                problems.append("\(path):\(line): group \(name) skipped: expected hosts:, vars: or children:")
                continue
            }
            for (key, value) in groupMap {
                visited += 1
                switch key.string {
                case "hosts":
                    guard case let .mapping(hostMap) = value else {
                        if value.null == nil { problems.append("\(path):\(key.mark?.line ?? line): hosts of group \(name) skipped: expected a mapping of host names") }
                        continue
                    }
                    for (hostKey, hostBody) in hostMap {
                        visited += hostBody.mapping?.count ?? 1
                        guard visited < Self.maximumYAMLNodes else { problems.append("\(path): stopped reading: too large"); return }
                        guard let hostName = Self.scalarText(hostKey) else { continue }
                        var variables: [String: String] = [:]
                        if case let .mapping(vars) = hostBody {
                            for (k, v) in vars { if let k = k.string, let v = Self.scalarText(v) { variables[k] = v } }
                        } else if hostBody.null == nil {
                            problems.append("\(path):\(hostKey.mark?.line ?? line): host \(hostName): expected its variables as a mapping")
                        }
                        addHosts(hostName, variables: variables, group: name, line: hostKey.mark?.line ?? line)
                    }
                case "vars":
                    guard case let .mapping(vars) = value else { continue }
                    for (k, v) in vars {
                        visited += 1
                        if let k = k.string, let v = Self.scalarText(v) { groups[name]?.variables[k] = v }
                    }
                case "children":
                    guard case let .mapping(children) = value else { continue }
                    for (childKey, childBody) in children {
                        guard let child = childKey.string else { continue }
                        if !(groups[name]?.children.contains(child) ?? true) { groups[name]?.children.append(child) }
                        work.append((child, childBody, childKey.mark?.line ?? line))
                    }
                default:
                    problems.append("\(path):\(key.mark?.line ?? line): key \(key.string ?? "?") in group \(name) ignored: expected hosts, vars or children")
                }
            }
        }
    }

    /// A scalar's text (numbers and booleans as written); nil for mappings, sequences and null.
    static func scalarText(_ node: Node) -> String? {
        guard case let .scalar(scalar) = node, node.null == nil else { return nil }
        return scalar.string
    }

    // MARK: Resolution

    /// Each host's variables as Ansible resolves them: `all`, then groups from the least to the
    /// most deeply nested (by name at equal depth), then the host's own. Hosts whose groups
    /// include none of `only` (when not empty) are left out.
    public func resolvedHosts(only: [String] = []) -> [(host: Host, variables: [String: String], groups: Set<String>)] {
        // Parents of each group, and each group's depth below `all` (longest chain), relaxed
        // iteratively: a cycle stops growing at the group count.
        var parents: [String: [String]] = [:]
        for group in groups.values {
            for child in group.children { parents[child, default: []].append(group.name) }
        }
        var depth: [String: Int] = [:]
        for name in groups.keys { depth[name] = name == "all" ? 0 : 1 }
        var changed = true
        var rounds = 0
        while changed && rounds < min(groups.count, 64) {
            changed = false
            rounds += 1
            for (child, ps) in parents {
                let d = (ps.compactMap { depth[$0] }.max() ?? 0) + 1
                if d > (depth[child] ?? 0), child != "all" { depth[child] = d; changed = true }
            }
        }
        var result: [(host: Host, variables: [String: String], groups: Set<String>)] = []
        let wanted = Set(only)
        for host in hosts {
            // The host's groups and their ancestors, with a work list and a visited set.
            var all: Set<String> = ["all"]
            var work = host.groups
            while let g = work.popLast() {
                guard all.insert(g).inserted else { continue }
                work.append(contentsOf: parents[g] ?? [])
            }
            if !wanted.isEmpty && wanted.isDisjoint(with: all) { continue }
            var variables: [String: String] = [:]
            for g in all.sorted(by: { (depth[$0] ?? 0, $0) < (depth[$1] ?? 0, $1) }) {
                variables.merge(groups[g]?.variables ?? [:]) { _, new in new }
            }
            variables.merge(host.variables) { _, new in new }
            result.append((host, variables, all))
        }
        return result
    }

    /// The devices of this inventory: hosts whose `ansible_network_os` is one of `settings.networkOS`.
    public func yield(source: String, settings: AnsibleSettings, defaultGroup: String) -> InventoryYield {
        var out = InventoryYield(source: source, skipped: problems.map { "inventory \(source): \($0)" })
        let wantedOS = Set(settings.networkOS.map { $0.lowercased() })
        for (host, variables, _) in resolvedHosts(only: settings.groups) {
            let where_ = "\(path):\(host.line)"
            if !wantedOS.isEmpty {
                guard let os = variables["ansible_network_os"]?.lowercased(), wantedOS.contains(os) else { continue }
            }
            let address = variables["ansible_host"].flatMap { $0.isEmpty ? nil : $0 } ?? host.name
            var device = Device(name: host.name, host: address, group: variables[settings.groupVariable] ?? defaultGroup)
            if let text = variables[settings.portVariable], !text.isEmpty {
                guard let port = Int(text), (1...65535).contains(port) else {
                    out.skipped.append("inventory \(source): device \(host.name) (\(where_)) skipped: \(settings.portVariable) \"\(text)\" is not a TCP port from 1 to 65535")
                    continue
                }
                device.port = port
            }
            out.entries.append(InventoryEntry(device: device, origin: where_))
        }
        return out
    }
}

