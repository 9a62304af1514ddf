import IOLoop
import Logging
import SSH

/// One hop of a `proxy-jump` chain: `[user@]host[:port]` (an IPv6 address in brackets).
public struct JumpHost: Sendable, Hashable, Codable, CustomStringConvertible {
    public var user: String?
    public var host: String
    public var port: Int

    public init(user: String? = nil, host: String, port: Int = 22) {
        self.user = user
        self.host = host
        self.port = port
    }

    /// Parses `user@bastion:2222`, `bastion`, `user@[2001:db8::1]:22`; nil when it is not one.
    public init?(_ text: String) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        if let at = rest.lastIndex(of: "@") {
            let name = rest[..<at]
            guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == ":" }) else { return nil }
            user = String(name)
            rest = rest[rest.index(after: at)...]
        }
        port = 22
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let tail = rest[rest.index(after: close)...]
            if !tail.isEmpty {
                guard tail.hasPrefix(":"), let value = Int(tail.dropFirst()), (1...65535).contains(value) else { return nil }
                port = value
            }
        } else if let colon = rest.firstIndex(of: ":") {
            guard let value = Int(rest[rest.index(after: colon)...]), (1...65535).contains(value) else { return nil }
            host = String(rest[..<colon])
            port = value
        } else {
            host = String(rest)
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" || $0 == "@" }) else { return nil }
    }

    /// Parses a chain, `a, b` or `a,b` (the first hop first, as OpenSSH's -J).
    public static func chain(_ text: String) -> [JumpHost]? {
        let hops = text.split(separator: ",", omittingEmptySubsequences: false).map { JumpHost(String($0)) }
        guard !hops.isEmpty, hops.allSatisfy({ $0 != nil }) else { return nil }
        return hops.compactMap { $0 }
    }

    public var description: String {
        (user.map { "\($0)@" } ?? "") + (host.contains(":") ? "[\(host)]" : host) + (port == 22 ? "" : ":\(port)")
    }
}

/// How to pass jump hosts: the hops (first first), the login on them (a hop without a user takes
/// `credentials.user`), host keys checked like the device's, and how many tunnels one jump host
/// session carries at once.
public struct JumpRoute: Sendable {
    public var hops: [JumpHost]
    public var credentials: SSHCredentials
    public var hostKeyVerifier: HostKeyVerifier
    public var maximumTunnels: Int

    public init(hops: [JumpHost], credentials: SSHCredentials, hostKeyVerifier: HostKeyVerifier, maximumTunnels: Int = 10) {
        self.hops = hops
        self.credentials = credentials
        self.hostKeyVerifier = hostKeyVerifier
        self.maximumTunnels = maximumTunnels
    }
}

