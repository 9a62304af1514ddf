import Foundation

/// Waits (bounded) until `condition` holds, checking every `poll`; returns whether it did.
public func waitUntil(_ timeout: Duration, poll: Duration = .milliseconds(50), _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(UInt32(poll.components.seconds * 1_000_000 + poll.components.attoseconds / 1_000_000_000_000))
    }
    return condition()
}

/// A text file's contents; empty when it cannot be read (for failure messages and logs).
public func readText(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

/// `care-agent simulate fleet` as a user runs it: a child process until ``stop()``, its state
/// (fleet.json, inventory.csv, known_hosts, the client key) under `state`.
public final class FleetProcess: @unchecked Sendable {
    public let state: String
    public let log: String
    public let process: ChildProcess

    /// Starts `devices` devices from the repository's profiles with `arguments` added (faults,
    /// seed, latency) and waits until the fleet says it is ready; throws with its log when it
    /// exits or is not ready in time.
    public init(executable: String, devices: Int, in scratch: URL, arguments: [String] = [], readyWithin: Duration = .seconds(60)) throws {
        state = scratch.appendingPathComponent("fleet").path
        log = scratch.appendingPathComponent("fleet.out").path
        process = try ChildProcess(executable, ["simulate", "fleet", "--devices", String(devices),
                                                "--profiles", Fixtures.packageRoot.appendingPathComponent("profiles").path,
                                                "--state", state] + arguments, stdout: log, stderr: log)
        let state = state, process = process
        guard waitUntil(readyWithin, { FileManager.default.fileExists(atPath: state + "/ready") || !process.isRunning }), process.isRunning else {
            stop()
            throw HarnessError("simulate fleet did not come up: \(readText(log).suffix(2000))")
        }
    }

    /// fleet.json as JSON.
    public func plan() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: state + "/fleet.json"))) as? [String: Any] ?? [:]
    }

    /// The devices' login user.
    public func user() throws -> String { try plan()["user"] as? String ?? "" }

    /// The arguments of `collect now --standalone` that reach this fleet: its inventory, user,
    /// client key and known_hosts.
    public func collectArguments() throws -> [String] {
        ["--inventory", state + "/inventory.csv", "--user", try user(), "--key", state + "/client_ed25519",
         "--known-hosts", state + "/known_hosts"]
    }

    /// SIGTERM first (the fleet stops its sshd processes; a SIGKILL left them listening), then
    /// SIGKILL after 15 s.
    public func stop() {
        guard process.isRunning else { return }
        process.signal(SIGTERM)
        let process = process
        _ = waitUntil(.seconds(15)) { !process.isRunning }
        if process.isRunning { process.signal(SIGKILL) }
        process.wait()
    }
}
