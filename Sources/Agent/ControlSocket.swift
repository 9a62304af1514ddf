import Foundation
import Logging
import ServiceLifecycle

/// A request on the control socket: one JSON object on one line.
public struct ControlRequest: Codable, Sendable {
    /// `status`, `collect` or `reload`.
    public var command: String
    public var groups: [String]
    public var devices: [String]
    /// `collect`: stream a ``CollectionProgress`` line per device event before the answer. An
    /// agent that predates it ignores the key and sends the answer alone.
    public var progress: Bool?

    public init(command: String, groups: [String] = [], devices: [String] = [], progress: Bool = false) {
        self.command = command
        self.groups = groups
        self.devices = devices
        self.progress = progress ? true : nil
    }
}

/// One event of a collection asked for with `progress`, sent as `{"ok":true,"progress":{...}}`
/// lines before the answer (the first line without `progress`).
public struct CollectionProgress: Codable, Sendable {
    public enum Event: String, Codable, Sendable { case selected, started, finished }
    public var event: Event
    /// `selected`: how many devices the collection has.
    public var devices: Int?
    /// `started`: the device that got its slot.
    public var device: String?
    /// `finished`: the device's result.
    public var result: DeviceSummary?

    public static func selected(_ count: Int) -> CollectionProgress { CollectionProgress(event: .selected, devices: count) }

    public init(event: Event, devices: Int? = nil, device: String? = nil, result: DeviceSummary? = nil) {
        self.event = event
        self.devices = devices
        self.device = device
        self.result = result
    }

    public init(_ event: CollectionEvent) {
        switch event {
        case let .started(device): self.init(event: .started, device: device.name)
        case let .finished(result, _): self.init(event: .finished, device: result.device.name, result: DeviceSummary(result))
        }
    }
}

/// The answer: one JSON object on one line (after the progress lines of a streamed collection).
public struct ControlResponse: Codable, Sendable {
    public var ok: Bool
    public var error: String?
    public var status: AgentStatus?
    public var results: [DeviceSummary]?
    public var progress: CollectionProgress?

    public init(ok: Bool, error: String? = nil, status: AgentStatus? = nil, results: [DeviceSummary]? = nil,
                progress: CollectionProgress? = nil) {
        self.ok = ok
        self.error = error
        self.status = status
        self.results = results
        self.progress = progress
    }
}

/// What `care-agent status` shows.
public struct AgentStatus: Codable, Sendable {
    public struct Group: Codable, Sendable {
        public var name: String
        public var schedule: String
        public var devices: Int
        /// The last scheduled run.
        public var lastRun: Date?
        /// The last `collect now` through the service that included this group's devices.
        public var lastRequestedRun: Date?
        /// nil: not scheduled (manual), or the scheduler has not planned it yet.
        public var nextRun: Date?
    }
    public var configuration: String?
    public var reloadError: String?
    public var devices: Int
    /// Devices being collected now (holding their concurrency slots).
    public var inFlight: [String]
    /// Devices waiting for a slot in a collection in progress.
    public var queued: [String] { queuedDevices ?? [] }
    /// Optional on the wire: an agent started before queued devices were reported leaves it out,
    /// and a newer `status` must still read its answer.
    private var queuedDevices: [String]?
    public var lastCollection: Date?
    public var groups: [Group]
    public var results: [DeviceSummary]
    /// Bundles in the outbox waiting to be sent.
    public var outboxBundles: Int
    /// Where bundles go and how the last attempts went (nil from an agent without an uploader).
    public var upload: UploadStatus?
    /// Each `[inventory NAME]` source: its devices, last refresh, and why the last one failed
    /// (nil from an agent that predates inventory sources).
    public var inventory: [InventorySourceStatus]?

    /// The `[events] webhook` and its queue (nil: none configured).
    public var webhook: WebhookStatus?
    /// Where the syslog receiver listens (nil or empty: no `[syslog]`).
    public var syslog: [String]?
    /// Devices of the fleet with no result yet: added since, or never reached a collection (nil
    /// from an agent that predates it).
    public var notCollected: [String]?
    /// Devices whose results file the agent cannot read (another user's file: a run as root).
    public var unreadableResults: [String]?

    enum CodingKeys: String, CodingKey {
        case configuration, reloadError, devices, inFlight, queuedDevices = "queued", lastCollection, groups, results
        case outboxBundles, upload, inventory, webhook, syslog, notCollected, unreadableResults
    }

