import XML

/// Every sensor of `show chassis environment` (`get-environment-information`), per routing engine,
/// VC member or cluster node.
public struct EnvironmentReport: JunosFact {
    public static let dataElements = ["environment-information"]

    /// One sensor row: a temperature sensor, fan, power supply, ...
    public struct Sensor: Codable, Sendable, Equatable {
        /// `FPC 0 CPU`, `PEM 1`, `Routing Engine 0 CPU`.
        public var name: String
        /// `Temp`, `Fans`, `Power`, ... Junos states the class only on the first row of each
        /// class and leaves it out on the rows that follow (as the CLI prints it); this is the class
        /// carried forward from the last row that stated one, nil only when no row before did.
        public var sensorClass: String?
        /// False when the row itself had no `<class>` and ``sensorClass`` was carried forward.
        public var classStated: Bool
        /// `OK`, `Absent`, `Failed`, `Check`, ...
        public var status: String?
        /// From the `celsius` attribute, else from the text `45 degrees C / 113 degrees F`.
        public var celsius: Int?
        /// The temperature text as Junos wrote it.
        public var temperatureText: String?
        /// `Spinning at normal speed`, ...
        public var comment: String?

        public init(name: String, sensorClass: String? = nil, classStated: Bool = true, status: String? = nil,
                    celsius: Int? = nil, temperatureText: String? = nil, comment: String? = nil) {
            self.name = name
            self.sensorClass = sensorClass
            self.classStated = classStated
            self.status = status
            self.celsius = celsius
            self.temperatureText = temperatureText
            self.comment = comment
        }

        /// True when the status says the part is not fine (anything but OK, Absent or Present).
        public var isFaulty: Bool {
            guard let status = status?.lowercased() else { return false }
            return !["ok", "absent", "present", "online"].contains(status)
        }
    }

    /// The sensors of one routing engine / member / node (`routingEngine` nil when not wrapped).
    public struct Section: Codable, Sendable, Equatable {
        public var routingEngine: String?
        public var sensors: [Sensor]
        public init(routingEngine: String? = nil, sensors: [Sensor] = []) {
            self.routingEngine = routingEngine
            self.sensors = sensors
        }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    /// All sensors of all sections.
    public var sensors: [Sensor] { sections.flatMap(\.sensors) }

    public static func parse(_ reply: JunosReply) -> Self {
        var report = EnvironmentReport()
        for section in reply.sections where dataElements.contains(section.element.name) {
            var lastClass: String?
            var sensors: [Sensor] = []
            for item in section.element.children("environment-item") {
                let stated = item.value("class")?.collapsingWhitespace
                if let stated { lastClass = stated }
                let temperature = item.child("temperature")
                sensors.append(Sensor(
                    name: item.value("name")?.collapsingWhitespace ?? "",
                    sensorClass: stated ?? lastClass,
                    classStated: stated != nil,
                    status: item.value("status")?.collapsingWhitespace,
                    celsius: JunosValue.celsius(temperature),
                    temperatureText: temperature?.value?.collapsingWhitespace,
                    comment: item.value("comment")?.collapsingWhitespace))
            }
            report.sections.append(Section(routingEngine: section.routingEngine, sensors: sensors))
        }
        return report
    }
}
