import Foundation

/// A TCP listener on 127.0.0.1 that writes `text` over and over to whoever connects, until they
/// leave: a port that is not an SSH server and never stops talking (a misconfigured service, a
/// hostile host).
public final class ChatterServer: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let stopped = NSLock()
    private var isStopped = false

    public init(text: String) throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard listener >= 0,
              withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }) == 0,
              listen(listener, 16) == 0,
              withUnsafeMutablePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }) == 0
        else {
            let reason = String(cString: strerror(errno))
            if listener >= 0 { close(listener) }
            throw HarnessError("cannot listen on 127.0.0.1: \(reason)")
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        let bytes = Array(String(repeating: text, count: max(1, 4096 / max(1, text.utf8.count))).utf8)
        let thread = Thread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 { return }
                var noSignal: Int32 = 1
                _ = setsockopt(client, SOL_SOCKET, SO_KEEPALIVE, &noSignal, socklen_t(MemoryLayout<Int32>.size))
                Thread {
                    while bytes.withUnsafeBytes({ send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 {}
                    close(client)
                }.start()
            }
        }
        thread.start()
    }

    deinit { stop() }

    public func stop() {
        stopped.lock()
        defer { stopped.unlock() }
        guard !isStopped else { return }
        isStopped = true
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}
