import Junos

/// The status a CVE JSON 5 record gives a release.
public enum VersionStatus: String, Codable, Sendable {
    case affected, unaffected, unknown
}

/// An upper bound of a range as Juniper writes it: a release (`21.4R3-S5`), or a whole train
/// (`21.2*`) or major (`21.*`), which bounds every release of it.
public enum ReleaseBound: Sendable, Equatable, CustomStringConvertible {
    case release(JunosVersion)
    /// `21.2*` (minor 2) or `21.*` (minor nil); `-EVO` kept for display.
    case wholeTrain(major: Int, minor: Int?, text: String)

    /// Reads one bound; nil when the text is not a Junos release (`SigPack 3598`).
    init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var body = Substring(trimmed)
        if body.uppercased().hasSuffix("-EVO") { body = body.dropLast(4) }
        if body.hasSuffix("*") {
            let parts = body.dropLast().split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, let major = Int(parts[0]) else { return nil }
            if parts[1].isEmpty { self = .wholeTrain(major: major, minor: nil, text: trimmed); return }
            guard let minor = Int(parts[1]) else { return nil }
            self = .wholeTrain(major: major, minor: minor, text: trimmed)
            return
        }
        // A bare train (`21.4`) bounds everything before that train's first release.
        let version = JunosVersion(trimmed)
        guard version.isParsed, version.type != .development, version.type != .internalBuild else { return nil }
        self = .release(version)
    }

    public var description: String {
        switch self {
        case let .release(v): return v.raw
        case let .wholeTrain(_, _, text): return text
        }
    }

    /// The release when this bound is one.
    var release: JunosVersion? { if case let .release(v) = self { return v } else { return nil } }

    /// Whether `version` lies at or before the end of this whole train / major (only for `.wholeTrain`).
    func covers(_ version: JunosVersion) -> Bool {
        guard case let .wholeTrain(major, minor, _) = self, let vMajor = version.major, let vMinor = version.minor else { return false }
        if vMajor != major { return vMajor < major }
        guard let minor else { return true }
        return vMinor <= minor
    }
}

/// One `affected[].versions[]` entry of a record, read into bounds. The text it was read from is
/// kept for reasons and warnings.
public struct AffectedRange: Sendable {
    public var status: VersionStatus
    /// Lower bound; nil for `0`, `unspecified` or empty (from the first release on).
    public var start: JunosVersion?
    /// The fix points of `lessThan` ("22.2R1-S1, 22.2R2": fixed on each branch), sorted.
    public var fixes: [ReleaseBound] { didSet { derive() } }
    /// `lessThanOrEqual`.
    public var through: ReleaseBound? { didSet { derive() } }
    /// `changes`: from `at` on, the status is `status` (sorted by `at`).
    public var changes: [(at: JunosVersion, status: VersionStatus)]
    /// True when the range runs from `start` to every later release ("16.2R1 and all subsequent").
    public var openEnded: Bool
    /// The entry as written (`21.4 < 21.4R3-S5`), for reasons.
    public var text: String
    /// Why no release can be placed in this range (a bound that is not a release).
    public var unreadable: String?
    /// The data warning this range's reading rests on, if any.
    public var warning: DataWarning?

    public init(status: VersionStatus, start: JunosVersion?, fixes: [ReleaseBound] = [], through: ReleaseBound? = nil,
                changes: [(at: JunosVersion, status: VersionStatus)] = [], openEnded: Bool = false, text: String,
                unreadable: String? = nil, warning: DataWarning? = nil) {
        self.status = status
        self.start = start
        self.fixes = Self.sorted(fixes)
        self.through = through
        self.changes = changes.sorted { $0.at < $1.at }
        self.openEnded = openEnded
        self.text = text
        self.unreadable = unreadable
        self.warning = warning
        derive()
    }

    /// Derived from the bounds once (ranges are placed millions of times in a large report).
    private(set) var releaseBounds: [JunosVersion] = []
    private(set) var boundTrains: [String] = []
    private(set) var hasWholeTrainBound = false

