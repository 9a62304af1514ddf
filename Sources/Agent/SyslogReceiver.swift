import Bundle
import Foundation
import Junos
import IOLoop
import Logging
import ServiceLifecycle

/// What became of one received syslog message (the `result` label of
/// `care_agent_syslog_messages_total`).
public enum SyslogResult: String, CaseIterable, Sendable {
    /// Matched a rule and came from an inventory device: handed to the incident responder.
    case event
    /// No rule matched: most of a device's syslog.
    case ignored
    /// From an address (and hostname) no inventory device has.
    case unknownSender = "unknown-sender"
    /// Not a syslog message.
    case malformed
    /// Over ``SyslogMessage/maximumLength``.
    case oversize
    /// Dropped because too many incident responses were already waiting (a flood).
    case overload
    /// A TCP connection closed at once: `max-connections` reached, or its address's share of it.
    case connectionRefused = "connection-refused"
}

/// Why the syslog receiver cannot start; says what to change.
public struct SyslogReceiverError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// The syslog trigger (`[syslog]` in agent.conf): receives syslog over UDP and TCP (RFC 6587
/// octet counting or newline framing), in RFC 5424 or BSD format, matches the configured event
/// tags and text patterns, maps the sender to an inventory device and hands the incident to the
/// ``IncidentResponder`` it shares with the health poll. Runs on an ``IOLoop`` (epoll): no thread
/// per socket or connection; connections are bounded (`max-connections`) and so is every message.
/// Port 514 comes from systemd (`listen = systemd`, care-agent-syslog.socket), so that the agent
/// needs no privilege; a plain port in agent.conf otherwise. The listeners are opened at start
/// (a reload changes rules and sources, not where it listens); the rules and the inventory are
/// read afresh for every message.
public final class SyslogReceiver: Service, @unchecked Sendable {
    let runtime: AgentRuntime
    let logger: Logger
    let responder: IncidentResponder
    let loop: IOLoop
    let environment: [String: String]
    /// Incident responses started and not yet finished; beyond ``maximumResponses`` messages are
    /// dropped and counted (`overload`): a flood cannot queue unbounded work.
    static let maximumResponses = 256

    private let lock = NSLock()
    private var responses = 0
    private var connections = 0
    /// Open TCP connections per sender address, and those from addresses no device has.
    private var connectionsByAddress: [String: Int] = [:]
    private var strangerConnections = 0
    private var unknownSinceNote = 0
    private var lastUnknownNote: Date?
    private var lastRefusalNote: Date?
    private var uncounted: [SyslogResult: Int] = [:]
    private var addressIndex: (generation: Int, byAddress: [String: [Device]])?
    private var opened: [String] = []
    /// The local addresses listened on, once ``run()`` opened them.
    public var listening: [String] { lock.withLock { opened } }

    public init(runtime: AgentRuntime, logger: Logger, responder: IncidentResponder, loop: IOLoop = .shared,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.runtime = runtime
        self.logger = logger
        self.responder = responder
        self.loop = loop
        self.environment = environment
    }

    /// A socket to read: a datagram socket or a listening stream socket.
    struct Listener {
        var fd: Int32
        var isStream: Bool
        var name: String
    }

