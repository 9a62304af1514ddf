import Foundation
import Junos

/// A platform as advisories write it, free text with varying spelling: `SRX Series`,
/// `SRX 5000 Series`, `QFX5k`, `EX4300`, `PTX10001-36MR`, `MX Series with SPC3`, `vMX`.
struct PlatformPattern: Sendable, Equatable {
    /// `SRX`, `MX`, `QFX`, ...
    var family: String
    /// The significant digits (`5` of `SRX5000 Series`), empty for a whole family.
    var digits: String
    /// For a series (`SRX5000 Series`, `QFX5k`): how many digits the model number has; nil for
    /// an exact model (`EX4300` matches `EX4300-48T`, not `EX43000`).
    var seriesDigitCount: Int?
    /// `-36MR` of `PTX10001-36MR`.
    var suffix: String
    /// Line cards or modules the entry is limited to (`SPC3`, `MPC10E`), any one of them.
    var qualifiers: [String]
    /// The qualifiers' UTF-8, searched in each inventory unit's text.
    var qualifierBytes: [[UInt8]]
    /// How inventories also spell a qualifier (`SPC2` as `SPC II` in "SRX5k SPC II"), matched as
    /// whole words (`SPC II` must not find `SPC III`): the qualifier and the spelling's UTF-8.
    var qualifierSpellings: [(qualifier: String, bytes: [UInt8])] = []
    var text: String

    static func == (a: Self, b: Self) -> Bool {
        a.family == b.family && a.digits == b.digits && a.seriesDigitCount == b.seriesDigitCount && a.suffix == b.suffix
            && a.qualifiers == b.qualifiers && a.text == b.text
    }

    /// Product lines Juniper names by a round number no chassis carries (EX9200: EX9204, EX9208,
    /// EX9214): a series even without "Series". `EX9200-15C` is then a line card of the series.
    static let seriesNames: Set<String> = ["EX6200", "EX8200", "EX9200", "MX2000", "MX10000", "PTX10000", "QFX10000", "SRX4000", "SRX5000"]

    /// `SPC2` → `SPC II`: line cards whose inventory descriptions use Roman numerals.
    static func romanSpelling(_ qualifier: String) -> String? {
        let letters = qualifier.prefix { $0.isLetter }
        let rest = qualifier.dropFirst(letters.count)
        guard letters.count >= 2, rest.count == 1, let digit = rest.first?.wholeNumberValue, (1...4).contains(digit) else { return nil }
        return "\(letters) \(["I", "II", "III", "IV"][digit - 1])"
    }

    mutating func addQualifiers(_ tokens: [String]) {
        for token in tokens where !qualifiers.contains(token) {
            qualifiers.append(token)
            qualifierBytes.append(Array(token.utf8))
            if let roman = Self.romanSpelling(token) { qualifierSpellings.append((token, Array(roman.utf8))) }
        }
    }

    /// Models whose variant is a separate platform, named only as such (`EX4300-MP`).
    static let distinctVariants: [String: String] = ["EX4300": "MP"]

    /// Whether the text after the model number is that variant: `-48MP`, `-24MP-S`.
    static func isVariant(_ after: Substring, _ variant: String) -> Bool {
        guard after.first == "-" else { return false }
        let rest = after.dropFirst().drop { $0.isNumber }
        return rest.starts(with: variant) && (rest.count == variant.count || rest.dropFirst(variant.count).first == "-")
    }

    static let families: Set<String> = ["SRX", "VSRX", "CSRX", "MX", "VMX", "EX", "QFX", "VQFX", "PTX", "ACX", "NFX", "JRR", "OCX", "T", "M", "J", "TX"]