    public init(runtime: AgentRuntime) async {
        let configuration = await runtime.configuration
        self.configuration = runtime.configurationPath
        reloadError = await runtime.lastReloadError
        devices = configuration.devices.count
        inFlight = await runtime.devicesCollecting.sorted()
        queuedDevices = await runtime.devicesQueued.sorted()
        lastCollection = await runtime.lastCollection
        let lastRun = await runtime.lastRun
        let lastRequestedRun = await runtime.lastRequestedRun
        let nextRuns = await runtime.nextRuns
        let outbox = await runtime.outbox
        outboxBundles = outbox.depth
        var upload = await runtime.uploadState
        upload.url = configuration.upload.url
        upload.pending = outboxBundles
        upload.oldestPending = outbox.pending().lazy.map(\.added).min()
        upload.rejected = outbox.rejectedCount()
        self.upload = upload
        if let url = configuration.events.webhook {
            webhook = WebhookStatus(url: WebhookQueue.displayURL(url), pending: WebhookQueue(stateDirectory: configuration.agent.stateDirectory).pending().count,
                                    lastSuccess: await runtime.webhookLastSuccess, lastError: await runtime.webhookLastError)
        }
        let listening = await runtime.syslogListening
        syslog = listening.isEmpty ? nil : listening
        groups = configuration.groups.values.sorted { $0.name < $1.name }.map { g in
            Group(name: g.name, schedule: g.schedule.description, devices: configuration.devices.filter { $0.group == g.name }.count,
                  lastRun: lastRun[g.name], lastRequestedRun: lastRequestedRun[g.name], nextRun: nextRuns[g.name])
        }
        // The devices of the fleet now: a device that left the inventory keeps its last result on
        // disk (for `inventory` and reports), but is no longer the agent's to show or to read.
        let store = ResultStore(stateDirectory: configuration.agent.stateDirectory)
        var results: [DeviceSummary] = [], notCollected: [String] = [], unreadable: [String] = []
        for name in configuration.devices.map(\.name).sorted() {
            if let result = store.load(name) {
                results.append(DeviceSummary(result))
            } else if access(store.path(name), F_OK) == 0 {
                unreadable.append(name)
            } else {
                notCollected.append(name)
            }
        }
        self.results = results
        self.notCollected = notCollected
        unreadableResults = unreadable
        let sources = await runtime.inventoryStatus
        inventory = configuration.inventorySources.compactMap { sources[$0.name] }
    }
}

/// Serves ``ControlRequest``s on a Unix stream socket (mode 0660: the care-agent group may ask).
/// Non-blocking accept and reads, polled, so that no cooperative thread ever blocks on a client.
///
/// Every member of that group is trusted to ask, not to behave: clients are capped (``Limits``),
/// a request is one line of bounded size read within a deadline, and a client that does not read
/// its answer is dropped after a deadline. At the cap, a new client takes the place of the
/// oldest one that is not waiting for a command to finish (still sending its request, or not
/// reading its answer), so idle or stalled connections can neither exhaust the agent's file
/// descriptors nor lock `status` out.
public struct ControlServer: Service {
    /// Bounds on what clients may hold.
    public struct Limits: Sendable {
        /// Clients connected at once.
        public var maximumClients: Int
        /// Bytes of one request line.
        public var maximumRequestBytes: Int
        /// Time from connecting to a complete request line.
        public var requestTimeout: Duration
        /// Time to take the whole answer.
        public var replyTimeout: Duration

        public init(maximumClients: Int = 64, maximumRequestBytes: Int = 64 << 10,
                    requestTimeout: Duration = .seconds(10), replyTimeout: Duration = .seconds(30)) {
            self.maximumClients = maximumClients
            self.maximumRequestBytes = maximumRequestBytes
            self.requestTimeout = requestTimeout
            self.replyTimeout = replyTimeout
        }
    }

    public let path: String
    let runtime: AgentRuntime
    let logger: Logger
    let listener: Int32
    let limits: Limits
    let clients: ControlClients

    /// Binds and listens now, so that the socket exists before READY=1 is sent.
    public init(path: String, runtime: AgentRuntime, logger: Logger, limits: Limits = Limits()) throws {
        self.path = path
        self.runtime = runtime
        self.logger = logger
        self.limits = limits
        clients = ControlClients(maximum: limits.maximumClients)
        // A socket someone answers on belongs to a running agent: do not take it over.
        if (try? ControlClient.isAnswering(socket: path)) == true {
            throw ControlError("another care-agent is already serving \(path)")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlError("cannot create the control socket: \(String(cString: strerror(errno)))") }
        var address = try ControlServer.address(path)
        let previous = umask(0o117)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(previous)
        guard bound == 0, chmod(path, 0o660) == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw ControlError("cannot listen on \(path): \(message)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        listener = fd
    }

    static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw ControlError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return address
    }

