import Foundation

/// A private CA and a server certificate for 127.0.0.1 made with the openssl command line.
public struct TestCertificates: Sendable {
    public let caCertificate: String
    public let serverCertificate: String
    public let serverKey: String

    /// Writes `<prefix>ca.crt`, `<prefix>server.crt` and `<prefix>server.key` under `directory`.
    public init(in directory: URL, prefix: String = "") throws {
        let d = directory.path + "/" + prefix
        caCertificate = d + "ca.crt"
        serverCertificate = d + "server.crt"
        serverKey = d + "server.key"
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try runProgram("/usr/bin/openssl", ["req", "-x509"] + ec + [
            "-keyout", d + "ca.key", "-out", caCertificate, "-days", "2", "-subj", "/CN=care-agent test CA \(prefix)",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try runProgram("/usr/bin/openssl", ["req"] + ec + ["-keyout", serverKey, "-out", d + "server.csr", "-subj", "/CN=127.0.0.1"])
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: d + "server.ext", atomically: true, encoding: .utf8)
        try runProgram("/usr/bin/openssl", [
            "x509", "-req", "-in", d + "server.csr", "-CA", caCertificate, "-CAkey", d + "ca.key", "-CAcreateserial",
            "-out", serverCertificate, "-days", "2", "-extfile", d + "server.ext",
        ])
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
public func waitForListener(port: Int, timeout: Duration = .seconds(5), process: ChildProcess? = nil, name: String) throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        close(fd)
        if rc == 0 { return }
        if let process, !process.isRunning { throw HarnessError("\(name) exited before listening on port \(port)") }
        usleep(50_000)
    }
    throw HarnessError("\(name) is not listening on 127.0.0.1:\(port) after \(timeout)")
}

/// nginx (Debian's nginx-light, which has the DAV module) serving HTTPS on 127.0.0.1 with a test
/// CA: `/care/bundles/` stores PUT files under `www/` (bearer token checked when given);
/// `/busy/` answers 503, `/dup/` 409 and `/bad/` 400; a bundle named `poison-...` answers 500
/// and one named `conflict-...` 409 wherever it goes (a server that fails on one bundle and
/// takes the others). With `upstreamPort`, `/care-support/` is a reverse proxy to the HTTPS
/// server on that port, the prefix removed (a support server published under a path).
public final class NginxHarness: @unchecked Sendable {
    public let directory: URL
    public let port: Int
    public let certificates: TestCertificates
    public let process: ChildProcess
    public static let nginxPath = "/usr/sbin/nginx"

    /// The bundle collection URL.
    public var bundlesURL: String { "https://127.0.0.1:\(port)/care/bundles/" }
    public func url(_ path: String) -> String { "https://127.0.0.1:\(port)\(path)" }
    /// Where a PUT to `/care/bundles/NAME` lands.
    public func received(_ name: String) -> String { directory.path + "/www/care/bundles/" + name }
    public var accessLog: String { (try? String(contentsOfFile: directory.path + "/access.log", encoding: .utf8)) ?? "" }

