import XML

/// Interfaces from `show interfaces` (`get-interface-information`), terse or normal style.
public struct InterfaceReport: JunosFact {
    public static let dataElements = ["interface-information"]

    /// An address of a logical interface.
    public struct Address: Codable, Sendable, Equatable {
        /// `inet`, `inet6`, `iso`, ...
        public var family: String?
        /// `ifa-local`: `192.168.10.1/31` in terse style, `10.209.16.204` in normal style.
        public var local: String
        /// `ifa-destination`: the subnet in normal style (`10.209.0/18`).
        public var destination: String?

        public init(family: String? = nil, local: String, destination: String? = nil) {
            self.family = family
            self.local = local
            self.destination = destination
        }
    }

    /// A unit (`ge-0/0/0.0`).
    public struct LogicalInterface: Codable, Sendable, Equatable {
        public var name: String
        /// Terse style only; normal style states no admin/oper status for units.
        public var adminStatus: String?
        public var operStatus: String?
        public var description: String?
        /// Address families configured, in order (`inet`, `inet6`, `multiservice`).
        public var families: [String]
        public var addresses: [Address]

        public init(name: String, adminStatus: String? = nil, operStatus: String? = nil, description: String? = nil,
                    families: [String] = [], addresses: [Address] = []) {
            self.name = name
            self.adminStatus = adminStatus
            self.operStatus = operStatus
            self.description = description
            self.families = families
            self.addresses = addresses
        }
    }

    /// A port or virtual device (`ge-0/0/0`, `ae0`, `irb`).
    public struct PhysicalInterface: Codable, Sendable, Equatable {
        public var name: String
        public var adminStatus: String?
        public var operStatus: String?
        public var description: String?
        /// `1000mbps`, `10Gbps`, `Unspecified`, as Junos wrote it.
        public var speed: String?
        /// MTU in bytes, nil when absent or not a number (`Unlimited`).
        public var mtu: Int?
        public var logicalInterfaces: [LogicalInterface]

        public init(name: String, adminStatus: String? = nil, operStatus: String? = nil, description: String? = nil,
                    speed: String? = nil, mtu: Int? = nil, logicalInterfaces: [LogicalInterface] = []) {
            self.name = name
            self.adminStatus = adminStatus
            self.operStatus = operStatus
            self.description = description
            self.speed = speed
            self.mtu = mtu
            self.logicalInterfaces = logicalInterfaces
        }

        /// Administratively up but operationally down: the case worth reporting.
        public var isDownButEnabled: Bool { adminStatus == "up" && operStatus == "down" }
    }

    /// The interfaces of one routing engine / member.
    public struct Section: Codable, Sendable, Equatable {
        public var routingEngine: String?
        /// `terse`, `normal`, `brief`, `detail` (`junos:style`), when given.
        public var style: String?
        public var interfaces: [PhysicalInterface]

        public init(routingEngine: String? = nil, style: String? = nil, interfaces: [PhysicalInterface] = []) {
            self.routingEngine = routingEngine
            self.style = style
            self.interfaces = interfaces
        }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    public var interfaces: [PhysicalInterface] { sections.flatMap(\.interfaces) }

    public static func parse(_ reply: JunosReply) -> Self {
        var report = InterfaceReport()
        for section in reply.sections where dataElements.contains(section.element.name) {
            let interfaces = section.element.children("physical-interface").map { ifd in
                PhysicalInterface(
                    name: text(ifd, "name") ?? "",
                    adminStatus: text(ifd, "admin-status"),
                    operStatus: text(ifd, "oper-status"),
                    description: text(ifd, "description"),
                    speed: text(ifd, "speed"),
                    mtu: text(ifd, "mtu").flatMap { $0.allSatisfy(\.isNumber) ? Int($0) : nil },
                    logicalInterfaces: ifd.children("logical-interface").map(logical))
            }
            report.sections.append(Section(routingEngine: section.routingEngine,
                                           style: section.element.attribute("style")?.trimmed,
                                           interfaces: interfaces))
        }
        return report
    }

    private static func logical(_ ifl: XMLElement) -> LogicalInterface {
        var families: [String] = []
        var addresses: [Address] = []
        for family in ifl.children("address-family") {
            let name = text(family, "address-family-name")
            if let name { families.append(name) }
            for address in family.children("interface-address") {
                guard let local = text(address, "ifa-local") else { continue }
                addresses.append(Address(family: name, local: local, destination: text(address, "ifa-destination")))
            }
        }
        return LogicalInterface(name: text(ifl, "name") ?? "", adminStatus: text(ifl, "admin-status"),
                                operStatus: text(ifl, "oper-status"), description: text(ifl, "description"),
                                families: families, addresses: addresses)
    }

    /// Child text with newline wrapping (`"\nge-0/0/0\n"`) removed.
    private static func text(_ element: XMLElement, _ name: String) -> String? {
        element.value(name)?.collapsingWhitespace
    }
}
