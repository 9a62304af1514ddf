import Foundation

/// A child process started with posix_spawn and reaped by its own pid. Foundation's Process on
/// Linux reaps children from one monitor thread that can block on a long-running child (our sshd),
/// which then hangs every later Process; tests use this instead.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// Starts `path` with `arguments`; standard streams go to the given files (or /dev/null).
    public init(_ path: String, _ arguments: [String], stdin: String? = nil, stdout: String? = nil, stderr: String? = nil,
                environment: [String: String]? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        // The child starts with no signal blocked and default dispositions, whatever this test
        // process (whose other tests may block SIGTERM for their own handling) has set.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, env)
        guard rc == 0 else { throw HarnessError("cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
    }

    /// Waits for the child to exit and returns its exit status (128+signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let result = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        status = result
        return result
    }

    /// Whether the child is still running (reaps it if it has exited).
    public var isRunning: Bool {
        if status != nil { return false }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == pid {
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            return false
        }
        return rc == 0
    }

    /// Sends `signal` (SIGTERM by default).
    public func signal(_ signal: Int32 = SIGTERM) {
        if status == nil { kill(pid, signal) }
    }
}

/// Runs a program to completion and returns its standard output; throws with its stderr on failure.
@discardableResult
public func runProgram(_ path: String, _ arguments: [String], input: String? = nil, environment: [String: String]? = nil) throws -> String {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("care-run-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    var stdinPath: String?
    if let input {
        stdinPath = scratch.appendingPathComponent("in").path
        try input.write(toFile: stdinPath!, atomically: true, encoding: .utf8)
    }
    let out = scratch.appendingPathComponent("out").path, err = scratch.appendingPathComponent("err").path
    let child = try ChildProcess(path, arguments, stdin: stdinPath, stdout: out, stderr: err, environment: environment)
    let status = child.wait()
    let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
    guard status == 0 else {
        let errors = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
        throw HarnessError("\(path) \(arguments.joined(separator: " ")) exited \(status): \(errors)")
    }
    return output
}

/// Runs a program under GNU time (Debian's `time` package) and returns its exit status and peak
/// resident memory in KiB. Measured by a forked `time`, not by our own spawn: posix_spawn shares
/// our address space until exec, and the kernel carries that high-water mark into the child's
/// `ru_maxrss`, so a wait4 of our own child reports the test runner's memory.
public func runMeasuringPeakMemory(_ path: String, _ arguments: [String], stdout: String, stderr: String) throws -> (status: Int32, peakKiB: Int) {
    let report = stderr + ".peak"
    let child = try ChildProcess("/usr/bin/time", ["-f", "%M", "-o", report, path] + arguments, stdout: stdout, stderr: stderr)
    let status = child.wait()
    let text = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
    // GNU time writes "Command exited with non-zero status N" before the figure.
    guard let peak = text.split(separator: "\n").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) else {
        throw HarnessError("GNU time gave no peak memory for \(path): \(text)")
    }
    return (status, peak)
}
