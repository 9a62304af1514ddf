import XML

/// Active alarms from `show chassis alarms` (`get-alarm-information`) or `show system alarms`
/// (`get-system-alarm-information`); both answer with `<alarm-information>`.
public struct AlarmReport: JunosFact {
    public static let dataElements = ["alarm-information"]

    /// One `<alarm-detail>`.
    public struct Alarm: Codable, Sendable, Equatable {
        /// `Major` or `Minor`.
        public var alarmClass: String?
        /// The time as Junos printed it (`2021-10-29 18:44:50 UTC`), whitespace folded.
        public var timeText: String?
        /// The `junos:seconds` attribute of `<alarm-time>` (Unix time). Junos sometimes disagrees
        /// with its own text here, so both are kept.
        public var timeSeconds: Int?
        /// `Chassis`, `Configuration`, `Autorecovery`, `System`, ...
        public var type: String?
        public var shortDescription: String?
        public var description: String?

        public init(alarmClass: String? = nil, timeText: String? = nil, timeSeconds: Int? = nil, type: String? = nil,
                    shortDescription: String? = nil, description: String? = nil) {
            self.alarmClass = alarmClass
            self.timeText = timeText
            self.timeSeconds = timeSeconds
            self.type = type
            self.shortDescription = shortDescription
            self.description = description
        }

        public var isMajor: Bool { alarmClass?.lowercased() == "major" }
    }

    /// The alarms of one routing engine / cluster node.
    public struct Section: Codable, Sendable, Equatable {
        public var routingEngine: String?
        /// `<active-alarm-count>` as reported. It can differ from `alarms.count` (Junos and
        /// edited captures both do this), so it is kept apart; nil when not reported.
        public var activeAlarmCount: Int?
        /// True when the summary said `<no-active-alarms/>`.
        public var noActiveAlarms: Bool
        public var alarms: [Alarm]

        public init(routingEngine: String? = nil, activeAlarmCount: Int? = nil, noActiveAlarms: Bool = false, alarms: [Alarm] = []) {
            self.routingEngine = routingEngine
            self.activeAlarmCount = activeAlarmCount
            self.noActiveAlarms = noActiveAlarms
            self.alarms = alarms
        }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    /// All listed alarms of all sections.
    public var alarms: [Alarm] { sections.flatMap(\.alarms) }

    public static func parse(_ reply: JunosReply) -> Self {
        var report = AlarmReport()
        for section in reply.sections where dataElements.contains(section.element.name) {
            let element = section.element
            let summary = element.child("alarm-summary")
            var alarms: [Alarm] = []
            for detail in element.children("alarm-detail") {
                let time = detail.child("alarm-time")
                alarms.append(Alarm(
                    alarmClass: detail.value("alarm-class")?.collapsingWhitespace,
                    timeText: time?.value?.collapsingWhitespace,
                    timeSeconds: JunosValue.seconds(time),
                    type: detail.value("alarm-type")?.collapsingWhitespace,
                    shortDescription: detail.value("alarm-short-description")?.collapsingWhitespace,
                    description: detail.value("alarm-description")?.collapsingWhitespace))
            }
            report.sections.append(Section(
                routingEngine: section.routingEngine,
                activeAlarmCount: JunosValue.integer(summary?.value("active-alarm-count")),
                noActiveAlarms: summary?.child("no-active-alarms") != nil,
                alarms: alarms))
        }
        return report
    }
}
