import Glibc

/// SSH failures, each with a message that says what happened and what to do.
/// `peer` is `host:port` as the user wrote it.
public enum SSHError: Error, Equatable, Sendable, CustomStringConvertible {
    case resolve(peer: String, message: String)
    case connect(peer: String, message: String)
    /// Nothing listens on the port (ECONNREFUSED): on Junos, usually NETCONF not turned on.
    case connectionRefused(peer: String, port: Int)
    case connectTimeout(peer: String, seconds: Double)
    case handshake(peer: String, message: String)
    case hostKeyUnknown(host: String, keyType: String, fingerprint: String, knownHostsFile: String)
    case hostKeyChanged(host: String, knownHostsFile: String, line: Int, knownType: String, knownFingerprint: String,
                        sentType: String, sentFingerprint: String)
    case hostKeyRevoked(host: String, fingerprint: String, knownHostsFile: String, line: Int)
    case knownHostsUnreadable(path: String, message: String)
    /// A host key accepted on first use could not be added (a full disk, permissions): the file
    /// itself is unchanged.
    case knownHostsUnwritable(path: String, message: String)
    /// `keyType`: the algorithm of the key tried, when known (an RSA key gets a hint).
    case authenticationFailed(peer: String, user: String, offered: [String], tried: [String], keyType: String? = nil)
    case privateKey(peer: String, path: String, message: String)
    case timeout(peer: String, operation: String, seconds: Double)
    case channel(peer: String, message: String)
    case closed(peer: String)
    /// A jump host session that takes no more tunnels: an earlier tunnel open was given up
    /// half-way (libssh2 would resume it for the next one); a new session is opened instead.
    case tunnelsRetired(peer: String)
    case libssh2(peer: String, operation: String, code: Int32, message: String)

    public var description: String {
        switch self {
        case let .resolve(peer, message):
            return "\(peer): cannot resolve host name: \(message)"
        case let .connect(peer, message):
            return "\(peer): cannot connect: \(message)"
        case let .connectionRefused(peer, port):
            let hint = port == 830
                ? "nothing listens on port 830: on Junos, 'set system services netconf ssh' (and commit) opens NETCONF over SSH there; "
                    + "or set port = 22 to use the SSH port's netconf subsystem"
                : "nothing listens on port \(port): check the port (NETCONF over SSH on Junos is 830, with 'set system services netconf ssh')"
            return "\(peer): connection refused (\(hint))"
        case let .connectTimeout(peer, seconds):
            return "\(peer): no TCP connection within \(SSHError.format(seconds)) (host down, filtered, or wrong port?)"
        case let .handshake(peer, message):
            return "\(peer): SSH handshake failed: \(message)"
        case let .hostKeyUnknown(host, type, fingerprint, file):
            // A known_hosts path with a typo, or a file never created: that is what to fix.
            let missing = access(file, F_OK) != 0
            return "host key for \(host) is not known: the server sent \(type) \(fingerprint), "
                + (missing ? "and the known_hosts file \(file) does not exist (check known-hosts in agent.conf or --known-hosts; " : "which is not in \(file) (")
                + "care-agent hosts scan shows its fingerprints and records them once you checked them; or set host-key-policy = accept-new to trust it on first use)"
        case let .hostKeyChanged(host, file, line, knownType, knownFingerprint, sentType, sentFingerprint):
            let known = knownType == sentType ? knownFingerprint : "\(knownType) \(knownFingerprint)"
            let sent = knownType == sentType ? sentFingerprint : "\(sentType) \(sentFingerprint)"
            return "host key for \(host) has changed: \(file) line \(line) has \(known), the server sent \(sent) "
                + "(possible man-in-the-middle, or the device was replaced: verify, then remove the old entry)"
        case let .hostKeyRevoked(host, fingerprint, file, line):
            return "host key for \(host) is revoked: \(fingerprint) is marked @revoked at \(file) line \(line)"
        case let .knownHostsUnreadable(path, message):
            return "cannot read known_hosts file \(path): \(message)"
        case let .knownHostsUnwritable(path, message):
            return "cannot add the host key to known_hosts file \(path) (the file is unchanged): \(message)"
        case let .authenticationFailed(peer, user, offered, tried, keyType):
            var text = "\(peer): authentication failed for user \(user) (server offered: \(offered.joined(separator: ",")))"
            if !tried.isEmpty, Set(tried) != Set(offered) { text += "; tried: \(tried.joined(separator: ","))" }
            if tried.isEmpty { text += "; none of the configured credentials fit those methods" }
            if keyType == "ssh-rsa", tried.contains("publickey") {
                // libssh2 before 1.11 (Debian 12 has 1.10) signs with SHA-1 only.
                text += "; the key is RSA, signed with SHA-1 (ssh-rsa), which OpenSSH 8.8 and later and recent Junos "
                    + "releases refuse: use an Ed25519 key (ssh-keygen -t ed25519) and put its .pub on the device"
            }
            return text
        case let .privateKey(peer, path, message):
            return "\(peer): cannot use private key \(path): \(message)"
        case let .timeout(peer, operation, seconds):
            return "\(peer): \(operation) did not finish within \(SSHError.format(seconds))"
        case let .channel(peer, message):
            return "\(peer): \(message)"
        case let .closed(peer):
            return "\(peer): SSH session already closed"
        case let .tunnelsRetired(peer):
            return "\(peer): this jump host session takes no more tunnels: an earlier tunnel open through it got no answer in time "
                + "(the jump host could not reach that device, or was too slow); the next attempt opens a new session"
        case let .libssh2(peer, operation, code, message):
            return "\(peer): \(operation) failed: \(message) (libssh2 error \(code))"
        }
    }

    /// True when a deadline passed (so callers can report a timeout rather than a failure).
    public var isTimeout: Bool {
        switch self {
        case .timeout, .connectTimeout: return true
        default: return false
        }
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