    public func run() async throws {
        defer { close(listener); unlink(path) }
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    // EMFILE/ENFILE too: wait for clients to finish rather than spin.
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                guard let id = clients.admit(client) else {
                    logger.warning("control client refused: every slot is running a command", metadata: ["limit": "\(limits.maximumClients)"])
                    let busy = Array("{\"ok\":false,\"error\":\"the agent is serving \(limits.maximumClients) control clients already; try again\"}\n".utf8)
                    _ = Foundation.send(client, busy, busy.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                    close(client)
                    continue
                }
                group.addTask { await self.serve(client, id: id) }
            }
            group.cancelAll()
        }
    }

    func serve(_ fd: Int32, id: Int) async {
        defer {
            clients.remove(id)
            close(fd)
        }
        var buffer: [UInt8] = []
        let deadline = ContinuousClock.now + limits.requestTimeout
        var chunk = [UInt8](repeating: 0, count: 4096)
        var tooLarge = false
        while !buffer.contains(0x0A) {
            guard buffer.count <= limits.maximumRequestBytes else { tooLarge = true; break }
            guard ContinuousClock.now < deadline else {
                logger.debug("control client sent no complete request in time: dropped")
                return
            }
            let n = read(fd, &chunk, chunk.count)
            if n > 0 { buffer += chunk[0..<n]; continue }
            if n == 0 { break }
            if errno == EAGAIN || errno == EINTR { try? await Task.sleep(for: .milliseconds(20)); continue }
            return
        }
        // A client that connected and left without asking (a liveness probe) gets no answer.
        if buffer.isEmpty { return }
        let response: ControlResponse
        if tooLarge {
            response = ControlResponse(ok: false, error: "request refused: longer than \(limits.maximumRequestBytes) bytes without a newline")
        } else {
            do {
                let request = try JSONDecoder().decode(ControlRequest.self, from: Data(buffer.prefix { $0 != 0x0A }))
                // Running a command (a collection may take minutes): this client keeps its slot.
                clients.setEvictable(id, false)
                defer { clients.setEvictable(id, true) }
                if request.command == "collect", request.progress == true {
                    // Events come from the collection's tasks; one writer sends them in order, and a
                    // client that reads slowly or left delays no device (the stream buffers).
                    let (events, continuation) = AsyncStream.makeStream(of: CollectionProgress.self)
                    let writer = Task {
                        var connected = true
                        for await event in events where connected {
                            connected = await send(ControlResponse(ok: true, progress: event), to: fd)
                        }
                        return connected
                    }
                    response = await collect(request, onSelected: { continuation.yield(.selected($0)) },
                                             onEvent: { continuation.yield(CollectionProgress($0)) })
                    continuation.finish()
                    guard await writer.value else { return }
                } else {
                    response = await handle(request)
                }
            } catch {
                response = ControlResponse(ok: false, error: "malformed request: \(error)")
            }
        }
        _ = await send(response, to: fd)
    }

    /// Writes one JSON line within the reply timeout; false when the client is gone or did not
    /// read it in time (dropped: a client that does not read must not hold its slot).
    func send(_ response: ControlResponse, to fd: Int32) async -> Bool {
        var out = Array((try? ResultStore.encoderCompact.encode(response)) ?? Data("{\"ok\":false}".utf8))
        out.append(0x0A)
        switch await Self.send(out, to: fd, within: limits.replyTimeout) {
        case .sent: return true
        case .closed: return false
        case let .timedOut(unsent):
            logger.warning("control client did not read its answer in time: dropped",
                           metadata: ["timeout": "\(limits.replyTimeout)", "unsent": "\(unsent)"])
            return false
        }
    }

    func collect(_ request: ControlRequest, onSelected: @Sendable (Int) -> Void = { _ in },
                 onEvent: @escaping @Sendable (CollectionEvent) -> Void = { _ in }) async -> ControlResponse {
        do {
            let results = try await runtime.collect(groups: request.groups, devices: request.devices, trigger: .request,
                                                    onSelected: onSelected, onEvent: onEvent)
            return ControlResponse(ok: true, results: results.map(DeviceSummary.init))
        } catch {
            return ControlResponse(ok: false, error: "\(error)")
        }
    }

    enum SendOutcome: Equatable {
        case sent
        case closed
        /// `unsent` bytes were still to go when the time was up.
        case timedOut(unsent: Int)
    }

    /// Writes `bytes` to the non-blocking `fd`, giving up after `timeout`: a client that does
    /// not read must not hold its descriptor (and slot) for ever.
    static func send(_ bytes: [UInt8], to fd: Int32, within timeout: Duration) async -> SendOutcome {
        var offset = 0
        let deadline = ContinuousClock.now + timeout
        while offset < bytes.count {
            // MSG_NOSIGNAL: a client that went away must not kill the agent with SIGPIPE.
            let n = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) {
                guard ContinuousClock.now < deadline else { return .timedOut(unsent: bytes.count - offset) }
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            return .closed
        }
        return .sent
    }

    func handle(_ request: ControlRequest) async -> ControlResponse {
        logger.info("control request", metadata: ["command": "\(request.command)"])
        switch request.command {
        case "status":
            return ControlResponse(ok: true, status: await AgentStatus(runtime: runtime))
        case "reload":
            let error = await runtime.reload()
            return ControlResponse(ok: error == nil, error: error)
        case "collect":
            return await collect(request)
        default:
            return ControlResponse(ok: false, error: "unknown command \(request.command); expected status, collect or reload")
        }
    }
}

