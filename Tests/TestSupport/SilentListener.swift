import Foundation

/// A TCP listener on 127.0.0.1 whose accept queue is full: the kernel drops further SYNs, as a
/// device that is down or filtered does not answer them. Closed on deinit.
public final class SilentListener: @unchecked Sendable {
    public let port: Int
    private let listener: Int32
    private let filler: Int32

    public init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let filler = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        // A backlog of 0 holds one connection: the filler's.
        guard listener >= 0, filler >= 0, bound == 0, listen(listener, 0) == 0,
              withUnsafeMutablePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }) == 0,
              withUnsafePointer(to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, length) } }) == 0
        else {
            let reason = String(cString: strerror(errno))
            close(listener)
            close(filler)
            throw HarnessError("cannot set up a silent listener on 127.0.0.1: \(reason)")
        }
        self.listener = listener
        self.filler = filler
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(filler)
        close(listener)
    }
}
