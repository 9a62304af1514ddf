import Foundation
import Junos

/// The verdict of one (device, advisory) pair.
public enum BugVerdict: String, Codable, Sendable, CaseIterable {
    /// Running an affected release on a matching platform with the named configuration present.
    case exposed
    /// Affected release and platform, but the configuration the advisory needs is absent.
    case notExposedConfig = "not-exposed-config"
    /// Affected release, but platform or configuration cannot be decided from the data.
    case possiblyExposed = "possibly-exposed"
}

/// One row of `report bugs`: a device and an advisory that can concern it, with the reason.
/// The JSON keys are a contract (docs/reports.md).
public struct BugFinding: Codable, Sendable, Equatable {
    public var device: String
    public var hostname: String?
    public var model: String?
    /// The release of the device (the primary RE's).
    public var version: String?
    /// Each RE / member / node's release, when they differ (`re0: 21.4R3-S5.4`); nil otherwise.
    public var versions: [String]?
    public var cve: String
    public var jsa: String?
    public var title: String
    public var verdict: BugVerdict
    public var reason: String
    /// The nearest fix for the device's branch: the next release to upgrade to.
    public var fixedIn: String?
    /// `HIGH 7.5 (CVSS 3.1)`.
    public var severity: String?
    public var cvss: Double?
    public var workaround: String?
    /// The inconsistency in the record this verdict rests on, nil when none.
    public var dataWarning: String?

    enum CodingKeys: String, CodingKey {
        case device, hostname, model, version, versions, cve, jsa, title, verdict, reason
        case fixedIn = "fixed_in", severity, cvss, workaround, dataWarning = "data_warning"
    }

    public init(device: String, hostname: String?, model: String?, version: String?, versions: [String]?, cve: String,
                jsa: String?, title: String, verdict: BugVerdict, reason: String, fixedIn: String?, severity: String?,
                cvss: Double?, workaround: String?, dataWarning: String?) {
        self.device = device; self.hostname = hostname; self.model = model; self.version = version
        self.versions = versions; self.cve = cve; self.jsa = jsa; self.title = title; self.verdict = verdict
        self.reason = reason; self.fixedIn = fixedIn; self.severity = severity; self.cvss = cvss
        self.workaround = workaround; self.dataWarning = dataWarning
    }

    /// Every key is written, nulls included: consumers see the same fields on every row.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(hostname, forKey: .hostname)
        try c.encode(model, forKey: .model)
        try c.encode(version, forKey: .version)
        try c.encode(versions, forKey: .versions)
        try c.encode(cve, forKey: .cve)
        try c.encode(jsa, forKey: .jsa)
        try c.encode(title, forKey: .title)
        try c.encode(verdict, forKey: .verdict)
        try c.encode(reason, forKey: .reason)
        try c.encode(fixedIn, forKey: .fixedIn)
        try c.encode(severity, forKey: .severity)
        try c.encode(cvss, forKey: .cvss)
        try c.encode(workaround, forKey: .workaround)
        try c.encode(dataWarning, forKey: .dataWarning)
    }
}

/// `report bugs` over a set of devices.
public struct BugReport: Sendable {
    public var findings: [BugFinding]
    /// Devices evaluated.
    public var deviceCount: Int
    /// (device, advisory) pairs plainly unaffected, left out of ``findings``.
    public var unaffectedCount: Int
    /// Devices no advisory could be checked against, and why (their release is not known).
    public var notEvaluated: [(device: String, reason: String)] = []
    /// Self-contradicting records, with how they were read.
    public var dataWarnings: [DataWarning]
    /// Records and rows that could not be used.
    public var dataProblems: [DataProblem]
    public var generated: Date

    public func count(_ verdict: BugVerdict) -> Int { findings.filter { $0.verdict == verdict }.count }

