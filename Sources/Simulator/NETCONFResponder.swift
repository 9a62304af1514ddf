import Foundation
import NETCONF
import XML

/// Misbehaviours a simulated device can show, for tests and demos.
public enum DeviceFault: String, Sendable, CaseIterable {
    /// Sends half of the first data reply, then goes silent (until the client goes away).
    case hang
    /// Never sends its hello.
    case hangHello = "hang-hello"
    /// Sends half of the first data reply, then exits (the reply is cut off mid-stream).
    case truncate
    /// Answers every data RPC with an `rpc-error`.
    case rpcError = "rpc-error"
    /// Adds a warning `rpc-error` (severity warning) beside the data, as Junos does.
    case warning
    /// Answers data RPCs with XML that is not well-formed.
    case malformed
    /// Multiplies the per-RPC latency by 20 (at least one second).
    case slow
    // Hostile devices: what a compromised or broken device can send (docs/security.md).
    /// Answers every data RPC with a DOCTYPE whose nested entities expand to gigabytes ("billion laughs").
    case entityBomb = "entity-bomb"
    /// The same entity bomb in UTF-16, which a check for UTF-8 `<!` does not see.
    case entityBombUTF16 = "entity-bomb-utf16"
    /// Answers `get-configuration` with elements nested 300,000 deep.
    case deepXML = "deep-xml"
    /// Answers `get-configuration` with `<configuration-text>` whose blocks nest 300,000 deep.
    case deepText = "deep-text"
    /// Answers `get-configuration` with a well-formed 300 MB reply, streamed.
    case hugeReply = "huge-reply"
    /// Answers `get-configuration` with a chunk (or, in base:1.0 framing, a message) that never
    /// ends, until the client leaves.
    case endlessChunk = "endless-chunk"
    /// Sends a hello that declares a DOCTYPE with an entity bomb.
    case doctypeHello = "doctype-hello"

    /// Faults that stream their reply themselves instead of answering with a document.
    var streamsConfiguration: Bool { self == .hugeReply || self == .endlessChunk }
}

/// Serves a ``DeviceProfile`` as a Junos NETCONF server over a pair of file descriptors
/// (stdin/stdout when OpenSSH's sshd runs it as `Subsystem netconf`). Blocking I/O is right here:
/// this runs as its own process, one session per process.
public struct NETCONFResponder {
    public var profile: DeviceProfile
    public var fault: DeviceFault?
    public var rpcLatency: Duration
    public var sessionSetupDelay: Duration
    /// The `<session-id>` of the hello; nil: the process id (one process per session).
    public var sessionID: String?
    /// Offer base:1.1 (chunked framing) besides base:1.0.
    public var offerBase11: Bool
    private var templates: [String: ReplyTemplate] = [:]

    public init(profile: DeviceProfile, fault: DeviceFault? = nil, rpcLatency: Duration = .zero,
                sessionSetupDelay: Duration = .zero, offerBase11: Bool = true) {
        self.profile = profile
        self.fault = fault
        self.rpcLatency = rpcLatency
        self.sessionSetupDelay = sessionSetupDelay
        self.offerBase11 = offerBase11
    }

    static let junosCapabilities = [
        "urn:ietf:params:netconf:capability:candidate:1.0",
        "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
        "urn:ietf:params:netconf:capability:validate:1.0",
        "urn:ietf:params:netconf:capability:url:1.0?scheme=http,ftp,file",
        "urn:ietf:params:xml:ns:netconf:base:1.0",
        "http://xml.juniper.net/netconf/junos/1.0",
        "http://xml.juniper.net/dmi/system/1.0",
    ]

