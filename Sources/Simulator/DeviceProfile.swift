import Foundation

/// A simulated device: captured replies keyed by RPC name. A profile directory holds one
/// `<rpc-name>.xml` per RPC (`get-software-information.xml`, ...) and, optionally,
/// `get-configuration.text.xml` for `format="text"`.
public struct DeviceProfile: Sendable {
    public var name: String
    /// RPC name (or `get-configuration.text`) → captured reply bytes.
    public var replies: [String: [UInt8]]

    public init(name: String, replies: [String: [UInt8]]) {
        self.name = name
        self.replies = replies
    }

    /// Loads every `*.xml` file of `directory`.
    public init(directory: URL) throws(SimulatorError) {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        } catch {
            throw .profile(path: directory.path, message: "cannot list the directory: \(error.localizedDescription)")
        }
        var replies: [String: [UInt8]] = [:]
        for file in files where file.pathExtension == "xml" {
            guard let data = FileManager.default.contents(atPath: file.path) else {
                throw .profile(path: file.path, message: "cannot read the file")
            }
            replies[file.deletingPathExtension().lastPathComponent] = Array(data)
        }
        if replies.isEmpty { throw .profile(path: directory.path, message: "no <rpc-name>.xml reply files in it") }
        self.init(name: directory.lastPathComponent, replies: replies)
    }

    /// The RPC a Junos CLI command stands for (`show chassis hardware` → `get-chassis-inventory`).
    public static func rpc(forCommand command: String) -> String? {
        var words = command.split(whereSeparator: { $0.isWhitespace }).map { $0.lowercased() }
        if let pipe = words.firstIndex(of: "|") { words.removeSubrange(pipe...) }
        if let invoke = words.firstIndex(of: "invoke-on") { words.removeSubrange(invoke...) }
        let normalised = words.joined(separator: " ")
        return commandTable[normalised]
    }

    static let commandTable: [String: String] = [
        "show version": "get-software-information",
        "show chassis hardware": "get-chassis-inventory",
        "show chassis hardware detail": "get-chassis-inventory",
        "show chassis hardware models": "get-chassis-inventory",
        "show chassis routing-engine": "get-route-engine-information",
        "show chassis environment": "get-environment-information",
        "show chassis alarms": "get-alarm-information",
        "show system alarms": "get-system-alarm-information",
        "show system storage": "get-system-storage",
        "show system core-dumps": "get-system-core-dumps",
        "show system uptime": "get-system-uptime-information",
        "show virtual-chassis": "get-virtual-chassis-information",
        "show virtual-chassis status": "get-virtual-chassis-information",
        "show chassis cluster status": "get-chassis-cluster-status",
        "show configuration": "get-configuration",
        "show interfaces": "get-interface-information",
        "show interfaces terse": "get-interface-information",
    ]
}

/// Why the simulator cannot serve.
public enum SimulatorError: Error, CustomStringConvertible {
    case profile(path: String, message: String)
    case usage(String)

    public var description: String {
        switch self {
        case let .profile(path, message): return "device profile \(path): \(message)"
        case let .usage(message): return message
        }
    }
}
