import CEpoll
import Foundation
import IOLoop

/// Opens non-blocking TCP connections on the loop (no thread blocks in connect()).
enum TCPConnector {
    /// Every address the name has is tried in order (IPv6 and IPv4, as `ssh` does), each within
    /// its share of what is left of `deadline`; the last one's error is the one thrown when none
    /// answers.
    static func connect(host: String, port: Int, deadline: ContinuousClock.Instant, timeout: Duration,
                        loop: IOLoop) async throws(SSHError) -> Int32 {
        let peer = "\(host):\(port)"
        let addresses = try await resolve(host: host, port: port, peer: peer, deadline: deadline)
        var lastError: SSHError?
        for (index, address) in addresses.enumerated() {
            let left = addresses.count - index
            let now = ContinuousClock.now
            guard now < deadline else { break }
            let attemptDeadline = left == 1 ? deadline : now + now.duration(to: deadline) / left
            do {
                return try await connect(address, peer: peer, port: port, deadline: attemptDeadline, timeout: timeout, loop: loop)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? .connectTimeout(peer: peer, seconds: timeout.seconds)
    }

    private static func connect(_ address: Address, peer: String, port: Int, deadline: ContinuousClock.Instant, timeout: Duration,
                                loop: IOLoop) async throws(SSHError) -> Int32 {
        let fd = socket(Int32(address.family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .connect(peer: peer, message: String(cString: strerror(errno))) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let started = StartedFlag()
        do {
            try await loop.drive(fd: fd, deadline: deadline) { () throws -> IOStep<Void> in
                if !started.value {
                    started.value = true
                    let rc = address.storage.withUnsafeBytes { raw in
                        Glibc.connect(fd, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), address.length)
                    }
                    if rc == 0 { return .done(()) }
                    if errno == EINPROGRESS || errno == EINTR { return .wait(.write) }
                    if errno == ECONNREFUSED { throw SSHError.connectionRefused(peer: peer, port: port) }
                    throw SSHError.connect(peer: peer, message: String(cString: strerror(errno)))
                }
                var error: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
                if error == 0 { return .done(()) }
                if error == ECONNREFUSED { throw SSHError.connectionRefused(peer: peer, port: port) }
                throw SSHError.connect(peer: peer, message: String(cString: strerror(error)))
            }
            return fd
        } catch let error as SSHError {
            await closeOnLoop(fd, loop: loop)
            throw error
        } catch {
            await closeOnLoop(fd, loop: loop)
            if case IOLoopError.timedOut = error { throw .connectTimeout(peer: peer, seconds: timeout.seconds) }
            throw .connect(peer: peer, message: "\(error)")
        }
    }

    private static func closeOnLoop(_ fd: Int32, loop: IOLoop) async {
        _ = try? await loop.submit { loop.deregister(fd: fd); Glibc.close(fd) }
    }

    struct Address: Sendable {
        var family: Int32
        var storage: [UInt8]
        var length: socklen_t
    }

    /// IP literals are converted in place; names go through getaddrinfo on a Dispatch thread
    /// (it blocks), never on the cooperative pool, and are waited for until `deadline` at most:
    /// a resolver that does not answer took its own timeouts and retries (seconds per name)
    /// whatever the connect timeout said. Every address, in the resolver's order.
    static func resolve(host: String, port: Int, peer: String, deadline: ContinuousClock.Instant) async throws(SSHError) -> [Address] {
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            return [Address(family: AF_INET, storage: bytes(of: v4), length: socklen_t(MemoryLayout<sockaddr_in>.size))]
        }
        var v6 = sockaddr_in6()
        let literal = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if inet_pton(AF_INET6, literal, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            return [Address(family: AF_INET6, storage: bytes(of: v6), length: socklen_t(MemoryLayout<sockaddr_in6>.size))]
        }
        let waited = ContinuousClock.now.duration(to: deadline)
        let answer = OneAnswer<Result<[Address], SSHError>>()
        let result: Result<[Address], SSHError> = await withCheckedContinuation { continuation in
            answer.continuation = continuation
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(max(0, waited.seconds) * 1e9))) {
                answer.resume(.failure(.resolve(peer: peer, message: "no answer from the name resolver within \((max(0, waited.seconds) * 10).rounded() / 10) s")))
            }
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var list: UnsafeMutablePointer<addrinfo>?
                let rc = getaddrinfo(host, String(port), &hints, &list)
                guard rc == 0, list != nil else {
                    answer.resume(.failure(.resolve(peer: peer, message: String(cString: gai_strerror(rc)))))
                    return
                }
                defer { freeaddrinfo(list) }
                var addresses: [Address] = []
                var next = list
                while let entry = next {
                    let family = entry.pointee.ai_family
                    if family == AF_INET || family == AF_INET6, let pointer = entry.pointee.ai_addr {
                        let length = Int(entry.pointee.ai_addrlen)
                        let storage = Array(UnsafeRawBufferPointer(start: pointer, count: length))
                        if !addresses.contains(where: { $0.storage == storage }) {
                            addresses.append(Address(family: family, storage: storage, length: socklen_t(length)))
                        }
                    }
                    next = entry.pointee.ai_next
                }
                answer.resume(addresses.isEmpty ? .failure(.resolve(peer: peer, message: "no IPv4 or IPv6 address")) : .success(addresses))
            }
        }
        return try result.get()
    }

    private static func bytes<T>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }
}

/// A continuation resumed by the first of several racing answers (the resolver, its deadline).
final class OneAnswer<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    var continuation: CheckedContinuation<Value, Never>?

    func resume(_ value: Value) {
        lock.lock()
        let waiting = continuation
        continuation = nil
        lock.unlock()
        waiting?.resume(returning: value)
    }
}

/// Whether connect() was issued; touched only on the loop thread.
final class StartedFlag: @unchecked Sendable {
    var value = false
}
