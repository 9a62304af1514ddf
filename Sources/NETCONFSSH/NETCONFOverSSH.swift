import Glibc
import IOLoop
import Logging
import NETCONF
import SSH

extension SSHError: TimeoutSignalling {}

/// NETCONF's transport on an SSH `netconf` subsystem channel (RFC 6242).
public final class SSHNETCONFTransport: NETCONFTransport, @unchecked Sendable {
    public let channel: SSHChannel
    public var peer: String { channel.session.peer }

    public init(channel: SSHChannel) {
        self.channel = channel
    }

    public func send(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws {
        try await channel.write(bytes, deadline: deadline)
    }

    public func receive(deadline: ContinuousClock.Instant?) async throws -> [UInt8]? {
        try await channel.read(deadline: deadline)
    }

    public func close() async {
        await channel.close()
    }
}

/// Turns for SSH session set-ups (key exchange, authentication, the `netconf` subsystem), shared
/// by the sessions a collector opens. Set-ups are CPU work on both ends: five
/// hundred started together all come up late together, then wait for replies together while no
/// slot frees for the next ones, and the machine idles between such waves. Taken in turn, the
/// first sessions come up (and finish, and free their slots) first. Neither the TCP connect nor
/// the NETCONF hello is part of a turn: a device that does not answer, or takes its time to start
/// its NETCONF server, holds none.
public protocol HandshakeAdmission: Sendable {
    /// Waits for a turn; throws `CancellationError` when the task is cancelled while waiting.
    func admit() async throws
    /// Gives the turn back.
    func leave() async
}

/// Where and how to reach a device over NETCONF/SSH.
public struct DeviceEndpoint: Sendable {
    public var host: String
    public var port: Int
    public var credentials: SSHCredentials
    public var hostKeyVerifier: HostKeyVerifier
    public var sshTimeouts: SSHTimeouts
    public var netconfTimeouts: NETCONFTimeouts
    /// Capabilities to announce; drop base:1.1 to force end-of-message framing.
    public var capabilities: [String]
    /// Largest message (hello or reply) accepted from the device; a larger one fails this
    /// device's session alone.
    public var maximumMessageSize: Int
    /// Jump hosts to pass (`proxy-jump`); nil: connect directly.
    public var jumpRoute: JumpRoute?
    /// Whose turn it is to set a session up; nil: at once.
    public var handshakeAdmission: (any HandshakeAdmission)?

    public init(host: String, port: Int = 830, credentials: SSHCredentials, hostKeyVerifier: HostKeyVerifier,
                sshTimeouts: SSHTimeouts = .init(), netconfTimeouts: NETCONFTimeouts = .init(),
                capabilities: [String] = [NETCONFNamespace.base10, NETCONFNamespace.base11],
                maximumMessageSize: Int = FrameDecoder.defaultMaximumMessageSize, jumpRoute: JumpRoute? = nil,
                handshakeAdmission: (any HandshakeAdmission)? = nil) {
        self.maximumMessageSize = maximumMessageSize
        self.host = host
        self.port = port
        self.credentials = credentials
        self.hostKeyVerifier = hostKeyVerifier
        self.sshTimeouts = sshTimeouts
        self.netconfTimeouts = netconfTimeouts
        self.capabilities = capabilities
        self.jumpRoute = jumpRoute
        self.handshakeAdmission = handshakeAdmission
    }
}

extension NETCONFClient {
    /// Connects over SSH, opens the `netconf` subsystem and exchanges hellos.
    /// Through `endpoint.jumpRoute` when set: a tunnel on the shared jump host session.
    public static func connect(to endpoint: DeviceEndpoint, loop: IOLoop = IOLoopGroup.shared.forSession(), logger: Logger,
                               jumpHosts: JumpHostSessions = .shared) async throws -> NETCONFClient {
        // The stream comes before the turn: a device that does not answer its SYN, or waits for
        // one of its jump host's tunnels, must not hold a turn that a reachable device could use.
        let socket: Int32
        if let route = endpoint.jumpRoute, !route.hops.isEmpty {
            socket = try await jumpHosts.tunnel(to: endpoint.host, port: endpoint.port, route: route, timeouts: endpoint.sshTimeouts, logger: logger)
        } else {
            socket = try await SSHSession.openTCP(host: endpoint.host, port: endpoint.port, timeout: endpoint.sshTimeouts.connect, loop: loop)
        }
        // The SSH timeouts start when the turn does: waiting for it is not the device's slowness.
        do {
            try await endpoint.handshakeAdmission?.admit()
        } catch {
            // On the loop, which may have the connection registered (the agent is stopping).
            _ = try? await loop.submit { loop.deregister(fd: socket); Glibc.close(socket) }
            throw error
        }
        let channel: SSHChannel
        do {
            channel = try await openChannel(to: endpoint, socket: socket, loop: loop, logger: logger)
        } catch {
            await endpoint.handshakeAdmission?.leave()
            throw error
        }
        await endpoint.handshakeAdmission?.leave()
        let client = NETCONFClient(transport: SSHNETCONFTransport(channel: channel), capabilities: endpoint.capabilities,
                                   timeouts: endpoint.netconfTimeouts, maximumMessageSize: endpoint.maximumMessageSize,
                                   logger: logger)
        do {
            try await client.start()
        } catch {
            await client.close()
            throw error
        }
        return client
    }

    /// The SSH session over `socket` (a TCP connection or a jump host's tunnel; the session owns
    /// it) and its `netconf` subsystem channel: one turn's work.
    private static func openChannel(to endpoint: DeviceEndpoint, socket: Int32, loop: IOLoop, logger: Logger) async throws -> SSHChannel {
        let session = try await SSHSession.connect(
            host: endpoint.host, port: endpoint.port, credentials: endpoint.credentials,
            hostKeyVerifier: endpoint.hostKeyVerifier, timeouts: endpoint.sshTimeouts, loop: loop, logger: logger, socket: socket)
        do {
            return try await session.openSubsystem("netconf")
        } catch {
            await session.close()
            throw error
        }
    }
}
