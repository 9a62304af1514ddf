import Crypto
import Foundation
import Junos

/// The knowledge reports work from, loaded at run time from a data directory (see data/README.md):
/// advisories, Junos release milestones and their exceptions, hardware EOL rows. Newer files
/// update the knowledge without a rebuild. A malformed record or row is listed in ``problems``
/// (file and field) and skipped.
public struct ReferenceData: Sendable {
    public var directory: URL
    public var advisories: [Advisory]
    public var milestones: [String: ReleaseMilestone]
    public var exceptions: [MilestoneException]
    /// Other sources' dates for a train's base release where they contradict the milestone row
    /// (the exceptions file's `(base release)` rows), by train: reports say so rather than pick one silently.
    public var contradictions: [String: [MilestoneException]] = [:]
    public var hardware: [HardwareLifecycle]
    public var problems: [DataProblem]

    /// Caps against a hostile or broken data directory.
    public static let maximumFileSize = 16 << 20
    public static let maximumAdvisories = 20_000

    public init(directory: URL, advisories: [Advisory] = [], milestones: [String: ReleaseMilestone] = [:],
                exceptions: [MilestoneException] = [], hardware: [HardwareLifecycle] = [], problems: [DataProblem] = []) {
        self.directory = directory
        self.advisories = advisories
        self.milestones = milestones
        self.exceptions = exceptions
        self.hardware = hardware
        self.problems = problems
    }

