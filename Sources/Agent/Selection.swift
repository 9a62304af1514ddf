import Crypto
import Foundation
import SSH

/// Settings given on the command line; each one set replaces the file's value for every group.
public struct CommandLineOverrides: Sendable {
    public var user: String?
    public var keyFile: String?
    public var passphraseFile: String?
    public var passwordFile: String?
    public var knownHosts: String?
    public var hostKeyPolicy: HostKeyPolicy?
    public var outbox: String?
    public var concurrency: Int?
    public var rpcTimeout: Duration?
    public var deviceTimeout: Duration?

    public init() {}
}

/// Why a selection of devices cannot be made.
public struct SelectionError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension AgentConfiguration {
    /// Applies command-line settings over the file's.
    public mutating func apply(_ overrides: CommandLineOverrides) {
        if let outbox = overrides.outbox { agent.outbox = outbox }
        if let concurrency = overrides.concurrency { agent.concurrency = concurrency }
        for name in groups.keys {
            var group = groups[name]!
            if let user = overrides.user { group.credentials.user = user }
            if let key = overrides.keyFile {
                group.credentials.keyFile = key
                group.credentials.passwordFile = overrides.passwordFile
                group.credentials.passwordCredential = nil
            }
            if let passphrase = overrides.passphraseFile { group.credentials.passphraseFile = passphrase }
            if let password = overrides.passwordFile {
                group.credentials.passwordFile = password
                group.credentials.passwordCredential = nil
                if overrides.keyFile == nil { group.credentials.keyFile = nil }
            }
            if let knownHosts = overrides.knownHosts { group.knownHosts = knownHosts }
            if let policy = overrides.hostKeyPolicy { group.hostKeyPolicy = policy }
            if let timeout = overrides.rpcTimeout { group.rpcTimeout = timeout }
            if let timeout = overrides.deviceTimeout { group.deviceTimeout = timeout }
            // "Devices collected at once" means it: the groups' caps (16 by default) would
            // otherwise hold a 512-device run to 16 per group.
            if let concurrency = overrides.concurrency { group.concurrency = concurrency }
            groups[name] = group
        }
    }

    /// Adds an inventory given on the command line without agent.conf: groups it names are created
    /// with the default group's settings.
    public mutating func addInventoryCreatingGroups(_ inventory: InventoryFile) throws(ConfigurationError) {
        let defaults = groups[AgentConfiguration.defaultGroup] ?? GroupSettings(name: AgentConfiguration.defaultGroup)
        for row in inventory.rows where groups[row.device.group] == nil {
            var group = defaults
            group.name = row.device.group
            groups[group.name] = group
        }
        try addInventory(inventory)
    }

    /// The devices in `groups` plus those named in `devices`; everything when both are empty.
    /// An unknown group or device name is an error listing the known ones.
    public func select(groups wanted: [String], devices named: [String]) throws(SelectionError) -> [Device] {
        if wanted.isEmpty && named.isEmpty { return devices }
        for group in wanted where groups[group] == nil {
            throw SelectionError(description: "no group \(group); groups: \(groups.keys.sorted().joined(separator: ", "))")
        }
        let known = Set(devices.map(\.name))
        for name in named where !known.contains(name) {
            throw SelectionError(description: "no device \(name) in the configuration or inventory")
        }
        return devices.filter { wanted.contains($0.group) || named.contains($0.name) }
    }
}

/// The last result of each device, kept in the state directory for `status` and `inventory`:
/// `<state>/results/<device>.json`.
public struct ResultStore: Sendable {
    public var directory: String

    public init(stateDirectory: String) {
        directory = stateDirectory + "/results"
    }

    /// Records `result` as the device's last one. A result that did not identify the device (a
    /// failed run, or one whose software or inventory RPC failed) keeps the facts of the last one
    /// that did, as `lastGood`: one bad run must not wipe model, serial, version and FRUs from
    /// `inventory`.
    public func save(_ result: DeviceResult) throws {
        var result = result
        if !result.identifiesDevice, let previous = load(result.device.name) {
            // The previous run's best: its own facts, or what it carried, or the two merged.
            let best = previous.bestFacts
            if best.facts.software != nil || best.facts.inventory != nil {
                result.lastGood = LastGoodFacts(collected: best.collected, facts: best.facts)
            }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = result.device.name
        try writeAtomically([UInt8](try ResultStore.encode(result)), to: path(name), mode: 0o640, what: "results file")
        // This device's file under the name earlier versions gave it (without the digest): gone,
        // so that it is not listed twice.
        let legacy = "\(directory)/\(DirectorySink.safeName(name)).json"
        if legacy != path(name), let data = FileManager.default.contents(atPath: legacy),
           (try? ResultStore.decoder.decode(DeviceResult.self, from: data))?.device.name == name {
            unlink(legacy)
        }
    }

    /// The results file of `result`: with the facts.json bytes the bundle got when the result has
    /// them (spliced in as the last key, indented one level), encoded here otherwise.
    static func encode(_ result: DeviceResult) throws -> Data {
        guard let facts = result.factsJSON else { return try encoder.encode(result) }
        let encoder = ResultStore.encoder
        encoder.userInfo[.omittingFacts] = true
        var bytes = [UInt8](try encoder.encode(result))
        // Pretty output ends "\n}": the facts go in before it.
        guard bytes.last == UInt8(ascii: "}"), bytes.dropLast().last == UInt8(ascii: "\n") else { return try ResultStore.encoder.encode(result) }
        bytes.removeLast(2)
        bytes += Array(",\n  \"facts\" : ".utf8)
        appendIndented(facts.last == UInt8(ascii: "\n") ? facts.dropLast() : facts[...], to: &bytes)
        bytes += Array("\n}".utf8)
        return Data(bytes)
    }

    /// Appends pretty JSON one level deeper (two spaces after each newline), as a value nested in
    /// an object or array. JSON holds no raw newline inside strings, so every newline byte starts
    /// a line.
    public static func appendIndented(_ json: some Collection<UInt8>, to bytes: inout [UInt8]) {
        bytes.reserveCapacity(bytes.count + json.count + json.count / 8 + 4)
        for byte in json {
            bytes.append(byte)
            if byte == UInt8(ascii: "\n") { bytes += [0x20, 0x20] }
        }
    }

    /// The last result of device `name`, if one is recorded and readable.
    public func load(_ name: String) -> DeviceResult? {
        // The name earlier versions gave the file, while the device has no file of its own yet:
        // its last good facts must survive the upgrade's first failed run.
        for candidate in [path(name), "\(directory)/\(DirectorySink.safeName(name)).json"] {
            if let data = FileManager.default.contents(atPath: candidate),
               let result = try? ResultStore.decoder.decode(DeviceResult.self, from: data), result.device.name == name {
                return result
            }
        }
        return nil
    }

    /// The device's file: its name when that is a safe file name, else the safe name and a digest
    /// of the real one (`core/r1` and `core r1` both make `core_r1`: each had the other's result,
    /// and its last good facts).
    func path(_ name: String) -> String {
        let safe = DirectorySink.safeName(name)
        guard safe != name else { return "\(directory)/\(name).json" }
        let digest = SHA256.hash(data: Data(name.utf8)).prefix(6).map { String(format: "%02x", $0) }.joined()
        return "\(directory)/\(safe)-\(digest).json"
    }

    /// Every stored result, by device name; unreadable files are skipped.
    public func loadAll() -> [DeviceResult] {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(".json") }.sorted().compactMap { file in
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(file)") else { return nil }
            return try? ResultStore.decoder.decode(DeviceResult.self, from: data)
        }
    }

    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }

    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