    /// Evaluates every advisory against every device.
    public init(devices: [DeviceSnapshot], data: ReferenceData, generated: Date = Date()) {
        var findings: [BugFinding] = []
        var unaffected = 0
        var notEvaluated: [(device: String, reason: String)] = []
        let requirements = data.advisories.map(ConfigurationRequirement.init(advisory:))
        // Fleets run few distinct releases: each is placed once per advisory.
        let cache = ReleaseCache()
        for device in devices {
            let configuration = device.configuration.map(ConfigurationIndex.init)
            let context = DeviceMatchContext(device)
            // No release known (the software facts not collected): nothing can be placed, and
            // the device is not "unaffected" by anything. Said, not counted as clean.
            guard !context.releases.isEmpty else {
                notEvaluated.append((device.device, device.facts.parseErrors[FactKind.software.rpc].map { "the software reply could not be read: \($0)" }
                                        ?? "its software release is not known (get-software-information not collected)"))
                continue
            }
            let releaseIDs = context.releases.map { cache.id(of: $0.version) }
            for index in data.advisories.indices {
                if let finding = BugMatcher.evaluate(data.advisories[index], requirement: requirements[index], on: device, configuration: configuration,
                                                     cache: cache, context: context, advisoryIndex: index, releaseIDs: releaseIDs) {
                    findings.append(finding)
                } else {
                    unaffected += 1
                }
            }
        }
        self.findings = findings.sorted { ($0.cve, $0.device) < ($1.cve, $1.device) }
        deviceCount = devices.count
        unaffectedCount = unaffected
        self.notEvaluated = notEvaluated
        dataWarnings = data.advisories.flatMap(\.warnings)
        dataProblems = data.problems
        self.generated = generated
    }

    public init(findings: [BugFinding], deviceCount: Int, unaffectedCount: Int, dataWarnings: [DataWarning],
                dataProblems: [DataProblem], generated: Date) {
        self.findings = findings
        self.deviceCount = deviceCount
        self.unaffectedCount = unaffectedCount
        self.dataWarnings = dataWarnings
        self.dataProblems = dataProblems
        self.generated = generated
    }

    /// Only what is news against an earlier report (`--since`): pairs that are new, whose verdict
    /// changed, or whose device now runs another release. Pairs that disappeared (fixed by an
    /// upgrade) are not rows; they are counted by the caller if it wants.
    public func since(_ previous: [BugFinding]) -> BugReport {
        var earlier: [String: BugFinding] = [:]
        for f in previous { earlier["\(f.device)\u{0}\(f.cve)"] = f }
        let news = findings.filter { f in
            guard let before = earlier["\(f.device)\u{0}\(f.cve)"] else { return true }
            return before.verdict != f.verdict || before.version != f.version || before.versions != f.versions
        }
        var copy = self
        copy.findings = news
        return copy
    }
}

/// Release placements and nearest fixes already computed in one report, by advisory and release.
final class ReleaseCache {
    /// Integers only: hashing the CVE and version strings for each of the 300,000 pairs of a
    /// 2,000-device report cost more than placing the release.
    struct Key: Hashable { var advisory: Int; var product: Int; var version: Int }
    var outcomes: [Key: BugMatcher.ReleaseOutcome] = [:]
    var fixes: [String: String?] = [:]
    private var versionIDs: [String: Int] = [:]

    /// A number per distinct version text, the same for the whole report.
    func id(of version: JunosVersion) -> Int {
        if let id = versionIDs[version.raw] { return id }
        let id = versionIDs.count
        versionIDs[version.raw] = id
        return id
    }
}

/// The verdict logic for one (device, advisory) pair.
enum BugMatcher {
    /// Per-release outcome of one product entry.
    enum ReleaseOutcome {
        case affected(range: AffectedRange?, warning: DataWarning?)
        case unaffected
        /// Why, and the contradiction in the record it comes from, if any.
        case undecidable(String, warning: DataWarning? = nil)
    }

