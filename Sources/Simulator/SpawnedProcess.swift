import Foundation

/// A child process started with `posix_spawn` and reaped by its own pid.
///
/// Foundation's `Process` on Linux reaps every child from one monitor thread, which blocks on a
/// long-lived child (an sshd) and then hangs every later `Process`; the simulator starts sshd
/// instances that live for the whole run, so it spawns them itself.
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    public let executable: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` with `arguments`. Standard streams go to the given files (or /dev/null).
    /// With `ownProcessGroup` the child leads a new process group, so that a Ctrl-C typed at the
    /// terminal reaches only us and we stop the child in order.
    public init(_ executable: String, _ arguments: [String], stdin: String? = nil, stdout: String? = nil,
                stderr: String? = nil, environment: [String: String]? = nil,
                ownProcessGroup: Bool = false) throws(SimulatorError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with default signal handling and an empty mask, whatever we changed.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        if ownProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, env)
        guard rc == 0 else {
            throw .process("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        self.executable = executable
    }

    /// Waits for the child to exit and returns its status (128+signal when a signal ended it).
    @discardableResult
    public func wait() -> Int32 {
        if let status = lock.withLock({ exitStatus }) { return status }
        var raw: Int32 = 0
        var rc: pid_t
        repeat { rc = waitpid(pid, &raw, 0) } while rc < 0 && errno == EINTR
        return record(rc == pid ? raw : nil)
    }

    /// Waits at most `timeout`; nil if the child is still running then.
    public func wait(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !isRunning { return wait() }
            usleep(10_000)
        }
        return isRunning ? nil : wait()
    }

    /// Whether the child is still running (reaps it when it has exited).
    public var isRunning: Bool {
        if lock.withLock({ exitStatus }) != nil { return false }
        var raw: Int32 = 0
        let rc = waitpid(pid, &raw, WNOHANG)
        if rc == pid { record(raw); return false }
        if rc < 0 { record(nil); return false }
        return true
    }

    /// Sends `signal` to the child (or to its whole process group).
    public func signal(_ signal: Int32 = SIGTERM, group: Bool = false) {
        guard lock.withLock({ exitStatus }) == nil else { return }
        kill(group ? -pid : pid, signal)
    }

    /// SIGTERM, then SIGKILL if the child has not exited within `grace`.
    public func terminate(grace: Duration = .seconds(3), group: Bool = false) {
        signal(SIGTERM, group: group)
        if wait(timeout: grace) == nil {
            signal(SIGKILL, group: group)
            wait()
        }
    }

    @discardableResult
    private func record(_ raw: Int32?) -> Int32 {
        lock.withLock {
            if let exitStatus { return exitStatus }
            // A child reaped elsewhere (raw == nil) counts as exited with an unknown status.
            let status = raw.map { ($0 & 0x7f) == 0 ? ($0 >> 8) & 0xff : 128 + ($0 & 0x7f) } ?? -1
            exitStatus = status
            return status
        }
    }
}

/// Runs a program to completion; throws its standard error when it fails.
func runToCompletion(_ executable: String, _ arguments: [String], scratch: URL) throws(SimulatorError) {
    let errorPath = scratch.appendingPathComponent(".spawn-\(getpid())-\(UInt32.random(in: 0 ... .max)).err").path
    defer { unlink(errorPath) }
    let child = try SpawnedProcess(executable, arguments, stderr: errorPath)
    let status = child.wait()
    guard status == 0 else {
        let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        throw .process("\(executable) \(arguments.joined(separator: " ")) exited with status \(status): \(errors.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
}