    init?(_ text: String) {
        self.text = text
        var upper = text.uppercased().replacingOccurrences(of: "\u{a0}", with: " ")
        var qualifiers: [String] = []
        for joiner in [" WITH ", " USING "] {
            if let range = upper.range(of: joiner) {
                let after = String(upper[range.upperBound...])
                upper = String(upper[..<range.lowerBound])
                qualifiers = Self.qualifierTokens(after)
                break
            }
        }
        self.qualifiers = []
        qualifierBytes = []
        var isSeries = false
        for word in [" SERIES", " SWITCHING", " PLATFORMS", " DEVICES"] where upper.hasSuffix(word) {
            upper = String(upper.dropLast(word.count))
            isSeries = true
        }
        var compact = upper.replacingOccurrences(of: " ", with: "")
        let letters = compact.prefix { $0.isLetter }
        guard !letters.isEmpty, Self.families.contains(String(letters)) else { return nil }
        if !isSeries, let name = Self.seriesNames.first(where: { compact == $0 || compact.hasPrefix($0 + "-") }) {
            // EX9200 alone is the series; EX9200-15C is a line card of it, found in the inventory.
            if compact != name { qualifiers.insert(compact, at: 0) }
            compact = name
            isSeries = true
        }
        var rest = Substring(compact).dropFirst(letters.count)
        let number = rest.prefix { $0.isNumber }
        rest = rest.dropFirst(number.count)
        family = String(letters)
        suffix = ""
        if rest.first == "K", rest.count == 1 {
            // QFX5k: QFX5xxx.
            digits = String(number)
            seriesDigitCount = number.count + 3
            addQualifiers(qualifiers)
            return
        }
        if !rest.isEmpty {
            // A suffix follows a model number: "J-Web" (a feature in a title) is no platform.
            guard rest.first == "-", !isSeries, !number.isEmpty else { return nil }
            suffix = String(rest)
        }
        if isSeries && !number.isEmpty {
            // SRX5000 Series: the digits before the trailing zeros, same length (SRX5400, SRX5800).
            var significant = Substring(number)
            while significant.count > 1, significant.last == "0" { significant = significant.dropLast() }
            digits = String(significant)
            seriesDigitCount = number.count
        } else {
            digits = String(number)
            seriesDigitCount = nil
        }
        addQualifiers(qualifiers)
    }

    /// `MPC10/11/LC9600` → MPC10, MPC11, LC9600; `SPC3 and MS-MPC` → SPC3, MS-MPC.
    static func qualifierTokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var lastLetters = ""
        let pieces = text.replacingOccurrences(of: " OR ", with: "/").replacingOccurrences(of: " AND ", with: "/")
            .replacingOccurrences(of: ",", with: "/").replacingOccurrences(of: " ", with: "/")
            .split(separator: "/").map(String.init)
        for piece in pieces where !piece.isEmpty {
            if piece.allSatisfy(\.isNumber) {
                if !lastLetters.isEmpty { tokens.append(lastLetters + piece) }
            } else {
                tokens.append(piece)
                lastLetters = String(piece.prefix { $0.isLetter })
            }
        }
        return tokens
    }

    /// Whether a device model (`mx960`, `srx5800`, `ex4300-48t`, `vSRX`) is this platform,
    /// leaving the qualifiers aside.
    func matchesModel(_ model: String) -> Bool {
        matchesModel(normalized: DeviceMatchContext.normalize(model))
    }

    /// As ``matchesModel(_:)`` for a model already upper-cased without blanks.
    /// Pure Swift prefix tests (`starts(with:)`): Foundation's `hasPrefix` on substrings is slow here.
    func matchesModel(normalized model: String) -> Bool {
        var m = Substring(model)
        // vSRX/vMX/vQFX are virtual members of their series (an SRX Series advisory covers vSRX).
        if digits.isEmpty, !family.hasPrefix("V"), m.starts(with: "V" + family) { m = m.dropFirst() }
        guard m.starts(with: family) else { return false }
        m = m.dropFirst(family.count)
        let modelDigits = m.prefix { $0.isNumber }
        if digits.isEmpty && suffix.isEmpty {
            // A whole family: `MX` must not match `MXQ`, and `M` must not match `MX` (letters follow).
            return m.first.map { !$0.isLetter } ?? true
        }
        if let seriesDigitCount {
            return modelDigits.starts(with: digits) && modelDigits.count == seriesDigitCount
        }
        guard modelDigits == digits else { return false }
        let after = m.dropFirst(modelDigits.count)
        if suffix.isEmpty {
            // EX4300-48MP is the EX4300-MP, a platform of its own: "EX4300" alone does not name it.
            if let variant = Self.distinctVariants[family + digits], Self.isVariant(after, variant) { return false }
            return true
        }
        if let variant = Self.distinctVariants[family + digits], suffix == "-" + variant { return Self.isVariant(after, variant) }
        return after.starts(with: suffix) && (after.count == suffix.count || !(after.dropFirst(suffix.count).first?.isLetter ?? false))
    }
}

