import Foundation
import Junos
import TestSupport
@testable import Bundle

/// A realistic collection of a dual-RE MX480 built from real captures, with one RPC that timed out
/// and one the device refused, plus helpers shared by the bundle tests.
enum Sample {
    /// (rpc, fixture) pairs of the sample collection.
    static let replies: [(String, String)] = [
        ("get-software-information", "get-software-information/pyez__mx480-dual-re-15.1F5.xml"),
        ("get-chassis-inventory", "get-chassis-inventory/pyez__mx480-15.1F5-mpc-optics.xml"),
        ("get-route-engine-information", "get-route-engine-information/pyez__mx480-dual-re-15.1F5.xml"),
        ("get-environment-information", "get-environment-information/jexp__mx-anon.xml"),
        ("get-alarm-information", "get-alarm-information/jsnapy__one-minor-plane-offline.xml"),
        ("get-chassis-cluster-status", "get-chassis-cluster-status/pyez__not-enabled-xnm-error.xml"),
        ("get-configuration", "get-configuration/ksator__ex4200-15.1R2-secrets.xml"),
    ]

    static let started = Date(timeIntervalSince1970: 1_764_036_000.25)  // 2025-11-25 02:00:00.250 UTC

    static func contents(hostname: String? = "baku", serial: String? = "JN1249018AFB",
                         started: Date = started) throws -> BundleContents {
        let raw = try replies.map { RawReply(rpc: $0.0, bytes: try redacted($0.1)) }
        var outcomes = raw.map { RPCOutcome(rpc: $0.rpc, status: .ok, durationSeconds: 0.42) }
        outcomes[5] = RPCOutcome(rpc: "get-chassis-cluster-status", status: .rpcError,
                                 message: "chassis cluster is not enabled", durationSeconds: 0.08)
        outcomes.append(RPCOutcome(rpc: "get-system-core-dumps", status: .timeout,
                                   message: "no reply within 60 s", durationSeconds: 60.0))
        return BundleContents(
            agent: AgentIdentity(id: "agent-test-1", version: "0.1.0"),
            device: DeviceIdentity(name: "baku", address: "192.0.2.10:830", hostname: hostname,
                                   chassisSerial: serial, model: "mx480"),
            trigger: .scheduled, started: started, finished: started.addingTimeInterval(61.5),
            outcomes: outcomes, rawReplies: raw,
            // As the collector reads them: the refused RPC's error reply gives no facts.
            facts: DeviceFacts.parsed(from: raw, outcomes: Dictionary(outcomes.map { ($0.rpc, $0.status) }, uniquingKeysWith: { a, _ in a })),
            log: "02:00:00 connected to 192.0.2.10:830\n02:01:01 get-system-core-dumps: timeout\n")
    }

    /// A capture as the collector stores it: redacted (the configuration's hashes and `$9$` secrets).
    static func redacted(_ fixture: String) throws -> [UInt8] {
        try ConfigurationRedactor().redact(xml: try Fixtures.bytes(fixture))
    }

    /// A fixed key so tests are repeatable; a second one stands for "someone else's agent".
    static let key = try! AgentKey(rawRepresentation: [UInt8](repeating: 7, count: 32))
    static let otherKey = try! AgentKey(rawRepresentation: [UInt8](repeating: 9, count: 32))

    static func encoded() throws -> [UInt8] { try BundleWriter.encode(try contents(), key: key) }
}

/// A fresh directory under the system temp directory, removed by `remove()`.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("care-agent-bundle-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var path: String { url.path }

    func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
    }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Builds archives by hand, for bundles no honest writer would produce.
enum Forge {
    static func members(of bundle: [UInt8]) throws -> [ArchiveMember] {
        try USTar.members(of: try Gzip.decompress(bundle, limit: 1 << 30), limits: .init())
    }

    static func bundle(_ members: [ArchiveMember]) throws -> [UInt8] {
        try Gzip.compress(try USTar.archive(members, modified: 0))
    }

    /// Re-signs a manifest after editing it, as an attacker holding `key` would.
    static func signed(_ manifest: [UInt8], with key: AgentKey, replacing members: [ArchiveMember]) throws -> [ArchiveMember] {
        members.map { member in
            switch member.name {
            case "manifest.json": return ArchiveMember(name: member.name, bytes: manifest)
            case "manifest.sig": return ArchiveMember(name: member.name, bytes: try! key.sign(manifest))
            default: return member
            }
        }
    }
}
