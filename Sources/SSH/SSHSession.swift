import CLibSSH2
import CEpoll
import Foundation
import IOLoop
import Logging

/// Who to log in as and with what. Secrets live here only as long as the session set-up needs them.
public struct SSHCredentials: Sendable {
    public var user: String
    /// Private key file (OpenSSH or PEM format; ed25519, ecdsa, rsa).
    public var privateKeyPath: String?
    /// Public key file; derived from the private key when nil.
    public var publicKeyPath: String?
    /// The private key file's contents, when the caller read it once for many sessions (the
    /// agent does, per group): authentication then parses no file. `privateKeyPath` still names
    /// the key in messages, and is read instead when libssh2 cannot take the key from memory.
    public var privateKey: [UInt8]? {
        didSet { signingKey = privateKey.flatMap { SSHSigningKey(privateKey: $0) } }
    }
    /// `privateKey` parsed, when it is a key ``SSHSigningKey`` signs with: sessions without a
    /// `publicKeyPath` then sign their authentication with it, no parsing per session.
    public private(set) var signingKey: SSHSigningKey?
    public var passphrase: String?
    /// Used for `password` and, when the server offers only that, `keyboard-interactive`.
    public var password: String?

    public init(user: String, privateKeyPath: String? = nil, publicKeyPath: String? = nil,
                passphrase: String? = nil, password: String? = nil) {
        self.user = user
        self.privateKeyPath = privateKeyPath
        self.publicKeyPath = publicKeyPath
        self.passphrase = passphrase
        self.password = password
    }
}

/// Timeouts for session set-up, and the keepalive interval.
public struct SSHTimeouts: Sendable {
    public var connect: Duration
    /// Handshake, host key check, authentication and opening the subsystem channel.
    public var authentication: Duration
    /// SSH keepalive interval while waiting for data; nil turns keepalives off.
    public var keepalive: Duration?

    public init(connect: Duration = .seconds(15), authentication: Duration = .seconds(30), keepalive: Duration? = .seconds(30)) {
        self.connect = connect
        self.authentication = authentication
        self.keepalive = keepalive
    }
}

let libssh2Initialised: Int32 = libssh2_init(0)

/// An authenticated SSH session on libssh2 in non-blocking mode, driven by an ``IOLoop``.
/// It owns the socket and the `LIBSSH2_SESSION`; every libssh2 call runs on the loop thread.
public final class SSHSession: @unchecked Sendable {
    public let host: String
    public let port: Int
    /// `host:port` for messages.
    public let peer: String
    let loop: IOLoop
    let fd: Int32
    let timeouts: SSHTimeouts
    /// Serialises channel opens of the tunnels through this session (a jump host's).
    let tunnelGate = SerialGate()
    /// Set (holding `tunnelGate`) when a tunnel open was given up half-way: libssh2 keeps its
    /// state and would resume that open, with its target, for the next caller.
    var tunnelsRetired = false
    /// The tunnels relaying through this session (a jump host's); loop thread only.
    var relays: [ObjectIdentifier: TunnelRelay] = [:]
    /// Whether close() freed the libssh2 session (for tests: a leak otherwise).
    private(set) var handleReleased = false
    private(set) var raw: OpaquePointer?
    private var closed = false
    public private(set) var hostKey: HostKey?
    /// The authentication method that succeeded.
    public private(set) var authenticatedWith: String?

    init(host: String, port: Int, fd: Int32, loop: IOLoop, timeouts: SSHTimeouts) {
        self.host = host
        self.port = port
        self.peer = "\(host):\(port)"
        self.fd = fd
        self.loop = loop
        self.timeouts = timeouts
        self.raw = care_ssh2_session_init(nil)
    }

    deinit {
        // Normally close() has run; this is the error-path safety net.
        if let raw { _ = SSHSession.release(raw, fd: fd) }
        if !closed { Glibc.close(fd) }
    }

