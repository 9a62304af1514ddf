import Agent
import ArgumentParser
import ConfigurationSyntax
import Foundation
import Junos
import Reports

/// `care-agent config check`: agent.conf as the service would load it, and the files it names
/// as the service would read them, before a reload or a restart finds out.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check agent.conf.",
        subcommands: [Check.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check agent.conf and the files it names; exit 0 when the service could run with it.",
            discussion: """
            Reads the file as the service does (every section, [reports] included; the same \
            FILE:LINE:COLUMN errors), then each file it names: keys, passwords, passphrases and \
            tokens must exist and be private (the rule the agent applies when it reads them), \
            known_hosts must exist under host-key-policy = strict, CA files, inventory CSVs and \
            [reports] data-directory must be readable. Run as root, a file is also checked for the \
            service's user (care-agent) when that user exists. Secrets held as systemd credentials \
            are named, not read. Exit status: 0 good, 2 a problem (each printed on its own line), \
            so `care-agent config check && systemctl reload care-agent` reloads only a good file.
            """
        )

        @Option(help: "agent.conf (default \(AgentConfiguration.defaultPath)).") var config: String = AgentConfiguration.defaultPath
        @Option(help: "The service's user, whose access to the files is checked too when run as root.") var user: String = "care-agent"

        func run() throws {
            let configuration: AgentConfiguration
            do {
                configuration = try AgentConfiguration.load(path: config)
                _ = try ReportCommand.Common.thresholds(try ReportCommand.Common.reportsSection(path: config))
                _ = try ConfigurationRedactor(extraKeywords: Set(configuration.agent.redactKeywords), extraPatterns: configuration.agent.redactPatterns,
                                              extraPaths: configuration.agent.redactPaths)
            } catch {
                Console.error("\(error)")
                throw ExitCode(2)
            }
            let service = geteuid() == 0 ? ServiceUser(name: user) : nil
            var problems = Self.credentialProblems(configuration)
            for file in Self.files(configuration, base: (config as NSString).deletingLastPathComponent,
                                   reportsData: try? ReportCommand.Common.reportsSection(path: config)?.entries.last { $0.key == "data-directory" }?.value) {
                if let problem = file.problem(for: service) { problems.append("\(file.use) \(file.path): \(problem)") }
            }
            for line in problems { Console.error("\(config): \(line)") }
            if !problems.isEmpty {
                Console.error("\(config): \(problems.count) problem\(problems.count == 1 ? "" : "s")")
                throw ExitCode(2)
            }
            var inventoryCredentials: [String] = []
            for source in configuration.inventorySources {
                if case let .netbox(settings) = source.kind, let name = settings.tokenCredential { inventoryCredentials.append(name) }
                if case let .nautobot(settings) = source.kind, let name = settings.tokenCredential { inventoryCredentials.append(name) }
            }
            let credentials = Set(configuration.groups.values.flatMap { [$0.credentials.passwordCredential, $0.credentials.passphraseCredential] }.compactMap { $0 }
                + [configuration.upload.tokenCredential].compactMap { $0 } + inventoryCredentials)
            var summary = "\(config): good: \(configuration.devices.count) devices in \(configuration.groups.count) groups"
            if !configuration.inventorySources.isEmpty { summary += ", \(configuration.inventorySources.count) inventory sources (fetched by the service)" }
            if !credentials.isEmpty { summary += "; systemd credentials the unit must load: \(credentials.sorted().joined(separator: ", "))" }
            Console.out(summary)
        }

        /// A file agent.conf names, what for, and how it is read.
        struct NamedFile {
            enum Kind { case secret, readable, directory, knownHosts(strict: Bool) }
            var use: String
            var path: String
            var kind: Kind

            /// Why the agent (and `service`, when given) could not use it; nil when it could.
            func problem(for service: ServiceUser?) -> String? {
                var info = stat()
                guard stat(path, &info) == 0 else {
                    if case .knownHosts(strict: false) = kind, errno == ENOENT { return nil }
                    if case .knownHosts(strict: true) = kind, errno == ENOENT {
                        return "missing: with host-key-policy = strict every device is refused (record the keys: care-agent hosts scan; or host-key-policy = accept-new)"
                    }
                    return errno == ENOENT ? "missing" : String(cString: strerror(errno))
                }
                let isDirectory = info.st_mode & S_IFMT == S_IFDIR
                if case .directory = kind, !isDirectory { return "not a directory" }
                if case .directory = kind {} else if isDirectory { return "a directory, not a file" }
                let mode = info.st_mode & 0o7777
                if case .secret = kind {
                    do { try SecretFile.checkPermissions(path, what: "file") } catch { return "\(error)" }
                    // Run as root, the file may be the service's own: the rule it applies then is
                    // the owner's (nothing for group or others).
                    if let service, info.st_uid == service.uid, mode & 0o077 != 0 {
                        return "\(service.name) (the service) refuses it: its mode \(String(format: "%04o", mode)) lets other users read or change it; run: chmod 600 \(path)"
                    }
                }
                let wanted = isDirectory ? R_OK | X_OK : R_OK
                if access(path, wanted) != 0 { return "not readable by this user (\(String(cString: strerror(errno))))" }
                if let service {
                    if let blocked = service.unreachableDirectory(above: path) {
                        return "not reachable by \(service.name), the service's user: it cannot enter \(blocked)"
                    }
                    if !service.canRead(info, directory: isDirectory) {
                        return "not readable by \(service.name), the service's user (owner \(info.st_uid), group \(info.st_gid), mode \(String(format: "%04o", mode)))"
                    }
                }
                return nil
            }
        }

        /// Groups with devices (or an inventory source that may bring some) that could log in to
        /// none: no user, or nothing to authenticate with. Every device of theirs would fail.
        static func credentialProblems(_ configuration: AgentConfiguration) -> [String] {
            let used = Set(configuration.devices.map(\.group))
            var problems: [String] = []
            for group in configuration.groups.values.sorted(by: { $0.name < $1.name })
            where used.contains(group.name) || configuration.inventorySources.contains(where: { $0.group == group.name }) {
                let section = group.name == AgentConfiguration.defaultGroup ? "[defaults]" : "[group \(group.name)]"
                let credentials = group.credentials
                if credentials.user?.isEmpty ?? true {
                    problems.append("\(section): no user: every device of the group would fail (user = NAME, here or in [defaults])")
                }
                if credentials.keyFile == nil, credentials.passwordFile == nil, credentials.passwordCredential == nil {
                    problems.append("\(section): nothing to log in with: give key-file, password-file or password-credential (here or in [defaults])")
                }
            }
            return problems
        }

        static func files(_ configuration: AgentConfiguration, base: String = "", reportsData: String?) -> [NamedFile] {
            var files: [NamedFile] = []
            func add(_ use: String, _ path: String?, _ kind: NamedFile.Kind) {
                guard let path, !path.isEmpty, !files.contains(where: { $0.path == path && $0.use == use }) else { return }
                files.append(NamedFile(use: use, path: path, kind: kind))
            }
            // Only groups with devices: a group nothing uses is never read.
            let used = Set(configuration.devices.map(\.group))
            let defaults = configuration.groups[AgentConfiguration.defaultGroup]
            for group in configuration.groups.values.sorted(by: { $0.name < $1.name }) where used.contains(group.name) || !configuration.inventorySources.isEmpty {
                let section = group.name == AgentConfiguration.defaultGroup ? "[defaults]" : "[group \(group.name)]"
                // A group starts from [defaults]: a value it holds as [defaults] does was written
                // there, and is named there (once, however many groups take it).
                func from(_ value: String?, _ inherited: String?) -> String { value != nil && value == inherited ? "[defaults]" : section }
                add("\(from(group.credentials.keyFile, defaults?.credentials.keyFile)) key-file", group.credentials.keyFile, .secret)
                add("\(from(group.credentials.passphraseFile, defaults?.credentials.passphraseFile)) passphrase-file", group.credentials.passphraseFile, .secret)
                add("\(from(group.credentials.passwordFile, defaults?.credentials.passwordFile)) password-file", group.credentials.passwordFile, .secret)
                add("\(from(group.proxyJumpKeyFile, defaults?.proxyJumpKeyFile)) proxy-jump-key-file", group.proxyJumpKeyFile, .secret)
                add("\(from(group.knownHosts, defaults?.knownHosts)) known-hosts", group.knownHosts, .knownHosts(strict: group.hostKeyPolicy == .strict))
            }
            let upload = configuration.upload
            add("[upload] token-file", upload.tokenFile, .secret)
            add("[upload] client-key", upload.clientKey, .secret)
            add("[upload] proxy-credentials-file", upload.proxyCredentialsFile, .secret)
            add("[upload] ca-file", upload.caFile, .readable)
            add("[upload] client-certificate", upload.clientCertificate, .readable)
            add("[events] token-file", configuration.events.tokenFile, .secret)
            add("[events] ca-file", configuration.events.caFile, .readable)
            for source in configuration.inventorySources {
                let section = "[inventory \(source.name)]"
                switch source.kind {
                case let .netbox(settings), let .nautobot(settings):
                    add("\(section) token-file", settings.tokenFile, .secret)
                    add("\(section) ca-file", settings.caFile, .readable)
                    add("\(section) proxy-credentials-file", settings.proxyCredentialsFile, .secret)
                case let .csv(path): add("\(section) file", path, .readable)
                case let .ansible(settings): add("\(section) file", settings.path, .readable)
                case let .oxidized(settings): add("\(section) file", settings.path, .readable)
                }
            }
            for inventory in configuration.agent.inventoryFiles {
                add("[agent] inventory", inventory.hasPrefix("/") || base.isEmpty ? inventory : base + "/" + inventory, .readable)
            }
            add("[reports] data-directory", reportsData, .directory)
            return files
        }
    }
}

