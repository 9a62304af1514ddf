import Foundation

extension InventorySource {
    /// Reads the source now (blocking: files and HTTP). A result with more than
    /// ``maximumDevices`` devices fails, so that a truncated list never replaces a whole one.
    public func read(environment: [String: String] = ProcessInfo.processInfo.environment) -> Result<InventoryYield, InventorySourceError> {
        let result: Result<InventoryYield, InventorySourceError>
        switch kind {
        case .netbox, .nautobot:
            result = SourceOfTruthClient(source: self).read(environment: environment)
        case let .csv(path):
            do {
                let file = try InventoryFile(path: path, skippingBadRows: true)
                result = .success(InventoryYield(
                    source: name,
                    entries: file.rows.map { row in
                        var device = row.device
                        if device.group == AgentConfiguration.defaultGroup { device.group = group }
                        return InventoryEntry(device: device, origin: "\(path):\(row.line)")
                    },
                    skipped: file.skipped.map { "inventory \(name): \($0)" }))
            } catch {
                result = .failure(InventorySourceError(source: name, "\(error)"))
            }
        case let .ansible(settings):
            do throws(InventorySourceError) {
                result = .success(try AnsibleInventory(path: settings.path).yield(source: name, settings: settings, defaultGroup: group))
            } catch {
                result = .failure(InventorySourceError(source: name, error.message))
            }
        case let .oxidized(settings):
            do throws(InventorySourceError) {
                result = .success(try RouterDB(path: settings.path).yield(source: name, settings: settings, defaultGroup: group))
            } catch {
                result = .failure(InventorySourceError(source: name, error.message))
            }
        }
        if case let .success(yield) = result, yield.entries.count > maximumDevices {
            return .failure(InventorySourceError(source: name, "\(yield.entries.count) devices, more than maximum-devices = \(maximumDevices)"))
        }
        return result
    }
}

/// How one source stands: shown by `care-agent status` and `care-agent inventory sources`.
public struct InventorySourceStatus: Codable, Sendable, Equatable {
    public var name: String
    public var type: String
    /// The file or URL.
    public var location: String
    /// Devices this source contributes now (from the last good read).
    public var devices: Int
    /// Records skipped at the last good read, each naming the device and why (at most 100).
    public var skipped: [String]
    public var skippedCount: Int
    /// The last attempt to read the source.
    public var lastRefresh: Date?
    /// The read the devices come from.
    public var lastSuccess: Date?
    /// Why the last attempt failed; the devices are then the last good inventory's.
    public var error: String?
    /// The devices come from the copy kept on disk (the source failed since the agent started).
    public var fromLastGood: Bool

    public init(source: InventorySource) {
        name = source.name
        type = source.kind.type
        location = source.location
        devices = 0
        skipped = []
        skippedCount = 0
        fromLastGood = false
    }
}

/// The last good inventory of each source, kept on disk so that the agent never forgets its
/// fleet because the source of truth was down when it started: `<state>/inventory/<NAME>.json`,
/// written atomically, mode 0600 in a 0700 directory (it lists management addresses).
public struct InventoryCache: Sendable {
    /// What is kept for one source.
    public struct Record: Codable, Sendable, Equatable {
        public var source: String
        public var type: String
        public var location: String
        public var fetched: Date
        public var yield: InventoryYield
    }

    public var directory: String
    public static let maximumFileSize = 256 << 20

    public init(stateDirectory: String) { directory = stateDirectory + "/inventory" }

    func path(_ source: String) -> String { directory + "/" + source + ".json" }

    /// The kept inventory of `source`, or nil when there is none or it is not for this source
    /// (type or location changed in agent.conf since).
    public func load(_ source: InventorySource) -> Record? {
        guard let handle = FileHandle(forReadingAtPath: path(source.name)) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: Self.maximumFileSize), data.count < Self.maximumFileSize,
              let record = try? ResultStore.decoder.decode(Record.self, from: data),
              record.source == source.name, record.type == source.kind.type, record.location == source.location else { return nil }
        return record
    }

    public func save(_ source: InventorySource, yield: InventoryYield, fetched: Date) throws {
        let record = Record(source: source.name, type: source.kind.type, location: source.location, fetched: fetched, yield: yield)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        _ = chmod(directory, 0o700)
        try writeAtomically(Array(try ResultStore.encoder.encode(record)), to: path(source.name), mode: 0o600, what: "the last good inventory")
    }
}

/// The fleet: agent.conf's own devices (`[device]` sections, `inventory =` CSV files) first,
/// then each `[inventory NAME]` source in file order. A name met again is reported with both
/// places and the first is kept; a device in a group agent.conf does not define is skipped.
public struct FleetInventory: Sendable, Equatable {
    public var devices: [Device]
    /// Duplicates and devices of unknown groups, each naming the device and where it came from.
    public var problems: [String]

    public init(configuration: AgentConfiguration, yields: [InventoryYield]) {
        devices = configuration.devices
        problems = []
        var origin: [String: String] = [:]
        for device in devices { origin[device.name] = configuration.deviceOrigins[device.name] ?? "agent.conf" }
        for yield in yields {
            for entry in yield.entries {
                if let first = origin[entry.device.name] {
                    problems.append("device \(entry.device.name) is defined twice: at \(first) and at \(entry.origin) (inventory \(yield.source)); the first is kept")
                    continue
                }
                guard configuration.groups[entry.device.group] != nil else {
                    problems.append("inventory \(yield.source): device \(entry.device.name) (\(entry.origin)) skipped: group \(entry.device.group) is not defined in agent.conf (add [group \(entry.device.group)]; an empty one takes the [defaults])")
                    continue
                }
                origin[entry.device.name] = "\(entry.origin) (inventory \(yield.source))"
                devices.append(entry.device)
            }
        }
    }
}

extension AgentConfiguration {
    /// This configuration with the `[inventory NAME]` sources' devices merged in, each source read
    /// now, or its last good inventory (kept by the service) when the read fails: the fleet the
    /// service would schedule, for one-shot commands (`collect now --standalone`, `hosts scan`).
    /// Failures, skipped records and duplicates go to `warn`.
    public func mergingInventorySources(environment: [String: String] = ProcessInfo.processInfo.environment,
                                        warn: (String) -> Void) -> AgentConfiguration {
        guard !inventorySources.isEmpty else { return self }
        let cache = InventoryCache(stateDirectory: agent.stateDirectory)
        var yields: [InventoryYield] = []
        for source in inventorySources {
            switch source.read(environment: environment) {
            case let .success(yield):
                yields.append(yield)
                yield.skipped.forEach(warn)
            case let .failure(error):
                if let record = cache.load(source) {
                    warn("\(error); using its last good inventory of \(ISO8601DateFormatter().string(from: record.fetched)) (\(record.yield.entries.count) devices)")
                    yields.append(record.yield)
                } else {
                    warn("\(error); no last good inventory: none of its devices is included")
                }
            }
        }
        let fleet = FleetInventory(configuration: self, yields: yields)
        fleet.problems.forEach(warn)
        var merged = self
        merged.devices = fleet.devices
        return merged
    }
}
