import Foundation

/// `[upload]` of agent.conf: where finished bundles are sent, how the server is verified, and how
/// often to try. No url: uploading is off and bundles stay in the outbox.
public struct UploadSettings: Sendable, Equatable {
    /// The collection URL, ending in "/": each bundle is PUT to `<url><file name>`.
    public var url: String?
    /// PEM certificates that verify the server; nil: the system store.
    public var caFile: String?
    /// PEM client certificate and key for mutual TLS.
    public var clientCertificate: String?
    public var clientKey: String?
    /// The bearer token comes from a file or a systemd credential, never from agent.conf.
    public var tokenFile: String?
    public var tokenCredential: String?
    /// An HTTP proxy; HTTPS goes through it with CONNECT.
    public var proxy: String?
    /// `user:password` for the proxy, read from this file at each request (`proxy-credentials-file`),
    /// never from agent.conf.
    public var proxyCredentialsFile: String?
    /// How often the outbox is scanned when nothing else wakes the uploader.
    public var interval: Duration = .seconds(60)
    /// One whole upload: connect, TLS, body, answer.
    public var timeout: Duration = .seconds(120)
    /// The wait after a failed attempt; doubled after each further failure, up to ``maxBackoff``.
    public var retryBackoff: Duration = .seconds(30)
    public var maxBackoff: Duration = .seconds(3600)
    /// Move sent bundles to `<outbox>/sent/` instead of deleting them.
    public var keepSent = false

    public init(url: String? = nil) {
        self.url = url.map(UploadSettings.normalized)
    }

    /// Adds the final "/" that makes `<url><file name>` a path below the collection.
    static func normalized(_ url: String) -> String { url.hasSuffix("/") ? url : url + "/" }

    /// `user:password` for the proxy from `proxy-credentials-file`, read now (a changed password
    /// is used at the next request); nil when none is configured.
    public func proxyCredentials() throws(UploadError) -> String? {
        guard let proxyCredentialsFile else { return nil }
        return try ProxyURL.credentials(proxyCredentialsFile)
    }

    /// The bearer token, read now (so that a rotated token is used at the next upload); nil when none is configured.
    public func token(environment: [String: String] = ProcessInfo.processInfo.environment) throws(UploadError) -> String? {
        func read(_ path: String, what: String, unreadable: String) throws(UploadError) -> String {
            let line: String?
            do { line = try SecretFile.firstLine(path, what: what) } catch { throw UploadError("\(error)") }
            guard let line else { throw UploadError(unreadable) }
            return line
        }
        if let tokenFile {
            return try read(tokenFile, what: "token file",
                            unreadable: "cannot read the token file \(tokenFile) (missing, or not readable by this user)")
        }
        if let tokenCredential {
            guard let directory = environment["CREDENTIALS_DIRECTORY"] else {
                throw UploadError("token-credential \(tokenCredential) needs $CREDENTIALS_DIRECTORY (set by systemd's LoadCredential=); not running under systemd?")
            }
            let path = directory + "/" + tokenCredential
            // systemd skips a credential whose file it did not find.
            return try read(path, what: "token credential",
                            unreadable: "systemd passed no credential \(tokenCredential): put the token in /etc/credstore/\(tokenCredential) "
                                + "(root, mode 0600) and restart care-agent; a name the unit does not load needs LoadCredential=\(tokenCredential) in a drop-in")
        }
        return nil
    }
}