    private mutating func derive() {
        releaseBounds = fixes.compactMap(\.release) + [through?.release].compactMap { $0 }
        boundTrains = releaseBounds.compactMap(\.train)
        hasWholeTrainBound = (fixes + [through].compactMap { $0 }).contains { if case .wholeTrain = $0 { true } else { false } }
    }

    static func sorted(_ bounds: [ReleaseBound]) -> [ReleaseBound] {
        bounds.sorted { a, b in
            switch (a, b) {
            case let (.release(x), .release(y)): return x < y
            case (.release, .wholeTrain): return true
            case (.wholeTrain, .release): return false
            case let (.wholeTrain(m1, n1, _), .wholeTrain(m2, n2, _)): return (m1, n1 ?? Int.max) < (m2, n2 ?? Int.max)
            }
        }
    }

    /// Whether the start is a bare train (`21.4`, `15.1X49`, `21.2-EVO`): the range is that train.
    var startIsTrain: Bool { start.map { $0.type == nil || ($0.type == .specialTrain && $0.dRelease == nil) } ?? false }

    /// Where `version` falls.
    public enum Placement: Sendable, Equatable {
        case outside
        /// Inside, with the status there (after `changes`).
        case inside(VersionStatus)
        /// Cannot be decided: why.
        case undecidable(String)
    }

    public func place(_ version: JunosVersion) -> Placement {
        if let unreadable {
            // A range whose bound is not a release still names its train: outside it, it says nothing.
            if let start, startIsTrain, version.train != start.train { return .outside }
            return .undecidable("\(text): \(unreadable)")
        }
        // Lower bound.
        if let start {
            if startIsTrain {
                let wholeTrainBound = hasWholeTrainBound
                if !boundTrains.isEmpty && !boundTrains.contains(start.train ?? "") {
                    if releaseBounds.allSatisfy({ $0 < start }) {
                        // Bounded before its own start (`14.2` < `14.1X53-D130`): read as the bound's train (flagged).
                        guard boundTrains.contains(version.train ?? "") else { return .outside }
                    } else if version < start {
                        // `21.1-EVO` < `21.2R3-S8-EVO`: from the start of 21.1 up to the bound.
                        return .outside
                    }
                } else if wholeTrainBound || openEnded {
                    if version < start { return .outside }
                } else if version.train != start.train {
                    return .outside
                }
            } else {
                if let reason = Self.incomparable(version, start) { return .undecidable("\(text): \(reason)") }
                if version < start { return .outside }
            }
        }
        // Upper bound.
        var inside: Bool
        // Several fixes on one X train (`15.1X53-D63, -D70, -D230`): Juniper lists the first fixed
        // release of each line of the train, and which line a D release between two of them is on
        // (D210: after D70, before D230) the record does not say.
        let sameXTrain = version.type == .specialTrain ? fixes.compactMap { fix -> JunosVersion? in
            if case let .release(f) = fix, f.type == .specialTrain, f.train == version.train { return f }
            return nil
        }.sorted { $0 < $1 } : []
        if sameXTrain.count > 1, let lowest = sameXTrain.first, let highest = sameXTrain.last,
           !(version < lowest), version < highest, !sameXTrain.contains(where: { Self.sameRelease(version, $0) }) {
            return .undecidable("\(text): \(version.raw) lies between fixes listed for \(version.train ?? "its train") (\(sameXTrain.map(\.raw).joined(separator: ", "))), each the first fixed release of a line of the train; which line it is on, the record does not say")
        }
        if !fixes.isEmpty {
            inside = false
            // The nearest fix: the first one on this version's branch or a later branch.
            if nearestFix(for: version) == nil,
               let other = releaseBounds.first(where: { Self.incomparable(version, $0) != nil }),
               !releaseBounds.contains(where: { $0.train == version.train && Self.incomparable(version, $0) == nil }) {
                // `0 < 15.1R7-S4` says nothing clear about 15.1X49 (X trains are separate), nor
                // about 15.1F6 (F releases are not ordered against R releases).
                return .undecidable("\(text): \(Self.incomparable(version, other)!)")
            }
            if let nearest = nearestFix(for: version) {
                switch nearest {
                case let .release(fix):
                    if let reason = Self.incomparable(version, fix) { return .undecidable("\(text): \(reason)") }
                    inside = version < fix
                case .wholeTrain:
                    inside = nearest.covers(version)
                }
            }
        } else if let through {
            switch through {
            case let .release(last):
                if let reason = Self.incomparable(version, last) { return .undecidable("\(text): \(reason)") }
                // `<= 23.2R2-EVO` holds every build of 23.2R2-EVO (23.2R2.21-EVO), not only the bare name.
                inside = !(last < version) || (last.build == nil && Self.sameRelease(version, last))
            case let .wholeTrain(_, minor, _):
                // `21.1R1` through `21.*` is the 21.1 train (its later trains have their own ranges).
                if minor == nil, let start, !startIsTrain {
                    inside = version.train == start.train
                } else {
                    inside = through.covers(version)
                }
            }
        } else if openEnded {
            inside = true
        } else if let start {
            // A bare train covers the train; an exact release only itself (builds aside).
            inside = startIsTrain ? version.train == start.train : Self.sameRelease(version, start)
        } else {
            inside = true
        }
        guard inside else { return .outside }
        var status = self.status
        for change in changes where !(version < change.at) || Self.sameRelease(version, change.at) { status = change.status }
        return .inside(status)
    }

