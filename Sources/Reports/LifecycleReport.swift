import Foundation
import Junos

/// Where an item stands against its end of support.
public enum LifecycleStatus: String, Codable, Sendable, CaseIterable {
    /// End of support after the window.
    case supported
    /// End of support within the window (`--within`).
    case within
    /// End of support passed.
    case past
    /// The data has nothing for it: never guessed.
    case unknown
}

/// One row of `report eol`: the software release, the chassis, or one FRU of a device.
/// The JSON keys are a contract (docs/reports.md).
public struct LifecycleItem: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case software, chassis, fru }

    public var device: String
    public var kind: Kind
    /// The FRU name as the inventory gives it (`FPC 0`, `FPC 0/PIC 1`, with `member:` in a VC or
    /// cluster), `Chassis`, or the release for software.
    public var name: String
    public var partNumber: String?
    public var model: String?
    public var serial: String?
    /// The release train (software only).
    public var train: String?
    public var endOfEngineering: LifecycleDate?
    /// Hardware rows that give it (eol-scanner parts): the last date new Junos releases support the part.
    public var endOfNewJunosReleaseSupport: LifecycleDate?
    public var endOfSupport: LifecycleDate?
    public var eolAnnounce: LifecycleDate?
    public var lastOrder: LifecycleDate?
    public var replacement: String?
    public var status: LifecycleStatus
    /// The data row's provenance, or why nothing matched.
    public var source: String
    /// The unit whose dates a built-in part or a fixed chassis's board takes (`Chassis`, `FPC 0`):
    /// the same end of support, not another item to act on (left out of counts and notifications).
    public var coveredBy: String? = nil

    enum CodingKeys: String, CodingKey {
        case device, kind, name, partNumber = "part_number", model, serial, train
        case endOfEngineering = "end_of_engineering", endOfNewJunosReleaseSupport = "end_of_new_junos_release_support"
        case endOfSupport = "end_of_support"
        case eolAnnounce = "eol_announce", lastOrder = "last_order", replacement, status, source, coveredBy = "covered_by"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(device, forKey: .device)
        try c.encode(kind, forKey: .kind)
        try c.encode(name, forKey: .name)
        try c.encode(partNumber, forKey: .partNumber)
        try c.encode(model, forKey: .model)
        try c.encode(serial, forKey: .serial)
        try c.encode(train, forKey: .train)
        try c.encode(endOfEngineering, forKey: .endOfEngineering)
        try c.encode(endOfNewJunosReleaseSupport, forKey: .endOfNewJunosReleaseSupport)
        try c.encode(endOfSupport, forKey: .endOfSupport)
        try c.encode(eolAnnounce, forKey: .eolAnnounce)
        try c.encode(lastOrder, forKey: .lastOrder)
        try c.encode(replacement, forKey: .replacement)
        try c.encode(status, forKey: .status)
        try c.encode(source, forKey: .source)
        try c.encode(coveredBy, forKey: .coveredBy)
    }
}

extension LifecycleItem {
    /// The milestones, from a data row or from the unit that covers this item.
    mutating func setDates(eolAnnounce: LifecycleDate?, lastOrder: LifecycleDate?, endOfEngineering: LifecycleDate?,
                           endOfNewJunosReleaseSupport: LifecycleDate?, endOfSupport: LifecycleDate?) {
        self.eolAnnounce = eolAnnounce
        self.lastOrder = lastOrder
        self.endOfEngineering = endOfEngineering
        self.endOfNewJunosReleaseSupport = endOfNewJunosReleaseSupport
        self.endOfSupport = endOfSupport
    }
}

/// `report eol` over a set of devices.
public struct LifecycleReport: Sendable {
    public var items: [LifecycleItem]
    public var deviceCount: Int
    /// The window in months.
    public var windowMonths: Int
    public var today: LifecycleDate
    public var dataProblems: [DataProblem]

    /// Items of `status` to act on: parts covered by another item's dates are that item's.
    public func count(_ status: LifecycleStatus) -> Int { items.filter { $0.status == status && $0.coveredBy == nil }.count }

    /// `12m` (months), `2y` (years) or a bare number of months, up to 100 years; nil when not one.
    public static func windowMonths(_ text: String) -> Int? {
        let lower = text.lowercased()
        if lower.hasSuffix("m"), let n = Int(lower.dropLast()), n >= 0, n <= 1200 { return n }
        if lower.hasSuffix("y"), let n = Int(lower.dropLast()), n >= 0, n <= 100 { return n * 12 }
        if let n = Int(lower), n >= 0, n <= 1200 { return n }
        return nil
    }

