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

    enum CodingKeys: String, CodingKey {
        case configuration, reloadError, devices, inFlight, queuedDevices = "queued", lastCollection, groups, results
        case outboxBundles, upload
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
        outboxBundles = AgentMetrics.outboxDepth(configuration.agent.outbox)
        var upload = await runtime.uploadState
        upload.url = configuration.upload.url
        upload.pending = outboxBundles
        upload.rejected = AgentMetrics.outboxDepth(configuration.agent.outbox + "/rejected")
        self.upload = upload
        groups = configuration.groups.values.sorted { $0.name < $1.name }.map { g in
            Group(name: g.name, schedule: g.schedule.description, devices: configuration.devices.filter { $0.group == g.name }.count,
                  lastRun: lastRun[g.name], lastRequestedRun: lastRequestedRun[g.name], nextRun: nextRuns[g.name])
        }
        results = ResultStore(stateDirectory: configuration.agent.stateDirectory).loadAll().map(DeviceSummary.init)
    }
}

/// Serves ``ControlRequest``s on a Unix stream socket (mode 0660: the care-agent group may ask).
/// Non-blocking accept and reads, polled, so that no cooperative thread ever blocks on a client.
public struct ControlServer: Service {
    public let path: String
    let runtime: AgentRuntime
    let logger: Logger
    let listener: Int32

    /// Binds and listens now, so that the socket exists before READY=1 is sent.
    public init(path: String, runtime: AgentRuntime, logger: Logger) throws {
        self.path = path
        self.runtime = runtime
        self.logger = logger
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
                    try? await Task.sleep(for: .milliseconds(100))
                    continue
                }
                _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
                group.addTask { await self.serve(client) }
            }
            group.cancelAll()
        }
    }

    func serve(_ fd: Int32) async {
        defer { close(fd) }
        var buffer: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(10)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !buffer.contains(0x0A), buffer.count < 65536, ContinuousClock.now < deadline {
            let n = read(fd, &chunk, chunk.count)
            if n > 0 { buffer += chunk[0..<n]; continue }
            if n == 0 { break }
            if errno == EAGAIN || errno == EINTR { try? await Task.sleep(for: .milliseconds(20)); continue }
            return
        }
        // A client that connected and left without asking (a liveness probe) gets no answer.
        if buffer.isEmpty { return }
        let response: ControlResponse
        do {
            let request = try JSONDecoder().decode(ControlRequest.self, from: Data(buffer.prefix { $0 != 0x0A }))
            if request.command == "collect", request.progress == true {
                // Events come from the collection's tasks; one writer sends them in order, and a
                // client that reads slowly or left delays no device (the stream buffers).
                let (events, continuation) = AsyncStream.makeStream(of: CollectionProgress.self)
                let writer = Task {
                    var connected = true
                    for await event in events where connected {
                        connected = await Self.send(ControlResponse(ok: true, progress: event), to: fd)
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
        _ = await Self.send(response, to: fd)
    }

    /// Writes one JSON line; false when the client is gone.
    static func send(_ response: ControlResponse, to fd: Int32) async -> Bool {
        var out = Array((try? ResultStore.encoderCompact.encode(response)) ?? Data("{\"ok\":false}".utf8))
        out.append(0x0A)
        var offset = 0
        while offset < out.count {
            // MSG_NOSIGNAL: a client that went away must not kill the agent with SIGPIPE.
            let n = out[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { try? await Task.sleep(for: .milliseconds(20)); continue }
            return false
        }
        return true
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
    /// progress line of a streamed collection to `onProgress` as it arrives.
    public static func request(socket path: String, _ request: ControlRequest,
                               onProgress: (CollectionProgress) -> Void = { _ in }) throws -> ControlResponse {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ControlError("cannot create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = try ControlServer.address(path)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            if errno == EACCES {
                throw ControlError("cannot reach the agent at \(path): permission denied (root and members of the care-agent group may ask it: "
                    + "usermod -aG care-agent $USER, then log in again; or use --standalone)")
            }
            throw ControlError("cannot reach the agent at \(path): \(String(cString: strerror(errno))) (is care-agent running? systemctl status care-agent; or use --standalone)")
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