    /// Frees a non-blocking `LIBSSH2_SESSION`; false if libssh2 would not let go of it. libssh2
    /// 1.10 first closes every channel still open, and closing one waits for the peer's close:
    /// from a peer that hangs it never comes, the free returns EAGAIN having freed nothing, and
    /// the session (~54 KiB, its keys, its queued packets) would be lost for good. Shutting the
    /// socket down ends that wait (end of stream), and the free runs again. Before the socket is
    /// closed, so that its number cannot have been reused.
    static func release(_ raw: OpaquePointer, fd: Int32) -> Bool {
        if libssh2_session_free(raw) != LIBSSH2_ERROR_EAGAIN { return true }
        _ = shutdown(fd, Int32(SHUT_RDWR))
        for _ in 0..<4 {
            if libssh2_session_free(raw) != LIBSSH2_ERROR_EAGAIN { return true }
        }
        return false
    }

    /// A TCP connection to `host`:`port` made on `loop` (no thread blocks in connect()), for
    /// ``connect(host:port:credentials:hostKeyVerifier:timeouts:loop:logger:socket:)`` to take
    /// as its `socket`: the caller may wait for something between the two (a turn for the SSH
    /// handshake that a device not answering its SYN should not hold).
    public static func openTCP(host: String, port: Int, timeout: Duration,
                               loop: IOLoop = IOLoopGroup.shared.forSession()) async throws(SSHError) -> Int32 {
        try await TCPConnector.connect(host: host, port: port, deadline: .now + timeout, timeout: timeout, loop: loop)
    }

    /// Connects, checks the host key and authenticates. `socket`: a connected stream to use
    /// instead of a TCP connection of its own (a tunnel through a jump host); the session owns it.
    public static func connect(
        host: String, port: Int = 830, credentials: SSHCredentials, hostKeyVerifier: HostKeyVerifier,
        timeouts: SSHTimeouts = .init(), loop: IOLoop = IOLoopGroup.shared.forSession(), logger: Logger, socket: Int32? = nil
    ) async throws -> SSHSession {
        _ = libssh2Initialised
        let peer = "\(host):\(port)"
        let started = ContinuousClock.now
        let fd: Int32
        if let socket {
            fd = socket
        } else {
            fd = try await TCPConnector.connect(host: host, port: port, deadline: .now + timeouts.connect,
                                                timeout: timeouts.connect, loop: loop)
        }
        let session = SSHSession(host: host, port: port, fd: fd, loop: loop, timeouts: timeouts)
        guard let raw = session.raw else {
            throw SSHError.libssh2(peer: peer, operation: "session init", code: -6, message: "out of memory")
        }
        libssh2_session_set_blocking(raw, 0)
        let preferred = hostKeyVerifier.preferredKeyTypes(host: host, port: port, logger: logger)
        let defaults = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"]
        let order = (preferred + defaults).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        _ = libssh2_session_method_pref(raw, LIBSSH2_METHOD_HOSTKEY, order.joined(separator: ","))
        do {
            try SSHSession.preferAlgorithms(raw, peer: peer)
        } catch {
            await session.close()
            throw error
        }

        do {
            let deadline = ContinuousClock.now + timeouts.authentication
            try await SSHIdentification.await(fd: fd, loop: loop, deadline: deadline, peer: peer)
            try await session.call("SSH handshake", deadline: deadline) { s in
                libssh2_session_handshake(s, fd)
            }
            let key = try session.serverHostKey()
            session.hostKey = key
            if hostKeyVerifier.policy == .acceptNew && loop.inLoop {
                // It may append to known_hosts (a file lock, a copy, two fsyncs): not on the I/O
                // loop thread, where it would stall every session of the loop.
                try await withTaskExecutorPreference(globalConcurrentExecutor) {
                    try hostKeyVerifier.verify(host: host, port: port, key: key, logger: logger)
                }
            } else {
                try hostKeyVerifier.verify(host: host, port: port, key: key, logger: logger)
            }
            try await session.authenticate(credentials, deadline: deadline)
            if let keepalive = timeouts.keepalive {
                libssh2_keepalive_config(raw, 1, UInt32(max(1, keepalive.components.seconds)))
            }
            logger.debug("SSH session authenticated", metadata: [
                "device.address": "\(peer)", "ssh.auth": "\(session.authenticatedWith ?? "none")",
                "ssh.hostkey": "\(key.fingerprint)", "duration-ms": "\((ContinuousClock.now - started).milliseconds)",
            ])
            return session
        } catch let error as SSHError {
            await session.close()
            if case let .libssh2(_, operation, code, message) = error, operation == "SSH handshake" {
                var explanation = SSHSession.explainHandshake(code: code, message: message)
                // Through a tunnel a second connection would need a tunnel of its own: the
                // general explanation stands there.
                if SSHSession.isNegotiationFailure(code), socket == nil,
                   let precise = await SSHSession.explainNegotiation(host: host, port: port, hostKeys: order, timeout: timeouts.connect,
                                                                     loop: loop, logger: logger) {
                    explanation = "\(message) (libssh2 error \(code)); \(precise)"
                }
                throw SSHError.handshake(peer: peer, message: explanation)
            }
            throw error
        } catch {
            await session.close()
            throw error
        }
    }