    /// Whether any release of `train` (`14.2`) could be in this range: a bound on the train, or
    /// the train's first or a late release inside it.
    func touches(train: String) -> Bool {
        if unreadable != nil { return true }
        if start?.train == train || releaseBounds.contains(where: { $0.train == train }) || boundTrains.contains(train) { return true }
        for probe in ["\(train)R1", "\(train)R9-S99"] {
            if case .inside = place(JunosVersion(probe)) { return true }
        }
        return false
    }

    /// The fix that decides for `version`: the first fix point whose branch (train and R number;
    /// the whole train for X trains) is the version's or a later one, among those that can be
    /// ordered against it (`15.1F2-S14` says nothing about 15.1R7).
    public func nearestFix(for version: JunosVersion) -> ReleaseBound? {
        for fix in fixes {
            switch fix {
            case let .release(f):
                if f.branchKey >= version.branchKey, Self.incomparable(version, f) == nil { return fix }
            case .wholeTrain:
                if fix.covers(version) { return fix }
            }
        }
        return nil
    }

    /// Why two releases cannot be ordered: an X train against a release of the same `major.minor`
    /// that is not on that X train (Juniper: `15.1X49-D180` is not comparable with `15.1R7`), or
    /// an F (feature) release against an R release: 15.1F and 15.1R were parallel lines, and
    /// `15.1 < 15.1R7-S9` does not say whether 15.1F6-S4 has the fix.
    static func incomparable(_ a: JunosVersion, _ b: JunosVersion) -> String? {
        guard a.major == b.major, a.minor == b.minor else { return nil }
        if (a.type == .feature && b.type == .release) || (a.type == .release && b.type == .feature) {
            return "\(a.raw) and \(b.raw) are an F (feature) and an R release, which cannot be ordered"
        }
        let ax = a.type == .specialTrain, bx = b.type == .specialTrain
        if ax != bx || (ax && bx && a.specialTrain != b.specialTrain) {
            if a.type == nil || b.type == nil { return nil }
            return "\(a.raw) and \(b.raw) are on different trains (X trains are separate) and cannot be ordered"
        }
        return nil
    }

    /// One end of the releases a range spans, for telling which of two overlapping ranges is
    /// the narrower (the more specific statement).
    enum Edge: Comparable {
        case lowest
        case at(JunosVersion)
        case highest

