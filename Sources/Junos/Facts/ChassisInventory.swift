import XML

/// What `show chassis hardware` reports: per chassis (one per VC member or cluster node when the
/// reply is wrapped) the tree of modules, sub-modules and deeper levels with part and serial numbers.
public struct ChassisInventory: JunosFact {
    public static let dataElements = ["chassis-inventory"]

    /// Every `<chassis>` of every section, in reply order.
    public var chassis: [InventoryChassis]

    public init(chassis: [InventoryChassis] = []) { self.chassis = chassis }

    /// Serial number of the first chassis (the local one when the reply is unwrapped). Where the
    /// chassis element has none (vSRX and Firefly put it on the `Backplane` module only), the
    /// serial of its Backplane or Midplane module.
    public var chassisSerial: String? {
        guard let first = chassis.first else { return nil }
        if let serial = first.serialNumber { return serial }
        return first.modules.lazy.filter { ["backplane", "midplane"].contains($0.name?.lowercased() ?? "") }
            .compactMap(\.serialNumber).first
    }
    /// Description of the first chassis (`MX480`, `EX4300-24T`).
    public var chassisDescription: String? { chassis.first?.description }

    /// Every module below every chassis, depth first, each with a path that identifies it
    /// across captures (`FPC 0/PIC 0/Xcvr 3`) and the section it came from. A second chassis in
    /// the same section (or a second unnamed section) has its paths start with `chassis#2/`, so
    /// that no two units share an identity.
    public var frus: [FieldReplaceableUnit] {
        var seen: [String?: Int] = [:]
        return chassis.flatMap { chassis in
            seen[chassis.member, default: 0] += 1
            let count = seen[chassis.member]!
            return chassis.frus(pathPrefix: count == 1 ? nil : "chassis#\(count)")
        }
    }

    /// Looks a unit up by its ``FieldReplaceableUnit/identity``.
    public func fru(identity: String) -> FieldReplaceableUnit? {
        frus.first { $0.identity == identity }
    }

    public static func parse(_ reply: JunosReply) -> Self {
        var result: [InventoryChassis] = []
        for section in reply.sections(named: "chassis-inventory") {
            for element in section.element.children("chassis") {
                result.append(InventoryChassis(element: element, member: section.routingEngine))
            }
        }
        return ChassisInventory(chassis: result)
    }
}

/// One `<chassis>` element.
public struct InventoryChassis: Codable, Sendable, Equatable {
    /// Section name (`node0`, `fpc1`) when the reply was wrapped.
    public var member: String?
    public var name: String?
    public var serialNumber: String?
    public var description: String?
    /// `junos:style` (`inventory`), kept because some platforms vary the layout by it.
    public var style: String?
    public var modules: [InventoryItem]

    public init(member: String? = nil, name: String? = nil, serialNumber: String? = nil,
                description: String? = nil, style: String? = nil, modules: [InventoryItem] = []) {
        self.member = member
        self.name = name
        self.serialNumber = serialNumber
        self.description = description
        self.style = style
        self.modules = modules
    }

    /// Every module of this chassis, depth first (see ``ChassisInventory/frus``).
    public var frus: [FieldReplaceableUnit] { frus(pathPrefix: nil) }

    func frus(pathPrefix: String?) -> [FieldReplaceableUnit] {
        FieldReplaceableUnit.uniqueNames(modules).flatMap { item, name in
            FieldReplaceableUnit.flatten(item, parentPath: pathPrefix, member: member, name: name)
        }
    }

    init(element: XMLElement, member: String?) {
        self.member = member
        name = element.value("name")
        serialNumber = element.value("serial-number")
        description = element.value("description")
        style = element.attribute("style")
        modules = InventoryItem.items(under: element)
    }
}

/// One module at any depth: chassis-module, chassis-sub-module, chassis-sub-sub-module,
/// chassis-sub-sub-sub-module.
public struct InventoryItem: Codable, Sendable, Equatable {
    public var name: String?
    public var version: String?
    public var partNumber: String?
    public var serialNumber: String?
    public var description: String?
    public var modelNumber: String?
    public var cleiCode: String?
    /// 1 for chassis-module, 2 for chassis-sub-module, and so on.
    public var depth: Int
    public var children: [InventoryItem]