    /// Opens a session channel and starts `subsystem` on it (`netconf`).
    public func openSubsystem(_ subsystem: String) async throws -> SSHChannel {
        let deadline = ContinuousClock.now + timeouts.authentication
        let channel: SendablePointer = try await callReturningPointer("opening an SSH channel", deadline: deadline) { s in
            care_ssh2_channel_open_session(s)
        }
        do {
            try await call("starting the \(subsystem) subsystem", deadline: deadline) { _ in
                care_ssh2_channel_subsystem(channel.pointer, subsystem)
            }
        } catch let SSHError.libssh2(peer, _, code, message) {
            await SSHChannel.free(channel.pointer, session: self)
            throw SSHError.channel(peer: peer, message: "the server refused the \(subsystem) subsystem: \(message) (libssh2 error \(code)); on Junos enable it with 'set system services netconf ssh'")
        }
        return SSHChannel(session: self, channel: channel.pointer)
    }

    /// Disconnects and frees everything. Safe to call more than once.
    public func close() async {
        guard !closed else { return }
        closed = true
        let fd = self.fd
        if raw != nil {
            // Best effort: a hung peer must not hold up teardown.
            _ = try? await call("disconnect", deadline: .now + .seconds(2)) { s in
                care_ssh2_session_disconnect(s, "care-agent closing session")
            }
        }
        let raw = self.raw.map(SendablePointer.init)
        self.raw = nil
        let released = try? await loop.submit { [loop] () -> Bool in
            // Freeing the session frees its channels: each relay stops before it, without
            // touching its channel again, and its wait ends (it then closes its socket pair end).
            for relay in self.relays.values {
                relay.abandoned = true
                loop.deregister(fd: relay.socket)
            }
            self.relays = [:]
            let released = raw.map { SSHSession.release($0.pointer, fd: fd) } ?? true
            loop.deregister(fd: fd)
            Glibc.close(fd)
            return released
        }
        handleReleased = released ?? false
    }

    // MARK: - Set-up steps

    func serverHostKey() throws(SSHError) -> HostKey {
        var length = 0
        var type: Int32 = 0
        guard let raw, let pointer = libssh2_session_hostkey(raw, &length, &type), length > 0 else {
            throw .handshake(peer: peer, message: "the server sent no host key")
        }
        let blob = pointer.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
        guard let key = HostKey(blob: blob) else { throw .handshake(peer: peer, message: "unreadable host key") }
        return key
    }

