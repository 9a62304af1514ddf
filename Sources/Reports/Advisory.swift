import Foundation
import Junos

/// One Juniper security advisory, read from its CVE JSON 5 record: what it affects (products,
/// platforms, release ranges), the configuration it needs, its severity, fix and workaround.
public struct Advisory: Sendable {
    public var cve: String
    /// The Juniper Security Advisory id (`JSA71647`), nil when the record names none.
    public var jsa: String?
    public var title: String
    public var description: String
    public var severity: Severity?
    public var affected: [AffectedProduct]
    /// `configurations[].value`: the prose naming the configuration the issue needs.
    public var configurationText: String?
    public var workaround: String?
    public var solution: String?
    /// Releases the solution text names as fixed (asterisks removed).
    public var solutionReleases: [JunosVersion]
    /// The file the record came from (for messages).
    public var file: String
    /// Inconsistencies found in the record and how they were read.
    public var warnings: [DataWarning]

    /// Characters of description, configuration and solution prose kept (real records: < 10,000).
    static let maximumProse = 65_536

    /// CVSS score and its rating.
    public struct Severity: Codable, Sendable, Equatable {
        /// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `NONE`.
        public var rating: String
        public var score: Double?
        /// `3.1`, `4.0`.
        public var cvssVersion: String
        public var vector: String?

        /// `HIGH 7.5 (CVSS 3.1)`.
        public var text: String {
            "\(rating)\(score.map { " \($0)" } ?? "") (CVSS \(cvssVersion))"
        }
    }
}

/// One `affected[]` entry: a product (Junos OS or Junos OS Evolved) on some platforms, with its ranges.
public struct AffectedProduct: Sendable {
    public var product: String
    /// `affected[].platforms` as written, else the platforms the title names; empty: any platform.
    public var platforms: [String]
    /// Where `platforms` came from: `platforms` or `title`.
    public var platformSource: String
    /// `platforms` read into patterns.
    public var platformSet: PlatformSet
    public var defaultStatus: VersionStatus?
    public var ranges: [AffectedRange]
    /// How releases outside every range are read (see docs/reports.md); a record whose
    /// `defaultStatus` is `affected` but which lists fixes is read as `unaffected` there.
    public var outsideStatus: VersionStatus
    /// The warning `outsideStatus` rests on.
    public var outsideWarning: DataWarning?

    /// Whether this entry is about Junos OS Evolved (stored: asked for every device and advisory).
    public var isEvolved: Bool
    /// The record's CVE id, for warnings found when placing a release.
    public var cve: String = ""
    /// Platform scope the description states when the entry and the title name none.
    public var descriptionScope: DescriptionScope?
}

/// What a description says about platforms that the record's fields do not (CVE-2021-0254:
/// "overlayd runs by default in MX Series, ACX Series, and QFX Series platforms. The SRX Series
/// does not support VXLAN and is therefore not vulnerable to this issue.").
public struct DescriptionScope: Sendable {
    /// Platforms a sentence says are not vulnerable (and says nothing more about).
    var excluded: PlatformSet
    /// The sentences naming platforms, for reasons.
    public var sentences: [String]

    /// nil when the description names no platform.
    init?(description: String) {
        let text = description.replacingOccurrences(of: "\u{a0}", with: " ").replacingOccurrences(of: "\n", with: " ")
        var sentences: [String] = []
        var excluded: [String] = []
        for sentence in text.components(separatedBy: ". ") {
            let named = Self.platforms(in: sentence)
            guard !named.isEmpty else { continue }
            sentences.append(sentence.trimmingCharacters(in: .whitespaces))
            let lower = sentence.lowercased()
            // "The SRX Series ... is therefore not vulnerable": only a plain negative statement
            // excludes; "other than", "except", "only", "unless", "if" may turn it around.
            if lower.contains("not vulnerable") || lower.contains("not affected") || lower.contains("not impacted"),
               !["other than", "except", "only", "unless", " if ", "not only"].contains(where: { lower.contains($0) }) {
                excluded += named
            }
        }
        guard !sentences.isEmpty else { return nil }
        self.sentences = sentences
        self.excluded = PlatformSet(excluded)
    }