    public init(name: String? = nil, version: String? = nil, partNumber: String? = nil,
                serialNumber: String? = nil, description: String? = nil, modelNumber: String? = nil,
                cleiCode: String? = nil, depth: Int = 1, children: [InventoryItem] = []) {
        self.name = name
        self.version = version
        self.partNumber = partNumber
        self.serialNumber = serialNumber
        self.description = description
        self.modelNumber = modelNumber
        self.cleiCode = cleiCode
        self.depth = depth
        self.children = children
    }

    /// The module elements directly under `element`, whatever their level.
    static func items(under element: XMLElement) -> [InventoryItem] {
        var items: [InventoryItem] = []
        element.forEachChild { child in
            if let depth = moduleDepth(child.name) { items.append(InventoryItem(element: child, depth: depth)) }
        }
        return items
    }

    /// `chassis-module` → 1, `chassis-sub-module` → 2, `chassis-sub-sub-module` → 3, ...
    static func moduleDepth(_ name: String) -> Int? {
        // On the UTF-8 bytes: called for every child of every module.
        let bytes = name.utf8
        guard bytes.starts(with: "chassis-".utf8), bytes.suffix(6).elementsEqual("module".utf8) else { return nil }
        var rest = bytes.dropFirst(8).dropLast(6)
        var subs = 0
        while rest.starts(with: "sub-".utf8) { subs += 1; rest = rest.dropFirst(4) }
        return rest.isEmpty ? subs + 1 : nil
    }

    init(element: XMLElement, depth: Int) {
        self.depth = depth
        children = []
        // One pass over the children: inventories of big chassis have thousands of items.
        element.forEachChild { child in
            let tag = child.name
            switch tag {
            case "name": if name == nil { name = child.value }
            case "version": if version == nil { version = child.value }
            case "part-number": if partNumber == nil { partNumber = child.value }
            case "serial-number": if serialNumber == nil { serialNumber = child.value }
            case "description": if description == nil { description = child.value }
            case "model-number": if modelNumber == nil { modelNumber = child.value }
            case "clei-code": if cleiCode == nil { cleiCode = child.value }
            default:
                if let childDepth = Self.moduleDepth(tag) { children.append(InventoryItem(element: child, depth: childDepth)) }
            }
        }
    }
}

/// One inventory item flattened out of the tree, with a stable identity for diffing captures.
public struct FieldReplaceableUnit: Codable, Sendable, Equatable {
    /// Names from the chassis down, joined by `/`: `FPC 0/PIC 0/Xcvr 3`. A name repeated under
    /// one parent gets `#2`, `#3` so that every path is unique.
    public var path: String
    /// Section the unit was reported in (`node0`, `fpc1`), nil when the reply was unwrapped.
    public var member: String?
    public var depth: Int
    public var version: String?
    public var partNumber: String?
    public var serialNumber: String?
    public var description: String?
    public var modelNumber: String?
    public var cleiCode: String?

    /// `member:path` (or just the path): the same slot in two captures has the same identity,
    /// so a changed serial number there means the part was swapped.
    public var identity: String { member.map { "\($0):\(path)" } ?? path }

    static func flatten(_ item: InventoryItem, parentPath: String?, member: String?,
                        name overrideName: String? = nil) -> [FieldReplaceableUnit] {
        let ownName = overrideName ?? item.name ?? "?"
        let path = parentPath.map { "\($0)/\(ownName)" } ?? ownName
        let unit = FieldReplaceableUnit(
            path: path, member: member, depth: item.depth, version: item.version,
            partNumber: item.partNumber, serialNumber: item.serialNumber,
            description: item.description, modelNumber: item.modelNumber, cleiCode: item.cleiCode)
        var result = [unit]
        for (child, name) in uniqueNames(item.children) {
            result += flatten(child, parentPath: path, member: member, name: name)
        }
        return result
    }

    /// Pairs items with names made unique among their siblings.
    static func uniqueNames(_ items: [InventoryItem]) -> [(InventoryItem, String)] {
        var seen: [String: Int] = [:]
        return items.map { item in
            let base = item.name ?? "?"
            seen[base, default: 0] += 1
            let count = seen[base]!
            return (item, count == 1 ? base : "\(base)#\(count)")
        }
    }
}
