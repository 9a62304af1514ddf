import Foundation
import IOLoop
import Logging
import NETCONF
import Testing
import TestSupport

extension IOLoopError: TimeoutSignalling {
    public var isTimeout: Bool { self == .timedOut }
}

/// NETCONF's transport over a pair of pipes to a child process.
final class PipeTransport: NETCONFTransport, @unchecked Sendable {
    let input: FileDescriptorStream
    let output: FileDescriptorStream
    let pid: pid_t
    var peer: String { "simulator[\(pid)]" }

    /// Starts `path arguments` with its stdin/stdout connected to us.
    init(_ path: String, _ arguments: [String]) throws {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw HarnessError("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        for fd in toChild + fromChild { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else { throw HarnessError("spawn failed") }
        Glibc.close(toChild[0]); Glibc.close(fromChild[1])
        self.pid = pid
        output = FileDescriptorStream(fd: toChild[1])
        input = FileDescriptorStream(fd: fromChild[0])
    }

    func send(_ bytes: [UInt8], deadline: ContinuousClock.Instant?) async throws {
        try await output.write(bytes, deadline: deadline)
    }

    func receive(deadline: ContinuousClock.Instant?) async throws -> [UInt8]? {
        try await input.read(deadline: deadline)
    }

    func close() async {
        await output.close()
        await input.close()
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

/// The client driven over plain pipes: the NETCONF layer needs no SSH.
@Suite struct PipeTransportTests {
    func profile() throws -> (URL, String) {
        let dir = try TestProfiles.temporaryDirectory()
        return (dir, try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir))
    }

    @Test(arguments: ["1.0", "1.1"])
    func clientTalksToSimulatorOverPipes(base: String) async throws {
        let (dir, profile) = try profile()
        defer { try? FileManager.default.removeItem(at: dir) }
        let transport = try PipeTransport(try careAgentExecutable(), ["simulate", "netconf", "--profile", profile, "--base", base])
        let client = NETCONFClient(transport: transport, logger: Logger.test)
        try await client.start()
        #expect(await client.framing == (base == "1.1" ? .chunked : .endOfMessage))
        let reply = try await client.rpc(.junos("get-route-engine-information"))
        let expected = try XMLDocumentOfFixture(TestProfiles.mx480["get-route-engine-information"]!)
        #expect(reply.document.root.descendants("serial-number").map(\.value) == expected)
        let error = try await client.rpc(.command("show bogus"))
        #expect(error.errors.first?.message == "syntax error, expecting <command>")
        await client.close()
    }

    @Test func timeoutTearsTheSessionDown() async throws {
        let (dir, profile) = try profile()
        defer { try? FileManager.default.removeItem(at: dir) }
        let transport = try PipeTransport(try careAgentExecutable(), ["simulate", "netconf", "--profile", profile, "--fault", "hang"])
        let client = NETCONFClient(transport: transport, timeouts: NETCONFTimeouts(hello: .seconds(5), rpc: .milliseconds(500)), logger: Logger.test)
        try await client.start()
        await #expect(throws: NETCONFError.timeout(peer: transport.peer, rpc: "get-chassis-inventory", seconds: 0.5)) {
            _ = try await client.rpc(.junos("get-chassis-inventory"))
        }
        await #expect(throws: NETCONFError.timeout(peer: transport.peer, rpc: "get-chassis-inventory", seconds: 0.5)) {
            _ = try await client.rpc(.junos("get-software-information"))
        }
    }
}

extension PipeTransportTests {
    @Test func idleTimeoutFiresBeforeTheRPCTimeout() async throws {
        let (dir, profile) = try profile()
        defer { try? FileManager.default.removeItem(at: dir) }
        let transport = try PipeTransport(try careAgentExecutable(), ["simulate", "netconf", "--profile", profile, "--fault", "hang"])
        let client = NETCONFClient(transport: transport, timeouts: NETCONFTimeouts(hello: .seconds(5), rpc: .seconds(30), idle: .milliseconds(300)),
                                   logger: Logger.test)
        try await client.start()
        let started = ContinuousClock.now
        await #expect {
            _ = try await client.rpc(.junos("get-chassis-inventory"))
        } throws: { error in
            "\(error)".hasPrefix("\(transport.peer): the device sent nothing for 0.3 s while get-chassis-inventory was outstanding (after ")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}

/// Serial numbers in a fixture, read with a plain text scan (independent of the XML wrapper).
func XMLDocumentOfFixture(_ path: String) throws -> [String?] {
    let text = String(decoding: try Fixtures.bytes(path), as: UTF8.self)
    var result: [String?] = []
    var rest = Substring(text)
    while let open = rest.range(of: "<serial-number>"), let close = rest.range(of: "</serial-number>", range: open.upperBound..<rest.endIndex) {
        result.append(String(rest[open.upperBound..<close.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines))
        rest = rest[close.upperBound...]
    }
    return result
}
