import XML

/// What `show chassis routing-engine` reports: per routing engine its mastership, CPU, memory,
/// temperature and uptime. SRX cluster and VC replies keep the node/member section name.
public struct RoutingEngineReport: JunosFact {
    public static let dataElements = ["route-engine-information"]

    public var routingEngines: [RoutingEngineStatus]
    /// The section the reply's prompt banner names as primary (`{primary:node1}` → node1,
    /// `{master:1}` → fpc1 or member1, `{master:member1-re0}` → member1), when a section has that name.
    public var primarySection: String?
    /// The RE slot the banner names inside ``primarySection`` (MX virtual chassis: `member1-re0` → 0).
    public var primarySlot: Int?

    public init(routingEngines: [RoutingEngineStatus] = [], primarySection: String? = nil, primarySlot: Int? = nil) {
        self.routingEngines = routingEngines
        self.primarySection = primarySection
        self.primarySlot = primarySlot
    }

    /// The master RE: in a cluster or VC, the RE of the section the banner names primary (every
    /// node of an SRX cluster, every member of an MX VC, reports its own local master); else the
    /// RE whose mastership state is master; a single RE without mastership elements (MX80, branch
    /// SRX) is its own master.
    public var master: RoutingEngineStatus? {
        if let primarySection {
            let inSection = routingEngines.filter { $0.section == primarySection }
            if let primarySlot, let re = inSection.first(where: { $0.slot == primarySlot }) { return re }
            if let re = inSection.first(where: \.isMaster) ?? (inSection.count == 1 ? inSection.first : nil) { return re }
        }
        return routingEngines.first(where: \.isMaster) ?? (routingEngines.count == 1 ? routingEngines.first : nil)
    }

    public static func parse(_ reply: JunosReply) -> Self {
        var result: [RoutingEngineStatus] = []
        for section in reply.sections(named: "route-engine-information") {
            for element in section.element.children("route-engine") {
                result.append(RoutingEngineStatus(element: element, section: section.routingEngine))
            }
        }
        let sections = Set(result.compactMap(\.section))
        let target = CLIBanner.target(banner: CLIBanner.text(in: reply))
        let primary = target?.names.first(where: sections.contains)
        return RoutingEngineReport(routingEngines: result, primarySection: primary,
                                   primarySlot: primary == nil ? nil : target?.slot)
    }
}

/// One `<route-engine>`.
public struct RoutingEngineStatus: Codable, Sendable, Equatable {
    /// Section name (`node0`, `member1`) when the reply was wrapped.
    public var section: String?
    /// `slot`, nil on single-RE platforms that leave it out.
    public var slot: Int?
    /// `master`, `backup`, `disabled`, ...
    public var mastershipState: String?
    /// `master (default)`, `backup`, ... as reported.
    public var mastershipPriority: String?
    /// `OK`, `Testing`, `Present`, ...
    public var status: String?
    public var model: String?
    public var serialNumber: String?
    public var partNumber: String?

    public var cpuUserPercent: Int?
    public var cpuBackgroundPercent: Int?
    /// `cpu-system` (kernel).
    public var cpuSystemPercent: Int?
    public var cpuInterruptPercent: Int?
    /// `cpu-idle`: the last few seconds' sample (taken while our own session runs).
    public var cpuIdlePercent: Int?
    /// `cpu-idle1` / `cpu-idle2` / `cpu-idle3`: idle over the last 1, 5 and 15 minutes, on
    /// releases that print them; health judges on these rather than on the sample.
    public var cpuIdle1MinutePercent: Int?
    public var cpuIdle5MinutesPercent: Int?
    public var cpuIdle15MinutesPercent: Int?

    /// `memory-buffer-utilization`, or `memory-system-total-util` on branch SRX.
    public var memoryUtilizationPercent: Int?
    /// `memory-dram-size` in bytes (plain numbers, as on SRX, are MB).
    public var memoryDRAMBytes: Int64?
    /// `memory-installed-size` in bytes (`(4096 MB installed)`).
    public var memoryInstalledBytes: Int64?
    /// Branch SRX split of memory: system total, control plane, data plane.
    public var memorySystem: MemoryPool?
    public var memoryControlPlane: MemoryPool?
    public var memoryDataPlane: MemoryPool?

    public var temperatureCelsius: Int?
    public var cpuTemperatureCelsius: Int?