/// How a device stands against an affected entry's platforms.
public enum PlatformVerdict: Sendable, Equatable {
    case matches(String)
    case doesNotMatch(String)
    case undecided(String)
}

/// The platforms of one affected entry, read once when the record is loaded.
public struct PlatformSet: Sendable {
    var patterns: [PlatformPattern] = []
    /// Text that names no platform family (`QFabric System`).
    var unreadable: [String] = []
    /// Containerised products (`cRPD`, `JCNR`): software, never a chassis model.
    var containerProducts: [String] = []
    /// As written, for reasons.
    var text: String

    init(_ platforms: [String]) {
        text = platforms.joined(separator: ", ")
        for entry in platforms {
            // "MX Series with SPC3 and MS-MPC": the "and" is inside the qualifier; read it whole.
            if let whole = PlatformPattern(entry.trimmingCharacters(in: .whitespaces)), !whole.qualifiers.isEmpty {
                if !patterns.contains(whole) { patterns.append(whole) }
                continue
            }
            if Self.isLineCardName(entry.trimmingCharacters(in: .whitespaces)), let last = patterns.indices.last, !patterns[last].qualifiers.isEmpty {
                patterns[last].addQualifiers([entry.trimmingCharacters(in: .whitespaces).uppercased()])
                continue
            }
            for piece in entry.components(separatedBy: ",").flatMap({ $0.components(separatedBy: " and ") }) {
                let trimmed = piece.trimmingCharacters(in: .whitespaces)
                guard !trimmed.isEmpty else { continue }
                if let pattern = PlatformPattern(trimmed) { patterns.append(pattern) }
                else if Self.isLineCardName(trimmed), let last = patterns.indices.last, !patterns[last].qualifiers.isEmpty {
                    // "MX Series with MPC10", "MPC11", "LC9600": the bare cards join the entry before them.
                    patterns[last].addQualifiers([trimmed.uppercased()])
                }
                else if Self.containerProductNames.contains(trimmed.uppercased()) { containerProducts.append(trimmed) }
                else { unreadable.append(trimmed) }
            }
        }
    }

    /// A line card or module name standing alone (`MPC11`, `LC9600`, `SPC3`): letters then digits,
    /// no platform family.
    static func isLineCardName(_ text: String) -> Bool {
        let upper = text.uppercased()
        let letters = upper.prefix { $0.isLetter }
        let rest = upper.dropFirst(letters.count)
        return ["MPC", "LC", "SPC", "DPC", "MIC", "PIC", "FPC", "IOC", "NPC", "SCB", "SFB"].contains(String(letters))
            && !rest.isEmpty && rest.allSatisfy { $0.isNumber || $0.isLetter }
    }

    /// Juniper's containerised routing/forwarding products: they run on servers, not as a chassis.
    /// (vMX, vSRX, vQFX are virtual members of their hardware families and are read as such.)
    static let containerProductNames: Set<String> = ["CRPD", "JCNR"]

    var isEmpty: Bool { patterns.isEmpty && unreadable.isEmpty && containerProducts.isEmpty }
}

enum PlatformMatch {
    /// Checks the device's model (and, for entries limited to line cards, its inventory) against
    /// `platforms`. No platforms at all: every platform.
    static func check(_ platforms: [String], source: String, model: String?, inventory: ChassisInventory?) -> PlatformVerdict {
        var facts = DeviceFacts()
        facts.software = SoftwareInformation(model: model)
        facts.inventory = inventory
        return check(PlatformSet(platforms), source: source,
                     subject: DeviceMatchContext(DeviceSnapshot(device: "", collected: Date(), facts: facts, source: "")))
    }

