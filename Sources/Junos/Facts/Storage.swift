import XML

/// File systems from `show system storage` (`get-system-storage`), per routing engine or member.
public struct StorageReport: JunosFact {
    public static let dataElements = ["system-storage-information"]

    /// Junos counts `total-blocks`, `used-blocks` and `available-blocks` in 512-byte blocks
    /// (`43628` blocks is printed as `21M`).
    public static let blockSize: Int64 = 512

    /// One size column: the block count, the bytes it means, and the `junos:format` text.
    public struct Size: Codable, Sendable, Equatable {
        /// The element text as written (kept even when it is not a number, such as `" 6r75"`).
        public var text: String?
        /// The block count, nil when the text is not a whole number.
        public var blocks: Int64?
        /// Bytes: blocks × 512, or, when the count is malformed, the `junos:format` size (`1.2G`).
        public var bytes: Int64?
        /// The human-readable size Junos printed (`junos:format`, `8.0G`).
        public var formatted: String?

        public init(text: String? = nil, blocks: Int64? = nil, bytes: Int64? = nil, formatted: String? = nil) {
            self.text = text
            self.blocks = blocks
            self.bytes = bytes
            self.formatted = formatted
        }

        init(element: XMLElement?) {
            let text = element?.value
            let formatted = element?.attribute("format")?.trimmed
            self.text = text
            self.formatted = formatted.flatMap { $0.isEmpty ? nil : $0 }
            if let text, !text.isEmpty, text.allSatisfy(\.isNumber), let blocks = Int64(text) {
                self.blocks = blocks
                let (bytes, overflow) = blocks.multipliedReportingOverflow(by: StorageReport.blockSize)
                self.bytes = overflow ? nil : bytes
            } else {
                self.blocks = nil
                self.bytes = JunosValue.bytes(self.formatted)
            }
        }
    }

    /// One mounted file system.
    public struct Filesystem: Codable, Sendable, Equatable {
        /// `/dev/gpt/junos`, `tmpfs`, ...
        public var name: String
        public var total: Size
        public var used: Size
        public var available: Size
        /// Capacity used in percent (`used-percent`), nil when malformed.
        public var usedPercent: Int?
        public var mountedOn: String?

        public init(name: String, total: Size = Size(), used: Size = Size(), available: Size = Size(),
                    usedPercent: Int? = nil, mountedOn: String? = nil) {
            self.name = name
            self.total = total
            self.used = used
            self.available = available
            self.usedPercent = usedPercent
            self.mountedOn = mountedOn
        }
    }

    /// The file systems of one routing engine / member.
    public struct Section: Codable, Sendable, Equatable {
        public var routingEngine: String?
        public var filesystems: [Filesystem]
        public init(routingEngine: String? = nil, filesystems: [Filesystem] = []) {
            self.routingEngine = routingEngine
            self.filesystems = filesystems
        }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    public var filesystems: [Filesystem] { sections.flatMap(\.filesystems) }

    public static func parse(_ reply: JunosReply) -> Self {
        var report = StorageReport()
        for section in reply.sections where dataElements.contains(section.element.name) {
            let filesystems = section.element.children("filesystem").map { fs in
                let percent = fs.value("used-percent")
                return Filesystem(
                    name: fs.value("filesystem-name") ?? "",
                    total: Size(element: fs.child("total-blocks")),
                    used: Size(element: fs.child("used-blocks")),
                    available: Size(element: fs.child("available-blocks")),
                    usedPercent: percent.flatMap { $0.allSatisfy { $0.isNumber || $0 == "%" } ? JunosValue.integer($0) : nil },
                    mountedOn: fs.value("mounted-on"))
            }
            report.sections.append(Section(routingEngine: section.routingEngine, filesystems: filesystems))
        }
        return report
    }
}
