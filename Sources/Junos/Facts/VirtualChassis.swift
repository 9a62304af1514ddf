import XML

/// What `show virtual-chassis` reports: the VC identity and mode and each member with its role,
/// serial number and VCP neighbours.
public struct VirtualChassisStatus: JunosFact {
    public static let dataElements = ["virtual-chassis-information"]

    /// `virtual-chassis-id` (`737a.74f6.9e99`).
    public var id: String?
    /// `virtual-chassis-mode` as reported (`Enabled`, `Mixed`), nil when absent.
    public var mode: String?
    /// A Virtual Chassis Fabric (`junos:style="fabric"` on the id block).
    public var isFabric: Bool
    /// The members are preprovisioned in the configuration (`preprovisioned-virtual-chassis-information`).
    public var isPreprovisioned: Bool
    public var members: [VirtualChassisMember]
    /// `next-member-id`: the id the next member to join will get.
    public var nextMemberID: Int?
    /// Section name when the reply was wrapped.
    public var section: String?

    public init(id: String? = nil, mode: String? = nil, isFabric: Bool = false, isPreprovisioned: Bool = false,
                members: [VirtualChassisMember] = [], nextMemberID: Int? = nil, section: String? = nil) {
        self.id = id
        self.mode = mode
        self.isFabric = isFabric
        self.isPreprovisioned = isPreprovisioned
        self.members = members
        self.nextMemberID = nextMemberID
        self.section = section
    }

    /// The member whose role is Master (not necessarily member 0).
    public var master: VirtualChassisMember? { members.first { $0.role == .master } }
    /// The member whose role is Backup.
    public var backup: VirtualChassisMember? { members.first { $0.role == .backup } }

    public static func parse(_ reply: JunosReply) -> Self {
        guard let section = reply.sections(named: "virtual-chassis-information").first else { return Self() }
        let e = section.element
        let preprovisioned = e.child("preprovisioned-virtual-chassis-information")
        let idBlock = preprovisioned ?? e.child("virtual-chassis-id-information")
        let members = e.children("member-list").flatMap { list in
            list.children("member").map { VirtualChassisMember(element: $0, listStyle: list.attribute("style")) }
        }
        return VirtualChassisStatus(
            id: idBlock?.value("virtual-chassis-id"),
            mode: idBlock?.value("virtual-chassis-mode"),
            isFabric: idBlock?.attribute("style")?.trimmed.lowercased() == "fabric",
            isPreprovisioned: preprovisioned != nil,
            members: members,
            nextMemberID: JunosValue.integer(e.value("next-member-information/next-member-id")),
            section: section.routingEngine)
    }
}

/// A member's role. Unknown roles keep their text.
public enum VirtualChassisRole: Codable, Sendable, Equatable, CustomStringConvertible {
    case master, backup, linecard
    case other(String)

    init(_ text: String) {
        switch text.lowercased() {
        case "master": self = .master
        case "backup": self = .backup
        case "linecard": self = .linecard
        default: self = .other(text)
        }
    }

    public var description: String {
        switch self {
        case .master: return "Master"
        case .backup: return "Backup"
        case .linecard: return "Linecard"
        case .other(let text): return text
        }
    }

    public init(from decoder: Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One `<member>` of the member list.
public struct VirtualChassisMember: Codable, Sendable, Equatable {
    public var id: Int?
    /// `Prsnt`, `NotPrsnt`, `Unprvsnd`, ...
    public var status: String?
    /// Nil when the device leaves it out (some 23.x replies).
    public var serialNumber: String?
    public var model: String?
    public var priority: Int?
    /// The role without the trailing `*`; nil for members not present.
    public var role: VirtualChassisRole?
    /// The `*` after the role: the member the session is connected to.
    public var isLocal: Bool
    /// `member-mixed-mode`: `Y`, `N`, `NA`.
    public var mixedMode: String?
    /// `member-route-mode`: `VC`, `F` (fabric).
    public var routeMode: String?
    /// `fpc-slot` / `fpc-slot-range` text (`(FPC 0)`, `(FPC   0- 11)`).
    public var fpcSlotText: String?
    public var firstFPCSlot: Int?
    public var lastFPCSlot: Int?
    public var neighbors: [VirtualChassisNeighbor]
    /// `member-id` or `member-priority` text that is not a number, by element name; nil when both read.
    public var unreadableValues: [String: String]?

    public init(id: Int? = nil, status: String? = nil, serialNumber: String? = nil, model: String? = nil,
                priority: Int? = nil, role: VirtualChassisRole? = nil, isLocal: Bool = false,
                mixedMode: String? = nil, routeMode: String? = nil, fpcSlotText: String? = nil,
                firstFPCSlot: Int? = nil, lastFPCSlot: Int? = nil, neighbors: [VirtualChassisNeighbor] = []) {
        self.id = id
        self.status = status
        self.serialNumber = serialNumber
        self.model = model
        self.priority = priority
        self.role = role
        self.isLocal = isLocal
        self.mixedMode = mixedMode
        self.routeMode = routeMode
        self.fpcSlotText = fpcSlotText
        self.firstFPCSlot = firstFPCSlot
        self.lastFPCSlot = lastFPCSlot
        self.neighbors = neighbors
    }

    /// True when the member is present (`Prsnt`).
    public var isPresent: Bool { status?.lowercased() == "prsnt" }

    init(element e: XMLElement, listStyle: String?) {
        var number = NumericFields(e)
        id = number.integer("member-id")
        status = e.value("member-status")
        serialNumber = e.value("member-serial-number")
        model = e.value("member-model")
        priority = number.integer("member-priority")
        unreadableValues = number.unreadableOrNil
        if let text = e.value("member-role") {
            isLocal = text.hasSuffix("*")
            let bare = text.filter { $0 != "*" }.trimmed
            role = bare.isEmpty ? nil : VirtualChassisRole(bare)
        } else {
            isLocal = false
        }
        mixedMode = e.value("member-mixed-mode")
        routeMode = e.value("member-route-mode")
        fpcSlotText = e.value("fpc-slot") ?? e.value("fpc-slot-range")
        let numbers = Self.numbers(in: fpcSlotText ?? "")
        firstFPCSlot = numbers.first
        lastFPCSlot = numbers.count > 1 ? numbers[1] : numbers.first
        neighbors = e.children("neighbor-list").flatMap { $0.children("neighbor") }
            .map(VirtualChassisNeighbor.init(element:))
    }

    /// The unsigned integers in `(FPC   0- 11)`: [0, 11].
    static func numbers(in text: String) -> [Int] {
        text.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
    }
}

/// One VCP link to another member.
public struct VirtualChassisNeighbor: Codable, Sendable, Equatable {
    public var memberID: Int?
    /// `vcp-255/0/48`.
    public var interface: String?

    public init(memberID: Int? = nil, interface: String? = nil) {
        self.memberID = memberID
        self.interface = interface
    }

    init(element: XMLElement) {
        memberID = JunosValue.integer(element.value("neighbor-id"))
        interface = element.value("neighbor-interface")
    }
}