    public init(devices: [DeviceSnapshot], data: ReferenceData, withinMonths: Int = 12, today: Date = Date()) {
        let day = LifecycleDate(today)
        self.today = day
        windowMonths = withinMonths
        deviceCount = devices.count
        let horizon = day.adding(months: withinMonths)
        let index = HardwareIndex(data.hardware)
        dataProblems = data.problems + index.problems
        var items: [LifecycleItem] = []
        for device in devices {
            items += Self.software(device, data: data, today: day, horizon: horizon)
            items += Self.hardware(device, index: index, today: day, horizon: horizon)
        }
        self.items = items
    }

    static func status(_ endOfSupport: LifecycleDate?, today: LifecycleDate, horizon: LifecycleDate) -> LifecycleStatus {
        guard let endOfSupport else { return .unknown }
        if endOfSupport < today { return .past }
        if !(horizon < endOfSupport) { return .within }
        return .supported
    }

    static func software(_ device: DeviceSnapshot, data: ReferenceData, today: LifecycleDate, horizon: LifecycleDate) -> [LifecycleItem] {
        // Each release once per model: the members of a mixed virtual chassis (an EX4500 master
        // and an EX4200 member on one release) fall under different platform exceptions.
        var seen = Set<String>()
        var releases: [(name: String?, version: JunosVersion, model: String?)] = []
        for re in device.facts.software?.routingEngines ?? [] {
            guard let version = re.version else { continue }
            let model = re.model ?? device.model
            if seen.insert("\(version.raw)|\(model?.lowercased() ?? "")").inserted { releases.append((re.name, version, model)) }
        }
        if releases.isEmpty { releases = device.releases.map { ($0.name, $0.version, device.model) } }
        guard !releases.isEmpty else {
            return [LifecycleItem(device: device.device, kind: .software, name: "(unknown release)", model: device.model,
                                  status: .unknown, source: "the software facts were not collected")]
        }
        let items = releases.map { name, version, model in
            var item = LifecycleItem(device: device.device, kind: .software, name: version.raw,
                                     model: model, train: version.train, status: .unknown, source: "")
            if version.isEvolved {
                item.source = "Junos OS Evolved trains are not in the release milestone data"
                return item
            }
            // An X train is a train of its own: without its own row its dates are unknown, not its base train's.
            guard let (train, milestone) = version.trainMatch(in: data.milestones) else {
                item.source = version.isParsed ? "train \(version.train ?? "?") is not in the release milestone data" : "\(version.raw) is not a Junos release"
                return item
            }
            item.train = train
            item.endOfEngineering = milestone.endOfEngineering
            item.endOfSupport = milestone.endOfSupport
            item.source = milestone.source
            let matching = data.exceptions.filter { $0.train == train && $0.condition.matches(model: model, version: version) }
            if let exception = matching.first {
                item.endOfEngineering = exception.endOfEngineering ?? item.endOfEngineering
                item.endOfSupport = exception.endOfSupport ?? item.endOfSupport
                item.source = "exception \"\(exception.text)\": \(exception.source)"
                // Rows apply in file order, and "(other EX)" rows are catch-alls for models no row
                // before them names. A specific row after the one used (^EX8200 after "(other EX)",
                // which the source itself calls unreachable) contradicts it: said, not dropped.
                let others = matching.dropFirst().filter {
                    !$0.text.contains("(other") && ($0.endOfSupport != exception.endOfSupport || $0.endOfEngineering != exception.endOfEngineering)
                }
                if !others.isEmpty {
                    item.source += "; the data contradicts itself: " + others.map {
                        "exception \"\($0.text)\" (\($0.source)) gives end of engineering \($0.endOfEngineering?.description ?? "unknown"), end of support \($0.endOfSupport?.description ?? "unknown")"
                    }.joined(separator: "; ")
                    let states = Set([status(item.endOfSupport, today: today, horizon: horizon)] + others.map { status($0.endOfSupport ?? item.endOfSupport, today: today, horizon: horizon) })
                    if states.count > 1 {
                        item.status = .unknown
                        item.source = "status unknown, the sources disagree: " + item.source
                        return item
                    }
                }
            } else if let others = data.contradictions[train]?.filter({ $0.endOfEngineering != nil || $0.endOfSupport != nil }), !others.isEmpty {
                // Where the data contradicts itself, the report says so; where the sources'
                // dates put the release in different states, its state is unknown.
                let states = Set([status(item.endOfSupport, today: today, horizon: horizon)] + others.map { status($0.endOfSupport, today: today, horizon: horizon) })
                item.source += "; the data contradicts itself: " + others.map {
                    "\($0.source) gives end of engineering \($0.endOfEngineering?.description ?? "unknown"), end of support \($0.endOfSupport?.description ?? "unknown") (\($0.text))"
                }.joined(separator: "; ")
                if states.count > 1 {
                    item.status = .unknown
                    item.source = "status unknown, the sources disagree: " + item.source
                    return item
                }
            }
            item.status = status(item.endOfSupport, today: today, horizon: horizon)
            return item
        }
        // One row per release, as before, unless its members' models give it different dates:
        // then one per model (`fpc1: 15.1R6.7`, its own model).
        var versions: [String] = []
        for release in releases where !versions.contains(release.version.raw) { versions.append(release.version.raw) }
        var out: [LifecycleItem] = []
        for version in versions {
            let group = zip(releases, items).filter { $0.0.version.raw == version }
            let first = group[0].1
            let alike = group.allSatisfy { $0.1.status == first.status && $0.1.endOfSupport == first.endOfSupport && $0.1.endOfEngineering == first.endOfEngineering }
            if alike {
                var item = first
                item.model = device.model
                item.name = versions.count > 1 ? "\(group[0].0.name.map { "\($0): " } ?? "")\(version)" : version
                out.append(item)
            } else {
                for (release, item) in group {
                    var item = item
                    item.name = "\(release.name.map { "\($0): " } ?? "")\(version)"
                    out.append(item)
                }
            }
        }
        return out
    }