    /// Loads every file of `directory`. Throws only when the directory itself is unusable.
    public static func load(directory: URL) throws(ReferenceDataError) -> ReferenceData {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .notADirectory(directory.path)
        }
        var data = ReferenceData(directory: directory)
        data.loadMilestones()
        data.loadExceptions()
        data.loadHardware()
        data.loadAdvisories()
        return data
    }

    /// The first of: `explicit` (`--data`), `configured` (`[reports] data-directory`), the
    /// installed share directory next to the executable (`<prefix>/share/care-agent/data`), or the
    /// `data/` of the source tree the executable was built in.
    public static func locate(explicit: String?, configured: String?, executable: String = CommandLine.arguments.first ?? "") -> URL? {
        if let explicit { return URL(fileURLWithPath: explicit) }
        if let configured { return URL(fileURLWithPath: configured) }
        let binary = URL(fileURLWithPath: executable).resolvingSymlinksInPath().deletingLastPathComponent()
        var candidates = [binary.deletingLastPathComponent().appendingPathComponent("share/care-agent/data"),
                          URL(fileURLWithPath: "/usr/local/share/care-agent/data"), URL(fileURLWithPath: "/usr/share/care-agent/data")]
        // A development build: <repo>/.build/<triple>/debug/care-agent.
        var up = binary
        for _ in 0..<5 {
            up = up.deletingLastPathComponent()
            candidates.append(up.appendingPathComponent("data"))
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("junos-release-milestones.tsv").path) }
    }

    // MARK: TSV files

    /// Rows of a TSV with one header line, as dictionaries; rows with the wrong field count are problems.
    mutating func readTSV(_ name: String, required: [String]) -> [(line: Int, fields: [String: String])] {
        let url = directory.appendingPathComponent(name)
        guard let text = readText(url, name: name) else { return [] }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        while lines.last == "" { lines.removeLast() }
        guard let headerLine = lines.first else {
            problems.append(DataProblem(file: name, field: "line 1", message: "empty file"))
            return []
        }
        let header = headerLine.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        for column in required where !header.contains(column) {
            problems.append(DataProblem(file: name, field: "header", message: "missing column \(column); file skipped"))
            return []
        }
        var rows: [(Int, [String: String])] = []
        for (index, line) in lines.enumerated().dropFirst() where !line.isEmpty {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == header.count else {
                problems.append(DataProblem(file: name, field: "line \(index + 1)", message: "\(fields.count) fields, the header has \(header.count); row skipped"))
                continue
            }
            rows.append((index + 1, Dictionary(zip(header, fields), uniquingKeysWith: { a, _ in a })))
        }
        return rows
    }

    mutating func readText(_ url: URL, name: String) -> String? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path) else {
            problems.append(DataProblem(file: name, field: "(file)", message: "missing or unreadable"))
            return nil
        }
        if let size = attributes[.size] as? Int, size > Self.maximumFileSize {
            problems.append(DataProblem(file: name, field: "(file)", message: "\(size) bytes, more than the limit of \(Self.maximumFileSize); skipped"))
            return nil
        }
        guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
            problems.append(DataProblem(file: name, field: "(file)", message: "not readable as UTF-8"))
            return nil
        }
        return text
    }

    /// A small optional file (SHA256SUMS), nil when absent.
    func readOptionalText(_ url: URL) -> String? {
        guard let data = FileManager.default.contents(atPath: url.path), data.count <= Self.maximumFileSize else { return nil }
        return String(data: data, encoding: .utf8)
    }

    /// `YYYY-MM-DD` or empty; anything else is a problem and reads as nil.
    mutating func date(_ text: String?, file: String, field: String) -> LifecycleDate? {
        guard let text, !text.isEmpty else { return nil }
        guard let date = LifecycleDate(text) else {
            problems.append(DataProblem(file: file, field: field, message: "\"\(text)\" is not a YYYY-MM-DD date; read as unknown"))
            return nil
        }
        return date
    }

    mutating func loadMilestones() {
        let file = "junos-release-milestones.tsv"
        for (line, row) in readTSV(file, required: ["release", "end_of_engineering", "end_of_support", "source"]) {
            let release = row["release"] ?? ""
            let train = JunosVersion(release)
            guard train.isParsed, train.train == release else {
                problems.append(DataProblem(file: file, field: "line \(line) release", message: "\"\(release)\" is not a release train; row skipped"))
                continue
            }
            milestones[release] = ReleaseMilestone(
                train: release,
                firstShipment: date(row["frs_date"], file: file, field: "line \(line) frs_date"),
                endOfEngineering: date(row["end_of_engineering"], file: file, field: "line \(line) end_of_engineering"),
                endOfSupport: date(row["end_of_support"], file: file, field: "line \(line) end_of_support"),
                eolType: row["eol_type"].flatMap { $0.isEmpty ? nil : $0 }, source: "\(file) line \(line): \(row["source"] ?? "")")
        }
    }

    mutating func loadExceptions() {
        let file = "junos-release-milestone-exceptions.tsv"
        for (line, row) in readTSV(file, required: ["release", "applies_to", "end_of_engineering", "end_of_support", "source"]) {
            let appliesTo = row["applies_to"] ?? ""
            // Rows about the base release (conflicting sources, 2011 values) are not platform
            // exceptions: they are what other sources say of the same train.
            if appliesTo.hasPrefix("(base release)") {
                let train = row["release"] ?? ""
                let note = row["note"].flatMap { $0.isEmpty ? nil : $0 }
                contradictions[train, default: []].append(MilestoneException(
                    train: train, condition: .any, text: note.map { "\(appliesTo): \($0)" } ?? appliesTo,
                    endOfEngineering: date(row["end_of_engineering"], file: file, field: "line \(line) end_of_engineering"),
                    endOfSupport: date(row["end_of_support"], file: file, field: "line \(line) end_of_support"),
                    source: "\(file) line \(line): \(row["source"] ?? "")"))
                continue
            }
            guard let condition = MilestoneException.Condition(appliesTo) else {
                problems.append(DataProblem(file: file, field: "line \(line) applies_to", message: "\"\(appliesTo)\" is not a condition this reader knows; row skipped"))
                continue
            }
            exceptions.append(MilestoneException(
                train: row["release"] ?? "", condition: condition, text: appliesTo,
                endOfEngineering: date(row["end_of_engineering"], file: file, field: "line \(line) end_of_engineering"),
                endOfSupport: date(row["end_of_support"], file: file, field: "line \(line) end_of_support"),
                source: "\(file) line \(line): \(row["source"] ?? "")"))
        }
    }

    mutating func loadHardware() {
        // The detail file has part numbers; the main file is read only when the detail file is absent.
        let detail = "hardware-eol-detail.tsv"
        let main = "hardware-eol.tsv"
        let useDetail = FileManager.default.fileExists(atPath: directory.appendingPathComponent(detail).path)
        let file = useDetail ? detail : main
        for (line, row) in readTSV(file, required: ["product_or_sku", "eol_announce", "last_order", "end_of_support", "replacement", "source"]) {
            let sku = row["product_or_sku"] ?? ""
            guard !sku.isEmpty else {
                problems.append(DataProblem(file: file, field: "line \(line) product_or_sku", message: "empty; row skipped"))
                continue
            }
            var source = "\(file) line \(line): \(row["source"] ?? "")"
            if let psn = row["psn"], !psn.isEmpty { source += "; \(psn)" }
            hardware.append(HardwareLifecycle(
                product: sku, partNumber: row["part_number"].flatMap { $0.isEmpty ? nil : $0 },
                eolAnnounce: date(row["eol_announce"], file: file, field: "line \(line) eol_announce"),
                lastOrder: date(row["last_order"], file: file, field: "line \(line) last_order"),
                endOfEngineering: date(row["end_of_sw_engineering"], file: file, field: "line \(line) end_of_sw_engineering"),
                endOfSupport: date(row["end_of_support"], file: file, field: "line \(line) end_of_support"),
                replacement: row["replacement"].flatMap { $0.isEmpty ? nil : $0 }, source: source,
                // Its own milestone: data/README.md does not equate it with end of (software) engineering.
                endOfNewJunosReleaseSupport: date(row["end_of_new_junos_release_support"], file: file, field: "line \(line) end_of_new_junos_release_support"),
                location: "\(file) line \(line)"))
        }
    }

    mutating func loadAdvisories() {
        let folder = directory.appendingPathComponent("juniper-advisories")
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else {
            problems.append(DataProblem(file: "juniper-advisories", field: "(directory)", message: "missing or unreadable"))
            return
        }
        let files = names.filter { $0.hasSuffix(".json") }.sorted()
        // SHA256SUMS, when present, says which files are the published ones: a file that differs or
        // is not listed is still read (newer data is welcome) but reported, so an edit is never silent.
        var sums: [String: String]?
        if let text = readOptionalText(folder.appendingPathComponent("SHA256SUMS")) {
            var parsed: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
                guard parts.count == 2 else { continue }
                parsed[parts[1].trimmingCharacters(in: CharacterSet(charactersIn: " *"))] = parts[0].lowercased()
            }
            sums = parsed
        }
        if files.count > Self.maximumAdvisories {
            problems.append(DataProblem(file: "juniper-advisories", field: "(directory)", message: "\(files.count) records, more than the limit of \(Self.maximumAdvisories); the rest skipped"))
        }
        for name in files.prefix(Self.maximumAdvisories) {
            let path = "juniper-advisories/\(name)"
            guard let text = readText(folder.appendingPathComponent(name), name: path) else { continue }
            if let sums {
                let digest = SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
                if let listed = sums[name] {
                    if listed != digest {
                        problems.append(DataProblem(file: path, field: "sha256", message: "differs from juniper-advisories/SHA256SUMS (edited or replaced); read anyway"))
                    }
                } else {
                    problems.append(DataProblem(file: path, field: "sha256", message: "not listed in juniper-advisories/SHA256SUMS; read anyway"))
                }
            }
            do {
                advisories.append(try Advisory(json: Data(text.utf8), file: path, problems: &problems))
            } catch let error as AdvisoryReadError {
                problems.append(DataProblem(file: path, field: error.field, message: "\(error.message); record skipped"))
            } catch {
                problems.append(DataProblem(file: path, field: "(document)", message: "\(error); record skipped"))
            }
        }
    }
}

