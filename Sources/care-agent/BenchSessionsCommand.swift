import ArgumentParser
import Foundation
import NETCONF
import NETCONFSSH
import SSH

/// `care-agent bench-sessions`: opens many short NETCONF sessions (hello, a few RPCs, close) from
/// one process at a bounded concurrency and prints one JSON line with throughput, CPU and memory.
/// Hidden from help: it is for scripts/bench-sessions, not for operators.
struct BenchSessionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-sessions",
        abstract: "Benchmark: run N NETCONF sessions at concurrency C and print a JSON summary.",
        shouldDisplay: false
    )

    @Option(help: "Device address or name.") var host: String
    @Option(help: "NETCONF port.") var port: Int = 830
    @Option(help: "User name.") var user: String
    @Option(help: "Private key file.") var key: String
    @Option(help: "OpenSSH known_hosts file.") var knownHosts: String
    @Option(help: "Number of sessions (1...10000).") var sessions: Int = 100
    @Option(help: "Sessions in flight at once (1...1000).") var concurrency: Int = 10
    @Option(name: .customLong("rpc"), help: "RPC sent in each session (repeatable; default: three Junos RPCs).")
    var rpcs: [String] = ["get-software-information", "get-chassis-inventory", "get-route-engine-information"]
    @Option(help: "Seconds for each RPC, and for connect plus hello.") var timeout: Double = 60
    @Option(help: "Stop starting sessions after this many seconds.") var maxSeconds: Double = 600
    @Option(help: "NETCONF base versions to offer: 1.1 (chunked framing) or 1.0.") var netconfBase: String = "1.1"

    func validate() throws {
        guard (1...10_000).contains(sessions) else { throw ValidationError("--sessions must be 1...10000") }
        guard (1...1_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...1000") }
        if netconfBase != "1.0" && netconfBase != "1.1" { throw ValidationError("--netconf-base must be 1.0 or 1.1") }
        if timeout <= 0 || maxSeconds <= 0 { throw ValidationError("timeouts must be positive") }
    }

    /// The summary line. Field names carry their units.
    struct Summary: Encodable {
        var sessions: Int
        var concurrency: Int
        var rpcsPerSession: Int
        var ok: Int
        var failed: Int
        var notStarted: Int
        var wallSeconds: Double
        var sessionsPerSecond: Double
        var cpuUserSeconds: Double
        var cpuSystemSeconds: Double
        var cpuMillisecondsPerSession: Double
        var maxRSSKilobytes: Int
        var latencyMilliseconds: [String: Double]
        var replyBytes: Int
        var firstError: String?
    }

    enum Outcome: Sendable {
        case ok(duration: Duration, bytes: Int)
        case failed(String)
    }

    func run() async throws {
        let requests: [RPCRequest]
        do { requests = try rpcs.map { try RPCRequest.parse($0) } } catch { throw ValidationError("\(error)") }
        var capabilities = [NETCONFNamespace.base10]
        if netconfBase == "1.1" { capabilities.append(NETCONFNamespace.base11) }
        let endpoint = DeviceEndpoint(
            host: host, port: port, credentials: SSHCredentials(user: user, privateKeyPath: key),
            hostKeyVerifier: HostKeyVerifier(knownHostsPath: knownHosts, policy: .strict),
            sshTimeouts: SSHTimeouts(connect: .seconds(timeout), authentication: .seconds(timeout)),
            netconfTimeouts: NETCONFTimeouts(hello: .seconds(timeout), rpc: .seconds(timeout)),
            capabilities: capabilities)
        let logger = Console.logger("care-agent.bench")
        let total = sessions, width = min(concurrency, sessions)
        let stopStarting = ContinuousClock.now + .seconds(maxSeconds)

        @Sendable func oneSession() async -> Outcome {
            let started = ContinuousClock.now
            do {
                let client = try await NETCONFClient.connect(to: endpoint, logger: logger)
                var bytes = 0
                for request in requests {
                    let reply = try await client.rpc(request)
                    if let error = reply.errors.first {
                        await client.close()
                        return .failed("\(host):\(port): \(request.name): \(error)")
                    }
                    bytes += reply.raw.count
                }
                await client.close()
                return .ok(duration: ContinuousClock.now - started, bytes: bytes)
            } catch {
                return .failed("\(error)")
            }
        }

        let wallStart = ContinuousClock.now
        // At most `width` sessions in flight: start one more each time one finishes.
        let outcomes = await withTaskGroup(of: Outcome.self) { group in
            var started = 0
            for _ in 0..<width {
                group.addTask { await oneSession() }
                started += 1
            }
            var all: [Outcome] = []
            for await outcome in group {
                all.append(outcome)
                if started < total && ContinuousClock.now < stopStarting {
                    group.addTask { await oneSession() }
                    started += 1
                }
            }
            return all
        }
        let wall = (ContinuousClock.now - wallStart).secondsValue

        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let maxRSSKilobytes = usage.ru_maxrss
        #else
        getrusage(RUSAGE_SELF, &usage)
        let maxRSSKilobytes = usage.ru_maxrss / 1024  // bytes on Darwin
        #endif
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        var durations: [Double] = []
        var bytes = 0
        var firstError: String?
        for outcome in outcomes {
            switch outcome {
            case let .ok(duration, n):
                durations.append(duration.secondsValue * 1000)
                bytes += n
            case let .failed(message):
                if firstError == nil { firstError = message }
            }
        }
        durations.sort()
        func percentile(_ p: Double) -> Double {
            guard !durations.isEmpty else { return 0 }
            let index = min(durations.count - 1, Int((p / 100 * Double(durations.count)).rounded(.up)) - 1)
            return (durations[max(0, index)] * 10).rounded() / 10
        }
        let ok = durations.count
        let summary = Summary(
            sessions: total, concurrency: width, rpcsPerSession: requests.count,
            ok: ok, failed: outcomes.count - ok, notStarted: total - outcomes.count,
            wallSeconds: (wall * 1000).rounded() / 1000,
            sessionsPerSecond: ((Double(ok) / wall) * 10).rounded() / 10,
            cpuUserSeconds: (user * 1000).rounded() / 1000, cpuSystemSeconds: (system * 1000).rounded() / 1000,
            cpuMillisecondsPerSession: outcomes.isEmpty ? 0 : (((user + system) * 1000 / Double(outcomes.count)) * 100).rounded() / 100,
            maxRSSKilobytes: maxRSSKilobytes,
            latencyMilliseconds: ["p50": percentile(50), "p95": percentile(95), "max": durations.last.map { ($0 * 10).rounded() / 10 } ?? 0],
            replyBytes: bytes, firstError: firstError)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        Console.out(String(decoding: try encoder.encode(summary), as: UTF8.self))
        if ok < total { throw ExitCode(1) }
    }
}

extension Duration {
    fileprivate var secondsValue: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