    static func bytes(_ haystack: [UInt8], contain needle: [UInt8]) -> Bool {
        guard let first = needle.first, needle.count <= haystack.count else { return needle.isEmpty }
        var start = 0
        let last = haystack.count - needle.count
        while start <= last {
            if haystack[start] == first {
                var matched = 1
                while matched < needle.count, haystack[start + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return true }
            }
            start += 1
        }
        return false
    }

    /// `needle` in `haystack` as a whole word: no letter or digit right after it.
    static func bytes(_ haystack: [UInt8], containWord needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            let next = start + needle.count
            if next == haystack.count || !(UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(haystack[next]) && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(haystack[next]) {
                return true
            }
        }
        return false
    }

    static func check(_ set: PlatformSet, source: String, subject: DeviceMatchContext) -> PlatformVerdict {
        guard !set.isEmpty else { return .matches("the record names no platform limit") }
        guard let model = subject.model, !model.isEmpty else { return .undecided("the device model is unknown (software facts not collected)") }
        var qualifierUndecided: String?
        for pattern in set.patterns where pattern.matchesModel(normalized: subject.normalizedModel) {
            if pattern.qualifiers.isEmpty { return .matches("\(model) is \(pattern.text) (\(source))") }
            guard let units = subject.units else {
                qualifierUndecided = "the record limits it to \(pattern.text) and the chassis inventory was not collected"
                continue
            }
            for unit in units {
                // A plain byte search: Foundation's `contains` on String was the costliest step here.
                if let index = pattern.qualifierBytes.firstIndex(where: { Self.bytes(unit.haystackBytes, contain: $0) }) {
                    let found = pattern.qualifiers[index]
                    return .matches("\(model) is \(pattern.text): \(unit.path) is \(found) (\(source))")
                }
                if let spelling = pattern.qualifierSpellings.first(where: { Self.bytes(unit.haystackBytes, containWord: $0.bytes) }) {
                    return .matches("\(model) is \(pattern.text): \(unit.path) is \(spelling.qualifier) (\(String(decoding: spelling.bytes, as: UTF8.self))) (\(source))")
                }
            }
        }
        if let product = set.containerProducts.first(where: { subject.normalizedModel.hasPrefix($0.uppercased()) }) {
            return .matches("\(model) is \(product) (\(source))")
        }
        if let qualifierUndecided { return .undecided(qualifierUndecided) }
        if !set.unreadable.isEmpty {
            return .undecided("platform \(set.unreadable.map { "\"\($0)\"" }.joined(separator: ", ")) cannot be matched to a model, and \(model) is none of the others")
        }
        return .doesNotMatch("\(model) is not \(set.text)")
    }
}

/// What matching needs of a device, prepared once per device rather than per advisory: its
/// releases, its model and the searchable text of each inventory unit (for entries limited to
/// line cards).
struct DeviceMatchContext {
    var releases: [(name: String?, version: JunosVersion)]
    var versionFields: (version: String?, versions: [String]?)
    var model: String?
    var normalizedModel: String
    /// Nil when the inventory was not collected.
    var units: [(path: String, haystackBytes: [UInt8])]?
    /// JSU packages per entry name ("" for an unnamed entry), found once per device.
    var softwareUpdates: [String: [SoftwarePackage]] = [:]

    init(_ device: DeviceSnapshot) {
        releases = device.releases
        versionFields = BugMatcher.versionsOf(device)
        model = device.model
        normalizedModel = Self.normalize(device.model ?? "")
        for engine in device.facts.software?.routingEngines ?? [] {
            let updates = engine.packages.filter(\.isSoftwareUpdate)
            if !updates.isEmpty { softwareUpdates[engine.name ?? "", default: []] += updates }
        }
        units = device.facts.inventory.map { inventory in
            inventory.frus.map { unit in
                (unit.path, Array([unit.description, unit.modelNumber, unit.partNumber].compactMap { $0?.uppercased() }.joined(separator: " ").utf8))
            }
        }
    }

    static func normalize(_ model: String) -> String { model.uppercased().replacingOccurrences(of: " ", with: "") }
}
