import CLibSSH2
import Foundation
import IOLoop
import Logging

/// Fetches a server's host keys as `ssh-keyscan` does: one SSH handshake per key family, each
/// offering only that family, then disconnect (no authentication). For recording keys in
/// known_hosts after a person compared the fingerprints.
public enum HostKeyScan {
    /// The families asked for, each a libssh2 host-key preference list: Ed25519, ECDSA (any
    /// curve), RSA.
    public static let families: [[String]] = [
        ["ssh-ed25519"],
        ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"],
        ["ssh-rsa"],
    ]

    /// The keys `host`:`port` offers, at most one per family. A family the server does not offer
    /// is left out; a connection failure (refused, timeout) is thrown, as is a server offering none.
    /// `connect`: opens each connection instead of TCP (a tunnel through a jump host).
    public static func scan(host: String, port: Int, timeout: Duration = .seconds(10),
                            loop: IOLoop = IOLoopGroup.shared.next(),
                            connect: (@Sendable () async throws -> Int32)? = nil) async throws -> [HostKey] {
        var keys: [HostKey] = []
        var lastError: SSHError?
        for family in families {
            do {
                let socket = try await connect?()
                let key = try await SSHSession.hostKey(host: host, port: port, offering: family, timeout: timeout, loop: loop, socket: socket)
                if !keys.contains(key) { keys.append(key) }
            } catch let error as SSHError {
                switch error {
                case .handshake: lastError = error // this family not offered
                default: throw error
                }
            }
        }
        if keys.isEmpty, let lastError {
            // Every family failed: perhaps no host key type in common, perhaps nothing else is.
            if connect == nil, let precise = await SSHSession.explainNegotiation(
                host: host, port: port, hostKeys: families.flatMap { $0 }, timeout: timeout, loop: loop, logger: Logger(label: "care-agent.hosts-scan")) {
                throw SSHError.handshake(peer: "\(host):\(port)", message: precise)
            }
            throw lastError
        }
        return keys
    }
}

extension SSHSession {
    /// Connects, completes the key exchange offering only `keyTypes` as host-key algorithms, and
    /// returns the key the server proved it holds. Nothing is verified or authenticated.
    static func hostKey(host: String, port: Int, offering keyTypes: [String], timeout: Duration, loop: IOLoop,
                        socket: Int32? = nil) async throws -> HostKey {
        _ = libssh2Initialised
        let peer = "\(host):\(port)"
        let fd: Int32
        if let socket { fd = socket } else {
            fd = try await TCPConnector.connect(host: host, port: port, deadline: .now + timeout, timeout: timeout, loop: loop)
        }
        let session = SSHSession(host: host, port: port, fd: fd, loop: loop, timeouts: SSHTimeouts(connect: timeout, authentication: timeout))
        do {
            guard let raw = session.raw else {
                throw SSHError.libssh2(peer: peer, operation: "session init", code: -6, message: "out of memory")
            }
            libssh2_session_set_blocking(raw, 0)
            try SSHSession.preferAlgorithms(raw, peer: peer)
            guard libssh2_session_method_pref(raw, LIBSSH2_METHOD_HOSTKEY, keyTypes.joined(separator: ",")) == 0 else {
                throw SSHError.handshake(peer: peer, message: "this libssh2 does not support \(keyTypes.joined(separator: ","))")
            }
            do {
                let deadline = ContinuousClock.now + timeout
                try await SSHIdentification.await(fd: fd, loop: loop, deadline: deadline, peer: peer)
                try await session.call("SSH handshake", deadline: deadline) { s in libssh2_session_handshake(s, fd) }
            } catch let SSHError.libssh2(_, _, code, message) {
                throw SSHError.handshake(peer: peer, message: "\(message) (libssh2 error \(code))")
            }
            let key = try session.serverHostKey()
            await session.close()
            return key
        } catch {
            await session.close()
            throw error
        }
    }
}