    static func hardware(_ device: DeviceSnapshot, index: HardwareIndex, today: LifecycleDate, horizon: LifecycleDate) -> [LifecycleItem] {
        guard let inventory = device.facts.inventory else {
            return [LifecycleItem(device: device.device, kind: .chassis, name: "Chassis", model: device.model,
                                  status: .unknown, source: "the chassis inventory was not collected")]
        }
        var items: [LifecycleItem] = []
        var chassisItems: [String: LifecycleItem] = [:]
        for chassis in inventory.chassis {
            let model = chassis.description ?? device.model
            var item = LifecycleItem(device: device.device, kind: .chassis, name: chassis.member.map { "\($0): Chassis" } ?? "Chassis",
                                     model: model, serial: chassis.serialNumber, status: .unknown, source: "")
            apply(index.chassis(model: model ?? ""), to: &item, what: "chassis \(model ?? "(no description)")", today: today, horizon: horizon)
            if item.status == .unknown, let why = index.chassisAmbiguity(model: model ?? "") { item.source = why }
            chassisItems[chassis.member ?? ""] = item
            items.append(item)
        }
        let chassisSKUs = Set(inventory.chassis.compactMap { $0.description?.uppercased() })
        // What a part without its own row inherits: the unit it sits in (parents come first in
        // inventory order), or the chassis of its member.
        var byPath: [String: LifecycleItem] = [:]
        func inherit(_ from: LifecycleItem?, into item: inout LifecycleItem, because: String) {
            guard let from, from.status != .unknown else {
                item.source = because + (from.map { "; \($0.name) has no dates either" } ?? "")
                return
            }
            item.setDates(eolAnnounce: from.eolAnnounce, lastOrder: from.lastOrder, endOfEngineering: from.endOfEngineering,
                          endOfNewJunosReleaseSupport: from.endOfNewJunosReleaseSupport, endOfSupport: from.endOfSupport)
            item.status = from.status
            item.coveredBy = from.name
            item.source = "\(because): the dates of \(from.name) (\(from.source))"
        }
        for unit in inventory.frus {
            // Builtin parts and empty slots have nothing to look up, but are still listed.
            var item = LifecycleItem(device: device.device, kind: .fru, name: unit.member.map { "\($0): \(unit.path)" } ?? unit.path,
                                     partNumber: unit.partNumber, model: unit.modelNumber ?? unit.description,
                                     serial: unit.serialNumber, status: .unknown, source: "")
            let what = "part \(unit.partNumber ?? "(none)") / model \(unit.modelNumber ?? "(none)")"
            let member = unit.member ?? ""
            if unit.partNumber?.uppercased() == "BUILTIN" {
                // Part of the unit it sits in: that unit's row covers it; matching it by model would count the chassis again.
                let parent = unit.path.range(of: "/", options: .backwards).map { String(unit.path[..<$0.lowerBound]) }
                inherit(parent.flatMap { byPath[member + "|" + $0] } ?? chassisItems[member], into: &item,
                        because: "built in (part number BUILTIN): covered by the unit it is part of")
            } else if let model = unit.modelNumber?.uppercased(), chassisSKUs.contains(model), index.fru(partNumber: unit.partNumber, modelNumber: nil) == .none {
                // The board of a fixed-configuration chassis (EX4200 RE 0, FPC 0) carries the chassis SKU: the chassis row covers it.
                inherit(chassisItems[member], into: &item, because: "model number \(model) is the chassis's own SKU")
            } else {
                switch index.fru(partNumber: unit.partNumber, modelNumber: unit.modelNumber) {
                case let .found(row, how): apply((row, how), to: &item, what: what, today: today, horizon: horizon)
                case let .ambiguous(why): item.source = why
                case .none: item.source = "\(what) is not in the hardware EOL data"
                }
            }
            byPath[member + "|" + unit.path] = item
            items.append(item)
        }
        return items
    }