    /// `start-time` text as the device printed it (local time zone of the device).
    public var startTime: String?
    /// `start-time` `junos:seconds`: Unix time of the boot.
    public var startTimeEpoch: Int?
    /// `up-time` `junos:seconds`.
    public var uptimeSeconds: Int?
    /// `up-time` text (`3 days, 21 hours, 24 minutes, 38 seconds`).
    public var uptime: String?
    public var lastRebootReason: String?

    public var loadAverage1: Double?
    public var loadAverage5: Double?
    public var loadAverage15: Double?

    /// Values present in the reply but not readable as numbers, by element name
    /// (`memory-dram-size` → `6r75`); their number fields are nil. Nil when every value read.
    public var unreadableValues: [String: String]?

    public init(section: String? = nil, slot: Int? = nil) {
        self.section = section
        self.slot = slot
    }

    /// True when this RE reports itself master.
    public var isMaster: Bool { mastershipState?.lowercased() == "master" }

    init(element e: XMLElement, section: String?) {
        var number = NumericFields(e)
        self.section = section
        slot = number.integer("slot")
        mastershipState = e.value("mastership-state")
        mastershipPriority = e.value("mastership-priority")
        status = e.value("status")
        model = e.value("model")
        serialNumber = e.value("serial-number")
        partNumber = e.value("part-number")

        cpuUserPercent = number.integer("cpu-user")
        cpuBackgroundPercent = number.integer("cpu-background")
        cpuSystemPercent = number.integer("cpu-system")
        cpuInterruptPercent = number.integer("cpu-interrupt")
        cpuIdlePercent = number.integer("cpu-idle")
        cpuIdle1MinutePercent = number.integer("cpu-idle1")
        cpuIdle5MinutesPercent = number.integer("cpu-idle2")
        cpuIdle15MinutesPercent = number.integer("cpu-idle3")

        memoryUtilizationPercent = number.integer("memory-buffer-utilization")
            ?? number.integer("memory-system-total-util")
        // Junos prints "4058 MB" on most platforms and a bare "1023" (MB) on SRX.
        memoryDRAMBytes = number.bytes("memory-dram-size", plainUnit: 1 << 20)
        memoryInstalledBytes = number.bytes("memory-installed-size", plainUnit: 1 << 20)
        memorySystem = MemoryPool(element: e, prefix: "memory-system-total", utilizationSuffix: "-util")
        memoryControlPlane = MemoryPool(element: e, prefix: "memory-control-plane", utilizationSuffix: "-util")
        memoryDataPlane = MemoryPool(element: e, prefix: "memory-data-plane", utilizationSuffix: "-util")

        temperatureCelsius = number.celsius("temperature")
        cpuTemperatureCelsius = number.celsius("cpu-temperature")

        startTime = e.value("start-time")
        startTimeEpoch = JunosValue.seconds(e.child("start-time"))
        uptime = e.value("up-time")
        uptimeSeconds = JunosValue.seconds(e.child("up-time"))
        lastRebootReason = e.value("last-reboot-reason")?.collapsingWhitespace

        loadAverage1 = number.double("load-average-one")
        loadAverage5 = number.double("load-average-five")
        loadAverage15 = number.double("load-average-fifteen")
        unreadableValues = number.unreadableOrNil
    }
}

/// A memory pool of branch SRX routing engines (`memory-control-plane`, `-used`, `-util`).
public struct MemoryPool: Codable, Sendable, Equatable {
    public var totalBytes: Int64?
    public var usedBytes: Int64?
    public var utilizationPercent: Int?

    public init(totalBytes: Int64? = nil, usedBytes: Int64? = nil, utilizationPercent: Int? = nil) {
        self.totalBytes = totalBytes
        self.usedBytes = usedBytes
        self.utilizationPercent = utilizationPercent
    }

    /// Nil when none of the three elements is present. Sizes are MB in the XML.
    init?(element: XMLElement, prefix: String, utilizationSuffix: String) {
        let total = element.value(prefix), used = element.value(prefix + "-used")
        let util = element.value(prefix + utilizationSuffix)
        guard total != nil || used != nil || util != nil else { return nil }
        totalBytes = JunosValue.bytes(total, plainUnit: 1 << 20)
        usedBytes = JunosValue.bytes(used, plainUnit: 1 << 20)
        utilizationPercent = JunosValue.integer(util)
    }
}
