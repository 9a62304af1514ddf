import Foundation

/// A real Nautobot (PyPI `nautobot`, Debian's Python) for the inventory tests: the migrated
/// database that `scripts/sot-server.sh prepare` keeps as a pg_dump in
/// /var/cache/care-agent-test/nautobot is restored into a database of the shared
/// ``PostgresHarness``, redis-server runs on a free loopback port, and `nautobot-server
/// runserver` serves the REST API on another. The dump has a superuser `admin` with the API
/// token ``token``. ``api(_:_:body:)`` drives the API with the curl command line.
public final class NautobotHarness: @unchecked Sendable {
    public static let cache = ProcessInfo.processInfo.environment["CARE_SOT_CACHE"] ?? "/var/cache/care-agent-test/nautobot"
    public static let version = "3.2.0"
    public static let token = "0123456789abcdef0123456789abcdef01234567"
    public static var dump: String { cache + "/migrated-\(version).dump" }
    public static var server: String { cache + "/venv/bin/nautobot-server" }

    public let directory: String
    public let port: Int
    public let database: String
    public let postgres: PostgresHarness
    let redis: ChildProcess
    public private(set) var process: ChildProcess?
    let environment: [String: String]

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The request lines runserver logged (`"GET /api/dcim/devices/?limit=5&offset=5 HTTP/1.1" 200 ...`).
    public var requestLog: [String] {
        ((try? String(contentsOfFile: directory + "/server.err", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("\"GET ") }.map(String.init)
    }

    public init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.server), FileManager.default.fileExists(atPath: Self.dump) else {
            throw HarnessError("no prepared Nautobot in \(Self.cache): run scripts/sot-server.sh prepare (scripts/install-deps.sh does)")
        }
        postgres = try PostgresHarness.shared.get()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("care-nautobot-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory + "/root", withIntermediateDirectories: true)
        let url = try postgres.createDatabase()
        database = String(url.split(separator: "/").last!)
        try runProgram(PostgresHarness.binaryDirectory() + "/pg_restore",
                       ["-h", "127.0.0.1", "-p", "\(postgres.port)", "-U", "postgres", "-d", database, "--no-owner", Self.dump])
        let redisPort = try SSHDHarness.freePort(on: "127.0.0.1")
        redis = try ChildProcess("/usr/bin/redis-server", ["--port", "\(redisPort)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                 stdout: directory + "/redis.log", stderr: directory + "/redis.err")
        try waitForListener(port: redisPort, timeout: .seconds(10), process: redis, name: "redis-server")
        try """
        from nautobot.core.settings import *  # noqa: F401,F403
        ALLOWED_HOSTS = ["*"]
        SECRET_KEY = "care-agent-tests-only-not-a-secret-0123456789abcdefghijklmnop"
        DATABASES = {"default": {"NAME": "\(database)", "USER": "postgres", "PASSWORD": "", "HOST": "127.0.0.1",
                                 "PORT": "\(postgres.port)", "ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 0}}
        _redis = "redis://127.0.0.1:\(redisPort)/0"
        CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": _redis,
                              "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"}}}
        CELERY_BROKER_URL = _redis
        CELERY_RESULT_BACKEND = _redis
        CONSTANCE_REDIS_CONNECTION = _redis
        MAX_PAGE_SIZE = 1000
        INSTALLATION_METRICS_ENABLED = False
        """.write(toFile: directory + "/nautobot_config.py", atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["NAUTOBOT_ROOT"] = directory + "/root"
        self.environment = environment
        port = try SSHDHarness.freePort(on: "127.0.0.1")
        do { try start() } catch { stop(); throw error }
    }

    /// Starts (or restarts) the server and waits until the API answers with the token.
    public func start() throws {
        let process = try ChildProcess(Self.server, ["--config=\(directory)/nautobot_config.py", "runserver", "--noreload", "--nothreading", "127.0.0.1:\(port)"],
                                       stdout: directory + "/server.out", stderr: directory + "/server.err", environment: environment)
        self.process = process
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw HarnessError("nautobot-server exited: \(((try? String(contentsOfFile: directory + "/server.err", encoding: .utf8)) ?? "").suffix(2000))")
            }
            if let (status, _) = try? api("GET", "/api/status/"), status == 200 { return }
            usleep(250_000)
        }
        throw HarnessError("Nautobot does not answer on \(url) after 180s")
    }

    /// Stops the web server only (the database and redis stay): "the source of truth is down".
    public func stopServer() {
        guard let process, process.isRunning else { return }
        process.signal(SIGTERM)
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { process.signal(SIGKILL) }
        process.wait()
    }

    public func stop() {
        stopServer()
        redis.signal(SIGTERM)
        redis.wait()
        try? postgres.psql("postgres", "DROP DATABASE IF EXISTS \(database) WITH (FORCE)")
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// One REST call with the admin token (or `token`); returns the status and the decoded JSON.
    @discardableResult
    /// `basicAuth` (admin:admin) instead of the token: Nautobot provisions tokens only so.
    public func api(_ method: String, _ path: String, body: Any? = nil, token: String = NautobotHarness.token, basicAuth: Bool = false) throws -> (Int, Any?) {
        var arguments = ["-s", "-S", "-X", method, "-H", "Accept: application/json", "-w", "\n%{http_code}", "--max-time", "60"]
        arguments += basicAuth ? ["-u", "admin:admin"] : ["-H", "Authorization: Token \(token)"]
        var input: String?
        if let body {
            arguments += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
            input = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        }
        let output = try runProgram("/usr/bin/curl", arguments + [url + path], input: input)
        guard let newline = output.lastIndex(of: "\n"), let status = Int(output[output.index(after: newline)...]) else {
            throw HarnessError("curl gave no status for \(method) \(path)")
        }
        let text = output[..<newline]
        let json = text.isEmpty ? nil : try? JSONSerialization.jsonObject(with: Data(text.utf8))
        return (status, json)
    }

    /// POSTs `body` to `path` and returns the new object's id; throws with Nautobot's answer otherwise.
    public func create(_ path: String, _ body: [String: Any]) throws -> String {
        let (status, json) = try api("POST", path, body: body)
        guard status == 201, let id = (json as? [String: Any])?["id"] as? String else {
            throw HarnessError("POST \(path) answered \(status): \(json.map { "\($0)" } ?? "")")
        }
        return id
    }
}