/// The jump host sessions of the process: one authenticated session per hop chain, shared by
/// every device behind it, at most `maximumTunnels` tunnels at once (the others wait for a
/// slot), closed when its last tunnel closes. A chain's later hop is reached through a tunnel of
/// the earlier one's session.
public actor JumpHostSessions {
    public static let shared = JumpHostSessions()

    struct Entry {
        var session: Task<SSHSession, Error>?
        var tunnels = 0
        var waiting: [Waiter] = []
    }

    /// A device waiting for a tunnel slot; its task's cancellation (its device timeout, a
    /// shutdown) takes it out of the queue.
    struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, Error>
    }

    private var entries: [String: Entry] = [:]
    private var waiterNumbers = 0

    public init() {}

    /// Closes every jump host session, for a command about to exit: a session left open keeps
    /// relaying its tunnels' last packets on an I/O thread while exit tears down the crypto
    /// library under it (a `hosts scan` through a jump host crashed so at its end).
    public func closeAll() async {
        let sessions = entries.values.compactMap(\.session)
        entries = [:]
        for connecting in sessions {
            if let session = try? await connecting.value { await session.close() }
        }
    }

    /// The number of jump host sessions open (for tests).
    public var openSessions: Int { entries.values.filter { $0.session != nil }.count }

    /// A connected stream to `host`:`port` through `route`, for an SSH session to take over.
    public func tunnel(to host: String, port: Int, route: JumpRoute, timeouts: SSHTimeouts, logger: Logger) async throws -> Int32 {
        precondition(!route.hops.isEmpty)
        let key = Self.key(route)
        try await acquire(key, limit: max(1, route.maximumTunnels))
        do {
            var retired = 0
            while true {
                let reused = entries[key]?.session != nil
                let (connecting, session) = try await session(key, route: route, timeouts: timeouts, logger: logger)
                do {
                    return try await session.openTunnel(to: host, port: port, timeout: timeouts.connect) { [self] in
                        Task { await self.release(key) }
                    }
                } catch {
                    // Anything but a refused tunnel means the jump host's session is unusable (it
                    // rebooted, the network dropped it, an open was given up half-way on it): the
                    // next device connects afresh. Only if it is still the one in use: another
                    // device may have replaced it meanwhile.
                    if case SSHError.channel = error {} else if entries[key]?.session == connecting { entries[key]?.session = nil }
                    // Retired while this device waited for its turn on it, or failed while it
                    // was another device's session (the jump host stopped answering, the
                    // network dropped it): a new session, now, twice at most. A session this
                    // device made itself has said what it had to.
                    let retiredMeanwhile = if case SSHError.tunnelsRetired = error { true } else { false }
                    let refused = if case SSHError.channel = error { true } else { false }
                    // A device whose time ran out (cancelled) tries nothing more: a new bastion
                    // login, in a task its cancellation does not reach, would hold it past its timeout.
                    if !Task.isCancelled, !(error is CancellationError), retiredMeanwhile || (reused && !refused), retired < 2 {
                        retired += 1
                        continue
                    }
                    throw JumpHostError(hop: route.hops[route.hops.count - 1], underlying: error)
                }
            }
        } catch {
            release(key)
            throw error
        }
    }

    /// One session per chain, login and host-key check: groups whose known_hosts or policy
    /// differ do not share one (a group whose known_hosts lacks the bastion's key went through
    /// it on another group's session).
    static func key(_ route: JumpRoute) -> String {
        route.hops.map { "\($0.user ?? route.credentials.user)@\($0.host):\($0.port)" }.joined(separator: ",")
            + "|" + (route.credentials.privateKeyPath ?? "")
            + "|" + route.hostKeyVerifier.knownHostsPath + "|" + route.hostKeyVerifier.policy.rawValue
    }

    private func acquire(_ key: String, limit: Int) async throws {
        if entries[key, default: Entry()].tunnels < limit {
            entries[key, default: Entry()].tunnels += 1
            return
        }
        waiterNumbers += 1
        let id = waiterNumbers
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                entries[key, default: Entry()].waiting.append(Waiter(id: id, continuation: continuation))
            }
        } onCancel: {
            Task { await self.giveUpWaiting(key, id) }
        }
        // The releaser handed its slot over: `tunnels` already counts this one.
    }

    private func giveUpWaiting(_ key: String, _ id: Int) {
        guard let index = entries[key]?.waiting.firstIndex(where: { $0.id == id }) else { return }
        entries[key]!.waiting.remove(at: index).continuation.resume(throwing: CancellationError())
    }

    private func release(_ key: String) {
        guard var entry = entries[key] else { return }
        if !entry.waiting.isEmpty {
            entry.waiting.removeFirst().continuation.resume()
            entries[key] = entry
            return
        }
        entry.tunnels -= 1
        if entry.tunnels > 0 {
            entries[key] = entry
            return
        }
        entries[key] = nil
        if let session = entry.session {
            // Closing its socket ends the tunnel it came through, which frees the earlier hop's slot.
            Task { if let open = try? await session.value { await open.close() } }
        }
    }

    /// The chain's session, and the task that made it (which identifies it in `entries`).
    private func session(_ key: String, route: JumpRoute, timeouts: SSHTimeouts, logger: Logger) async throws -> (Task<SSHSession, Error>, SSHSession) {
        if let existing = entries[key]?.session {
            do { return (existing, try await existing.value) } catch {
                // A failed connection is not kept: the next device tries again.
                if entries[key]?.session.map({ $0 == existing }) == true { entries[key]?.session = nil }
                throw error
            }
        }
        let hop = route.hops[route.hops.count - 1]
        let earlier = Array(route.hops.dropLast())
        var credentials = route.credentials
        credentials.user = hop.user ?? route.credentials.user
        let connecting = Task { [self] () async throws -> SSHSession in
            var socket: Int32?
            if !earlier.isEmpty {
                var previous = route
                previous.hops = earlier
                socket = try await self.tunnel(to: hop.host, port: hop.port, route: previous, timeouts: timeouts, logger: logger)
            }
            return try await SSHSession.connect(host: hop.host, port: hop.port, credentials: credentials,
                                                hostKeyVerifier: route.hostKeyVerifier, timeouts: timeouts, logger: logger, socket: socket)
        }
        entries[key, default: Entry()].session = connecting
        do {
            let session = try await connecting.value
            logger.debug("jump host session open", metadata: ["jump-host": "\(hop)"])
            return (connecting, session)
        } catch {
            if entries[key]?.session.map({ $0 == connecting }) == true { entries[key]?.session = nil }
            throw JumpHostError(hop: hop, underlying: error)
        }
    }
}

/// A jump host could not be used: which one, and why (its own SSH error: refused, host key,
/// authentication...).
public struct JumpHostError: Error, CustomStringConvertible, Sendable {
    public var hop: JumpHost
    public var underlying: any Error

    public var description: String { "jump host \(hop): \(underlying)" }
}
