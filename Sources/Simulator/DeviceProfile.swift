import Foundation
import XML

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

    /// Loads every `*.xml` file of `directory`. `regularFilesOnly`: a symbolic link or anything
    /// else that is not a regular file is refused (an extracted bundle is someone else's
    /// directory: its `raw/` must not serve files from outside it).
    public init(directory: URL, regularFilesOnly: Bool = false) throws(SimulatorError) {
        let files: [URL]
        do {
            files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
        } catch {
            throw .profile(path: directory.path, message: "cannot list the directory: \(error.localizedDescription)")
        }
        var replies: [String: [UInt8]] = [:]
        for file in files where file.pathExtension == "xml" {
            if regularFilesOnly {
                var info = stat()
                guard lstat(file.path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
                    throw .profile(path: file.path, message: "not a regular file (a symbolic link?): an extracted bundle's replies must be its own files")
                }
            }
            let fd = open(file.path, O_RDONLY | O_CLOEXEC | (regularFilesOnly ? O_NOFOLLOW : 0))
            guard fd >= 0 else { throw .profile(path: file.path, message: "cannot read the file: \(String(cString: strerror(errno)))") }
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            do {
                replies[file.deletingPathExtension().lastPathComponent] = Array(try handle.readToEnd() ?? Data())
            } catch {
                throw .profile(path: file.path, message: "cannot read the file: \(error.localizedDescription)")
            }
        }
        if replies.isEmpty { throw .profile(path: directory.path, message: "no <rpc-name>.xml reply files in it") }
        self.init(name: directory.lastPathComponent, replies: replies)
    }

    /// A profile from a health bundle's members: each `raw/<rpc>.xml` is the reply a device gave to
    /// `<rpc>`, stored as received (after redaction), so serving it replays that device. Other
    /// members (manifest, facts, log) are ignored.
    public init(name: String, bundleMembers: [(name: String, bytes: [UInt8])]) throws(SimulatorError) {
        var replies: [String: [UInt8]] = [:]
        for member in bundleMembers where member.name.hasPrefix("raw/") && member.name.hasSuffix(".xml") {
            let rpc = String(member.name.dropFirst("raw/".count).dropLast(".xml".count))
            guard !rpc.isEmpty, !rpc.contains("/") else { continue }
            replies[rpc] = member.bytes
        }
        if replies.isEmpty { throw .profile(path: name, message: "the bundle has no raw/<rpc>.xml replies to serve") }
        self.init(name: name, replies: replies)
    }

    /// A profile from an extracted bundle directory: its `raw/<rpc>.xml` files.
    public init(bundleDirectory: URL) throws(SimulatorError) {
        let raw = bundleDirectory.appendingPathComponent("raw")
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: raw.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .profile(path: bundleDirectory.path, message: "no raw/ directory: not an extracted bundle (tar -xzf BUNDLE -C DIR)")
        }
        var linkInfo = stat()
        guard lstat(raw.path, &linkInfo) == 0, linkInfo.st_mode & S_IFMT == S_IFDIR else {
            throw .profile(path: raw.path, message: "not a directory (a symbolic link?): an extracted bundle's raw/ must be its own")
        }
        var profile = try DeviceProfile(directory: raw, regularFilesOnly: true)
        profile.name = bundleDirectory.lastPathComponent
        self = profile
    }

    /// Writes the replies as `<rpc>.xml` files into `directory` (created), readable by all: the
    /// form `simulate fleet` and sshd sessions load.
    public func write(to directory: URL) throws(SimulatorError) {
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            chmod(directory.path, 0o755)
            for (rpc, bytes) in replies {
                let file = directory.appendingPathComponent("\(rpc).xml")
                try Data(bytes).write(to: file)
                chmod(file.path, 0o644)
            }
        } catch {
            throw .profile(path: directory.path, message: "cannot write the profile: \(error.localizedDescription)")
        }
    }

    /// Replies that are not well-formed XML, with the parser's message: a profile should have
    /// none (a device that sends broken XML is the `malformed` fault's job).
    public func malformedReplies() -> [String: String] {
        var problems: [String: String] = [:]
        for (rpc, bytes) in replies {
            do {
                _ = try XMLDocument(bytes: bytes)
            } catch {
                problems[rpc] = "\(error)"
            }
        }
        return problems
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
    /// Starting or running a helper program (ssh-keygen, sshd) failed.
    case process(String)
    /// The simulated fleet cannot be set up or served.
    case fleet(String)

    public var description: String {
        switch self {
        case let .profile(path, message): return "device profile \(path): \(message)"
        case let .usage(message): return message
        case let .process(message): return message
        case let .fleet(message): return "simulated fleet: \(message)"
        }
    }
}