    /// Runs one session until `<close-session/>`, end of input, or a fault ends it.
    public mutating func run(input: Int32 = 0, output: Int32 = 1) {
        var capabilities = [NETCONFNamespace.base10]
        if offerBase11 { capabilities.append(NETCONFNamespace.base11) }
        capabilities += NETCONFResponder.junosCapabilities
        var session = ServerSession(capabilities: capabilities, sessionID: sessionID ?? String(getpid()))
        if sessionSetupDelay > .zero { sleep(sessionSetupDelay) }
        if fault == .hangHello { waitForClientToLeave(input); return }
        let hello = fault == .doctypeHello ? HostileReplies.doctypeHello(session.helloBytes()) : session.helloBytes()
        guard write(output, hello) else { return }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = read(input, &buffer, buffer.count)
            if n <= 0 { return }
            let events: [ServerSessionEvent]
            do {
                events = try session.receive(buffer[0..<n])
            } catch {
                return
            }
            for event in events {
                switch event {
                case .hello:
                    continue
                case let .malformed(id, message):
                    let reply = errorReply(messageID: id, tag: "malformed-message", type: "rpc", message: message, badElement: nil)
                    guard write(output, session.frame(reply)) else { return }
                case let .rpc(id, operation):
                    if operation.name == "close-session" {
                        _ = write(output, session.frame(okReply(messageID: id)))
                        return
                    }
                    if rpcLatency > .zero || fault == .slow {
                        let delay = fault == .slow ? max(rpcLatency * 20, .seconds(1)) : rpcLatency
                        sleep(delay)
                    }
                    if let fault, fault.streamsConfiguration, operation.name == "get-configuration" {
                        streamHostileReply(fault, messageID: id, framing: session.framing, output: output)
                        waitForClientToLeave(input)
                        return
                    }
                    let reply = answer(operation, messageID: id)
                    switch fault {
                    case .hang where reply.isData:
                        _ = write(output, session.frame(reply.bytes).prefix(reply.bytes.count / 2 + 1).map { $0 })
                        waitForClientToLeave(input)
                        return
                    case .truncate where reply.isData:
                        _ = write(output, Array(session.frame(reply.bytes).prefix(reply.bytes.count / 2 + 1)))
                        return
                    default:
                        guard write(output, session.frame(reply.bytes)) else { return }
                    }
                }
            }
        }
    }

    struct Answer {
        var bytes: [UInt8]
        var isData: Bool
    }

    /// The reply to one operation, faults applied.
    mutating func answer(_ operation: XMLElement, messageID: String?) -> Answer {
        var rpc = operation.name
        switch rpc {
        case "command":
            let command = operation.value ?? ""
            guard let mapped = DeviceProfile.rpc(forCommand: command) else {
                return Answer(bytes: errorReply(messageID: messageID, tag: "operation-failed", type: "protocol",
                                                message: "syntax error, expecting <command>", badElement: command), isData: false)
            }
            rpc = mapped
        case "get-configuration":
            if let format = operation.attribute("format"), format != "xml", profile.replies["get-configuration.\(format)"] != nil {
                rpc = "get-configuration.\(format)"
            }
        case "get-config":
            rpc = "get-configuration"
        default:
            break
        }
        guard let template = template(for: rpc) else {
            return Answer(bytes: errorReply(messageID: messageID, tag: "operation-failed", type: "protocol",
                                            message: "syntax error", badElement: operation.name), isData: false)
        }
        switch fault {
        case .rpcError:
            return Answer(bytes: errorReply(messageID: messageID, tag: "operation-failed", type: "application",
                                            message: "could not connect to re0 : No route to host", badElement: nil), isData: false)
        case .malformed:
            return Answer(bytes: Array("<rpc-reply message-id=\"\(messageID ?? "")\"><software-information><host-name>broken</software-information>".utf8), isData: true)
        case .entityBomb:
            return Answer(bytes: HostileReplies.entityBomb(messageID: messageID, utf16: false), isData: true)
        case .entityBombUTF16:
            return Answer(bytes: HostileReplies.entityBomb(messageID: messageID, utf16: true), isData: true)
        case .deepXML where rpc.hasPrefix("get-configuration"):
            return Answer(bytes: HostileReplies.deepConfiguration(messageID: messageID, depth: 300_000), isData: true)
        case .deepText where rpc.hasPrefix("get-configuration"):
            return Answer(bytes: HostileReplies.deepConfigurationText(messageID: messageID, depth: 300_000), isData: true)
        case .warning:
            let warning = "<rpc-error><error-type>protocol</error-type><error-tag>operation-failed</error-tag>"
                + "<error-severity>warning</error-severity><error-message>statement has no contents; ignored</error-message></rpc-error>"
            var bytes = template.reply(messageID: messageID)
            if let close = bytes.lastIndex(of: 0x3C) { bytes.insert(contentsOf: Array(warning.utf8), at: close) }
            return Answer(bytes: bytes, isData: true)
        default:
            var bytes = template.reply(messageID: messageID)
            if operation.name == "get-config" {
                // ietf get-config wraps the configuration in <data>.
                let prefix = bytes.firstIndex(of: 0x3E).map { $0 + 1 } ?? 0
                bytes.insert(contentsOf: Array("<data>".utf8), at: prefix)
                if let close = bytes.lastIndex(of: 0x3C) { bytes.insert(contentsOf: Array("</data>".utf8), at: close) }
            }
            return Answer(bytes: bytes, isData: true)
        }
    }

    private mutating func template(for rpc: String) -> ReplyTemplate? {
        if let cached = templates[rpc] { return cached }
        guard let bytes = profile.replies[rpc] else { return nil }
        let template = ReplyTemplate(bytes: bytes)
        templates[rpc] = template
        return template
    }

    func okReply(messageID: String?) -> [UInt8] {
        Array("<rpc-reply xmlns=\"\(NETCONFNamespace.base)\"\(messageID.map { " message-id=\"\($0)\"" } ?? "")><ok/></rpc-reply>".utf8)
    }

    /// An `rpc-error` worded as Junos words it.
    func errorReply(messageID: String?, tag: String, type: String, message: String, badElement: String?) -> [UInt8] {
        var xml = "<rpc-reply xmlns=\"\(NETCONFNamespace.base)\" xmlns:junos=\"http://xml.juniper.net/junos/*/junos\""
        if let messageID { xml += " message-id=\"\(XMLEscaping.attribute(messageID))\"" }
        xml += ">\n<rpc-error>\n<error-type>\(type)</error-type>\n<error-tag>\(tag)</error-tag>\n"
        xml += "<error-severity>error</error-severity>\n<error-message>\(XMLEscaping.text(message))</error-message>\n"
        if let badElement {
            xml += "<error-info>\n<bad-element>\(XMLEscaping.text(badElement))</bad-element>\n</error-info>\n"
        }
        xml += "</rpc-error>\n</rpc-reply>"
        return Array(xml.utf8)
    }

    /// Streams a hostile `get-configuration` reply in the session's framing without holding it
    /// in memory: 300 MB of well-formed XML, or one chunk that never ends. Stops when the client
    /// leaves (a write fails), and in any case after 4 GiB.
    private func streamHostileReply(_ fault: DeviceFault, messageID: String?, framing: FramingMode, output: Int32) {
        let unit = Array(String(repeating: "<interface><name>ge-0/0/0</name><description>hostile</description></interface>\n", count: 800).utf8)
        let head = Array("<rpc-reply xmlns=\"\(NETCONFNamespace.base)\" message-id=\"\(messageID ?? "")\"><configuration><interfaces>\n".utf8)
        let tail = Array("</interfaces></configuration></rpc-reply>".utf8)
        let endless = fault == .endlessChunk
        let total = endless ? 4 << 30 : 300 << 20
        func send(_ bytes: [UInt8]) -> Bool {
            guard framing == .chunked else { return write(output, bytes) }
            return write(output, Array("\n#\(bytes.count)\n".utf8) + bytes)
        }
        if endless && framing == .chunked {
            // One chunk header announcing the largest size RFC 6242 allows, then data that never ends.
            guard write(output, Array("\n#4294967295\n".utf8) + head) else { return }
            var sent = head.count
            while sent < total, write(output, unit) { sent += unit.count }
            return
        }
        guard send(head) else { return }
        var sent = head.count
        while sent < total {
            guard send(unit) else { return }
            sent += unit.count
        }
        if endless { return }
        guard send(tail) else { return }
        _ = write(output, framing == .chunked ? Array("\n##\n".utf8) : Array("]]>]]>".utf8))
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    /// Stays silent but exits once the client has gone (sshd closes our stdin), so that a hung
    /// device leaves no process behind.
    private func waitForClientToLeave(_ input: Int32) {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while read(input, &scratch, scratch.count) > 0 {}
    }

    private func sleep(_ duration: Duration) {
        let ns = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        var request = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

extension NETCONFResponder {
    /// The responder for one session of a simulated fleet: the device is the one listening on
    /// the server address of `sshConnection` (sshd's `SSH_CONNECTION`: client-ip client-port
    /// server-ip server-port), served with its own host name, serial number and fault.
    public static func forFleetSession(stateDirectory: URL, sshConnection: String?) throws(SimulatorError) -> NETCONFResponder {
        let plan = try FleetPlan.read(from: stateDirectory.appendingPathComponent(SimulatedFleet.fleetMapName))
        guard let sshConnection else {
            throw .fleet("SSH_CONNECTION is not set: run this as sshd's netconf subsystem (care-agent simulate fleet does)")
        }
        guard let device = plan.device(sshConnection: sshConnection) else {
            throw .fleet("no device of \(stateDirectory.path)/\(SimulatedFleet.fleetMapName) listens on the server address in SSH_CONNECTION=\"\(sshConnection)\"")
        }
        return try forDevice(device, plan: plan)
    }

    /// The responder for one session of `device`: its profile read now (so a profile changed
    /// on disk applies to the next session), personalized, with its fault and the plan's delays.
    public static func forDevice(_ device: FleetDevice, plan: FleetPlan) throws(SimulatorError) -> NETCONFResponder {
        var profile = try DeviceProfile(directory: URL(fileURLWithPath: device.profileDirectory))
        if device.capturedIdentity != true {
            profile = profile.personalized(for: SimulatedIdentity(hostName: device.name, serialNumber: device.serialNumber))
        }
        var fault: DeviceFault?
        if case let .device(deviceFault) = device.fleetFault { fault = deviceFault }
        return NETCONFResponder(profile: profile, fault: fault, rpcLatency: .milliseconds(plan.rpcLatencyMs),
                                sessionSetupDelay: .milliseconds(plan.setupDelayMs))
    }
}

/// The documents hostile faults answer with: small to send, ruinous to a parser without limits.
enum HostileReplies {
    /// Nine levels of ten references: 10^9 "lol"s, 3 GB, from about 1 KB.
    static func entityBomb(messageID: String?, utf16: Bool) -> [UInt8] {
        var entities = "<!ENTITY lol0 \"lol\">\n"
        for level in 1...9 {
            entities += "<!ENTITY lol\(level) \"" + String(repeating: "&lol\(level - 1);", count: 10) + "\">\n"
        }
        let text = "<?xml version=\"1.0\" encoding=\"\(utf16 ? "UTF-16" : "UTF-8")\"?>\n<!DOCTYPE rpc-reply [\n\(entities)]>\n"
            + "<rpc-reply message-id=\"\(messageID ?? "")\"><software-information><host-name>&lol9;</host-name></software-information></rpc-reply>"
        guard utf16 else { return Array(text.utf8) }
        var bytes: [UInt8] = [0xFF, 0xFE]
        for unit in text.utf16 { bytes += [UInt8(unit & 0xFF), UInt8(unit >> 8)] }
        return bytes
    }

    static func deepConfiguration(messageID: String?, depth: Int) -> [UInt8] {
        nested(messageID: messageID, element: "configuration", open: "<system>", close: "</system>", depth: depth)
    }

    static func deepConfigurationText(messageID: String?, depth: Int) -> [UInt8] {
        nested(messageID: messageID, element: "configuration-text", open: "system {\n", close: "}\n", depth: depth)
    }

    /// `<rpc-reply><element>` holding `open` `depth` times, then `close` as often.
    private static func nested(messageID: String?, element: String, open: String, close: String, depth: Int) -> [UInt8] {
        var bytes = Array("<rpc-reply message-id=\"\(messageID ?? "")\"><\(element)>".utf8)
        bytes.reserveCapacity(bytes.count + depth * (open.utf8.count + close.utf8.count) + 64)
        for _ in 0..<depth { bytes += Array(open.utf8) }
        for _ in 0..<depth { bytes += Array(close.utf8) }
        bytes += Array("</\(element)></rpc-reply>".utf8)
        return bytes
    }

    /// The server's hello behind a DOCTYPE whose entities expand to gigabytes.
    static func doctypeHello(_ hello: [UInt8]) -> [UInt8] {
        var entities = "<!ENTITY a0 \"aaaaaaaaaa\">"
        for level in 1...9 { entities += "<!ENTITY a\(level) \"" + String(repeating: "&a\(level - 1);", count: 10) + "\">" }
        var text = String(decoding: hello, as: UTF8.self)
        if text.hasPrefix("<?xml"), let end = text.range(of: "?>") { text = String(text[end.upperBound...]) }
        return Array("<?xml version=\"1.0\"?><!DOCTYPE hello [\(entities)]>".utf8) + Array(text.utf8)
    }
}