    /// `SRX Series`, `MX Series`, `QFX5120`: the platform names of a sentence.
    static func platforms(in sentence: String) -> [String] {
        let pattern = #"\b(?:v?SRX|v?MX|EX|QFX|PTX|ACX|NFX|JRR|OCX)\s?[0-9]*(?:-[0-9A-Z]+)?(?: Series)?\b"#
        var found: [String] = []
        var rest = sentence[...]
        while let range = rest.range(of: pattern, options: .regularExpression) {
            let name = String(rest[range])
            if PlatformPattern(name) != nil { found.append(name) }
            rest = rest[range.upperBound...]
        }
        return found
    }
}

/// Why an advisory record could not be read at all.
struct AdvisoryReadError: Error {
    var field: String
    var message: String
}

extension Advisory {
    /// Reads a record; problems with single fields are reported in `problems` (file and field)
    /// and the field skipped. Throws only when the record is unusable as a whole.
    init(json data: Data, file: String, problems: inout [DataProblem]) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw AdvisoryReadError(field: "(document)", message: "not a JSON object")
        }
        guard let metadata = root["cveMetadata"] as? [String: Any], let cve = metadata["cveId"] as? String else {
            throw AdvisoryReadError(field: "cveMetadata.cveId", message: "missing")
        }
        guard let containers = root["containers"] as? [String: Any], let cna = containers["cna"] as? [String: Any] else {
            throw AdvisoryReadError(field: "containers.cna", message: "missing")
        }
        guard let affectedList = cna["affected"] as? [[String: Any]] else {
            throw AdvisoryReadError(field: "containers.cna.affected", message: "missing or not a list")
        }
        self.cve = cve
        self.file = file
        let source = cna["source"] as? [String: Any]
        jsa = (source?["advisory"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            ?? Self.firstJSA(in: (cna["references"] as? [[String: Any]])?.compactMap { $0["url"] as? String } ?? [])
        // Prose is scanned with regular expressions: keep it to a size real records never reach.
        description = String((Self.english(cna["descriptions"]) ?? "").prefix(Self.maximumProse))
        // Older records have no title: the description's first sentence stands in.
        title = (cna["title"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? Self.firstSentence(description)
        configurationText = Self.english(cna["configurations"]).map { String($0.prefix(Self.maximumProse)) }.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        workaround = Self.english(cna["workarounds"])?.trimmingCharacters(in: .whitespacesAndNewlines)
        solution = Self.english(cna["solutions"]).map { String($0.prefix(Self.maximumProse)) }?.trimmingCharacters(in: .whitespacesAndNewlines)
        solutionReleases = Self.releases(in: solution ?? "")
        severity = Self.severity(cna["metrics"])
        warnings = []
        affected = []
        let titlePlatforms = Self.platforms(inTitle: title)
        for (index, entry) in affectedList.enumerated() {
            let field = "containers.cna.affected[\(index)]"
            guard let product = entry["product"] as? String else {
                problems.append(DataProblem(file: file, field: "\(field).product", message: "missing; entry skipped"))
                continue
            }
            var ranges: [AffectedRange] = []
            for (vIndex, version) in ((entry["versions"] as? [[String: Any]]) ?? []).enumerated() {
                let vField = "\(field).versions[\(vIndex)]"
                switch Self.range(version, cve: cve) {
                case let .success(range):
                    ranges.append(range)
                    if let warning = range.warning { warnings.append(warning) }
                case let .failure(problem):
                    problems.append(DataProblem(file: file, field: "\(vField).\(problem.field)", message: problem.message))
                }
            }
            let declared = (entry["defaultStatus"] as? String).flatMap(VersionStatus.init(rawValue:))
            let platforms = (entry["platforms"] as? [String]) ?? []
            affected.append(AffectedProduct(
                product: product, platforms: platforms.isEmpty ? titlePlatforms : platforms,
                platformSource: platforms.isEmpty ? "title" : "platforms",
                platformSet: PlatformSet(platforms.isEmpty ? titlePlatforms : platforms),
                defaultStatus: declared, ranges: ranges,
                // An absent defaultStatus: Juniper lists every affected train, so outside is unaffected.
                outsideStatus: declared ?? .unaffected, outsideWarning: nil,
                isEvolved: product.lowercased().contains("evolved"), cve: cve))
        }
        // Platform scope stated only in the description (no platforms field, none in the title).
        let scope = DescriptionScope(description: description)
        for index in affected.indices where affected[index].platformSet.isEmpty { affected[index].descriptionScope = scope }
        exchangeCrossedBounds()
        checkDefaultStatus()
        checkDescription()
        checkSolution()
    }

    /// A `lessThanOrEqual` bound the solution names as fixed (CVE-2024-30406: `<= 23.2R2-EVO`,
    /// "updated to resolve this specific issue: 23.2R2-EVO"): the record says both. Read as the
    /// range says (the bound affected), the side that does not hide an exposed device.
    mutating func checkSolution() {
        for p in affected.indices {
            for r in affected[p].ranges.indices {
                let range = affected[p].ranges[r]
                guard range.status == .affected, range.warning == nil, let last = range.through?.release,
                      solutionReleases.contains(where: { $0.isEvolved == last.isEvolved && AffectedRange.sameRelease($0, last) && $0.build == last.build })
                else { continue }
                let warning = DataWarning(cve: cve, kind: .boundListedAsFixed,
                                          detail: "range \(range.text) includes \(last.raw), which the solution lists as fixed",
                                          reading: "read as the range says (\(last.raw) affected)")
                affected[p].ranges[r].warning = warning
                warnings.append(warning)
            }
        }
    }

    /// Two ranges of one entry each bounded on the other's train (CVE-2023-0026: `22.2 <
    /// 22.3R2-S2, 22.3R3-S1` and `22.3 < 22.2R3-S2`): the bounds were written on the wrong lines.
    /// Read as exchanged, with a warning; the description says which way, when it says.
    mutating func exchangeCrossedBounds() {
        func boundTrain(_ range: AffectedRange) -> String? {
            guard range.status == .affected, range.startIsTrain, range.unreadable == nil, range.changes.isEmpty,
                  !range.hasWholeTrainBound, !range.releaseBounds.isEmpty else { return nil }
            let trains = Set(range.releaseBounds.compactMap(\.train))
            guard trains.count == 1, let train = trains.first, train != range.start?.train else { return nil }
            return train
        }
        let described = Self.describedRanges(in: description)
        for p in affected.indices {
            var ranges = affected[p].ranges
            for i in ranges.indices {
                guard let iBound = boundTrain(ranges[i]), let iTrain = ranges[i].start?.train else { continue }
                guard let j = ranges.indices.first(where: { j in
                    j != i && ranges[j].start?.train == iBound && boundTrain(ranges[j]) == iTrain
                        && ranges[j].start?.isEvolved == ranges[i].start?.isEvolved
                }), i < j else { continue }
                let (a, b) = (ranges[i], ranges[j])
                let aBounds = a.fixes.map(\.description).joined(separator: ", ")
                let bBounds = b.fixes.map(\.description).joined(separator: ", ")
                func name(_ v: JunosVersion) -> String { v.raw.replacingOccurrences(of: "-EVO", with: "") }
                let agrees = [(iTrain, b.releaseBounds), (iBound, a.releaseBounds)].allSatisfy { train, bounds in
                    described.contains { $0.train == train && Set($0.fixes.map(name)) == Set(bounds.map(name)) }
                }
                let warning = DataWarning(
                    cve: cve, kind: .swappedBounds,
                    detail: "ranges \(a.text) and \(b.text) are each bounded on the other's train",
                    reading: "read as \(iTrain) < \(bBounds) and \(iBound) < \(aBounds)\(agrees ? " (as the description says)" : "")")
                // Warnings these two ranges got alone (cross-train) are replaced by this one.
                warnings.removeAll { $0 == a.warning || $0 == b.warning }
                for (index, fixes, through) in [(i, b.fixes, b.through), (j, a.fixes, a.through)] {
                    ranges[index].fixes = fixes
                    ranges[index].through = through
                    ranges[index].warning = warning
                }
                ranges[i].text = "\(a.text) (read as \(iTrain) < \(bBounds))"
                ranges[j].text = "\(b.text) (read as \(iBound) < \(aBounds))"
                warnings.append(warning)
            }
            affected[p].ranges = ranges
        }
    }

    /// The English (or first) `value` of a `[{lang, value}]` list.
    static func english(_ any: Any?) -> String? {
        guard let list = any as? [[String: Any]] else { return nil }
        let chosen = list.first { ($0["lang"] as? String)?.hasPrefix("en") ?? false } ?? list.first
        return chosen?["value"] as? String
    }

    static func firstSentence(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).joined(separator: " ").trimmingCharacters(in: .whitespaces)
        let sentence = flat.range(of: ". ").map { String(flat[..<$0.lowerBound]) } ?? flat
        return sentence.count > 140 ? String(sentence.prefix(137)) + "..." : sentence
    }

    static func firstJSA(in urls: [String]) -> String? {
        for url in urls {
            if let range = url.range(of: #"JSA[0-9]+"#, options: .regularExpression) { return String(url[range]) }
        }
        return nil
    }

    /// The highest CVSS version given: 4.0, then 3.1, then 3.0.
    static func severity(_ any: Any?) -> Severity? {
        guard let metrics = any as? [[String: Any]] else { return nil }
        for (key, version) in [("cvssV4_0", "4.0"), ("cvssV3_1", "3.1"), ("cvssV3_0", "3.0")] {
            for metric in metrics {
                guard let cvss = metric[key] as? [String: Any] else { continue }
                let score = (cvss["baseScore"] as? NSNumber)?.doubleValue
                let rating = (cvss["baseSeverity"] as? String) ?? "UNKNOWN"
                return Severity(rating: rating.uppercased(), score: score, cvssVersion: version, vector: cvss["vectorString"] as? String)
            }
        }
        return nil
    }

    /// Every Junos release named in free text (`21.4R3-S5`, `15.1X49-D240`, `22.2R3-S5*`).
    static func releases(in text: String) -> [JunosVersion] {
        var found: [JunosVersion] = []
        let pattern = #"\b[0-9]{1,2}\.[0-9]{1,2}(?:R[0-9]+(?:-S[0-9]+)?|X[0-9]+-D[0-9]+|F[0-9]+(?:-S[0-9]+)?)(?:\.[0-9]+)?(?:-EVO)?"#
        var rest = text[...]
        while let range = rest.range(of: pattern, options: .regularExpression) {
            found.append(JunosVersion(String(rest[range])))
            rest = rest[range.upperBound...]
        }
        return found
    }

    /// Platforms a title names before its last colon: `Junos OS: SRX Series and MX Series: ...`.
    static func platforms(inTitle title: String) -> [String] {
        let parts = title.components(separatedBy: ": ")
        guard parts.count > 1 else { return [] }
        var platforms: [String] = []
        for part in parts.dropLast() {
            let lower = part.lowercased()
            if lower.hasPrefix("junos") { continue }
            for piece in part.components(separatedBy: ",").flatMap({ $0.components(separatedBy: " and ") }) {
                let trimmed = piece.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty, PlatformPattern(trimmed) != nil { platforms.append(trimmed) }
            }
        }
        return platforms
    }

    struct RangeProblem: Error { var field: String; var message: String }

    /// Reads one `versions[]` entry.
    static func range(_ entry: [String: Any], cve: String) -> Result<AffectedRange, RangeProblem> {
        guard let statusText = entry["status"] as? String else { return .failure(RangeProblem(field: "status", message: "missing; entry skipped")) }
        guard var status = VersionStatus(rawValue: statusText) else {
            return .failure(RangeProblem(field: "status", message: "\"\(statusText)\" is not affected, unaffected or unknown; entry skipped"))
        }
        let versionText = ((entry["version"] as? String) ?? "").trimmingCharacters(in: .whitespaces)
        let lessThan = entry["lessThan"] as? String
        let lessThanOrEqual = entry["lessThanOrEqual"] as? String
        var text = versionText.isEmpty ? "?" : versionText
        if let lessThan { text += " < \(lessThan)" }
        if let lessThanOrEqual { text += " <= \(lessThanOrEqual)" }
        var warning: DataWarning?

        // Free text (2016/2017 records): "14.2 prior to 14.2R7-S6 or 14.2R8", "16.2R1 and all subsequent releases have a resolution".
        if versionText.contains(" "), lessThan == nil, lessThanOrEqual == nil {
            let named = releasesOrTrains(in: versionText)
            let lower = versionText.lowercased()
            if lower.contains("resolution") || lower.contains("fixed") || lower.contains("not affected"), let first = named.first {
                if status == .affected {
                    warning = DataWarning(cve: cve, kind: .fixStatementMarkedAffected,
                                          detail: "entry \"\(versionText)\" has status affected but says the release is fixed",
                                          reading: "read as unaffected from \(first.raw) on")
                }
                return .success(AffectedRange(status: .unaffected, start: first, openEnded: true, text: versionText, warning: warning))
            }
            if lower.contains("prior to") || lower.contains("before") || lower.contains("earlier than"), let first = named.first, named.count > 1 {
                let fixes = named.dropFirst().map { ReleaseBound.release($0) }
                return .success(AffectedRange(status: status, start: first, fixes: Array(fixes), text: versionText))
            }
            return .success(AffectedRange(status: status, start: named.first, text: versionText,
                                          unreadable: "free-text version not understood",
                                          warning: DataWarning(cve: cve, kind: .unreadableVersion, detail: "version \"\(versionText)\" is free text",
                                                               reading: "releases of its train are reported as undecidable")))
        }

        var start: JunosVersion?
        let lowerVersion = versionText.lowercased()
        if !(versionText.isEmpty || versionText == "0" || lowerVersion == "unspecified" || versionText == "*") {
            let parsed = JunosVersion(versionText)
            guard parsed.isParsed else {
                return .failure(RangeProblem(field: "version", message: "\"\(versionText)\" is not a Junos release or train; entry skipped"))
            }
            start = parsed
        }
        func bounds(_ text: String) -> (bounds: [ReleaseBound], unreadable: [String]) {
            var result: [ReleaseBound] = [], bad: [String] = []
            for piece in text.split(separator: ",") {
                let trimmed = piece.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }  // "21.4R2-EVO," has a trailing comma
                if let bound = ReleaseBound(trimmed) { result.append(bound) } else { bad.append(trimmed) }
            }
            return (result, bad)
        }
        var fixes: [ReleaseBound] = []
        var through: ReleaseBound?
        var unreadable: String?
        if let lessThan {
            let read = bounds(lessThan)
            fixes = read.bounds
            if !read.unreadable.isEmpty {
                unreadable = "bound \(read.unreadable.joined(separator: ", ")) is not a Junos release"
                warning = DataWarning(cve: cve, kind: .nonReleaseBound, detail: "range \(text): \(read.unreadable.joined(separator: ", ")) is not a Junos release",
                                      reading: "releases of \(start?.train ?? "any train") are reported as undecidable")
            }
        }
        if let lessThanOrEqual {
            let read = bounds(lessThanOrEqual)
            if read.bounds.count == 1 && read.unreadable.isEmpty { through = read.bounds[0] } else {
                unreadable = "bound \(lessThanOrEqual) is not one Junos release"
                warning = DataWarning(cve: cve, kind: .nonReleaseBound, detail: "range \(text): lessThanOrEqual \(lessThanOrEqual) is not one release",
                                      reading: "releases of \(start?.train ?? "any train") are reported as undecidable")
            }
        }
        var changes: [(at: JunosVersion, status: VersionStatus)] = []
        for change in (entry["changes"] as? [[String: Any]]) ?? [] {
            guard let at = (change["at"] as? String).map(JunosVersion.init), at.isParsed,
                  let changed = (change["status"] as? String).flatMap(VersionStatus.init(rawValue:)) else {
                return .failure(RangeProblem(field: "changes", message: "a change without a readable at/status; entry skipped"))
            }
            changes.append((at, changed))
        }
        // Self-contradicting bounds.
        if let start, start.type != nil, warning == nil {
            for fix in fixes.compactMap(\.release) + [through?.release].compactMap({ $0 }) {
                if fix < start, AffectedRange.incomparable(start, fix) == nil {
                    warning = DataWarning(cve: cve, kind: .swappedRange, detail: "range \(text) starts after its bound",
                                          reading: "read as \(fix.raw) up to \(start.raw)\(through == nil ? " (exclusive)" : "")")
                    let swappedStart = fix
                    let swappedFix = start
                    return .success(AffectedRange(status: status, start: swappedStart,
                                                  fixes: through == nil ? [.release(swappedFix)] : [],
                                                  through: through == nil ? nil : .release(swappedFix),
                                                  changes: changes, text: text, warning: warning))
                }
                if through == nil, fixes.count == 1, AffectedRange.sameRelease(fix, start), fix.build == start.build {
                    warning = DataWarning(cve: cve, kind: .emptyRange, detail: "range \(text) holds no release (start equals its exclusive bound)",
                                          reading: "read as affecting nothing")
                    status = .unaffected
                }
            }
        }
        if let start, warning == nil {
            let boundTrains = Set((fixes.compactMap(\.release) + [through?.release].compactMap { $0 }).compactMap(\.train))
            let releaseBounds = fixes.compactMap(\.release) + [through?.release].compactMap { $0 }
            if let startTrain = start.train, !boundTrains.isEmpty, !boundTrains.contains(startTrain),
               releaseBounds.allSatisfy({ $0 < start }) {
                warning = DataWarning(cve: cve, kind: .crossTrainRange,
                                      detail: "range \(text) starts on train \(startTrain) but is bounded on \(boundTrains.sorted().joined(separator: ", "))",
                                      reading: "read as the releases of \(boundTrains.sorted().joined(separator: ", ")) before the bound")
            }
        }
        return .success(AffectedRange(status: status, start: start, fixes: fixes, through: through, changes: changes,
                                      text: text, unreadable: unreadable, warning: warning))
    }

    /// Releases and bare trains (`14.2`, `15.1X53`) in free text, in order.
    static func releasesOrTrains(in text: String) -> [JunosVersion] {
        var found: [JunosVersion] = []
        var rest = text[...]
        let pattern = #"\b[0-9]{1,2}\.[0-9]{1,2}(?:R[0-9]+(?:-S[0-9]+)?|X[0-9]+(?:-D[0-9]+)?|F[0-9]+(?:-S[0-9]+)?)?(?:\.[0-9]+)?(?:-EVO)?"#
        while let range = rest.range(of: pattern, options: .regularExpression) {
            found.append(JunosVersion(String(rest[range])))
            rest = rest[range.upperBound...]
        }
        return found
    }

    /// `defaultStatus: affected` marks every release outside the ranges affected, including the
    /// fixes the record lists; such a record is read as unaffected outside its ranges.
    mutating func checkDefaultStatus() {
        for index in affected.indices where affected[index].defaultStatus == .affected {
            let product = affected[index]
            let fixPoints = product.ranges.flatMap { $0.fixes.compactMap(\.release) }
                + solutionReleases.filter { $0.isEvolved == product.isEvolved }
            let outside = fixPoints.filter { fix in
                product.ranges.allSatisfy { $0.place(fix) == .outside }
            }
            guard !outside.isEmpty else { continue }
            var names: [String] = []
            for fix in outside where !names.contains(fix.raw) { names.append(fix.raw) }
            let warning = DataWarning(
                cve: cve, kind: .defaultStatusMarksFixed,
                detail: "\(product.product): defaultStatus affected would mark its fixed releases \(names.prefix(6).joined(separator: ", "))\(names.count > 6 ? ", ..." : "") affected",
                reading: "read as unaffected outside the listed ranges")
            affected[index].outsideStatus = .unaffected
            affected[index].outsideWarning = warning
            warnings.append(warning)
        }
    }

    /// What the description says per train ("21.4 versions before 21.4R3-S5", "versions earlier
    /// than 20.4R3-S9"): the train (nil: every earlier release) and the fixes.
    public static func describedRanges(in description: String) -> [(train: String?, evolved: Bool, fixes: [JunosVersion])] {
        var result: [(String?, Bool, [JunosVersion])] = []
        let text = description.replacingOccurrences(of: "\u{a0}", with: " ")
        let pattern = #"(?:\b([0-9]{1,2}\.[0-9]{1,2}(?:X[0-9]+)?(?:-EVO)?) )?versions? (?:before|prior to|earlier than) ([0-9]{1,2}\.[0-9][0-9A-Z.\-]*(?:(?:,| or| and) [0-9]{1,2}\.[0-9][0-9A-Z.\-]*)*)"#
        var rest = text[...]
        while let range = rest.range(of: pattern, options: .regularExpression) {
            let match = String(rest[range])
            rest = rest[range.upperBound...]
            let parts = match.components(separatedBy: " version")
            let trainPart = parts.count > 1 ? parts[0].trimmingCharacters(in: .whitespaces) : ""
            let train = trainPart.isEmpty ? nil : trainPart
            let fixes = releases(in: parts.last ?? "")
            guard !fixes.isEmpty else { continue }
            let evolved = (train?.hasSuffix("-EVO") ?? false) || fixes.allSatisfy(\.isEvolved)
            result.append((train.map { $0.replacingOccurrences(of: "-EVO", with: "") }, evolved, fixes))
        }
        return result
    }

    /// Ranges whose fixes disagree with everything the description says for the same train (a
    /// record with SRX and NFX entries describes each; a range must match one of them).
    mutating func checkDescription() {
        let described = Self.describedRanges(in: description)
        guard !described.isEmpty else { return }
        func name(_ v: JunosVersion) -> String { v.raw.replacingOccurrences(of: "-EVO", with: "") }
        for pIndex in affected.indices {
            let evolved = affected[pIndex].isEvolved
            for rIndex in affected[pIndex].ranges.indices {
                let range = affected[pIndex].ranges[rIndex]
                guard range.status == .affected, range.warning == nil else { continue }
                let statements = described.filter { d in
                    d.evolved == evolved && (d.train == range.start?.train || (d.train == nil && range.start == nil))
                }
                guard !statements.isEmpty else { continue }
                let bounds = (range.fixes + [range.through].compactMap { $0 }).compactMap(\.release)
                guard !bounds.isEmpty else { continue }
                let boundNames = Set(bounds.map(name))
                let statedSets = statements.map { Set($0.fixes.map(name)) }
                if let through = range.through?.release, statedSets.contains(boundNames) {
                    // "before X" in prose, "<= X" in the range: X is the fix, read as "before X".
                    let warning = DataWarning(cve: cve, kind: .disagreesWithDescription,
                                              detail: "range \(range.text) includes \(through.raw), the description says \(range.start?.train ?? "") versions before \(through.raw)",
                                              reading: "read as before \(through.raw) (the description)")
                    affected[pIndex].ranges[rIndex].through = nil
                    affected[pIndex].ranges[rIndex].fixes = [.release(through)]
                    affected[pIndex].ranges[rIndex].warning = warning
                    warnings.append(warning)
                } else if statedSets.allSatisfy({ $0.isDisjoint(with: boundNames) }) {
                    let said = statements.map { $0.fixes.map(\.raw).joined(separator: ", ") }.joined(separator: "; ")
                    let warning = DataWarning(cve: cve, kind: .disagreesWithDescription,
                                              detail: "range \(range.text) and the description (\(range.start?.train.map { "\($0) versions" } ?? "versions") before \(said)) name different fixes",
                                              reading: "read as the range says")
                    affected[pIndex].ranges[rIndex].warning = warning
                    warnings.append(warning)
                }
            }
        }
    }
}
