import Foundation

/// A fault given to a simulated device of a fleet: one of the responder's ``DeviceFault``s, or
/// `auth-fail`, which sshd itself applies (the device accepts no key).
public enum FleetFault: Hashable, Sendable, CustomStringConvertible {
    case device(DeviceFault)
    case authFail

    public init?(rawValue: String) {
        if rawValue == "auth-fail" { self = .authFail; return }
        guard let fault = DeviceFault(rawValue: rawValue) else { return nil }
        self = .device(fault)
    }

    public var rawValue: String {
        switch self {
        case let .device(fault): return fault.rawValue
        case .authFail: return "auth-fail"
        }
    }

    public var description: String { rawValue }

    public static var allNames: [String] { DeviceFault.allCases.map(\.rawValue) + ["auth-fail"] }
}

/// How many devices of a fleet get each fault: `hang:0.02,auth-fail:1`. A value below 1 is a
/// fraction of the fleet (rounded to the nearest device); 1 or more is a device count.
public struct FaultMix: Sendable, Equatable {
    public var entries: [(fault: FleetFault, amount: Double)]

    public init(entries: [(fault: FleetFault, amount: Double)] = []) {
        self.entries = entries
    }

    public static func == (a: FaultMix, b: FaultMix) -> Bool {
        a.entries.map(\.fault) == b.entries.map(\.fault) && a.entries.map(\.amount) == b.entries.map(\.amount)
    }

    /// Parses `name:amount[,name:amount...]`; an empty string is no faults.
    public init(parsing text: String) throws(SimulatorError) {
        var entries: [(fault: FleetFault, amount: Double)] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let fault = FleetFault(rawValue: parts[0]) else {
                throw .usage("--faults: \"\(item)\" is not name:amount with a name among \(FleetFault.allNames.joined(separator: ", "))")
            }
            guard let amount = Double(parts[1]), amount >= 0, amount.isFinite else {
                throw .usage("--faults: \"\(parts[1])\" in \"\(item)\" is not a fraction (0.05) or a device count (2)")
            }
            if entries.contains(where: { $0.fault == fault }) { throw .usage("--faults: \(parts[0]) is given twice") }
            entries.append((fault, amount))
        }
        self.entries = entries
    }

    /// Devices per fault in a fleet of `count`.
    public func counts(fleetSize count: Int) -> [(fault: FleetFault, devices: Int)] {
        entries.map { entry in
            (entry.fault, entry.amount >= 1 ? Int(entry.amount) : Int((entry.amount * Double(count)).rounded()))
        }
    }
}

/// One simulated device: where it listens and what it serves. Written to `fleet.json` by
/// `simulate fleet` and read back by each NETCONF session sshd starts.
public struct FleetDevice: Codable, Sendable, Equatable {
    /// Inventory name, and the host-name the device reports.
    public var name: String
    /// The loopback address only this device listens on (127.0.x.y).
    public var address: String
    public var port: Int
    /// Profile name and the directory its replies come from.
    public var profile: String
    public var profileDirectory: String
    /// A ``FleetFault`` raw value, or nil for a healthy device.
    public var fault: String?
    /// The chassis serial number the device reports, when its profile has one to replace.
    public var serialNumber: String?
    /// Which sshd instance serves it (each serves at most ``FleetPlan/addressesPerSSHD`` addresses).
    public var sshd: Int
    /// Serve the replies exactly as captured, host names and serial included (`bundle serve`
    /// replays one real device); nil or false for fleet devices, which each get their own identity.
    public var capturedIdentity: Bool?

    public var fleetFault: FleetFault? { fault.flatMap(FleetFault.init(rawValue:)) }
}

/// The whole fleet: every device, the shared port and latency, the login user.
public struct FleetPlan: Codable, Sendable, Equatable {
    /// OpenSSH's sshd accepts at most 16 listen sockets (MAX_LISTEN_SOCKS).
    public static let addressesPerSSHD = 16
    /// 254 addresses per 127.0.x.0/24 and x from 1 to 255.
    public static let maximumDevices = 254 * 255

    public var devices: [FleetDevice]
    public var port: Int
    public var user: String
    public var rpcLatencyMs: Int
    public var setupDelayMs: Int
    public var seed: UInt64

    public init(devices: [FleetDevice], port: Int, user: String, rpcLatencyMs: Int, setupDelayMs: Int, seed: UInt64) {
        self.devices = devices
        self.port = port
        self.user = user
        self.rpcLatencyMs = rpcLatencyMs
        self.setupDelayMs = setupDelayMs
        self.seed = seed
    }

    /// The loopback address of the device at `index` (0-based): 127.0.1.1, 127.0.1.2, ...
    /// 127.0.1.254, 127.0.2.1, ... (never .0 or .255, which look like network and broadcast).
    public static func address(ofDeviceAt index: Int) -> String {
        "127.0.\(1 + index / 254).\(1 + index % 254)"
    }

