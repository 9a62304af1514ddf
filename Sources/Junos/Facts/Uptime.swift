import XML

/// Clock, boot and load facts from `show system uptime` (`get-system-uptime-information`).
public struct UptimeReport: JunosFact {
    public static let dataElements = ["system-uptime-information"]

    /// A point in time as Junos gave it: its text and the `junos:seconds` Unix time.
    public struct Timestamp: Codable, Sendable, Equatable {
        public var text: String?
        public var seconds: Int?
        public init(text: String? = nil, seconds: Int? = nil) {
            self.text = text
            self.seconds = seconds
        }

        init?(_ element: XMLElement?) {
            guard let element else { return nil }
            self.init(text: element.value?.collapsingWhitespace, seconds: JunosValue.seconds(element))
        }
    }

    /// The uptime facts of one routing engine / member / node.
    public struct Section: Codable, Sendable, Equatable {
        public var routingEngine: String?
        public var currentTime: Timestamp?
        /// `NTP CLOCK`, `LOCAL CLOCK` (padding removed).
        public var timeSource: String?
        public var systemBooted: Timestamp?
        public var protocolsStarted: Timestamp?
        public var lastConfigured: Timestamp?
        /// Who committed last (`last-configured-time/user`).
        public var lastConfiguredBy: String?
        /// Seconds since boot: `up-time` seconds, else the boot time's `time-length` seconds.
        public var uptimeSeconds: Int?
        /// The uptime text (`33 days, 14:59`).
        public var uptimeText: String?
        public var activeUsers: Int?
        public var loadAverage1: Double?
        public var loadAverage5: Double?
        public var loadAverage15: Double?

        public init(routingEngine: String? = nil) { self.routingEngine = routingEngine }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    public static func parse(_ reply: JunosReply) -> Self {
        var report = UptimeReport()
        for section in reply.sections where dataElements.contains(section.element.name) {
            let e = section.element
            var s = Section(routingEngine: section.routingEngine)
            s.currentTime = Timestamp(e.child(path: "current-time/date-time"))
            s.timeSource = e.value("time-source")?.collapsingWhitespace
            s.systemBooted = Timestamp(e.child(path: "system-booted-time/date-time"))
            s.protocolsStarted = Timestamp(e.child(path: "protocols-started-time/date-time"))
            s.lastConfigured = Timestamp(e.child(path: "last-configured-time/date-time"))
            s.lastConfiguredBy = e.value("last-configured-time/user")
            let uptime = e.child("uptime-information")
            let upTime = uptime?.child("up-time")
            s.uptimeSeconds = JunosValue.seconds(upTime) ?? JunosValue.seconds(e.child(path: "system-booted-time/time-length"))
            s.uptimeText = upTime?.value?.collapsingWhitespace
            s.activeUsers = JunosValue.integer(uptime?.value("active-user-count"))
            s.loadAverage1 = JunosValue.double(uptime?.value("load-average-1"))
            s.loadAverage5 = JunosValue.double(uptime?.value("load-average-5"))
            s.loadAverage15 = JunosValue.double(uptime?.value("load-average-15"))
            report.sections.append(s)
        }
        return report
    }
}