        static func < (a: Edge, b: Edge) -> Bool {
            switch (a, b) {
            case (.lowest, .lowest), (.highest, .highest): return false
            case (.lowest, _), (_, .highest): return true
            case (_, .lowest), (.highest, _): return false
            case let (.at(x), .at(y)): return x < y
            }
        }
    }

    /// The bare train after `version`'s (`22.2` → `22.3`, `15.1X49` → `15.1X50`): it orders before every release of that train.
    static func nextTrain(after version: JunosVersion) -> JunosVersion? {
        guard let major = version.major, let minor = version.minor else { return nil }
        let evo = version.isEvolved ? "-EVO" : ""
        if version.type == .specialTrain, let x = version.specialTrain { return JunosVersion("\(major).\(minor)X\(x + 1)\(evo)") }
        return JunosVersion("\(major).\(minor + 1)\(evo)")
    }

    /// Where the range starts (a bare train orders before its releases).
    var lowerEdge: Edge { start.map { .at($0) } ?? .lowest }

    /// Where the range ends: its last bound, the train after a whole-train bound or a bare
    /// start, or the start itself for an exact release.
    var upperEdge: Edge {
        if openEnded { return .highest }
        var edges: [Edge] = []
        for bound in fixes + [through].compactMap({ $0 }) {
            switch bound {
            case let .release(v): edges.append(.at(v))
            case let .wholeTrain(major, minor, _):
                edges.append(.at(JunosVersion(minor.map { "\(major).\($0 + 1)" } ?? "\(major + 1).0")))
            }
        }
        if let last = edges.max() { return last }
        guard let start else { return .highest }
        if startIsTrain { return Self.nextTrain(after: start).map { .at($0) } ?? .highest }
        return .at(start)
    }

    /// Whether every release this range spans is within `other`'s span, and the spans differ.
    func isNarrower(than other: AffectedRange) -> Bool {
        let (l1, u1, l2, u2) = (lowerEdge, upperEdge, other.lowerEdge, other.upperEdge)
        return !(l1 < l2) && !(u2 < u1) && (l2 < l1 || u1 < u2)
    }

    static func sameRelease(_ a: JunosVersion, _ b: JunosVersion) -> Bool {
        a.branchKey == b.branchKey && a.dRelease == b.dRelease && a.serviceRelease == b.serviceRelease
    }
}

extension JunosVersion {
    /// The branch a release sits on, for fix lists: `[major, minor, type, X train, R number]`.
    /// `21.4R2-S3` and `21.4R2-S7` share a branch; `15.1X49-D160` and `15.1X49-D180` too.
    var branchKey: [Int] {
        let typeRank: Int
        switch type {
        case .none, .development: typeRank = 0
        case .internalBuild: typeRank = 1
        case .beta: typeRank = 2
        case .release: typeRank = 3
        case .feature: typeRank = 4
        case .specialTrain: typeRank = 5
        }
        return [major ?? -1, minor ?? -1, typeRank, specialTrain ?? -1, type == .specialTrain ? -1 : (maintenance ?? -1)]
    }

    /// Whether the release can be placed in advisory ranges at all: parsed, with a release
    /// letter, and not a development or internal build.
    var rangeProblem: String? {
        guard isParsed else { return "\(raw) is not a Junos release" }
        switch type {
        case .none: return "\(raw) names a train, not a release"
        case .development?: return "\(raw) is a development build, which advisories do not list"
        case .internalBuild?: return "\(raw) is an internal build, which advisories do not list"
        // A dated nightly of a release train (15.1F-20151115.0): a letter but no release number.
        case _ where developmentLabel != nil && maintenance == nil && type != .specialTrain:
            return "\(raw) is a development build, which advisories do not list"
        default: return nil
        }
    }
}

extension Array where Element == Int {
    static func >= (a: [Int], b: [Int]) -> Bool { !(a.lexicographicallyPrecedes(b)) }
}