    static func apply(_ row: (HardwareLifecycle, String)?, to item: inout LifecycleItem, what: String, today: LifecycleDate, horizon: LifecycleDate) {
        guard let (row, how) = row else {
            item.source = "\(what) is not in the hardware EOL data"
            return
        }
        item.setDates(eolAnnounce: row.eolAnnounce, lastOrder: row.lastOrder, endOfEngineering: row.endOfEngineering,
                      endOfNewJunosReleaseSupport: row.endOfNewJunosReleaseSupport, endOfSupport: row.endOfSupport)
        item.replacement = row.replacement
        item.source = "\(how): \(row.source)"
        item.status = status(row.endOfSupport, today: today, horizon: horizon)
    }
}

/// Hardware rows indexed by part number and SKU.
struct HardwareIndex {
    /// Every row of a part number: the data has part numbers on several rows (740-005022 under
    /// RE-M40-600-2048-S and RE-600-2048-BB, with different dates).
    var byPart: [String: [HardwareLifecycle]] = [:]
    var bySKU: [String: HardwareLifecycle] = [:]
    /// `EX4500/EX6200 (remaining SKUs)`: family prefixes matched when no SKU row does.
    var families: [(prefix: String, row: HardwareLifecycle)] = []
    /// Part numbers whose rows disagree.
    var problems: [DataProblem] = []

    enum FRULookup: Equatable {
        case found(HardwareLifecycle, String)
        /// Rows that disagree and nothing to choose between them: why.
        case ambiguous(String)
        case none
    }

    init(_ rows: [HardwareLifecycle]) {
        for row in rows {
            if let part = row.partNumber { byPart[Self.normalisedPart(part), default: []].append(row) }
            // Padded SKUs (`PB-PM3 `) would never meet a model number.
            let sku = row.product.uppercased().trimmingCharacters(in: .whitespaces)
            if sku.contains("(remaining SKUs)".uppercased()) {
                let names = sku.components(separatedBy: " (")[0].split(separator: "/").map(String.init)
                for name in names { families.append((name, row)) }
            } else if let first = bySKU[sku] {
                // Two rows of one SKU: the first is used, and when their dates differ it is said.
                if !first.sameMilestones(as: row) {
                    problems.append(DataProblem(file: row.location.components(separatedBy: " line ").first ?? "hardware EOL data", field: "product_or_sku \(sku)",
                                                message: "on 2 rows with different dates (\(Self.describe([first, row]))); the first is used"))
                }
            } else {
                bySKU[sku] = row
            }
        }
        for (part, rows) in byPart.sorted(by: { $0.key < $1.key }) where rows.contains(where: { !$0.sameMilestones(as: rows[0]) }) {
            problems.append(DataProblem(file: rows[0].location.components(separatedBy: " line ").first ?? "hardware EOL data", field: "part_number \(part)",
                                        message: "on \(rows.count) rows with different dates (\(Self.describe(rows))); a FRU with it takes the row whose SKU is its model number, else unknown"))
        }
    }