    /// Profiles are given round-robin (in name order); faults go to devices picked by a
    /// generator seeded with `seed`, so the same arguments always make the same fleet.
    /// `addresses` replaces the 127.0.x.y sequence (one per device); `capturedIdentity` serves every
    /// device under the host name and serial its profile was captured with.
    public static func make(deviceCount: Int, profiles: [DeviceProfileSource], faults: FaultMix, seed: UInt64,
                            port: Int, user: String, rpcLatencyMs: Int, setupDelayMs: Int,
                            addresses: [String]? = nil, capturedIdentity: Bool = false) throws(SimulatorError) -> FleetPlan {
        if let addresses, addresses.count != deviceCount {
            throw .usage("\(addresses.count) addresses for \(deviceCount) devices")
        }
        guard deviceCount >= 1, deviceCount <= maximumDevices else {
            throw .usage("--devices must be between 1 and \(maximumDevices)")
        }
        guard !profiles.isEmpty else { throw .usage("no device profiles to serve") }
        let counts = faults.counts(fleetSize: deviceCount)
        let faulty = counts.reduce(0) { $0 + $1.devices }
        guard faulty <= deviceCount else {
            throw .usage("--faults asks for \(faulty) faulty devices in a fleet of \(deviceCount)")
        }
        var generator = SplitMix64(seed: seed)
        var order = Array(0..<deviceCount)
        // Fisher-Yates written out, so the assignment does not depend on the standard library's shuffle.
        if order.count > 1 {
            for i in stride(from: order.count - 1, to: 0, by: -1) {
                let j = Int(generator.next() % UInt64(i + 1))
                order.swapAt(i, j)
            }
        }
        var faultOf: [Int: FleetFault] = [:]
        var next = 0
        for (fault, devices) in counts {
            for _ in 0..<devices {
                faultOf[order[next]] = fault
                next += 1
            }
        }
        var perProfile: [String: Int] = [:]
        let width = String(deviceCount).count
        var devices: [FleetDevice] = []
        for index in 0..<deviceCount {
            let source = profiles[index % profiles.count]
            let ordinal = (perProfile[source.name] ?? 0) + 1
            perProfile[source.name] = ordinal
            let number = String(repeating: "0", count: max(0, width - String(ordinal).count)) + String(ordinal)
            devices.append(FleetDevice(
                name: capturedIdentity ? (source.hostName ?? source.name) : "\(source.name)-\(number)",
                address: addresses?[index] ?? address(ofDeviceAt: index), port: port,
                profile: source.name, profileDirectory: source.directory.path, fault: faultOf[index]?.rawValue,
                serialNumber: capturedIdentity ? source.chassisSerialNumber
                    : source.chassisSerialNumber.map { SimulatedIdentity.serialNumber(from: $0, device: index + 1) },
                sshd: index / addressesPerSSHD, capturedIdentity: capturedIdentity ? true : nil))
        }
        return FleetPlan(devices: devices, port: port, user: user, rpcLatencyMs: rpcLatencyMs,
                         setupDelayMs: setupDelayMs, seed: seed)
    }

    /// The device an sshd session belongs to, from `SSH_CONNECTION`
    /// ("client-ip client-port server-ip server-port").
    public func device(sshConnection: String) -> FleetDevice? {
        let fields = sshConnection.split(separator: " ")
        guard fields.count == 4 else { return nil }
        let address = String(fields[2])
        let port = Int(fields[3])
        return devices.first { $0.address == address && (port == nil || $0.port == port) }
    }

    /// Number of sshd instances the fleet needs.
    public var sshdCount: Int { (devices.map(\.sshd).max() ?? -1) + 1 }

    public func write(to url: URL) throws(SimulatorError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(self).write(to: url, options: .atomic)
        } catch {
            throw .fleet("cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    public static func read(from url: URL) throws(SimulatorError) -> FleetPlan {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw .fleet("cannot read \(url.path) (is `care-agent simulate fleet` running with this --state?)")
        }
        do {
            return try JSONDecoder().decode(FleetPlan.self, from: data)
        } catch {
            throw .fleet("\(url.path) is not a fleet map: \(error)")
        }
    }

    /// `inventory.csv`: name,host,port,group,profile,fault (group = profile).
    public func inventoryCSV() -> String {
        var text = "name,host,port,group,profile,fault\n"
        for device in devices {
            text += "\(device.name),\(device.address),\(device.port),\(device.profile),\(device.profile),\(device.fault ?? "")\n"
        }
        return text
    }
}

/// A profile directory offered to a fleet, with the chassis serial number its inventory reports.
public struct DeviceProfileSource: Sendable {
    public var name: String
    public var directory: URL
    public var chassisSerialNumber: String?
    /// The first host name of its software reply.
    public var hostName: String?

    public init(name: String, directory: URL, chassisSerialNumber: String?, hostName: String?) {
        self.name = name
        self.directory = directory
        self.chassisSerialNumber = chassisSerialNumber
        self.hostName = hostName
    }

    /// The profile in `directory`, checked to be well-formed.
    public init(directory: URL) throws(SimulatorError) {
        let profile = try DeviceProfile(directory: directory)
        if let (rpc, problem) = profile.malformedReplies().sorted(by: { $0.key < $1.key }).first {
            throw .profile(path: directory.appendingPathComponent("\(rpc).xml").path, message: "not well-formed XML: \(problem)")
        }
        self.init(name: directory.lastPathComponent, directory: directory,
                  chassisSerialNumber: profile.chassisSerialNumber, hostName: profile.softwareHostNames().first?.hostName)
    }

    /// Every subdirectory of `directory` holding `<rpc>.xml` files, in name order.
    public static func all(in directory: URL) throws(SimulatorError) -> [DeviceProfileSource] {
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        } catch {
            throw .profile(path: directory.path, message: "cannot list the profiles directory: \(error.localizedDescription)")
        }
        var sources: [DeviceProfileSource] = []
        for entry in entries where !entry.hasPrefix(".") {
            let dir = directory.appendingPathComponent(entry).standardizedFileURL
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            sources.append(try DeviceProfileSource(directory: dir))
        }
        if sources.isEmpty {
            throw .profile(path: directory.path, message: "no profile directories (<name>/<rpc>.xml) in it")
        }
        return sources
    }
}

/// A small seeded generator (SplitMix64): same seed, same fleet, on every platform.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
