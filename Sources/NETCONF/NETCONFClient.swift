import Logging

/// A byte stream a NETCONF session runs over: an SSH channel, a pipe, a socket.
public protocol NETCONFTransport: Sendable {
    /// Who is on the other end, for messages: `127.0.0.5:830`.
    var peer: String { get }
    func send(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws
    /// The next bytes received; nil at end of stream.
    func receive(deadline: ContinuousClock.Instant?) async throws -> [UInt8]?
    func close() async
}

/// Timeouts for a NETCONF session.
public struct NETCONFTimeouts: Sendable {
    /// For the server's hello.
    public var hello: Duration
    /// For each RPC, from sending it to its complete reply.
    public var rpc: Duration
    /// Longest silence while a reply is outstanding (a device that stops mid-reply fails after
    /// this, even when the RPC timeout is long enough for a large configuration); nil: no limit.
    public var idle: Duration?

    public init(hello: Duration = .seconds(30), rpc: Duration = .seconds(60), idle: Duration? = nil) {
        self.hello = hello
        self.rpc = rpc
        self.idle = idle
    }
}

/// A NETCONF client session over any ``NETCONFTransport``. One RPC at a time (as Junos processes
/// them); after a timeout or protocol error the session is torn down and further calls fail.
public actor NETCONFClient {
    public let transport: any NETCONFTransport
    public let timeouts: NETCONFTimeouts
    private var session: ClientSession
    private var busy = false
    private var broken: NETCONFError?
    private let logger: Logger
    private let memoryBudget: ReplyMemoryBudget

    public init(transport: any NETCONFTransport,
                capabilities: [String] = [NETCONFNamespace.base10, NETCONFNamespace.base11],
                timeouts: NETCONFTimeouts = .init(),
                maximumMessageSize: Int = FrameDecoder.defaultMaximumMessageSize,
                memoryBudget: ReplyMemoryBudget = .shared,
                logger: Logger) {
        self.transport = transport
        self.timeouts = timeouts
        self.memoryBudget = memoryBudget
        self.session = ClientSession(peer: transport.peer, capabilities: capabilities, maximumMessageSize: maximumMessageSize)
        self.logger = logger
    }

    /// The server's hello, once ``start()`` returned.
    public var serverHello: Hello? { session.remoteHello }
    public var framing: FramingMode { session.framing }

    /// Sends our hello and waits for the server's.
    @discardableResult
    public func start() async throws -> Hello {
        let deadline = ContinuousClock.now + timeouts.hello
        try await transport.send(session.helloBytes(), deadline: deadline)
        while true {
            for event in try await receiveEvents(deadline: deadline, waitingFor: "the server's hello", timeout: timeouts.hello) {
                if case let .established(hello) = event {
                    logger.debug("NETCONF session established", metadata: [
                        "netconf.session-id": "\(hello.sessionID ?? "-")", "netconf.framing": "\(session.framing.rawValue)",
                    ])
                    return hello
                }
            }
        }
    }

    /// Sends `request` and returns its reply. `rpc-error`s are on the reply, not thrown.
    public func rpc(_ request: RPCRequest, timeout: Duration? = nil) async throws -> RPCReply {
        if let broken { throw broken }
        guard !busy else { throw NETCONFError.busy }
        busy = true
        defer { busy = false }
        let limit = timeout ?? timeouts.rpc
        let deadline = ContinuousClock.now + limit
        let started = ContinuousClock.now
        let framed = try session.frame(request)
        do {
            try await transport.send(framed.bytes, deadline: deadline)
        } catch where isTimeout(error) {
            throw await fail(.timeout(peer: transport.peer, rpc: request.name, seconds: limit.seconds))
        }
        while true {
            for event in try await receiveEvents(deadline: deadline, waitingFor: request.name, timeout: limit) {
                if case let .reply(reply, name) = event, reply.messageID == framed.messageID || reply.messageID == nil {
                    logger.debug("RPC reply", metadata: [
                        "rpc.name": "\(name)", "rpc.bytes": "\(reply.raw.count)",
                        "rpc.duration-ms": "\((ContinuousClock.now - started).milliseconds)",
                    ])
                    return reply
                }
            }
        }
    }

    /// Sends `<close-session/>`, waits briefly for `<ok/>`, and closes the transport.
    public func close(timeout: Duration = .seconds(5)) async {
        if broken == nil, session.state == .established, !busy {
            _ = try? await rpc(.closeSession, timeout: timeout)
        }
        broken = broken ?? .sessionNotEstablished
        await transport.close()
    }

    private func receiveEvents(deadline: ContinuousClock.Instant, waitingFor: String, timeout: Duration) async throws -> [ClientSessionEvent] {
        let bytes: [UInt8]?
        let idleDeadline = timeouts.idle.map { ContinuousClock.now + $0 }
        do {
            bytes = try await transport.receive(deadline: min(deadline, idleDeadline ?? deadline))
        } catch where isTimeout(error) {
            if let idle = timeouts.idle, let idleDeadline, idleDeadline < deadline {
                throw await fail(.idle(peer: transport.peer, rpc: waitingFor, seconds: idle.seconds, bytesReceived: session.bufferedByteCount))
            }
            throw await fail(.timeout(peer: transport.peer, rpc: waitingFor, seconds: timeout.seconds))
        } catch {
            broken = .sessionNotEstablished
            await transport.close()
            throw error
        }
        guard let bytes else {
            let received = session.bufferedByteCount
            session.receivedEndOfStream()
            throw await fail(.closedByPeer(peer: transport.peer, waitingFor: waitingFor, bytesReceived: received))
        }
        session.append(bytes)
        var events: [ClientSessionEvent] = []
        while true {
            let message: [UInt8]
            do {
                guard let next = try session.nextMessage() else { break }
                message = next
            } catch {
                throw await fail(error)
            }
            // A large reply waits for its share of the process's reply memory before its tree
            // is built, and keeps it for as long as the tree lives.
            let memory = message.count >= ReplyMemoryBudget.threshold
                ? try await reserveMemory(message.count, deadline: deadline, waitingFor: waitingFor, timeout: timeout) : nil
            let handled: ClientSessionEvent?
            do {
                handled = try session.handle(message)
            } catch {
                throw await fail(error)
            }
            guard var event = handled else { continue }
            if case .reply(var reply, let name) = event {
                reply.memory = memory
                event = .reply(reply, request: name)
            }
            events.append(event)
        }
        return events
    }

    /// `size` bytes of the reply budget, by `deadline` (the RPC's): a reply that cannot be parsed
    /// in time is the RPC's timeout, and a cancelled wait (the agent stopping) gives it up rather
    /// than parse it outside the budget.
    private func reserveMemory(_ size: Int, deadline: ContinuousClock.Instant, waitingFor: String, timeout: Duration) async throws -> ReplyMemoryReservation {
        let budget = memoryBudget
        if let now = budget.reserveNow(size) { return now }
        let reservation: ReplyMemoryReservation? = await withTaskGroup(of: ReplyMemoryReservation?.self) { group in
            group.addTask { await budget.reserve(size) }
            group.addTask {
                try? await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            // The first to finish wins; the other is cancelled (a cancelled reserve takes nothing).
            let first = await group.next() ?? nil
            group.cancelAll()
            var kept = first
            for await other in group where kept == nil || kept?.size == 0 { if let other, other.size > 0 { kept = other } }
            return kept
        }
        if Task.isCancelled {
            broken = .sessionNotEstablished
            await transport.close()
            throw CancellationError()
        }
        guard let reservation, reservation.size > 0 || size == 0 else {
            throw await fail(.timeout(peer: transport.peer, rpc: waitingFor, seconds: timeout.seconds))
        }
        return reservation
    }

    /// Marks the session unusable and tears the transport down.
    private func fail(_ error: NETCONFError) async -> NETCONFError {
        broken = error
        logger.debug("NETCONF session torn down", metadata: ["error": "\(error)"])
        await transport.close()
        return error
    }
}

func isTimeout(_ error: any Error) -> Bool {
    (error as? any TimeoutSignalling)?.isTimeout ?? false
}

/// Adopted by transport errors so that the client can tell a passed deadline from other failures.
public protocol TimeoutSignalling: Error {
    var isTimeout: Bool { get }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