/// The control socket's connected clients, for the cap: which may give their place to a new one.
final class ControlClients: @unchecked Sendable {
    private struct Client {
        var fd: Int32
        var since: ContinuousClock.Instant
        /// False while the agent runs the client's command.
        var evictable = true
    }

    private let lock = NSLock()
    private let maximum: Int
    private var clients: [Int: Client] = [:]
    private var nextID = 0

    init(maximum: Int) { self.maximum = max(1, maximum) }

    /// Registers `fd`, making room by shutting down the oldest evictable client when full. Nil
    /// when every slot is running a command. (shutdown, not close: the client's own task still
    /// owns the descriptor, sees end of file and closes it.)
    func admit(_ fd: Int32) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if clients.count >= maximum {
            guard let oldest = clients.filter({ $0.value.evictable }).min(by: { $0.value.since < $1.value.since }) else { return nil }
            shutdown(oldest.value.fd, Int32(SHUT_RDWR))
            clients[oldest.key] = nil
        }
        nextID += 1
        clients[nextID] = Client(fd: fd, since: .now)
        return nextID
    }

    func setEvictable(_ id: Int, _ evictable: Bool) {
        lock.lock()
        clients[id]?.evictable = evictable
        lock.unlock()
    }

    func remove(_ id: Int) {
        lock.lock()
        clients[id] = nil
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return clients.count
    }
}

/// Asks the running agent over its control socket.
public enum ControlClient {
    /// Whether something accepts connections on `path`.
    static func isAnswering(socket path: String) throws -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = try ControlServer.address(path)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    /// Sends `request` and waits for the answer (a collection may take minutes), handing each
    /// progress line of a streamed collection to `onProgress` as it arrives. `idleTimeout`: how
    /// long the agent may stay silent (nil: no limit, for a collection whose devices may each
    /// take their device-timeout); a stalled agent then gets an error, not a hung command.
    public static func request(socket path: String, _ request: ControlRequest, idleTimeout: Duration? = .seconds(60),
                               onProgress: (CollectionProgress) -> Void = { _ in }) throws -> ControlResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlError("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        if let idleTimeout {
            var limit = timeval(tv_sec: Int(idleTimeout.components.seconds), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = try ControlServer.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            // Only a collection has a way without the service.
            let instead = request.command == "collect" ? "; or use --standalone" : ""
            if errno == EACCES {
                throw ControlError("cannot reach the agent at \(path): permission denied (root and members of the care-agent group may ask it: "
                    + "usermod -aG care-agent $USER, then log in again\(instead))")
            }
            throw ControlError("cannot reach the agent at \(path): \(String(cString: strerror(errno))) (is care-agent running? systemctl status care-agent\(instead))")
        }
        var bytes = Array(try JSONEncoder().encode(request))
        bytes.append(0x0A)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw ControlError("cannot send the request to \(path)") }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            while let end = pending.firstIndex(of: 0x0A) {
                let line = Data(pending[..<end])
                pending.removeSubrange(...end)
                let response: ControlResponse
                do {
                    response = try ResultStore.decoder.decode(ControlResponse.self, from: line)
                } catch {
                    throw ControlError("the agent sent an answer that is not understood: \(error)")
                }
                guard let progress = response.progress else { return response }
                onProgress(progress)
            }
            let n = read(fd, &chunk, chunk.count)
            if n > 0 { pending += chunk[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), let idleTimeout {
                throw ControlError("the agent at \(path) did not answer within \(idleTimeout) (busy or stalled? journalctl -u care-agent)")
            }
            break
        }
        do {
            // The last answer without its line end (the agent stopped while answering?).
            return try ResultStore.decoder.decode(ControlResponse.self, from: Data(pending))
        } catch {
            throw ControlError("the agent sent an answer that is not understood: \(error)")
        }
    }
}

/// A control-socket failure, with what to check.
public struct ControlError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ResultStore {
    static var encoderCompact: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }
}