    public func run() async throws {
        guard let settings = await runtime.configuration.syslog else {
            // No [syslog]: nothing to do until shutdown (a reload does not start the receiver).
            try? await gracefulShutdown()
            return
        }
        let listeners = try open(settings)
        lock.withLock { opened = listeners.map(\.name) }
        await runtime.setSyslogListening(listeners.map(\.name))
        logger.notice("syslog receiver listening", metadata: ["listen": "\(listeners.map(\.name).joined(separator: ", "))"])
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for listener in listeners {
                    group.addTask {
                        if listener.isStream { await self.accept(on: listener, settings: settings) } else { await self.receive(on: listener) }
                    }
                }
                group.addTask { await self.flushMetrics() }
            }
        }
        for listener in listeners {
            let fd = listener.fd
            _ = try? await loop.submit { [loop] in
                loop.deregister(fd: fd)
                Glibc.close(fd)
            }
        }
    }

    /// Binds the configured endpoints and takes the sockets systemd passed.
    func open(_ settings: SyslogSettings) throws -> [Listener] {
        var listeners: [Listener] = []
        do {
            for endpoint in settings.listen {
                switch endpoint {
                case let .udp(host, port): listeners.append(try bind(host: host, port: port, stream: false))
                case let .tcp(host, port): listeners.append(try bind(host: host, port: port, stream: true))
                case .systemd:
                    let passed = SystemdListenSockets(environment: environment).syslog
                    guard !passed.isEmpty else {
                        throw SyslogReceiverError("[syslog] listen = systemd, but systemd passed no socket (LISTEN_FDS): systemctl enable care-agent-syslog.socket && systemctl restart care-agent")
                    }
                    for socket in passed {
                        let flags = fcntl(socket.fd, F_GETFL)
                        _ = fcntl(socket.fd, F_SETFL, flags | O_NONBLOCK)
                        listeners.append(Listener(fd: socket.fd, isStream: socket.type == Int32(SOCK_STREAM.rawValue),
                                                  name: "\(socket.type == Int32(SOCK_STREAM.rawValue) ? "tcp" : "udp"):fd\(socket.fd) (systemd \(socket.name))"))
                    }
                }
            }
        } catch {
            for listener in listeners { close(listener.fd) }
            throw error
        }
        return listeners
    }

    private func bind(host: String, port: Int, stream: Bool) throws -> Listener {
        let name = "\(stream ? "tcp" : "udp"):\(host.contains(":") ? "[\(host)]" : host):\(port)"
        guard let address = SocketAddress(host: host, port: port) else { throw SyslogReceiverError("[syslog] listen \(name): not a numeric address") }
        let type = (stream ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let fd = socket(address.family, type, 0)
        guard fd >= 0 else { throw SyslogReceiverError("[syslog] listen \(name): socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if !stream {
            // As care-agent-syslog.socket's ReceiveBuffer=4M: a burst of datagrams (a chassis
            // failing loudly) waits in the kernel while the loop reads (capped by net.core.rmem_max).
            var size: Int32 = 4 << 20
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.withSockaddr { Glibc.bind(fd, $0, $1) }
        guard bound == 0 else {
            let code = errno
            close(fd)
            let hint = code == EACCES ? " (ports below 1024 need privilege: use listen = systemd with care-agent-syslog.socket)" : ""
            throw SyslogReceiverError("[syslog] listen \(name): cannot bind: \(String(cString: strerror(code)))\(hint)")
        }
        if stream, listen(fd, 128) != 0 {
            let code = errno
            close(fd)
            throw SyslogReceiverError("[syslog] listen \(name): listen: \(String(cString: strerror(code)))")
        }
        return Listener(fd: fd, isStream: stream, name: name)
    }

    // MARK: - UDP

    /// One received datagram: its bytes (nil when over the limit) and sender.
    struct Datagram: Sendable {
        var bytes: [UInt8]?
        var length: Int
        var sender: SocketAddress?
    }

    private func receive(on listener: Listener) async {
        let fd = listener.fd
        while !Task.isCancelled {
            let datagrams: [Datagram]
            do {
                datagrams = try await loop.drive(fd: fd) { () throws -> IOStep<[Datagram]> in
                    var batch: [Datagram] = []
                    var buffer = [UInt8](repeating: 0, count: SyslogMessage.maximumLength + 1)
                    // A few per wake-up, so that one busy socket does not starve the loop.
                    while batch.count < 32 {
                        var storage = sockaddr_storage()
                        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                        let n = buffer.withUnsafeMutableBytes { raw in
                            withUnsafeMutablePointer(to: &storage) {
                                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                    recvfrom(fd, raw.baseAddress, raw.count, Int32(MSG_TRUNC), $0, &length)
                                }
                            }
                        }
                        if n < 0 {
                            if errno == EINTR { continue }
                            if errno == EAGAIN || errno == EWOULDBLOCK { break }
                            throw IOLoopError.system(call: "recvfrom", errno: errno)
                        }
                        // MSG_TRUNC: n is the datagram's real length, however much was read.
                        let fits = n <= SyslogMessage.maximumLength
                        batch.append(Datagram(bytes: fits ? Array(buffer[0 ..< n]) : nil, length: n, sender: SocketAddress(storage: storage)))
                    }
                    return batch.isEmpty ? .wait(.read) : .done(batch)
                }
            } catch {
                if case IOLoopError.cancelled = error { return }
                logger.error("syslog receive failed", metadata: ["listen": "\(listener.name)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            for datagram in datagrams {
                guard let sender = datagram.sender else { continue }
                guard let bytes = datagram.bytes else {
                    count(.oversize)
                    continue
                }
                await handle(bytes, from: sender)
            }
        }
    }

    // MARK: - TCP

    private func accept(on listener: Listener, settings: SyslogSettings) async {
        let fd = listener.fd
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let accepted: (Int32, SocketAddress?)
                do {
                    accepted = try await loop.drive(fd: fd) { () throws -> IOStep<(Int32, SocketAddress?)> in
                        var storage = sockaddr_storage()
                        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                        let client = withUnsafeMutablePointer(to: &storage) {
                            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                                Glibc.accept(fd, $0, &length)
                            }
                        }
                        if client >= 0 {
                            // accept4 is not in Swift's Glibc module: the flags are set here, before any other use.
                            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                            return .done((client, SocketAddress(storage: storage)))
                        }
                        if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED { return .wait(.read) }
                        throw IOLoopError.system(call: "accept", errno: errno)
                    }
                } catch {
                    if case IOLoopError.cancelled = error { return }
                    // EMFILE and the like: wait, the connections that end free descriptors.
                    logger.error("syslog accept failed", metadata: ["listen": "\(listener.name)", "error": "\(error)"])
                    try? await Task.sleep(for: .seconds(1))
                    continue
                }
                let (client, peer) = accepted
                guard let peer else { close(client); continue }
                // Anyone who can reach the port could hold every connection (silent, for the
                // idle timeout) and lock the devices out: one address holds at most an eighth of
                // them, and addresses no device has at most half.
                let (configuration, generation) = await runtime.configurationWithDevicesGeneration
                let stranger = device(for: peer.host, hostname: nil, configuration: configuration, devicesGeneration: generation,
                                      settings: settings) == nil && !Self.isDeviceAddress(peer.host, addressIndex: lock.withLock { addressIndex?.byAddress })
                let perAddress = max(1, settings.maxConnections / 8), strangers = max(1, settings.maxConnections / 2)
                let refusal: String? = lock.withLock {
                    if connections >= settings.maxConnections { return "max-connections reached" }
                    if connectionsByAddress[peer.host, default: 0] >= perAddress { return "this address holds its share (\(perAddress)) of max-connections" }
                    if stranger, strangerConnections >= strangers {
                        return "addresses no inventory device has hold their share (\(strangers)) of max-connections"
                    }
                    connections += 1
                    connectionsByAddress[peer.host, default: 0] += 1
                    if stranger { strangerConnections += 1 }
                    return nil
                }
                if let refusal {
                    close(client)
                    count(.connectionRefused)
                    noteRefusedConnection(from: peer, limit: settings.maxConnections, why: refusal)
                    continue
                }
                group.addTask {
                    await self.serve(client, from: peer, idleTimeout: settings.idleTimeout)
                    self.lock.withLock {
                        self.connections -= 1
                        self.connectionsByAddress[peer.host, default: 1] -= 1
                        if self.connectionsByAddress[peer.host] == 0 { self.connectionsByAddress[peer.host] = nil }
                        if stranger { self.strangerConnections -= 1 }
                    }
                }
            }
        }
    }

    private func serve(_ fd: Int32, from peer: SocketAddress, idleTimeout: Duration) async {
        let stream = FileDescriptorStream(fd: fd, loop: loop)
        var framing = SyslogFraming()
        reading: while !Task.isCancelled {
            let bytes: [UInt8]?
            do {
                bytes = try await stream.read(maximum: 64 * 1024, deadline: ContinuousClock.now + idleTimeout)
            } catch {
                if case IOLoopError.timedOut = error {
                    logger.debug("syslog connection idle, closed", metadata: ["peer": "\(peer)"])
                }
                break
            }
            guard let bytes else { break }
            for frame in framing.feed(bytes) {
                switch frame {
                case let .message(message): await handle(message, from: peer)
                case .oversize: count(.oversize)
                case let .broken(why):
                    count(.malformed)
                    logger.info("syslog connection closed: not syslog framing", metadata: ["peer": "\(peer)", "error": "\(why)"])
                    break reading
                }
            }
        }
        await stream.close()
    }

    // MARK: - Messages

    /// Parses, matches and maps one message, and starts the response to its incident.
    func handle(_ bytes: [UInt8], from sender: SocketAddress) async {
        let message: SyslogMessage
        do {
            message = try SyslogMessage(parsing: bytes)
        } catch {
            count(.malformed)
            return
        }
        let (configuration, devicesGeneration) = await runtime.configurationWithDevicesGeneration
        guard let settings = configuration.syslog else { return }
        guard let kind = settings.kind(of: message) else {
            count(.ignored)
            return
        }
        guard let device = device(for: sender.host, hostname: message.hostname, configuration: configuration,
                                  devicesGeneration: devicesGeneration, settings: settings) else {
            count(.unknownSender)
            noteUnknownSender(sender, hostname: message.hostname)
            return
        }
        let started: Bool = lock.withLock {
            guard responses < Self.maximumResponses else { return false }
            responses += 1
            return true
        }
        guard started else {
            count(.overload)
            return
        }
        count(.event)
        let event = TriggerEvent(kind: kind, source: "syslog", time: Date(),
                                 evidence: Self.evidence(of: message, from: sender, redactor: await runtime.redactor))
        // Not awaited: a collection takes seconds to minutes and the socket must be read on.
        Task {
            await self.responder.respond(to: [event], device: device)
            self.lock.withLock { self.responses -= 1 }
        }
    }

    /// What the manifest, the event log and the webhook show: the tag, the text, the Junos
    /// structured data and the sender. Bounded (the text is cut at 1000 characters); redacted with
    /// `redactor`, the agent's rules in force.
    static func evidence(of message: SyslogMessage, from sender: SocketAddress, redactor: ConfigurationRedactor) -> String {
        var text = "syslog"
        if let tag = message.eventTag { text += " \(tag)" } else if let app = message.appName { text += " \(app)" }
        // Junos writes the tag again at the start of the text (`CHASSISD_FRU_OFFLINE_NOTICE: Taking
        // FPC 1 offline`): once is enough.
        var body = Substring(message.text)
        if let tag = message.eventTag, body.hasPrefix(tag + ":") { body = body.dropFirst(tag.count + 1).drop { $0 == " " } }
        text += ": " + String(body.prefix(1000))
        for id in message.structuredData.keys.sorted() where id.hasPrefix("junos@") {
            let parameters = message.structuredData[id]!
            if !parameters.isEmpty {
                text += " [" + parameters.keys.sorted().map { "\($0)=\(parameters[$0]!.prefix(200))" }.joined(separator: " ") + "]"
            }
        }
        text += " (from \(sender.host)" + (message.hostname.map { ", hostname \($0.prefix(64))" } ?? "") + ")"
        // It leaves the machine (manifest, webhook, journal): a command line logged with a
        // password in it (`file copy ftp://user:pw@...`, `set snmp community NAME`) is redacted.
        return redactor.redact(message: text)
    }

    /// The inventory device that sent from `address`: `source = ADDRESS DEVICE` first, then the
    /// device whose host is that address; several devices on one address (behind NAT, one per
    /// port) are told apart by the message's hostname, and with `match-hostname = yes` a sender
    /// no device's address matches is looked up by its hostname.
    /// The address index is built once per `devicesGeneration` (the devices change with a reload
    /// and with every inventory refresh: keyed by reloads alone, devices a refresh added were
    /// unknown senders until the next SIGHUP, and removed ones still triggered collections).
    func device(for address: String, hostname: String?, configuration: AgentConfiguration, devicesGeneration generation: Int,
                settings: SyslogSettings) -> Device? {
        if let name = settings.sources[address] { return configuration.devices.first { $0.name == name } }
        let index: [String: [Device]] = lock.withLock {
            if let cached = addressIndex, cached.generation == generation { return cached.byAddress }
            var byAddress: [String: [Device]] = [:]
            for device in configuration.devices {
                let key = SocketAddress(host: device.host, port: 0)?.host ?? device.host.lowercased()
                byAddress[key, default: []].append(device)
            }
            addressIndex = (generation, byAddress)
            return byAddress
        }
        let byAddress = index[address] ?? []
        if byAddress.count == 1 { return byAddress[0] }
        guard let hostname = hostname?.lowercased(), !hostname.isEmpty, byAddress.count > 1 || settings.matchHostname else { return nil }
        let short = hostname.split(separator: ".").first.map(String.init) ?? hostname
        let candidates = byAddress.isEmpty ? configuration.devices : byAddress
        return candidates.first { [hostname, short].contains($0.name.lowercased()) || $0.host.lowercased() == hostname }
    }

    /// Whether some device's host is `address` (several devices on it: `device(for:)` needs a
    /// hostname to pick one, but the sender is a device all the same).
    static func isDeviceAddress(_ address: String, addressIndex: [String: [Device]]?) -> Bool {
        !(addressIndex?[address]?.isEmpty ?? true)
    }

    // MARK: - Counting and bounded notes

    /// Counted here and handed to the runtime's metrics by ``flushMetrics()``: no task per message.
    private func count(_ result: SyslogResult) {
        lock.withLock { uncounted[result, default: 0] += 1 }
    }

    /// Unknown senders: every message counted, at most one log line a minute.
    private func noteUnknownSender(_ sender: SocketAddress, hostname: String?) {
        let now = Date()
        let suppressed: Int? = lock.withLock {
            unknownSinceNote += 1
            if let last = lastUnknownNote, now.timeIntervalSince(last) < 60 { return nil }
            lastUnknownNote = now
            defer { unknownSinceNote = 0 }
            return unknownSinceNote - 1
        }
        guard let suppressed else { return }
        logger.warning("syslog event from a sender no inventory device matches: add the device, or map it with source = ADDRESS DEVICE in [syslog]", metadata: [
            "sender": "\(sender.host)", "hostname": "\(hostname.map { String($0.prefix(64)) } ?? "-")",
            "unknown.since.last.note": "\(suppressed)",
        ])
    }

    private func noteRefusedConnection(from peer: SocketAddress, limit: Int, why: String) {
        let now = Date()
        let log: Bool = lock.withLock {
            if let last = lastRefusalNote, now.timeIntervalSince(last) < 60 { return false }
            lastRefusalNote = now
            return true
        }
        if log {
            logger.warning("syslog connection refused: \(why)", metadata: ["peer": "\(peer)", "max-connections": "\(limit)"])
        }
    }

    /// Moves the counts into the metrics and writes the metrics file every two seconds while
    /// messages arrive (not per message).
    private func flushMetrics() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            let counts = lock.withLock { () -> [SyslogResult: Int] in
                defer { uncounted = [:] }
                return uncounted
            }
            guard !counts.isEmpty else { continue }
            for (result, n) in counts { await runtime.recordSyslog(result, count: n) }
            await runtime.writeMetrics()
        }
    }
}
