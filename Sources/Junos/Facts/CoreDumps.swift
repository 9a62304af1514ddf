import XML

/// Core files from `show system core-dumps` (`get-system-core-dumps`), which answers with a
/// `<directory-list>`: `<file-information>` entries for files found (directly or inside
/// `<directory>`), and one `<output>` line per searched pattern that matched nothing
/// ("/var/tmp/*core*: No such file or directory"). No core dumps is an empty list, not an error.
public struct CoreDumpReport: JunosFact {
    public static let dataElements = ["directory-list"]

    /// One core file.
    public struct CoreFile: Codable, Sendable, Equatable {
        /// The path as Junos listed it (`/var/crash/core-rpd.225.pe4.1760021290`). When Junos gives
        /// a bare file name inside a `<directory>`, the directory name is prefixed.
        public var name: String
        /// Bytes (`file-size`), nil when malformed.
        public var size: Int64?
        /// The date as Junos prints it (`junos:format` of `file-date`, `Oct 9  14:48`).
        public var dateText: String?
        /// Unix time of the file (`junos:seconds` attribute, or the numeric text of `file-date`).
        public var dateSeconds: Int?
        /// `-rw-------` (`junos:format` of `file-permissions`).
        public var permissions: String?
        public var owner: String?

        public init(name: String, size: Int64? = nil, dateText: String? = nil, dateSeconds: Int? = nil,
                    permissions: String? = nil, owner: String? = nil) {
            self.name = name
            self.size = size
            self.dateText = dateText
            self.dateSeconds = dateSeconds
            self.permissions = permissions
            self.owner = owner
        }
    }

    /// The listing of one routing engine / member / node.
    public struct Section: Codable, Sendable, Equatable {
        public var routingEngine: String?
        /// The first pattern searched (`root-path`, `/var/crash/*core*`).
        public var rootPath: String?
        public var files: [CoreFile]
        /// The `<output>` lines: patterns that matched nothing, or other messages.
        public var messages: [String]

        public init(routingEngine: String? = nil, rootPath: String? = nil, files: [CoreFile] = [], messages: [String] = []) {
            self.routingEngine = routingEngine
            self.rootPath = rootPath
            self.files = files
            self.messages = messages
        }
    }

    public var sections: [Section]

    public init(sections: [Section] = []) { self.sections = sections }

    /// Every core file of every section.
    public var files: [CoreFile] { sections.flatMap(\.files) }

    public static func parse(_ reply: JunosReply) -> Self {
        var report = CoreDumpReport()
        for section in reply.sections where dataElements.contains(section.element.name) {
            let list = section.element
            var files: [CoreFile] = []
            for info in list.children("file-information") { files.append(file(info, directory: nil)) }
            for directory in list.children("directory") {
                let dirName = directory.value("directory-name")
                for info in directory.children("file-information") { files.append(file(info, directory: dirName)) }
            }
            let messages = list.descendants("output").compactMap { $0.value?.collapsingWhitespace }
            report.sections.append(Section(routingEngine: section.routingEngine,
                                           rootPath: list.attribute("root-path")?.trimmed,
                                           files: files, messages: messages))
        }
        return report
    }

    private static func file(_ info: XMLElement, directory: String?) -> CoreFile {
        var name = info.value("file-name") ?? ""
        if let directory, !name.hasPrefix("/") {
            name = directory.hasSuffix("/") ? directory + name : directory + "/" + name
        }
        let sizeText = info.value("file-size")
        let date = info.child("file-date")
        let dateValue = date?.value
        let numericDate = dateValue.flatMap { $0.allSatisfy(\.isNumber) ? Int($0) : nil }
        let dateFormat = date?.attribute("format")?.trimmed
        return CoreFile(
            name: name,
            size: sizeText.flatMap { $0.allSatisfy(\.isNumber) ? Int64($0) : nil },
            dateText: dateFormat ?? (numericDate == nil ? dateValue?.collapsingWhitespace : nil),
            dateSeconds: JunosValue.seconds(date) ?? numericDate,
            permissions: info.child("file-permissions")?.attribute("format")?.trimmed,
            owner: info.value("file-owner"))
    }
}
