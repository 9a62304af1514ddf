/// The algorithms an SSH server offers in its key-exchange init (SSH_MSG_KEXINIT, RFC 4253
/// section 7.1), read from the plain-text start of a connection. libssh2 reports a failed
/// negotiation only as "unable to exchange encryption keys"; comparing this offer with the
/// client's says which of key exchange, host key, cipher or MAC has nothing in common.
public struct SSHAlgorithmOffer: Sendable, Equatable {
    /// The server's identification line (`SSH-2.0-OpenSSH_9.2p1 Debian-2`).
    public var serverVersion: String
    public var keyExchange: [String]
    public var hostKeys: [String]
    /// Client to server; the server to client list is compared too (`ciphersToClient`).
    public var ciphers: [String]
    public var ciphersToClient: [String]
    public var macs: [String]
    public var macsToClient: [String]

    /// A category in which the client and the server share no algorithm.
    public struct Mismatch: Sendable, Equatable {
        /// "key exchange", "host key", "cipher", "MAC".
        public var category: String
        public var server: [String]
        public var client: [String]
        /// The Junos statement that sets the device's list.
        public var junosStatement: String
    }

    /// The categories with no algorithm in common with `client`, in negotiation order. A MAC
    /// mismatch counts only when the ciphers both sides share include one that needs a MAC (the
    /// AEAD ciphers carry their own).
    public func mismatches(with client: SSHAlgorithmOffer) -> [Mismatch] {
        var found: [Mismatch] = []
        func check(_ category: String, _ server: [String], _ ours: [String], _ statement: String) {
            guard !ours.contains(where: server.contains) else { return }
            found.append(Mismatch(category: category, server: server, client: ours, junosStatement: statement))
        }
        // The pseudo-algorithms (ext-info-s, kex-strict-s-v00@openssh.com) are signals, not methods.
        let kex = keyExchange.filter { !$0.hasPrefix("ext-info-") && !$0.hasPrefix("kex-strict-") }
        check("key exchange", kex, client.keyExchange, "set system services ssh key-exchange")
        check("host key", hostKeys, client.hostKeys, "set system services ssh hostkey-algorithm")
        check("cipher", ciphers, client.ciphers, "set system services ssh ciphers")
        check("cipher", ciphersToClient, client.ciphers, "set system services ssh ciphers")
        let shared = client.ciphers.filter(ciphers.contains)
        let aead = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
        if !shared.isEmpty, !shared.allSatisfy(aead.contains) {
            check("MAC", macs, client.macs, "set system services ssh macs")
            check("MAC", macsToClient, client.macs, "set system services ssh macs")
        }
        return found.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
    }

    /// Why the offer could not be read.
    public enum ReadError: Error, Equatable, Sendable, CustomStringConvertible {
        case notSSH(line: String)
        case tooLarge(what: String, limit: Int)
        case malformed(String)

        public var description: String {
            switch self {
            case let .notSSH(line): return "the server did not identify as SSH 2.0 (first line: \(line.prefix(80)))"
            case let .tooLarge(what, limit): return "\(what) exceeds \(limit) bytes"
            case let .malformed(what): return "malformed key-exchange init: \(what)"
            }
        }
    }

    /// Reads the offer from the bytes a server sends first, fed as they arrive.
    public struct Reader: Sendable {
        /// RFC 4253: identification lines of at most 255 bytes, packets of at most 35,000.
        public static let identificationLimit = 8 * 1024
        public static let packetLimit = 35_000
        private var buffer: [UInt8] = []
        private var version: String?
        private var linesRead = 0

        public init() {}

        /// The offer once the whole packet has arrived, nil until then.
        public mutating func feed(_ bytes: some Collection<UInt8>) throws(ReadError) -> SSHAlgorithmOffer? {
            buffer.append(contentsOf: bytes)
            // Lines before the identification are allowed (RFC 4253 4.2); each is consumed whole.
            while version == nil {
                guard let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) else {
                    if linesRead + buffer.count > Self.identificationLimit { throw .tooLarge(what: "the server's identification", limit: Self.identificationLimit) }
                    return nil
                }
                linesRead += newline + 1
                guard linesRead <= Self.identificationLimit else {
                    throw .tooLarge(what: "the server's identification", limit: Self.identificationLimit)
                }
                var line = String(decoding: buffer[..<newline], as: UTF8.self)
                if line.hasSuffix("\r") { line.removeLast() }
                buffer.removeSubrange(...newline)
                if line.hasPrefix("SSH-") {
                    guard line.hasPrefix("SSH-2.0-") || line.hasPrefix("SSH-1.99-") else { throw .notSSH(line: line) }
                    version = line
                }
            }
            guard buffer.count >= 4 else { return nil }
            var header = SSHWireReader(Array(buffer.prefix(4)))
            guard let length = header.uint32() else { return nil }
            guard length <= Self.packetLimit else { throw .tooLarge(what: "the first packet", limit: Self.packetLimit) }
            guard buffer.count >= 4 + length else { return nil }
            return try Self.parse(packet: Array(buffer[4 ..< 4 + length]), version: version ?? "")
        }

        static func parse(packet: [UInt8], version: String) throws(ReadError) -> SSHAlgorithmOffer {
            var reader = SSHWireReader(packet)
            guard let padding = reader.take(1)?.first, Int(padding) < packet.count - 1 else { throw .malformed("padding length") }
            var payload = SSHWireReader(Array(packet[1 ..< packet.count - Int(padding)]))
            guard payload.take(1) == [20] else { throw .malformed("the first packet is not SSH_MSG_KEXINIT") }
            guard payload.take(16) != nil else { throw .malformed("no cookie") }
            var lists: [[String]] = []
            for _ in 0..<6 {
                guard let list = payload.string() else { throw .malformed("name-list \(lists.count + 1) is cut off") }
                lists.append(String(decoding: list, as: UTF8.self).split(separator: ",").map(String.init))
            }
            return SSHAlgorithmOffer(serverVersion: version, keyExchange: lists[0], hostKeys: lists[1], ciphers: lists[2],
                                     ciphersToClient: lists[3], macs: lists[4], macsToClient: lists[5])
        }
    }
}