/// Why the data directory cannot be used at all.
public enum ReferenceDataError: Error, Sendable, CustomStringConvertible {
    case notADirectory(String)
    case notFound

    public var description: String {
        switch self {
        case let .notADirectory(path): return "\(path) is not a data directory (expected junos-release-milestones.tsv, juniper-advisories/ ...)"
        case .notFound: return "no data directory found: give --data DIR or [reports] data-directory (the repository's data/ or <prefix>/share/care-agent/data)"
        }
    }
}

/// A calendar date as the data files write it (`YYYY-MM-DD`), compared as such (no time zone).
public struct LifecycleDate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var year: Int, month: Int, day: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...12).contains(m), (1...31).contains(d) else { return nil }
        year = y; month = m; day = d
    }

    public init(year: Int, month: Int, day: Int) { self.year = year; self.month = month; self.day = day }

    /// The UTC calendar date of `date`.
    public init(_ date: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        self.init(year: c.year!, month: c.month!, day: c.day!)
    }

    /// This date plus `months` (the day clamped to the month's end).
    public func adding(months: Int) -> LifecycleDate {
        let total = year * 12 + (month - 1) + months
        let y = total / 12, m = total % 12 + 1
        let days = [31, (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]
        return LifecycleDate(year: y, month: m, day: min(day, days))
    }

    public static func < (a: Self, b: Self) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }

    public var description: String {
        func pad(_ n: Int, _ w: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let date = LifecycleDate(text) else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not YYYY-MM-DD")) }
        self = date
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One row of junos-release-milestones.tsv.
public struct ReleaseMilestone: Sendable, Equatable {
    public var train: String
    public var firstShipment: LifecycleDate?
    public var endOfEngineering: LifecycleDate?
    public var endOfSupport: LifecycleDate?
    public var eolType: String?
    public var source: String
}

/// A per-platform or per-build extension of a train's milestones.
public struct MilestoneException: Sendable {
    /// When the exception applies, as the exceptions file writes it.
    public enum Condition: Sendable {
        case modelPatterns([String])
        case models([String])
        case versionContains(String)
        case versionPattern(String)
        indirect case both(Condition, Condition)
        /// Every device (a contradicting source's row for the base release).
        case any

        /// Reads `model =~ ^EX-?2200(-C)?`, `model =~ ^M[0-9]+, ^EX2200, T640`, `model =~ ^EX2300 or ^EX3400`,
        /// `model in A B C`, `version contains D47`, `version =~ 16.1R7`, `version 14.1R4 on model =~ ^MX-?[0-9]`.
        init?(_ text: String) {
            var t = text.trimmingCharacters(in: .whitespaces)
            // Trailing notes in parentheses: "(other EX)", "(J Series)".
            if t.hasSuffix(")"), let open = t.range(of: " (", options: .backwards) { t = String(t[..<open.lowerBound]) }
            if t.hasPrefix("version "), let on = t.range(of: " on ") {
                let version = String(t[t.index(t.startIndex, offsetBy: 8)..<on.lowerBound])
                guard let model = Condition(String(t[on.upperBound...])) else { return nil }
                self = .both(.versionPattern("^" + NSRegularExpression.escapedPattern(for: version)), model)
                return
            }
            if t.hasPrefix("model =~ ") {
                let rest = t.dropFirst(9)
                let patterns = rest.replacingOccurrences(of: " or ", with: ",").split(separator: ",")
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !patterns.isEmpty, patterns.allSatisfy({ (try? NSRegularExpression(pattern: $0)) != nil }) else { return nil }
                self = .modelPatterns(patterns)
            } else if t.hasPrefix("model in ") {
                self = .models(t.dropFirst(9).split(separator: " ").map(String.init))
            } else if t.hasPrefix("version contains ") {
                self = .versionContains(String(t.dropFirst(17)))
            } else if t.hasPrefix("version =~ ") {
                let pattern = String(t.dropFirst(11))
                guard (try? NSRegularExpression(pattern: pattern)) != nil else { return nil }
                self = .versionPattern(pattern)
            } else {
                return nil
            }
        }

        func matches(model: String?, version: JunosVersion) -> Bool {
            func search(_ pattern: String, _ text: String) -> Bool {
                guard let regex = try? NSRegularExpression(pattern: pattern, options: [.caseInsensitive]) else { return false }
                return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
            }
            switch self {
            case let .modelPatterns(patterns):
                guard let model else { return false }
                return patterns.contains { search($0, model.uppercased()) }
            case let .models(list):
                guard let model else { return false }
                return list.contains { $0.caseInsensitiveCompare(model) == .orderedSame }
            case let .versionContains(text): return version.raw.contains(text)
            case let .versionPattern(pattern): return search(pattern, version.raw)
            case let .both(a, b): return a.matches(model: model, version: version) && b.matches(model: model, version: version)
            case .any: return true
            }
        }
    }

    public var train: String
    public var condition: Condition
    public var text: String
    public var endOfEngineering: LifecycleDate?
    public var endOfSupport: LifecycleDate?
    public var source: String
}

/// One row of the hardware EOL data: a chassis SKU, FRU or family, with its milestones.
public struct HardwareLifecycle: Sendable, Equatable {
    /// `product_or_sku` (`DPCE-R-2XGE-XFP`, `EX4200-48T`, `EX4500/EX6200/EX9200/EX8200 (remaining SKUs)`).
    public var product: String
    /// Juniper part number (`750-020503`) where the source gives one.
    public var partNumber: String?
    public var eolAnnounce: LifecycleDate?
    public var lastOrder: LifecycleDate?
    public var endOfEngineering: LifecycleDate?
    public var endOfSupport: LifecycleDate?
    public var replacement: String?
    public var source: String
    /// `end_of_new_junos_release_support` (the eol-scanner rows): the last date new Junos
    /// releases support the part. A milestone of its own, shown beside end of engineering.
    public var endOfNewJunosReleaseSupport: LifecycleDate? = nil
    /// `hardware-eol-detail.tsv line 53`, for messages.
    public var location: String = ""

    /// Whether two rows give the same milestones.
    func sameMilestones(as other: HardwareLifecycle) -> Bool {
        eolAnnounce == other.eolAnnounce && lastOrder == other.lastOrder && endOfEngineering == other.endOfEngineering
            && endOfSupport == other.endOfSupport && endOfNewJunosReleaseSupport == other.endOfNewJunosReleaseSupport
            && replacement == other.replacement
    }
}