extension AgentConfiguration {
    static func apply(_ entry: ConfigurationFile.Entry, to upload: inout UploadSettings,
                      fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) {
        let v = entry.value
        func path() throws(ConfigurationError) -> String {
            guard !v.isEmpty else { throw fail(entry, "expected a file path", false) }
            return v
        }
        switch entry.key {
        case "url":
            if v.isEmpty { upload.url = nil; return }
            let lower = v.lowercased()
            // The URL is shown by `status` and in logs: a password in it would leak (and is the
            // clear-text secret agent.conf refuses elsewhere). Checked before parsing, so that no
            // later message echoes such a URL; the value is never repeated back.
            let authority = v.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first ?? ""
            guard !authority.contains("@") else {
                throw fail(entry, "expected a URL without user:password@; give the upload credential with token-file or token-credential", false)
            }
            guard lower.hasPrefix("https://") || lower.hasPrefix("http://"),
                  let parsed = URLComponents(string: v), let host = parsed.host, !host.isEmpty else {
                throw fail(entry, "expected an https:// URL such as https://support.example.net/care/bundles/, found \"\(v)\"", false)
            }
            guard parsed.user == nil, parsed.password == nil else {
                throw fail(entry, "expected a URL without user:password@; give the upload credential with token-file or token-credential", false)
            }
            guard parsed.query == nil, parsed.fragment == nil else {
                throw fail(entry, "expected a URL without ?query or #fragment: bundle names are appended to it", false)
            }
            upload.url = UploadSettings.normalized(v)
        case "ca-file": upload.caFile = try path()
        case "client-certificate": upload.clientCertificate = try path()
        case "client-key": upload.clientKey = try path()
        case "token-file": upload.tokenFile = try path()
        case "token-credential":
            guard !v.isEmpty, !v.contains("/") else { throw fail(entry, "expected a credential name (LoadCredential=NAME:...), found \"\(v)\"", false) }
            upload.tokenCredential = v
        case "proxy":
            if v.isEmpty { upload.proxy = nil; return }
            if let problem = ProxyURL.problem(v) { throw fail(entry, problem.message, problem.secret) }
            upload.proxy = v
        case "proxy-credentials-file": upload.proxyCredentialsFile = try path()
        case "interval": upload.interval = try positiveDuration(entry, fail: fail)
        case "timeout": upload.timeout = try positiveDuration(entry, fail: fail)
        case "retry-backoff": upload.retryBackoff = try positiveDuration(entry, fail: fail)
        case "max-backoff": upload.maxBackoff = try positiveDuration(entry, fail: fail)
        case "keep-sent":
            switch v.lowercased() {
            case "yes", "true", "on": upload.keepSent = true
            case "no", "false", "off": upload.keepSent = false
            default: throw fail(entry, "expected yes or no, found \"\(v)\"", false)
            }
        case let key where key == "token" || key == "bearer-token" || clearTextSecretKeys.contains(key):
            throw fail(entry, "clear-text secrets are refused in agent.conf: put the token in a file only care-agent can read and set token-file, or use token-credential with systemd LoadCredential=", true)
        default:
            throw fail(entry, "unknown key \"\(entry.key)\" in [upload]; expected url, ca-file, client-certificate, client-key, token-file, token-credential, proxy, proxy-credentials-file, interval, timeout, retry-backoff, max-backoff or keep-sent", true)
        }
    }

    static func positiveDuration(_ entry: ConfigurationFile.Entry, fail: (ConfigurationFile.Entry, String, Bool) -> ConfigurationError) throws(ConfigurationError) -> Duration {
        let d = try duration(entry, fail: fail)
        guard d > .zero else { throw fail(entry, "expected a duration above zero, found \"\(entry.value)\"", false) }
        return d
    }
}

/// Why an upload could not be made or was refused; never contains the token.
public struct UploadError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    /// The system's error number when a local file could not be read (it tells a permission
    /// problem, which is the operator's to fix, from a bad bundle).
    public var errno: Int32?
    public init(_ description: String, errno: Int32? = nil) {
        self.description = description
        self.errno = errno
    }
}

/// A `proxy =` value: what is wrong with it, if anything, and the credentials a
/// `proxy-credentials-file` holds.
enum ProxyURL {
    /// Why `value` is not a proxy URL care-agent takes; `secret`: the message must not repeat the
    /// value (it holds a password).
    static func problem(_ value: String) -> (message: String, secret: Bool)? {
        guard let parsed = URLComponents(string: value.contains("://") ? value : "http://" + value), let host = parsed.host, !host.isEmpty,
              ["http", "https", "socks5", "socks5h"].contains(parsed.scheme?.lowercased() ?? "") else {
            // The value may hold a password that failed to parse: not repeated.
            if value.contains("@") { return ("expected a proxy such as http://proxy.example.net:3128", true) }
            return ("expected a proxy such as http://proxy.example.net:3128, found \"\(value)\"", false)
        }
        if parsed.user != nil || parsed.password != nil {
            return ("clear-text secrets are refused in agent.conf: give the proxy without user:password@ and put user:password in a file only care-agent can read, named by proxy-credentials-file", true)
        }
        return nil
    }

    /// `user:password` from `path` (its first line), read now so that a changed password is used
    /// at the next request; the file must be private (``SecretFile``).
    static func credentials(_ path: String) throws(UploadError) -> String {
        let line: String?
        do { line = try SecretFile.firstLine(path, what: "proxy credentials file") } catch { throw UploadError("\(error)") }
        guard let line else { throw UploadError("cannot read the proxy credentials file \(path) (missing, or not readable by this user)") }
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
            throw UploadError("the proxy credentials file \(path) must hold user:password on its first line")
        }
        return line
    }
}
