import Foundation
import Testing
import TestSupport
@testable import Agent

/// Issue 10, "local hardening found in review": what another local user, or a member of the
/// care-agent group, can do to the agent's files and control socket.
@Suite(.serialized) struct LocalHardeningTests {
    /// The metrics textfile directory is often shared: a link planted at the file or at any
    /// temporary name is replaced, never written through.
    @Test func metricsFileNeverWritesThroughALink() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let textfile = dir.appendingPathComponent("textfile")
        try FileManager.default.createDirectory(at: textfile, withIntermediateDirectories: true)
        let victim = dir.appendingPathComponent("victim").path
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        let path = textfile.appendingPathComponent("care-agent.prom").path
        // The names the old writer used (pid-based) and the file itself point at the victim.
        for name in [".care-agent.prom.\(getpid()).tmp", "care-agent.prom"] {
            try FileManager.default.createSymbolicLink(atPath: textfile.appendingPathComponent(name).path, withDestinationPath: victim)
        }
        try AgentMetrics().write(to: path, outbox: FileOutbox(directory: dir.appendingPathComponent("outbox").path).totals)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        var info = stat()
        #expect(lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && info.st_mode & 0o777 == 0o644)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("care_agent_outbox_bundles 0"))
        // Only the file and the planted temporary-name link: no temporary file left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: textfile.path).sorted() == [".care-agent.prom.\(getpid()).tmp", "care-agent.prom"])
    }

    func connect(_ path: String) -> Int32? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 { return fd }
        close(fd)
        return nil
    }

    /// Connects, retrying while the listen backlog is full (the hostile clients fill it).
    func connectRetrying(_ path: String, for limit: Duration = .seconds(5)) -> Int32? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let fd = connect(path) { return fd }
            usleep(5_000)
        }
        return nil
    }

    func openDescriptors(_ pid: pid_t) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Hundreds of idle connections, slow senders, an oversized request and a client that never
    /// reads: the agent holds at most its cap of client descriptors and still answers `status`.
    @Test func controlSocketSurvivesIdleSlowAndGreedyClients() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let conf = dir.appendingPathComponent("agent.conf").path
        try """
        [agent]
        outbox = \(dir.path)/outbox
        state-directory = \(dir.path)/state
        runtime-directory = \(dir.path)/run
        [defaults]
        schedule = manual
        [device r1]
        host = 192.0.2.1
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let service = try ChildProcess(try careAgentExecutable(), ["run", "--config", conf],
                                       stderr: dir.appendingPathComponent("service.log").path)
        defer { if service.isRunning { service.signal(SIGKILL); service.wait() } }
        let socketPath = "\(dir.path)/run/control.sock"
        let started = ContinuousClock.now
        while ContinuousClock.now < started + .seconds(20), (connect(socketPath).map { close($0); return true } ?? false) == false {
            usleep(50_000)
        }
        let baseline = openDescriptors(service.pid)
        try #require(baseline > 0)

        var held: [Int32] = []
        defer { held.forEach { close($0) } }
        // Idle connections: never send anything.
        for _ in 0..<300 {
            if let fd = connectRetrying(socketPath, for: .milliseconds(200)) { held.append(fd) }
        }
        // Slow senders: half a request, then nothing.
        for _ in 0..<20 {
            if let fd = connectRetrying(socketPath, for: .milliseconds(200)) { _ = send(fd, "{\"command\":", 11, Int32(MSG_NOSIGNAL)); held.append(fd) }
        }
        // A client that asks and never reads its answer.
        if let fd = connectRetrying(socketPath) { _ = send(fd, "{\"command\":\"status\"}\n", 21, Int32(MSG_NOSIGNAL)); held.append(fd) }
        // Well over the agent's cap (the listen backlog refuses some connects while it catches up).
        #expect(held.count > ControlServer.Limits().maximumClients * 2, "the test should hold many connections at once")

        // An oversized request gets its refusal.
        let greedy = try #require(connectRetrying(socketPath))
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 100_000)
        var sent = 0
        let sendBy = ContinuousClock.now + .seconds(5)
        while sent < big.count && ContinuousClock.now < sendBy {
            let n = big[sent...].withUnsafeBytes { send(greedy, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n } else { usleep(10_000) }
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let readBy = ContinuousClock.now + .seconds(10)
        while !answer.contains(0x0A) && ContinuousClock.now < readBy {
            let n = read(greedy, &chunk, chunk.count)
            if n > 0 { answer += chunk[0..<n] } else if n == 0 { break } else { usleep(10_000) }
        }
        close(greedy)
        #expect(String(decoding: answer, as: UTF8.self).contains("request refused: longer than 65536 bytes without a newline"))

        // The agent holds its client cap at most, not one descriptor per connection.
        let during = openDescriptors(service.pid)
        #expect(during <= baseline + ControlServer.Limits().maximumClients + 4, "\(during) descriptors open, \(baseline) before the clients")

        // And `status` still answers, promptly.
        let out = dir.appendingPathComponent("status.out").path, err = dir.appendingPathComponent("status.err").path
        let asked = ContinuousClock.now
        let status = try ChildProcess(try careAgentExecutable(), ["status", "--socket", socketPath], stdout: out, stderr: err)
        #expect(status.wait() == 0, "\((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
        #expect(ContinuousClock.now - asked < .seconds(5))
        #expect(((try? String(contentsOfFile: out, encoding: .utf8)) ?? "").contains("devices: 1, being collected: none"))
        #expect(service.isRunning)

        // Clients that never complete a request are dropped after the request timeout.
        usleep(11_000_000)
        #expect(openDescriptors(service.pid) <= baseline + 2, "idle clients should have been dropped")
        service.signal(SIGTERM)
        #expect(service.wait() == 0)
    }

    /// An answer the client never reads is given up after the reply timeout (and the slot freed).
    @Test func anAnswerNobodyReadsTimesOut() async throws {
        var pair: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]); close(pair[1]) }
        _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
        let answer = [UInt8](repeating: UInt8(ascii: "a"), count: 8 << 20)  // more than any socket buffer
        let started = ContinuousClock.now
        let outcome = await ControlServer.send(answer, to: pair[0], within: .milliseconds(300))
        guard case let .timedOut(unsent) = outcome else { Issue.record("expected a timeout, got \(outcome)"); return }
        #expect(unsent > 0 && unsent < answer.count)
        #expect(ContinuousClock.now - started < .seconds(3))
        // A reader that reads gets all of it.
        var other: [Int32] = [0, 0]
        try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &other) == 0)
        defer { close(other[0]); close(other[1]) }
        _ = fcntl(other[0], F_SETFL, fcntl(other[0], F_GETFL) | O_NONBLOCK)
        let readEnd = other[1]
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while read(readEnd, &buffer, buffer.count) > 0 {}
        }
        reader.start()
        #expect(await ControlServer.send(answer, to: other[0], within: .seconds(20)) == .sent)
        shutdown(other[0], Int32(SHUT_WR))
    }

    /// `status` prints device names and errors from the agent escaped: a device name with ESC
    /// sequences and newlines reaches the terminal visibly, on its own line.
    @Test func statusEscapesControlCharacters() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("control.sock").path
        let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(listener, 4) == 0)
        defer { close(listener) }
        // The answer an agent gives when a device (or whoever edited the inventory) chose hostile names.
        let answer = #"{"ok":true,"status":{"configuration":"/etc/care-agent/agent.conf","reloadError":"line 3: bad host \"r9\u001b]0;pwned\u0007\"","devices":2,"inFlight":["r1\u001b[2J\u001b[Hcore\nfake: all good"],"groups":[],"results":[],"outboxBundles":0}}"# + "\n"
        let server = Thread {
            let client = accept(listener, nil, nil)
            var buffer = [UInt8](repeating: 0, count: 4096)
            _ = read(client, &buffer, buffer.count)
            _ = answer.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
        server.start()
        let out = dir.appendingPathComponent("out").path
        let status = try ChildProcess(try careAgentExecutable(), ["status", "--socket", path], stdout: out)
        #expect(status.wait() == 1, "the answer carries a failed reload")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(!text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 })
        #expect(text.contains(#"being collected: 1 (r1\e[2J\e[Hcore\nfake: all good)"#), "\(text)")
        #expect(text.contains(#"LAST RELOAD FAILED (running the previous configuration): line 3: bad host "r9\e]0;pwned\x07""#), "\(text)")
        #expect(!text.contains("\nfake"))
    }
}

/// `care-agent status` against an agent that accepts but never answers (its runtime stalled):
/// an error naming the wait, not a command that hangs.
@Suite struct ControlClientTimeoutTests {
    @Test func aSilentAgentGivesAnErrorNotAHang() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.path + "/control.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0 && listen(fd, 4) == 0)
        let started = ContinuousClock.now
        #expect {
            _ = try ControlClient.request(socket: path, ControlRequest(command: "status"), idleTimeout: .seconds(1))
        } throws: { error in
            "\(error)".contains("did not answer within 1.0 seconds")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
