import XML

/// What `show version` reports: per routing engine (or VC member, cluster node, node-slicing
/// BSYS/GNF RE, TXP chassis, JDM server) its host name, model, Junos version and packages, plus
/// the device-level view taken from the master/primary entry (or the first one).
public struct SoftwareInformation: JunosFact {
    public static let dataElements = ["software-information"]

    /// Host name of the device-level entry.
    public var hostname: String?
    /// `product-model` of the device-level entry (`mx960`, `ex4650-48y-8c`, `vSRX`).
    public var model: String?
    /// `product-name` of the device-level entry.
    public var productName: String?
    /// Junos version of the device-level entry.
    public var version: JunosVersion?
    /// Section name of the entry the device-level fields come from (`re0`, `node0`), nil when unwrapped.
    public var primaryName: String?
    /// Every entry of the reply, in reply order.
    public var routingEngines: [RoutingEngineSoftware]

    public init(hostname: String? = nil, model: String? = nil, productName: String? = nil,
                version: JunosVersion? = nil, primaryName: String? = nil,
                routingEngines: [RoutingEngineSoftware] = []) {
        self.hostname = hostname
        self.model = model
        self.productName = productName
        self.version = version
        self.primaryName = primaryName
        self.routingEngines = routingEngines
    }

    /// Packages of the device-level entry.
    public var packages: [SoftwarePackage] {
        routingEngines.first(where: { $0.name == primaryName })?.packages ?? routingEngines.first?.packages ?? []
    }

    /// JSU packages installed on the entry `name` (nil: the device-level entry).
    public func softwareUpdates(on name: String?) -> [SoftwarePackage] {
        let entry = name.flatMap { n in routingEngines.first { $0.name == n } }
        return (entry?.packages ?? packages).filter(\.isSoftwareUpdate)
    }

    /// True when the entries do not all run the same version (an RE left behind after an upgrade).
    public var hasVersionMismatch: Bool {
        Set(routingEngines.compactMap(\.version)).count > 1
    }

    public static func parse(_ reply: JunosReply) -> Self {
        let entries = reply.sections(named: "software-information").map {
            RoutingEngineSoftware(element: $0.element, name: $0.routingEngine)
        }
        let primary = primaryEntry(entries, banner: CLIBanner.text(in: reply))
        return SoftwareInformation(hostname: primary?.hostname, model: primary?.model,
                                   productName: primary?.productName, version: primary?.version,
                                   primaryName: primary?.name, routingEngines: entries)
    }

    /// The entry the prompt banner names (`{master:1}` → fpc1/member1, `{primary:node1}` → node1,
    /// `{master:member1-re0}` → member1-re0 or member1), else the first one. Without a banner
    /// Junos lists the local RE first.
    static func primaryEntry(_ entries: [RoutingEngineSoftware], banner: String?) -> RoutingEngineSoftware? {
        if let target = CLIBanner.target(banner: banner) {
            // The most specific name wins: an MX VC may name sections member1-re0 or just member1.
            for name in target.names {
                if let match = entries.first(where: { $0.name == name }) { return match }
            }
        }
        return entries.first
    }
}

/// The software of one routing engine, member or node.
public struct RoutingEngineSoftware: Codable, Sendable, Equatable {
    /// Section name (`re0`, `node1`, `fpc0`, `localre`, `bsys-re0`, `gnf7-re1`, `lcc0-re0`,
    /// `server0`), nil when the reply was not wrapped.
    public var name: String?
    public var hostname: String?
    public var model: String?
    public var productName: String?
    /// `os-name` (`junos-es`, `junos`), newer releases only.
    public var osName: String?
    /// From `<junos-version>`, else from the package comments older releases carry.
    public var version: JunosVersion?
    /// Where ``version`` came from: `junos-version`, or `package:<name>`.
    public var versionSource: String?
    public var packages: [SoftwarePackage]

    public init(name: String? = nil, hostname: String? = nil, model: String? = nil, productName: String? = nil,
                osName: String? = nil, version: JunosVersion? = nil, versionSource: String? = nil,
                packages: [SoftwarePackage] = []) {
        self.name = name
        self.hostname = hostname
        self.model = model
        self.productName = productName
        self.osName = osName
        self.version = version
        self.versionSource = versionSource
        self.packages = packages
    }

    init(element: XMLElement, name: String?) {
        self.name = name
        hostname = element.value("host-name")
        model = element.value("product-model")
        productName = element.value("product-name")
        osName = element.value("os-name")
        packages = element.children("package-information").map(SoftwarePackage.init(element:))
        if let text = element.value("junos-version") {
            version = JunosVersion(text)
            versionSource = "junos-version"
        } else if let (package, found) = Self.versionFromPackages(packages) {
            version = found
            versionSource = "package:\(package)"
        } else if let found = Self.versionFromComponents(element) {
            version = found
            versionSource = "version-information:MGD"
        }
    }

    /// Releases before 13.x (and JDM, TXP, NFX) have no `<junos-version>`; the version is in
    /// package comments. The dedicated version packages win over the base OS packages, which win
    /// over any other `JUNOS ...` package whose bracketed text is a Junos release with a release
    /// letter (NFX: `JUNOS Host nfx-2 base package [15.1X53-D45.3]`). The letter is required there
    /// because other packages carry Linux kernel or script versions (`[3.14.61-rt58-WR7.0.0.13]`).
    static func versionFromPackages(_ packages: [SoftwarePackage]) -> (String, JunosVersion)? {
        let preferred: [(SoftwarePackage) -> Bool] = [
            { $0.name.lowercased() == "junos-version" },     // "Junos: 14.2R4"
            { $0.name.lowercased() == "junos version" },     // JDM: "JUNOS version : 17.4-..."
            { $0.commentStarts(with: "JUNOS Base OS boot") },
            { $0.commentStarts(with: "JUNOS Software Release") },
            { $0.commentStarts(with: "JUNOS Base OS Software Suite") },
            { $0.name.lowercased() == "junos" },
        ]
        for rule in preferred {
            for package in packages where rule(package) {
                if let text = package.version {
                    let version = JunosVersion(text)
                    if version.isParsed { return (package.name, version) }
                }
            }
        }
        for package in packages where package.commentStarts(with: "JUNOS") {
            if let text = package.version {
                let version = JunosVersion(text)
                if version.isParsed, let type = version.type, type != .development { return (package.name, version) }
            }
        }
        return nil
    }