    /// nil when the pair is plainly unaffected.
    static func evaluate(_ advisory: Advisory, requirement: ConfigurationRequirement, on device: DeviceSnapshot,
                         configuration: ConfigurationIndex? = nil, cache: ReleaseCache? = nil, context: DeviceMatchContext? = nil,
                         advisoryIndex: Int = 0, releaseIDs: [Int] = []) -> BugFinding? {
        let context = context ?? DeviceMatchContext(device)
        let releases = context.releases
        guard !releases.isEmpty else { return nil }
        var affectedReleases: [(name: String?, version: JunosVersion, product: AffectedProduct, range: AffectedRange?, warning: DataWarning?, platform: PlatformVerdict)] = []
        var undecidable: [String] = []
        var undecidableWarning: DataWarning?
        for (position, (name, version)) in releases.enumerated() {
            for (productIndex, product) in advisory.affected.enumerated() where product.isEvolved == version.isEvolved {
                // The release first (cached per report): most pairs end there, before any platform work.
                let outcome: ReleaseOutcome
                if let problem = version.rangeProblem {
                    // A build no range can place, but whose train no range touches either (a 14.2
                    // nightly against ranges from 21.2 on): as unaffected as the train.
                    if product.outsideStatus == .unaffected, let train = version.train, !product.ranges.contains(where: { $0.touches(train: train) }) { continue }
                    outcome = .undecidable(problem)
                } else {
                    let key = ReleaseCache.Key(advisory: advisoryIndex, product: productIndex,
                                                version: position < releaseIDs.count ? releaseIDs[position] : (cache?.id(of: version) ?? 0))
                    if let cached = cache?.outcomes[key] { outcome = cached } else {
                        outcome = place(version, in: product)
                        cache?.outcomes[key] = outcome
                    }
                }
                if case .unaffected = outcome { continue }
                var platform = PlatformMatch.check(product.platformSet, source: product.platformSource, subject: context)
                if case .doesNotMatch = platform { continue }
                if let scope = product.descriptionScope, let model = context.model, !model.isEmpty {
                    // The fields name no platform but the description does: it excludes, or leaves undecided.
                    if !scope.excluded.isEmpty, case .matches = PlatformMatch.check(scope.excluded, source: "description", subject: context) { continue }
                    platform = .undecided("the record's fields name no platform, but its description does: \(scope.sentences.map { "\"\($0)\"" }.joined(separator: " "))")
                }
                switch outcome {
                case .unaffected: continue
                case let .undecidable(why, contradiction):
                    undecidableWarning = undecidableWarning ?? contradiction
                    undecidable.append(version.rangeProblem != nil ? "\(label(name))\(why)" : "\(label(name))\(version.raw): \(why)")
                case let .affected(range, warning):
                    affectedReleases.append((name, version, product, range, warning, platform))
                }
            }
        }
        let versionFields = context.versionFields
        // A JSU on the affected entry may carry this fix; the advisory data cannot say, so an
        // "exposed" there is only possible, with the JSU named.
        var softwareUpdates: [SoftwarePackage] = []
        func finding(_ verdict: BugVerdict, _ reason: String, fixedIn: String?, warning: DataWarning?) -> BugFinding {
            var verdict = verdict, reason = reason
            if verdict == .exposed, !softwareUpdates.isEmpty {
                verdict = .possiblyExposed
                reason += "; but a Junos Software Update is installed (\(softwareUpdates.map { $0.comment ?? $0.name }.joined(separator: ", "))): the advisory data does not say which fixes it carries, check its release notes"
            }
            return BugFinding(device: device.device, hostname: device.hostname, model: device.model,
                       version: versionFields.version, versions: versionFields.versions, cve: advisory.cve, jsa: advisory.jsa,
                       title: advisory.title, verdict: verdict, reason: reason, fixedIn: fixedIn,
                       severity: advisory.severity?.text, cvss: advisory.severity?.score, workaround: advisory.workaround,
                       dataWarning: warning?.text)
        }
        // A release on a matching platform decides before one whose platform is undecided.
        let ordered = affectedReleases.filter { if case .matches = $0.platform { true } else { false } }
            + affectedReleases.filter { if case .matches = $0.platform { false } else { true } }
        guard let first = ordered.first else {
            guard !undecidable.isEmpty else { return nil }
            return finding(.possiblyExposed, "release cannot be placed in the advisory's ranges: \(undecidable.joined(separator: "; "))",
                           fixedIn: nil, warning: undecidableWarning ?? advisory.warnings.first { [.nonReleaseBound, .unreadableVersion].contains($0.kind) })
        }
        softwareUpdates = context.softwareUpdates.isEmpty ? [] : device.facts.software?.softwareUpdates(on: first.name) ?? []
        let rangeText = first.range.map { "in range \($0.text)" } ?? "outside the listed ranges, read as \(first.product.outsideStatus.rawValue) by defaultStatus"
        let releaseText = "\(label(first.name))\(first.version.raw) is affected (\(first.product.product) \(rangeText))"
        let fixKey = "\(advisory.cve)|\(first.product.product)|\(first.product.platforms)|\(first.version.raw)"
        let fix: String?
        if let cached = cache?.fixes[fixKey] { fix = cached } else {
            fix = nearestFix(for: first.version, advisory: advisory, product: first.product)
            cache?.fixes[fixKey] = .some(fix)
        }
        let warning = first.warning

