import Foundation

/// A small HTTPS server (python3's http.server with the test CA's certificate) that takes JSON
/// POSTs the way a ticketing webhook would: each body with Content-Type application/json and the
/// right bearer token is stored as `<n>.json` under `received/` and answered 201 (409 for a body
/// it has already, as an idempotent receiver does); a wrong token gets 401, another content type
/// 415, one whose body says `poison` 500 (a receiver failing on one notice); each POST's
/// `Authorization` header is logged (``authorizations()``). Stopped and started again on the same port, it is the
/// receiver going down and coming back.
public final class WebhookReceiver: @unchecked Sendable {
    public let directory: URL
    public let port: Int
    public let certificates: TestCertificates
    public let token: String?
    private var process: ChildProcess?

    public var url: String { "https://127.0.0.1:\(port)/hooks/care" }
    public var receivedDirectory: String { directory.path + "/received" }

    static let script = """
    import http.server, os, ssl, sys
    port, cert, key, out, token = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, status, text):
            body = text.encode()
            self.send_response(status)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_POST(self):
            length = int(self.headers.get('Content-Length', '0'))
            body = self.rfile.read(length)
            with open(os.path.join(out, '..', 'authorization.log'), 'a') as f:
                f.write(self.headers.get('Authorization', '-') + '\\n')
            if token and self.headers.get('Authorization') != 'Bearer ' + token:
                return self.answer(401, 'wrong token')
            if self.path != '/hooks/care':
                return self.answer(404, 'no such hook')
            if b'poison' in body:
                return self.answer(500, 'cannot process this notice')
            if self.headers.get('Content-Type') != 'application/json':
                return self.answer(415, 'expected application/json')
            stored = [n for n in os.listdir(out) if n.endswith('.json') and not n.startswith('.')]
            for n in stored:
                with open(os.path.join(out, n), 'rb') as f:
                    if f.read() == body:
                        return self.answer(409, 'already have it')
            name = '%06d.json' % len([n for n in os.listdir(out) if n.endswith('.json')])
            with open(os.path.join(out, '.' + name), 'wb') as f:
                f.write(body)
            os.rename(os.path.join(out, '.' + name), os.path.join(out, name))
            self.answer(201, 'ok')
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
    """

    /// Prepares the certificates and port; ``start()`` listens.
    public init(directory: URL, token: String? = nil) throws {
        self.directory = directory
        self.token = token
        try FileManager.default.createDirectory(atPath: directory.path + "/received", withIntermediateDirectories: true)
        certificates = try TestCertificates(in: directory, prefix: "webhook-")
        port = try SSHDHarness.freePort(on: "127.0.0.1")
        try Self.script.write(toFile: directory.path + "/webhook.py", atomically: true, encoding: .utf8)
    }

    public func start() throws {
        let d = directory.path
        let child = try ChildProcess("/usr/bin/python3", [d + "/webhook.py", String(port), certificates.serverCertificate,
                                                          certificates.serverKey, receivedDirectory, token ?? ""],
                                     stderr: d + "/webhook.err")
        process = child
        do {
            try waitForListener(port: port, timeout: .seconds(10), process: child, name: "webhook receiver")
        } catch {
            stop()
            throw HarnessError("\(error); \((try? String(contentsOfFile: d + "/webhook.err", encoding: .utf8)) ?? "")")
        }
    }

    /// The bodies received so far, in order.
    public func received() -> [Data] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: receivedDirectory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return names.compactMap { FileManager.default.contents(atPath: receivedDirectory + "/" + $0) }
    }

    /// The `Authorization` header of each POST so far, in order (`-`: none).
    public func authorizations() -> [String] {
        let text = (try? String(contentsOfFile: directory.path + "/authorization.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    public func stop() {
        guard let process else { return }
        process.signal(SIGKILL)
        process.wait()
        self.process = nil
    }
}