/// The service's user, for checking a file as it will read it (root reads everything).
struct ServiceUser {
    var name: String
    var uid: uid_t
    var groups: Set<gid_t>

    /// nil when there is no such user.
    init?(name: String) {
        guard let entry = getpwnam(name) else { return nil }
        self.name = name
        uid = entry.pointee.pw_uid
        let primary = entry.pointee.pw_gid
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, primary, &list, &count) < 0 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, primary, &list, &count)
        }
        groups = Set(list.prefix(Int(max(count, 0)))).union([primary])
    }

    /// The first directory above `path` this user may not enter (search permission); nil when
    /// every one may be entered.
    func unreachableDirectory(above path: String) -> String? {
        var directory = (path as NSString).deletingLastPathComponent
        var chain: [String] = []
        while !directory.isEmpty && directory != "/" {
            chain.append(directory)
            directory = (directory as NSString).deletingLastPathComponent
        }
        for candidate in chain.reversed() {
            var info = stat()
            guard stat(candidate, &info) == 0 else { continue }
            let mode = info.st_mode
            let bits: mode_t = info.st_uid == uid ? (mode >> 6) & 1 : groups.contains(info.st_gid) ? (mode >> 3) & 1 : mode & 1
            if bits == 0 { return candidate }
        }
        return nil
    }

    /// Whether the mode bits let this user read the file (and enter it, for a directory).
    func canRead(_ info: stat, directory: Bool) -> Bool {
        let need: mode_t = directory ? 0o5 : 0o4
        let mode = info.st_mode
        if info.st_uid == uid { return (mode >> 6) & need == need }
        if groups.contains(info.st_gid) { return (mode >> 3) & need == need }
        return mode & need == need
    }
}