    /// `750-020503 REV 07` → `750-020503`.
    static func normalisedPart(_ part: String) -> String {
        part.uppercased().split(separator: " ").first.map(String.init) ?? part.uppercased()
    }

    /// A chassis SKU: exact, then without the ordering variants (`-TAA`, `-AFL`, `-S`, `-DC`, ...),
    /// then the family fallback.
    func chassis(model: String) -> (HardwareLifecycle, String)? {
        let sku = model.uppercased().trimmingCharacters(in: .whitespaces)
        guard !sku.isEmpty else { return nil }
        if let row = bySKU[sku] { return (row, "SKU \(sku)") }
        var stripped = sku
        for variant in ["-TAA", "-AFL", "-DC", "-AC", "-S"] where stripped.hasSuffix(variant) {
            stripped = String(stripped.dropLast(variant.count))
            if let row = bySKU[stripped] { return (row, "SKU \(stripped) (from \(sku))") }
        }
        // "Remaining SKUs" are the SKUs not listed: a description that begins listed SKUs
        // (EX4500-40F: EX4500-40F-BF, -FB, -VC1-*) is one of those, not a remaining one. Their
        // rows decide when they agree; else it is unknown, saying why.
        let listed = listedSKUs(beginning: sku)
        if let first = listed.first {
            if listed.allSatisfy({ $0.sameMilestones(as: first) }) { return (first, "SKU \(first.product) (every listed \(sku)-* SKU has these dates)") }
            return nil
        }
        if let family = families.first(where: { sku.hasPrefix($0.prefix) }) {
            return (family.row, "family \(family.prefix) (remaining SKUs)")
        }
        return nil
    }

    /// The rows of SKUs that begin with `sku` and a dash (`EX4500-40F` → `EX4500-40F-BF`, ...), in file order.
    func listedSKUs(beginning sku: String) -> [HardwareLifecycle] {
        bySKU.filter { $0.key.hasPrefix(sku + "-") }.map(\.value).sorted { $0.location < $1.location }
    }

    /// Why ``chassis(model:)`` found nothing for `model`, when listed SKUs begin with it and disagree.
    func chassisAmbiguity(model: String) -> String? {
        let sku = model.uppercased().trimmingCharacters(in: .whitespaces)
        let listed = listedSKUs(beginning: sku)
        guard listed.count > 1, !listed.allSatisfy({ $0.sameMilestones(as: listed[0]) }) else { return nil }
        return "chassis \(sku) is the start of \(listed.count) listed SKUs with different dates (\(Self.describe(listed))): which one this is, the description does not say: unknown"
    }

    /// A FRU by part number (the row whose SKU is the FRU's model number when several rows have
    /// the part and disagree; none when nothing chooses), else by model number.
    func fru(partNumber: String?, modelNumber: String?) -> FRULookup {
        if let partNumber, let rows = byPart[Self.normalisedPart(partNumber)], let first = rows.first {
            let part = Self.normalisedPart(partNumber)
            if rows.allSatisfy({ $0.sameMilestones(as: first) }) {
                // The FRU's own model number has a row that disagrees with the part's: the data
                // contradicts itself (the part is listed under both products).
                if let model = modelNumber?.uppercased().trimmingCharacters(in: .whitespaces), let own = bySKU[model], !own.sameMilestones(as: first) {
                    return .ambiguous("part \(part) (\(Self.describe(rows))) and model number \(model) (\(Self.describe([own]))) have different dates: the data contradicts itself: unknown")
                }
                return .found(first, "part number \(part)")
            }
            if let model = modelNumber?.uppercased().trimmingCharacters(in: .whitespaces),
               let row = rows.first(where: { $0.product.uppercased().trimmingCharacters(in: .whitespaces) == model }) {
                return .found(row, "part number \(part), model number \(row.product) (the part is on \(rows.count) rows)")
            }
            return .ambiguous("part \(part) is on \(rows.count) rows with different dates (\(Self.describe(rows))) and \(modelNumber.map { "model number \($0)" } ?? "no model number") names none of them: unknown")
        }
        if let modelNumber, let row = bySKU[modelNumber.uppercased().trimmingCharacters(in: .whitespaces)] { return .found(row, "model number \(modelNumber)") }
        return .none
    }

    static func describe(_ rows: [HardwareLifecycle]) -> String {
        rows.map { "\($0.product), \($0.location), end of support \($0.endOfSupport?.description ?? "unknown")" }.joined(separator: "; ")
    }
}
