/// A Junos software version such as `21.4R3-S5.4`, `15.1X49-D160.2` or `16.1-20160720.0`, taken
/// apart so that versions can be ordered the way Juniper numbers them and matched against
/// release-milestone tables by ``train``.
///
/// Parsing never fails: text that is not a Junos version keeps its ``raw`` form, has a nil
/// ``major`` and orders after every parsed version. Encodes and decodes as its raw string.
public struct JunosVersion: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The letter after `major.minor`.
    public enum ReleaseType: String, Codable, Sendable, CaseIterable {
        /// `R`: a standard release (`21.4R3`).
        case release = "R"
        /// `F`: a feature-velocity release (`15.1F5`).
        case feature = "F"
        /// `X`: a special train with D releases (`15.1X49-D160`).
        case specialTrain = "X"
        /// `I`: an internal/private build (`15.2I20151126_0126_dsatya`).
        case internalBuild = "I"
        /// `B`: a beta release (`14.1B2`).
        case beta = "B"
        /// A dated development build with no letter (`16.1-20160720.0`).
        case development = "dev"

        /// Position within one `major.minor`: pre-release builds first, then R, F, and X trains
        /// (X trains branch off a release and continue after it).
        fileprivate var rank: Int {
            switch self {
            case .development: return 0
            case .internalBuild: return 1
            case .beta: return 2
            case .release: return 3
            case .feature: return 4
            case .specialTrain: return 5
            }
        }
    }

    /// The text as the device reported it (trimmed).
    public let raw: String
    public let major: Int?
    public let minor: Int?
    public let type: ReleaseType?
    /// The X train number: 49 in `15.1X49-D160.2`.
    public let specialTrain: Int?
    /// The number after R, F or B: 3 in `21.4R3-S5.4`.
    public let maintenance: Int?
    /// The D release of an X train: 160 in `15.1X49-D160.2`.
    public let dRelease: Int?
    /// The service release: 5 in `21.4R3-S5.4`.
    public let serviceRelease: Int?
    /// The build after the last dot of the main part: 4 in `21.4R3-S5.4`, 6 in `11.4R1.6`.
    public let build: Int?
    /// The date/label of development and internal builds: `20170706_dev_common`, `20151126_0126_dsatya`.
    public let developmentLabel: String?
    /// Text after the recognised parts, kept for display and tie-breaks: `-C1.12`, `-secure`.
    public let suffix: String?
    /// Junos OS Evolved (`-EVO`).
    public let isEvolved: Bool

    /// True when at least `major.minor` could be read.
    public var isParsed: Bool { major != nil && minor != nil }

    /// The release train used for milestone tables: `21.4`, `15.1X49`, `12.3X48`. Nil when unparsed.
    public var train: String? {
        guard let major, let minor else { return nil }
        if type == .specialTrain, let specialTrain { return "\(major).\(minor)X\(specialTrain)" }
        return "\(major).\(minor)"
    }

    /// The entry of this version's own train: `15.1X49-D160.2` takes `15.1X49`, `15.1R7` and
    /// `15.1F5` take `15.1`. An X train is a release train of its own with its own milestones: one
    /// without a key (`18.2X75`) has no entry, rather than its base train's (`18.2`).
    public func trainMatch<Value>(in table: [String: Value]) -> (train: String, value: Value)? {
        guard let train, let value = table[train] else { return nil }
        return (train, value)
    }

    public var description: String { raw }

    /// Parses `text`; never fails (see ``isParsed``).
    public init(_ text: String) {
        let scanned = VersionScanner.scan(text.trimmed)
        raw = text.trimmed
        major = scanned.major
        minor = scanned.minor
        type = scanned.type
        specialTrain = scanned.specialTrain
        maintenance = scanned.maintenance
        dRelease = scanned.dRelease
        serviceRelease = scanned.serviceRelease
        build = scanned.build
        developmentLabel = scanned.developmentLabel
        suffix = scanned.suffix
        isEvolved = scanned.isEvolved
    }

    /// Parses `text` when it is present and non-empty.
    public init?(optional text: String?) {
        guard let text, !text.trimmed.isEmpty else { return nil }
        self.init(text)
    }

    public init(from decoder: Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(raw)
    }

    public static func == (lhs: JunosVersion, rhs: JunosVersion) -> Bool { lhs.raw == rhs.raw }
    public func hash(into hasher: inout Hasher) { hasher.combine(raw) }

    /// Juniper's order: major, minor, release type, X train, maintenance (R/F/B number) or
    /// D release, service release (none before S1), development label, build; unparsed last.
    /// Ties fall back to the raw text so that `<` agrees with `==`.
    public static func < (lhs: JunosVersion, rhs: JunosVersion) -> Bool {
        switch (lhs.isParsed, rhs.isParsed) {
        case (true, false): return true
        case (false, true): return false
        case (false, false): return lhs.raw < rhs.raw
        case (true, true): break
        }
        let left = lhs.orderingKey, right = rhs.orderingKey
        for (l, r) in zip(left, right) where l != r { return l < r }
        if lhs.developmentLabel != rhs.developmentLabel {
            return lhs.developmentSortKey < rhs.developmentSortKey
        }
        if lhs.build != rhs.build { return (lhs.build ?? -1) < (rhs.build ?? -1) }
        if lhs.isEvolved != rhs.isEvolved { return !lhs.isEvolved }
        return lhs.raw < rhs.raw
    }

    /// The development label with the dashes of a `2017-07-02` date removed, so that both date
    /// forms Junos uses order together.
    private var developmentSortKey: String { (developmentLabel ?? "").filter { $0 != "-" } }

    /// Numeric components compared in order; absent numbers count as -1 (before 0/1).
    private var orderingKey: [Int] {
        [major ?? -1, minor ?? -1, type?.rank ?? -1, specialTrain ?? -1,
         maintenance ?? -1, dRelease ?? -1, serviceRelease ?? -1]
    }
}