        // Platform.
        var platformText = ""
        switch first.platform {
        case let .undecided(why):
            return finding(.possiblyExposed, "\(releaseText); platform undecided: \(why)", fixedIn: fix, warning: warning)
        case let .matches(why): platformText = why
        case .doesNotMatch: return nil
        }

        // Configuration.
        switch requirement.kind {
        case let .none(why):
            return finding(.exposed, "\(releaseText); \(platformText); no configuration needed (\(why))", fixedIn: fix, warning: warning)
        case let .unreadable(why):
            return finding(.possiblyExposed, "\(releaseText); \(platformText); configuration undecided: \(why)", fixedIn: fix, warning: warning)
        case let .statements(paths, any):
            let check = checkConfiguration(paths, device: device, index: configuration ?? device.configuration.map(ConfigurationIndex.init))
            let joiner = any ? " or " : " and "
            let looked = "looked for \(paths.map { "[\($0.text)]" }.joined(separator: joiner))"
            // "Not exposed" from absent statements, unless the prose says absence proves nothing.
            func notExposed(_ absentText: String) -> BugFinding {
                if let caveat = requirement.absenceCaveat {
                    return finding(.possiblyExposed, "\(releaseText); \(platformText); configuration undecided: \(absentText) not configured, but \(caveat)", fixedIn: fix, warning: warning)
                }
                return finding(.notExposedConfig, "\(releaseText); \(platformText); configuration absent: \(absentText) not configured", fixedIn: fix, warning: warning)
            }
            func exposed(_ shown: String) -> BugFinding {
                if let caveat = requirement.presenceCaveat {
                    return finding(.possiblyExposed, "\(releaseText); \(platformText); configured: \(shown), but \(caveat)", fixedIn: fix, warning: warning)
                }
                return finding(.exposed, "\(releaseText); \(platformText); configured: \(shown)", fixedIn: fix, warning: warning)
            }
            if let mixed = requirement.mixed {
                // Only all present or all absent decide when the combination cannot be read.
                if check.undecided == nil, check.absent.isEmpty {
                    return exposed(check.present.map { "[\($0.text)]" }.joined(separator: ", "))
                }
                if check.undecided == nil, check.present.isEmpty {
                    return notExposed(paths.map { "[\($0.text)]" }.joined(separator: ", "))
                }
                let found = check.present.isEmpty ? "" : "; configured: \(check.present.map { "[\($0.text)]" }.joined(separator: ", "))"
                return finding(.possiblyExposed, "\(releaseText); \(platformText); configuration undecided: \(check.undecided ?? mixed)\(found) (\(looked); \(mixed))", fixedIn: fix, warning: warning)
            }
            if let missing = check.undecided {
                // Missing statements decide "not exposed" only when every needed one is known absent.
                if !any, let absent = check.absent.first {
                    return notExposed("[\(absent.text)]")
                }
                return finding(.possiblyExposed, "\(releaseText); \(platformText); configuration undecided: \(missing) (\(looked))", fixedIn: fix, warning: warning)
            }
            let satisfied = any ? !check.present.isEmpty : check.absent.isEmpty
            if satisfied {
                return exposed((any ? Array(check.present.prefix(1)) : check.present).map { "[\($0.text)]" }.joined(separator: ", "))
            }
            return notExposed((any ? check.absent : Array(check.absent.prefix(1))).map { "[\($0.text)]" }.joined(separator: joiner))
        }
    }

    static func label(_ name: String?) -> String { name.map { "\($0) " } ?? "" }

    static func versionsOf(_ device: DeviceSnapshot) -> (version: String?, versions: [String]?) {
        let primary = device.facts.software?.version?.raw ?? device.releases.first?.version.raw
        let all = device.facts.software?.routingEngines.compactMap { re in re.version.map { "\(re.name.map { "\($0): " } ?? "")\($0.raw)" } } ?? []
        let distinct = Set(device.facts.software?.routingEngines.compactMap { $0.version?.raw } ?? [])
        return (primary, distinct.count > 1 ? all : nil)
    }

    /// Where a release stands against one product entry: the ranges it falls in, else the status
    /// outside the ranges. A release in both an affected and an unaffected range takes the status
    /// of the narrower one (`unaffected < 15.1R1` within `affected < 20.4R3-S8`: 12.3R12 is
    /// unaffected); when neither lies within the other it is undecidable, with a warning.
    static func place(_ version: JunosVersion, in product: AffectedProduct) -> ReleaseOutcome {
        var affectedBy: [AffectedRange] = []
        var unaffectedBy: [AffectedRange] = []
        var undecided: [String] = []
        for range in product.ranges {
            switch range.place(version) {
            case .outside: continue
            case let .inside(status):
                switch status {
                case .affected: affectedBy.append(range)
                case .unaffected: unaffectedBy.append(range)
                case .unknown: undecided.append("\(range.text) says unknown")
                }
            case let .undecidable(why): undecided.append(why)
            }
        }
        if let first = affectedBy.first, !unaffectedBy.isEmpty {
            // A range within every range of the other status that holds the release decides.
            if unaffectedBy.contains(where: { u in affectedBy.allSatisfy { u.isNarrower(than: $0) } }) { return .unaffected }
            if let narrower = affectedBy.first(where: { a in unaffectedBy.allSatisfy { a.isNarrower(than: $0) } }) {
                return .affected(range: narrower, warning: narrower.warning)
            }
            // "unaffected: everything before 22.2R2" beside "affected: 22.2 before 22.2R3" is
            // Juniper's way of saying the train's first releases are not affected: it decides.
            if unaffectedBy.contains(where: { $0.start == nil && !$0.fixes.isEmpty }) { return .unaffected }
            let unaffected = unaffectedBy[0]
            let warning = DataWarning(cve: product.cve, kind: .conflictingStatus,
                                      detail: "\(version.raw) is in the affected range \(first.text) and the unaffected range \(unaffected.text), neither within the other",
                                      reading: "reported as undecidable for such releases")
            return .undecidable("in the affected range \(first.text) and the unaffected range \(unaffected.text), neither within the other", warning: warning)
        }
        if let affectedBy = affectedBy.first { return .affected(range: affectedBy, warning: affectedBy.warning) }
        if !unaffectedBy.isEmpty { return .unaffected }
        if !undecided.isEmpty { return .undecidable(undecided.joined(separator: "; ")) }
        switch product.outsideStatus {
        case .unaffected: return .unaffected
        case .affected: return .affected(range: nil, warning: product.outsideWarning)
        case .unknown: return .undecidable("outside every listed range and the record's defaultStatus is unknown")
        }
    }

    /// The next release to upgrade to: among the range's fix points and the releases the solution
    /// names, the nearest one after `version` that the advisory does not affect; the same branch
    /// first, then the same train, then any later release.
    static func nearestFix(for version: JunosVersion, advisory: Advisory, product: AffectedProduct) -> String? {
        var candidates = product.ranges.flatMap { $0.fixes.compactMap(\.release) } + advisory.solutionReleases
        candidates = candidates.filter { $0.isEvolved == version.isEvolved && version < $0 && AffectedRange.incomparable(version, $0) == nil }
        candidates = candidates.filter { if case .unaffected = place($0, in: product) { true } else { false } }
        let sorted = candidates.sorted()
        if let sameBranch = sorted.first(where: { $0.branchKey == version.branchKey }) { return sameBranch.raw }
        if let sameTrain = sorted.first(where: { $0.train == version.train }) { return sameTrain.raw }
        return sorted.first?.raw
    }

    struct ConfigurationCheck {
        var present: [StatementPath] = []
        var absent: [StatementPath] = []
        /// Why some paths could not be checked; nil when all were.
        var undecided: String?
    }

    static func checkConfiguration(_ paths: [StatementPath], device: DeviceSnapshot, index: ConfigurationIndex?) -> ConfigurationCheck {
        var check = ConfigurationCheck()
        if let configuration = index {
            for path in paths {
                if path.isPresent(in: configuration) { check.present.append(path) } else { check.absent.append(path) }
            }
            return check
        }
        // No statements: the feature profile answers the paths it has a feature for.
        guard let profile = device.facts.configuration?.features else {
            check.undecided = device.configurationProblem ?? "the configuration was not collected"
            return check
        }
        var unanswerable: [String] = []
        for path in paths {
            guard let feature = path.feature else { unanswerable.append("[\(path.text)]"); continue }
            if profile.contains(feature) { check.present.append(path) } else { check.absent.append(path) }
        }
        if !unanswerable.isEmpty {
            check.undecided = "only the feature profile was collected, which does not say whether \(unanswerable.joined(separator: ", ")) is configured"
        }
        return check
    }
}