    /// The last resort: the management daemon's `<version-information>` (`<component>MGD</component>`,
    /// `<release>15.1X53-D45.3.secure [dc-builder]</release>`), without the builder and `.secure`.
    static func versionFromComponents(_ element: XMLElement) -> JunosVersion? {
        for info in element.children("version-information") where info.value("component") == "MGD" {
            guard var text = info.value("release")?.split(separator: " ").first.map(String.init) else { continue }
            if text.hasSuffix(".secure") { text = String(text.dropLast(".secure".count)) }
            let version = JunosVersion(text)
            if version.isParsed, version.type != nil { return version }
        }
        return nil
    }
}

/// One `package-information` entry.
public struct SoftwarePackage: Codable, Sendable, Equatable {
    /// `name` (`jbase`, `junos-version`, `os-kernel`).
    public var name: String
    /// `package-name` (file name of the package), newer releases only.
    public var packageName: String?
    public var comment: String?
    /// The version text in the comment: the last `[...]` (`JUNOS Base OS boot [12.3R6.6]`), or the
    /// text after the last colon (`Junos: 14.2R4`, `JUNOS version : 17.4-...`). May be a build
    /// label rather than a Junos version (`20241219.060016_builder_junos_244_r1`).
    public var version: String?

    public init(name: String, packageName: String? = nil, comment: String? = nil, version: String? = nil) {
        self.name = name
        self.packageName = packageName
        self.comment = comment
        self.version = version
    }

    init(element: XMLElement) {
        name = element.value("name") ?? ""
        packageName = element.value("package-name")
        comment = element.value("comment")?.collapsingWhitespace
        version = comment.flatMap(Self.versionText(inComment:))
    }

    static func versionText(inComment comment: String) -> String? {
        if let close = comment.lastIndex(of: "]"),
           let open = comment[..<close].lastIndex(of: "[") {
            let inside = String(comment[comment.index(after: open)..<close]).trimmed
            return inside.isEmpty ? nil : inside
        }
        if let colon = comment.lastIndex(of: ":") {
            let after = String(comment[comment.index(after: colon)...]).trimmed
            // Only a leading digit makes it a version ("Server slot : 0" is not one).
            if let first = after.first, first.isNumber, after.contains(".") { return after }
        }
        return nil
    }

    /// A Junos Software Update (JSU): a package of fixes installed over a release, named `jsu-...`
    /// or described as "Software Update"/"JSU". Its fixes are its own, not the base release's.
    public var isSoftwareUpdate: Bool {
        if name.lowercased().hasPrefix("jsu") || (packageName?.lowercased().hasPrefix("jsu") ?? false) { return true }
        guard let comment else { return false }
        // ASCII, case-insensitive: "software update", or "jsu" as a word.
        let bytes = Array(comment.utf8).map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }
        func isWordByte(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
        let phrase = Array("software update".utf8), word = Array("jsu".utf8)
        for start in bytes.indices {
            if bytes[start...].starts(with: phrase) { return true }
            if bytes[start...].starts(with: word), start == 0 || !isWordByte(bytes[start - 1]),
               start + 3 == bytes.count || !isWordByte(bytes[start + 3]) { return true }
        }
        return false
    }

    func commentStarts(with prefix: String) -> Bool {
        comment?.lowercased().hasPrefix(prefix.lowercased()) ?? false
    }
}

/// The `<cli><banner>` Junos appends to replies: `{master:0}`, `{backup}`, `{primary:node0}`.
enum CLIBanner {
    static func text(in reply: JunosReply) -> String? {
        let root = reply.document.root
        let cli = root.name == "cli" ? root : root.child("cli")
        return cli?.value("banner")
    }

    /// What a banner points at: section names, most specific first, and on an MX virtual chassis
    /// (`{master:member1-re0}`) the routing-engine slot inside that member's section.
    struct Target: Equatable {
        var names: [String]
        var slot: Int?
    }

    /// The section the banner names as master or primary, or nil when it names none
    /// (`{backup}`, `{secondary:node1}`, no banner).
    static func target(banner: String?) -> Target? {
        guard var text = banner?.trimmed, text.hasPrefix("{"), text.hasSuffix("}") else { return nil }
        text = String(text.dropFirst().dropLast())
        let parts = text.split(separator: ":", maxSplits: 1).map { String($0).trimmed }
        guard parts.count == 2, !parts[1].isEmpty else { return nil }
        let (role, name) = (parts[0], parts[1])
        guard role == "master" || role == "primary" else { return nil }
        if name.allSatisfy(\.isNumber) {
            // EX/QFX VC: the master member number.
            return Target(names: ["fpc\(name)", "member\(name)", "member\(name)-re0"])
        }
        // MX VC: `member1-re0` is RE slot 0 of member 1, whose section the RE reply names `member1`.
        if name.hasPrefix("member"), let dash = name.lastIndex(of: "-"),
           name[name.index(after: dash)...].hasPrefix("re"),
           let slot = Int(name[name.index(dash, offsetBy: 3)...]) {
            return Target(names: [name, String(name[..<dash])], slot: slot)
        }
        return Target(names: [name])
    }
}