/// A hand-written scanner over the version grammar (regular expressions would need Foundation).
private struct VersionScanner {
    var major: Int?
    var minor: Int?
    var type: JunosVersion.ReleaseType?
    var specialTrain: Int?
    var maintenance: Int?
    var dRelease: Int?
    var serviceRelease: Int?
    var build: Int?
    var developmentLabel: String?
    var suffix: String?
    var isEvolved = false

    private var rest: Substring = ""

    static func scan(_ text: String) -> VersionScanner {
        var scanner = VersionScanner()
        scanner.run(text)
        return scanner
    }

    private mutating func run(_ text: String) {
        var body = Substring(text)
        if body.uppercased().hasSuffix("-EVO") {
            isEvolved = true
            body = body.dropLast(4)
        }
        rest = body
        guard let major = number(), take("."), let minor = number() else {
            // Not a version: nothing but the raw text is kept.
            self = VersionScanner()
            return
        }
        self.major = major
        self.minor = minor

        if let letter = rest.first {
            switch letter {
            case "R", "F", "B":
                rest = rest.dropFirst()
                type = letter == "R" ? .release : letter == "F" ? .feature : .beta
                maintenance = number()
            case "X":
                rest = rest.dropFirst()
                type = .specialTrain
                specialTrain = number()
            case "I":
                rest = rest.dropFirst()
                type = .internalBuild
                // Everything after I is the build label (`20151126_0126_dsatya`, `0`).
                let label = rest.prefix(while: { $0 != "." })
                developmentLabel = label.isEmpty ? nil : String(label)
                rest = rest.dropFirst(label.count)
            case "-" where startsWithDate(rest.dropFirst()):
                type = .development
            default:
                break
            }
        }
        scanTail()
    }

    /// `-S5`, `-D160`, `-20170706_dev_common`, `.4` in any order; anything else ends the scan.
    private mutating func scanTail() {
        while !rest.isEmpty {
            let saved = rest
            if take("-S"), serviceRelease == nil, let n = number() {
                serviceRelease = n
            } else if restore(saved), take("-D"), dRelease == nil, let n = number() {
                dRelease = n
            } else if restore(saved), take("-"), developmentLabel == nil, startsWithDate(rest) {
                let label = rest.prefix(while: { $0 != "." })
                developmentLabel = String(label)
                rest = rest.dropFirst(label.count)
            } else if restore(saved), take("."), build == nil, let n = number() {
                build = n
            } else {
                rest = saved
                suffix = String(rest)
                return
            }
        }
    }

    private mutating func restore(_ saved: Substring) -> Bool {
        rest = saved
        return true
    }

    private mutating func take(_ literal: String) -> Bool {
        guard rest.hasPrefix(literal) else { return false }
        rest = rest.dropFirst(literal.count)
        return true
    }

    private mutating func number() -> Int? {
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 9, let value = Int(digits) else { return nil }
        rest = rest.dropFirst(digits.count)
        return value
    }

    /// Development builds carry a date: `20160720`, or `2017-07-02` on some throttle builds
    /// (`17.3-2017-07-02.0_RELEASE_173_THROTTLE`).
    private func startsWithDate(_ s: Substring) -> Bool {
        func digits(_ t: Substring) -> Int { t.prefix(while: { $0.isASCII && $0.isNumber }).count }
        if digits(s) == 8 { return true }
        let parts = s.prefix(10).split(separator: "-", omittingEmptySubsequences: false)
        return s.count >= 10 && parts.count == 3 && parts.map(\.count) == [4, 2, 2] && parts.allSatisfy { digits($0) == $0.count }
    }
}
