import Foundation

/// A numeric IPv4 or IPv6 address and port, as the syslog receiver binds and its senders come from.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    /// The address in its canonical text form (`192.0.2.1`, `2001:db8::1`); an IPv4-mapped IPv6
    /// sender (`::ffff:192.0.2.1`) is shown as IPv4, so that it matches an inventory address.
    public let host: String
    public let port: Int
    let storage: sockaddr_storage
    let length: socklen_t

    /// Parses a numeric address; nil for a name or garbage (the receiver never resolves names).
    public init?(host: String, port: Int) {
        var storage = sockaddr_storage()
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            address.sin_addr = v4
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: address) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, host, &v6) == 1 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
            address.sin6_addr = v6
            withUnsafeMutableBytes(of: &storage) { raw in withUnsafeBytes(of: address) { raw.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            return nil
        }
        self.storage = storage
        self.port = port
        self.host = SocketAddress.text(of: storage) ?? host
    }

    /// From what recvfrom(2) or accept(2) filled in; nil for another family.
    init?(storage: sockaddr_storage) {
        guard let host = SocketAddress.text(of: storage) else { return nil }
        self.storage = storage
        self.host = host
        var copy = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            port = withUnsafeBytes(of: &copy) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in.self).sin_port)) }
        default:
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            port = withUnsafeBytes(of: &copy) { Int(UInt16(bigEndian: $0.load(as: sockaddr_in6.self).sin6_port)) }
        }
    }

    static func text(of storage: sockaddr_storage) -> String? {
        var copy = storage
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            var address = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in.self) }.sin_addr
            guard inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        case AF_INET6:
            var address = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in6.self) }.sin6_addr
            let bytes = withUnsafeBytes(of: &address) { Array($0) }
            // ::ffff:a.b.c.d (a dual-stack socket's IPv4 sender) → a.b.c.d.
            if bytes[0 ..< 10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                return bytes[12 ..< 16].map(String.init).joined(separator: ".")
            }
            guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        default:
            return nil
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var family: Int32 { Int32(storage.ss_family) }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var copy = storage
        return withUnsafePointer(to: &copy) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public static func == (a: SocketAddress, b: SocketAddress) -> Bool { a.host == b.host && a.port == b.port }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
    }
}

/// The listening sockets systemd passed to this process (socket activation, the semantics of
/// sd_listen_fds(3) without libsystemd): `LISTEN_PID` must be this process, `LISTEN_FDS` counts
/// the descriptors from 3 on, `LISTEN_FDNAMES` names them (`FileDescriptorName=` in the socket
/// unit, the unit's name by default).
public struct SystemdListenSockets: Sendable, Equatable {
    /// One passed socket: its descriptor, name and type (`SOCK_STREAM` or `SOCK_DGRAM`).
    public struct Socket: Sendable, Equatable {
        public var fd: Int32
        public var name: String
        public var type: Int32
    }

    public static let firstDescriptor: Int32 = 3
    public var sockets: [Socket]

    /// Reads the environment; no sockets when it was meant for another process (a parent's
    /// variables inherited) or is malformed.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, pid: Int32 = getpid()) {
        sockets = []
        guard let listenPID = environment["LISTEN_PID"].flatMap({ Int32($0) }), listenPID == pid,
              let count = environment["LISTEN_FDS"].flatMap({ Int32($0) }), count > 0, count < 1024 else { return }
        let names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        for i in 0 ..< count {
            let fd = Self.firstDescriptor + i
            var type: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { continue }
            // Not for a child: an SSH ProxyCommand must not inherit the syslog port.
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            sockets.append(Socket(fd: fd, name: Int(i) < names.count ? names[Int(i)] : "unknown", type: type))
        }
    }

    /// The sockets for the syslog receiver: those named `syslog` (or after the
    /// care-agent-syslog.socket unit); all of them when systemd passed no names.
    public var syslog: [Socket] {
        sockets.filter { $0.name == "syslog" || $0.name == "care-agent-syslog.socket" || $0.name == "unknown" }
    }
}
