import Foundation

/// A throwaway PostgreSQL server for tests (Debian's `postgresql` package): `initdb` into a
/// temporary directory and `postgres` on a free loopback port, trust authentication, owned by
/// the `postgres` account when the tests run as root (the server refuses to run as root).
/// ``createDatabase()`` gives each test its own database. Stopped by ``stop()``, and at the
/// latest when the test process exits (the shared instance registers that).
public final class PostgresHarness: @unchecked Sendable {
    public let directory: String
    public let port: Int
    public let process: ChildProcess
    let runAs: String?
    let binaries: String
    private let lock = NSLock()
    private var databases = 0

    /// One server for the whole test process, started on first use.
    public static let shared: Result<PostgresHarness, HarnessError> = {
        do {
            let harness = try PostgresHarness()
            atexit { PostgresHarness.stopShared() }
            return .success(harness)
        } catch let error as HarnessError {
            return .failure(error)
        } catch {
            return .failure(HarnessError("\(error)"))
        }
    }()

    private static func stopShared() {
        if case let .success(harness) = shared { harness.stop() }
    }

    /// The highest installed major version's programs.
    static func binaryDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        guard let version = versions.last, FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") else {
            throw HarnessError("PostgreSQL is not installed (no \(root)/N/bin/initdb): apt-get install postgresql")
        }
        return "\(root)/\(version)/bin"
    }

    public init() throws {
        binaries = try Self.binaryDirectory()
        runAs = getuid() == 0 ? "postgres" : nil
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("care-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if let runAs {
            try runProgram("/bin/chown", [runAs, directory])
        }
        let data = directory + "/data"
        try runProgram(Self.command(runAs, binaries + "/initdb"), Self.arguments(runAs, binaries + "/initdb",
                       ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]))
        port = try SSHDHarness.freePort(on: "127.0.0.1")
        // fsync off: the tests check the store's logic, not the disk's.
        let options = ["-D", data, "-p", "\(port)", "-h", "127.0.0.1", "-k", directory, "-c", "fsync=off",
                       "-c", "max_connections=200", "-c", "synchronous_commit=off"]
        process = try ChildProcess(Self.command(runAs, binaries + "/postgres"), Self.arguments(runAs, binaries + "/postgres", options),
                                   stdout: directory + "/postgres.out", stderr: directory + "/postgres.err")
        do {
            try waitForListener(port: port, timeout: .seconds(30), process: process, name: "postgres")
            // Accepting TCP is not yet accepting logins: wait until a query works.
            let deadline = ContinuousClock.now + .seconds(30)
            while true {
                if (try? psql("postgres", "SELECT 1")) != nil { break }
                guard ContinuousClock.now < deadline else { throw HarnessError("postgres does not answer queries on port \(port)") }
                usleep(100_000)
            }
        } catch {
            stop()
            let log = (try? String(contentsOfFile: directory + "/postgres.err", encoding: .utf8)) ?? ""
            throw HarnessError("\(error); \(log.suffix(2000))")
        }
    }

    /// setpriv execs the program in its own process (no fork, unlike runuser), so that the
    /// child's pid is the server's and signals reach it.
    static func command(_ runAs: String?, _ program: String) -> String { runAs == nil ? program : "/usr/bin/setpriv" }
    static func arguments(_ runAs: String?, _ program: String, _ arguments: [String]) -> [String] {
        runAs.map { ["--reuid=\($0)", "--regid=\($0)", "--init-groups", "--", program] + arguments } ?? arguments
    }

    /// Runs SQL with psql as the superuser; returns its output.
    @discardableResult
    public func psql(_ database: String, _ sql: String) throws -> String {
        try runProgram(binaries + "/psql", ["-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres",
                                            "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql])
    }

    /// A new empty database; returns its URL.
    public func createDatabase() throws -> String {
        lock.lock()
        databases += 1
        let name = "care_test_\(getpid())_\(databases)"
        lock.unlock()
        try psql("postgres", "CREATE DATABASE \(name)")
        return "postgres://postgres@127.0.0.1:\(port)/\(name)"
    }

    /// Fast shutdown (SIGINT), then removes the directory.
    public func stop() {
        if process.isRunning {
            process.signal(SIGINT)
            let deadline = ContinuousClock.now + .seconds(10)
            while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
            if process.isRunning { process.signal(SIGKILL) }
            process.wait()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