    public init(directory: URL, token: String? = nil, upstreamPort: Int? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.nginxPath) else {
            throw HarnessError("\(Self.nginxPath) is missing: apt-get install nginx-light")
        }
        self.directory = directory
        certificates = try TestCertificates(in: directory)
        port = try SSHDHarness.freePort(on: "127.0.0.1")
        let d = directory.path
        for sub in ["tmp", "www/care/bundles"] {
            try FileManager.default.createDirectory(atPath: d + "/" + sub, withIntermediateDirectories: true)
        }
        let tokenCheck = token.map { "if ($http_authorization != \"Bearer \($0)\") { return 401 \"no or wrong token\\n\"; }" } ?? ""
        let config = """
        \(getuid() == 0 ? "user root root;" : "")
        worker_processes 1;
        error_log \(d)/error.log info;
        pid \(d)/nginx.pid;
        events { worker_connections 64; }
        http {
            # What the uploader sent, for the tests to check.
            log_format upload '$request_method $uri $status sha256=$http_x_care_bundle_sha256 type=$content_type length=$content_length';
            access_log \(d)/access.log upload;
            client_body_temp_path \(d)/tmp/body;
            proxy_temp_path \(d)/tmp/proxy;
            fastcgi_temp_path \(d)/tmp/fastcgi;
            uwsgi_temp_path \(d)/tmp/uwsgi;
            scgi_temp_path \(d)/tmp/scgi;
            server {
                listen 127.0.0.1:\(port) ssl;
                ssl_certificate \(certificates.serverCertificate);
                ssl_certificate_key \(certificates.serverKey);
                location /care/bundles/ {
                    \(tokenCheck)
                    dav_methods PUT;
                    create_full_put_path on;
                    root \(d)/www;
                    client_max_body_size 50m;
                }
                location ~ /poison-[^/]*$ { return 500 "cannot process this bundle\\n"; }
                location ~ /conflict-[^/]*$ { return 409 "a different bundle with this id is stored already\\n"; }
                location /busy/ { return 503 "overloaded\\n"; }
                location /dup/ { return 409 "already have it\\n"; }
                location /bad/ { return 400 "bad bundle name\\n"; }
                location ~ /bad-[^/]*$ { return 400 "bad bundle name\\n"; }
                # Closes the connection without an answer once the body is in (a crash, an IPS).
                location ~ /reset-[^/]*$ { return 444; }
                # Refuses every bundle alike (an intake older than the agent, a WAF).
                location /refuse/ { return 422 "unsupported bundle format version\\n"; }
                # Busy for one bundle only (its case cannot be recorded now).
                location ~ /casefail-[^/]*$ { return 503 "the case could not be recorded, try again later\\n"; }
                location /later/ { add_header Retry-After 300 always; return 429 "slow down\\n"; }
                \(upstreamPort.map { "location /care-support/ { proxy_pass https://127.0.0.1:\($0)/; }" } ?? "")
            }
        }
        """
        try config.write(toFile: d + "/nginx.conf", atomically: true, encoding: .utf8)
        process = try ChildProcess(Self.nginxPath, ["-e", d + "/error.log", "-c", d + "/nginx.conf", "-p", d, "-g", "daemon off;"],
                                   stdout: d + "/nginx.out", stderr: d + "/nginx.err")
        do {
            try waitForListener(port: port, process: process, name: "nginx")
        } catch {
            stop()
            let log = (try? String(contentsOfFile: d + "/nginx.err", encoding: .utf8)) ?? ""
            throw HarnessError("\(error); \(log)")
        }
    }

    /// SIGTERM (nginx unblocks the signals it handles, so its workers go too); SIGKILL after 3 s.
    public func stop() {
        process.signal(SIGTERM)
        let deadline = ContinuousClock.now + .seconds(3)
        while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        process.signal(SIGKILL)
        process.wait()
    }
}

/// tinyproxy on 127.0.0.1 allowing CONNECT to one port, logging to `log` in `directory`.
public final class TinyproxyHarness: @unchecked Sendable {
    public let port: Int
    public let process: ChildProcess
    public let logPath: String
    public static let tinyproxyPath = "/usr/bin/tinyproxy"

    public var url: String { "http://127.0.0.1:\(port)" }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// `basicAuth`: the proxy wants this user and password (`407` without them).
    public init(directory: URL, connectPort: Int, basicAuth: (user: String, password: String)? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.tinyproxyPath) else {
            throw HarnessError("\(Self.tinyproxyPath) is missing: apt-get install tinyproxy")
        }
        port = try SSHDHarness.freePort(on: "127.0.0.1")
        let d = directory.path
        logPath = d + "/tinyproxy.log"
        let config = """
        Port \(port)
        Listen 127.0.0.1
        Timeout 30
        Allow 127.0.0.1
        ConnectPort \(connectPort)
        LogFile "\(logPath)"
        LogLevel Info
        MaxClients 10
        """ + (basicAuth.map { "\nBasicAuth \($0.user) \($0.password)" } ?? "")
        try config.write(toFile: d + "/tinyproxy.conf", atomically: true, encoding: .utf8)
        process = try ChildProcess(Self.tinyproxyPath, ["-d", "-c", d + "/tinyproxy.conf"], stdout: d + "/tinyproxy.out", stderr: d + "/tinyproxy.err")
        do {
            try waitForListener(port: port, process: process, name: "tinyproxy")
        } catch {
            stop()
            throw error
        }
    }

    /// SIGKILL: a child spawned from a test thread inherits that thread's blocked signals, and
    /// tinyproxy (unlike nginx) does not unblock SIGTERM; its log is written line by line anyway.
    public func stop() {
        process.signal(SIGKILL)
        process.wait()
    }
}