    private func authenticate(_ credentials: SSHCredentials, deadline: ContinuousClock.Instant) async throws {
        let user = credentials.user
        var tried: [String] = []
        // The key goes first, without asking for the methods: that question (a "none" request)
        // costs every session a round trip, and a device set up for the agent takes its key. The
        // methods are asked for only once the key is refused: for a password to try, or to say why
        // nothing worked.
        if let keyPath = credentials.privateKeyPath {
            tried.append("publickey")
            guard credentials.privateKey != nil || FileManager.default.isReadableFile(atPath: keyPath) else {
                throw SSHError.privateKey(peer: peer, path: keyPath, message: "file does not exist or is not readable")
            }
            switch await publicKeyAttempt(credentials, keyPath: keyPath, deadline: deadline) {
            case .success: authenticatedWith = "publickey"; return
            case let .failure(code, message):
                if code == LIBSSH2_ERROR_FILE || code == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED {
                    let hint = credentials.passphrase == nil
                        ? "the key is encrypted and no passphrase was given, or its format is not supported"
                        : "wrong passphrase, or a key format libssh2 cannot read"
                    throw SSHError.privateKey(peer: peer, path: keyPath, message: "\(hint) (\(message))")
                }
                if code != LIBSSH2_ERROR_AUTHENTICATION_FAILED && code != LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED {
                    throw SSHError.libssh2(peer: peer, operation: "public key authentication", code: code, message: message)
                }
            case let .error(error): throw error
            }
        }
        let listing: SendablePointer
        do {
            listing = try await callReturningPointer("asking for authentication methods", deadline: deadline) { s in
                OpaquePointer(libssh2_userauth_list(s, user, UInt32(user.utf8.count)))
            }
        } catch let error as SSHError {
            if let raw, libssh2_userauth_authenticated(raw) != 0 { authenticatedWith = "none"; return }
            throw error
        }
        let offered = String(cString: UnsafePointer<CChar>(listing.pointer)).split(separator: ",").map(String.init)
        if let password = credentials.password {
            if offered.contains("password") {
                tried.append("password")
                let result = await attempt("password authentication", deadline: deadline) { s in
                    care_ssh2_userauth_password(s, user, password)
                }
                switch result {
                case .success: authenticatedWith = "password"; return
                case let .failure(code, message) where code != LIBSSH2_ERROR_AUTHENTICATION_FAILED:
                    throw SSHError.libssh2(peer: peer, operation: "password authentication", code: code, message: message)
                case .failure: break
                case let .error(error): throw error
                }
            }
            if offered.contains("keyboard-interactive") {
                tried.append("keyboard-interactive")
                // The C callback reads the answer through the session's abstract pointer.
                let answer = SendablePointer(OpaquePointer(strdup(password)))
                defer { free(UnsafeMutableRawPointer(answer.pointer)) }
                let result = await attempt("keyboard-interactive authentication", deadline: deadline) { s in
                    care_ssh2_session_abstract_set(s, UnsafeMutableRawPointer(answer.pointer))
                    let rc = care_ssh2_userauth_keyboard_interactive(s, user)
                    care_ssh2_session_abstract_set(s, nil)
                    return rc
                }
                switch result {
                case .success: authenticatedWith = "keyboard-interactive"; return
                case let .failure(code, message) where code != LIBSSH2_ERROR_AUTHENTICATION_FAILED:
                    throw SSHError.libssh2(peer: peer, operation: "keyboard-interactive authentication", code: code, message: message)
                case .failure: break
                case let .error(error): throw error
                }
            }
        }
        throw SSHError.authenticationFailed(peer: peer, user: user, offered: offered, tried: tried,
                                            keyType: credentials.privateKeyPath.flatMap(PrivateKeyType.of(file:)))
    }

