import CLibSSH2
import Foundation
import IOLoop
import Logging

extension SSHSession {
    /// What sessions offer: ``keyExchanges``, ``ciphers``, ``macs`` and `hostKeys` (the order
    /// the session set), each as far as this libssh2 supports them.
    static func clientOffer(hostKeys: [String]) -> SSHAlgorithmOffer {
        _ = libssh2Initialised
        var supported: [Int32: [String]] = [:]
        if let raw = care_ssh2_session_init(nil) {
            defer { libssh2_session_free(raw) }
            for method in [LIBSSH2_METHOD_KEX, LIBSSH2_METHOD_HOSTKEY, LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_MAC_CS] {
                var names: UnsafeMutablePointer<UnsafePointer<CChar>?>?
                let count = libssh2_session_supported_algs(raw, method, &names)
                guard count > 0, let names else { continue }
                supported[method] = (0..<Int(count)).compactMap { names[$0].map { String(cString: $0) } }
                libssh2_free(raw, names)
            }
        }
        func offered(_ ours: [String], _ method: Int32) -> [String] { ours.filter { supported[method]?.contains($0) ?? true } }
        let ciphers = offered(Self.ciphers, LIBSSH2_METHOD_CRYPT_CS), macs = offered(Self.macs, LIBSSH2_METHOD_MAC_CS)
        return SSHAlgorithmOffer(serverVersion: "SSH-2.0-libssh2_\(libssh2Version)", keyExchange: offered(keyExchanges, LIBSSH2_METHOD_KEX),
                                 hostKeys: offered(hostKeys, LIBSSH2_METHOD_HOSTKEY), ciphers: ciphers, ciphersToClient: ciphers,
                                 macs: macs, macsToClient: macs)
    }

    static var libssh2Version: String { String(cString: libssh2_version(0)) }

    /// Which algorithm categories `host`:`port` shares nothing with this client in, read from a
    /// connection of its own (our identification sent, the server's key-exchange init read,
    /// closed); nil when the offer cannot be read or every category has a match.
    static func explainNegotiation(host: String, port: Int, hostKeys: [String], timeout: Duration, loop: IOLoop,
                                   logger: Logger) async -> String? {
        let deadline = ContinuousClock.now + timeout
        let offer: SSHAlgorithmOffer
        do {
            let fd = try await TCPConnector.connect(host: host, port: port, deadline: deadline, timeout: timeout, loop: loop)
            let stream = FileDescriptorStream(fd: fd, loop: loop)
            do {
                try await stream.write(Array("SSH-2.0-care-agent\r\n".utf8), deadline: deadline)
                var reader = SSHAlgorithmOffer.Reader()
                var read: SSHAlgorithmOffer?
                while read == nil {
                    guard let bytes = try await stream.read(maximum: 16 * 1024, deadline: deadline) else {
                        throw SSHError.closed(peer: "\(host):\(port)")
                    }
                    read = try reader.feed(bytes)
                }
                offer = read!
                await stream.close()
            } catch {
                await stream.close()
                throw error
            }
        } catch {
            logger.debug("cannot read the server's algorithms", metadata: ["device.address": "\(host):\(port)", "error": "\(error)"])
            return nil
        }
        let client = clientOffer(hostKeys: hostKeys)
        let mismatches = offer.mismatches(with: client)
        guard !mismatches.isEmpty else { return nil }
        return mismatches.map { m in
            var text = "no common \(m.category) algorithm: the device (\(offer.serverVersion)) offers \(m.server.joined(separator: ",")); "
                + "care-agent (libssh2 \(libssh2Version)) offers \(m.client.joined(separator: ",")) "
                + "(on Junos the device's list is '\(m.junosStatement)')"
            if m.category == "host key", m.server.contains(where: { $0.hasPrefix("rsa-sha2-") }), !m.server.contains("ssh-rsa") {
                text += "; libssh2 1.10 checks RSA host keys only as ssh-rsa (SHA-1): give the device an ed25519 or ecdsa host key, or allow ssh-rsa"
            }
            return text
        }.joined(separator: "; ")
    }
}