    /// What sessions offer besides host keys. libssh2 1.10 would also offer RC4 (arcfour),
    /// 3DES, Blowfish, CAST, CBC modes, HMAC-MD5/RIPEMD and 1024-bit Diffie-Hellman: a device
    /// offering only those gets a negotiation failure naming both lists, not a broken cipher.
    /// Every Junos release in support offers AES-CTR, HMAC-SHA1/SHA2 and ECDH or group 14.
    static let keyExchanges = ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384",
                               "ecdh-sha2-nistp521", "diffie-hellman-group-exchange-sha256", "diffie-hellman-group16-sha512",
                               "diffie-hellman-group18-sha512", "diffie-hellman-group14-sha256", "diffie-hellman-group14-sha1"]
    static let ciphers = ["aes128-ctr", "aes192-ctr", "aes256-ctr"]
    static let macs = ["hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"]

    /// Sets ``keyExchanges``, ``ciphers`` and ``macs`` (libssh2 skips names it does not know).
    /// A libssh2 that knows none of a list would keep its own defaults, weak ones included: the
    /// session is refused instead.
    static func preferAlgorithms(_ raw: OpaquePointer, peer: String) throws(SSHError) {
        let lists: [(Int32, [String], String)] = [
            (LIBSSH2_METHOD_KEX, keyExchanges, "key exchange"),
            (LIBSSH2_METHOD_CRYPT_CS, ciphers, "cipher"), (LIBSSH2_METHOD_CRYPT_SC, ciphers, "cipher"),
            (LIBSSH2_METHOD_MAC_CS, macs, "MAC"), (LIBSSH2_METHOD_MAC_SC, macs, "MAC"),
        ]
        for (method, names, category) in lists where libssh2_session_method_pref(raw, method, names.joined(separator: ",")) != 0 {
            throw .handshake(peer: peer, message: "this libssh2 (\(libssh2Version)) supports none of the \(category) algorithms care-agent allows (\(names.joined(separator: ",")))")
        }
    }

    private static func isNegotiationFailure(_ code: Int32) -> Bool {
        code == LIBSSH2_ERROR_KEX_FAILURE || code == LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE || code == LIBSSH2_ERROR_HOSTKEY_INIT
    }

    private static func explainHandshake(code: Int32, message: String) -> String {
        if isNegotiationFailure(code) {
            return "\(message) (libssh2 error \(code)); no common key exchange, host key, cipher or MAC algorithm "
                + "(care-agent offers ciphers \(ciphers.joined(separator: ",")) and MACs \(macs.joined(separator: ",")); "
                + "libssh2 1.10 checks RSA host keys only as ssh-rsa (SHA-1): give the device an ed25519 or ecdsa host key, or allow ssh-rsa)"
        }
        if code == LIBSSH2_ERROR_SOCKET_DISCONNECT || code == LIBSSH2_ERROR_SOCKET_RECV {
            return "the server closed the connection during the handshake (\(message)); check the port and MaxStartups/connection limits"
        }
        return "\(message) (libssh2 error \(code))"
    }

    /// Public key authentication with the key in memory when the credentials carry it, else
    /// from the file; the file too when libssh2 cannot take that key format from memory (it
    /// fails before sending anything then).
    private func publicKeyAttempt(_ credentials: SSHCredentials, keyPath: String, deadline: ContinuousClock.Instant) async -> AttemptResult {
        let user = credentials.user
        let passphrase = credentials.passphrase ?? ""
        // With a public key file of its own (an OpenSSH certificate, say) libssh2 sends that file's
        // blob: only a key alone signs in-process.
        if let key = credentials.signingKey, credentials.publicKeyPath == nil {
            return await attempt("public key authentication", deadline: deadline) { s in
                let box = SigningKeyBox(key)
                var abstract: UnsafeMutableRawPointer? = Unmanaged.passUnretained(box).toOpaque()
                // The callback runs only inside this call, while `box` and `abstract` live.
                return withExtendedLifetime(box) {
                    key.publicKeyBlob.withUnsafeBufferPointer { blob in
                        libssh2_userauth_publickey(s, user, blob.baseAddress, blob.count, signWithKeyInMemory, &abstract)
                    }
                }
            }
        }
        if let key = credentials.privateKey, credentials.publicKeyPath == nil {
            let result = await attempt("public key authentication", deadline: deadline) { s in
                key.withUnsafeBufferPointer { bytes in
                    bytes.withMemoryRebound(to: CChar.self) {
                        care_ssh2_userauth_publickey_frommemory(s, user, $0.baseAddress, $0.count, passphrase)
                    }
                }
            }
            guard case let .failure(code, _) = result, code == LIBSSH2_ERROR_FILE || code == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED else { return result }
        }
        return await attempt("public key authentication", deadline: deadline) { s in
            care_ssh2_userauth_publickey_fromfile(s, user, credentials.publicKeyPath, keyPath, passphrase)
        }
    }

    // MARK: - Driving libssh2 calls on the loop

    enum AttemptResult: Sendable {
        case success
        case failure(code: Int32, message: String)
        case error(SSHError)
    }

    /// Runs an int-returning libssh2 call until it stops saying EAGAIN; a negative code becomes a result.
    private func attempt(_ operation: String, deadline: ContinuousClock.Instant,
                         _ body: @escaping @Sendable (OpaquePointer) -> Int32) async -> AttemptResult {
        do {
            try await call(operation, deadline: deadline, body)
            return .success
        } catch let SSHError.libssh2(_, _, code, message) {
            return .failure(code: code, message: message)
        } catch let error as SSHError {
            return .error(error)
        } catch {
            return .error(.libssh2(peer: peer, operation: operation, code: -1, message: "\(error)"))
        }
    }

    /// Runs an int-returning libssh2 call on the loop until it completes; negative codes throw.
    @discardableResult
    func call(_ operation: String, deadline: ContinuousClock.Instant?, tick: Duration? = nil,
              _ body: @escaping @Sendable (OpaquePointer) -> Int32) async throws -> Int32 {
        try await drive(operation, deadline: deadline, tick: tick) { s -> LibSSH2Outcome<Int32> in
            let rc = body(s)
            if rc == LIBSSH2_ERROR_EAGAIN { return .again }
            return rc < 0 ? .failed(rc) : .ok(rc)
        }
    }

    /// Runs a pointer-returning libssh2 call (NULL with EAGAIN as the last error means again).
    func callReturningPointer(_ operation: String, deadline: ContinuousClock.Instant?,
                              _ body: @escaping @Sendable (OpaquePointer) -> OpaquePointer?) async throws -> SendablePointer {
        try await drive(operation, deadline: deadline, tick: nil) { s -> LibSSH2Outcome<SendablePointer> in
            if let pointer = body(s) { return .ok(SendablePointer(pointer)) }
            let code = libssh2_session_last_errno(s)
            return code == LIBSSH2_ERROR_EAGAIN ? .again : .failed(code == 0 ? -1 : code)
        }
    }

    /// The one place libssh2 meets the event loop: EAGAIN waits for the socket direction libssh2
    /// asks for; a passed deadline becomes ``SSHError/timeout``; a failure throws with libssh2's
    /// own message. `body` runs only on the loop thread.
    func drive<Value: Sendable>(_ operation: String, deadline: ContinuousClock.Instant?, tick: Duration?,
                                _ body: @escaping @Sendable (OpaquePointer) -> LibSSH2Outcome<Value>) async throws -> Value {
        guard !closed || operation == "disconnect", let raw else { throw SSHError.closed(peer: peer) }
        let session = SendablePointer(raw)
        let fd = self.fd
        let peer = self.peer
        let started = ContinuousClock.now
        do {
            return try await loop.drive(fd: fd, deadline: deadline, tick: tick) { () throws -> IOStep<Value> in
                switch body(session.pointer) {
                case let .ok(value):
                    return .done(value)
                case let .failed(code):
                    throw SSHError.libssh2(peer: peer, operation: operation, code: code,
                                           message: SSHSession.lastError(session.pointer))
                case .again:
                    let directions = libssh2_session_block_directions(session.pointer)
                    var events: IOEvents = []
                    if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 {
                        events.insert(.read)
                        // Re-arm quick ACKs so a delayed ACK does not stall each request/response turn.
                        var one: Int32 = 1
                        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
                    }
                    if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events.insert(.write) }
                    return .wait(events.isEmpty ? .read : events)
                }
            }
        } catch IOLoopError.timedOut {
            let budget = deadline.map { started.duration(to: $0) } ?? .zero
            throw SSHError.timeout(peer: peer, operation: operation, seconds: (budget.seconds * 10).rounded() / 10)
        } catch IOLoopError.cancelled {
            throw CancellationError()
        }
    }

    static func lastError(_ session: OpaquePointer) -> String {
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        _ = libssh2_session_last_error(session, &message, &length, 0)
        guard let message, length > 0 else { return "unknown error" }
        return String(cString: message)
    }
}

/// What one attempt of a libssh2 call achieved.
enum LibSSH2Outcome<Value: Sendable>: Sendable {
    case again
    case ok(Value)
    case failed(Int32)
}

/// A C pointer handed to the loop thread. Only the owning wrapper creates and frees it.
struct SendablePointer: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// The key a sign callback signs with, reached through libssh2's `abstract` pointer.
private final class SigningKeyBox {
    let key: SSHSigningKey
    init(_ key: SSHSigningKey) { self.key = key }
}

/// libssh2's public key sign callback: signs `data` with the ``SigningKeyBox`` `abstract` points
/// at. The signature is malloc'ed: libssh2 frees it with the session's allocator, the default
/// (malloc/free) for our sessions.
private let signWithKeyInMemory: @convention(c) (
    OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?, UnsafeMutablePointer<Int>?,
    UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
) -> Int32 = { _, signature, signatureLength, data, dataLength, abstract in
    guard let signature, let signatureLength, let data, let pointer = abstract?.pointee else { return -1 }
    let key = Unmanaged<SigningKeyBox>.fromOpaque(pointer).takeUnretainedValue().key
    guard let bytes = try? key.sign(UnsafeRawBufferPointer(start: data, count: dataLength)),
          let out = malloc(max(bytes.count, 1)) else { return -1 }
    bytes.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    signature.pointee = out.assumingMemoryBound(to: UInt8.self)
    signatureLength.pointee = bytes.count
    return 0
}
