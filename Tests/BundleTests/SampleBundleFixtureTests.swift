import Foundation
import Junos
import XML
import Testing
import TestSupport
@testable import Bundle

/// Tests/Fixtures/bundles/ keeps a bundle of each format version, written once by the code of that
/// time. Readers must go on accepting them: these tests fail if a change breaks old bundles.
@Suite struct SampleBundleFixtureTests {
    static let version1 = "bundles/baku-JN1249018AFB-20251125-020000.tar.gz"

    @Test func version1SampleStillVerifiesWithItsPublishedKey() throws {
        let key = try AgentPublicKey(base64: String(decoding: try Fixtures.bytes("bundles/sample-agent.pub"), as: UTF8.self))
        let bundle = try BundleReader(trust: .keys([key])).read(bytes: try Fixtures.bytes(Self.version1))
        #expect(bundle.manifest.formatVersion == 1)
        #expect(bundle.manifest.device.chassisSerial == "JN1249018AFB")
        #expect(bundle.manifest.collection.trigger == .scheduled)
        #expect(UTCTime.string(bundle.manifest.collection.started) == "2025-11-25T02:00:00.250Z")
        #expect(bundle.manifest.outcomes.map(\.status) == [.ok, .ok, .ok, .ok, .ok, .rpcError, .ok, .timeout])
        // The stored replies are the captures they were made from, redacted as the collector stores them.
        for (rpc, fixture) in Sample.replies {
            #expect(bundle.member("raw/\(rpc).xml") == (try Sample.redacted(fixture)), "\(rpc)")
        }
        let configuration = String(decoding: try #require(bundle.member("raw/get-configuration.xml")), as: UTF8.self)
        #expect(configuration.contains(XMLEscaping.text(ConfigurationRedactor.defaultMarker)))
        #expect(!configuration.contains("$1$") && !configuration.contains("$9$"))
        // facts.json stays readable as JSON even when today's DeviceFacts has grown new fields.
        guard case .object = try JSONValue(json: bundle.factsJSON) else {
            Issue.record("facts.json is not a JSON object")
            return
        }
        #expect(bundle.contents.log.contains("get-system-core-dumps: timeout"))
    }

    @Test func version1SampleReparsesAndInspects() throws {
        let bundle = try BundleReader().read(bytes: try Fixtures.bytes(Self.version1))
        let reparse = BundleReparse(bundle)
        // The device refused it (rpc-error in the manifest): that is its outcome, not a parse
        // error, as the collector reads it today (the sample was written when it was one).
        #expect(reparse.facts.parseErrors["get-chassis-cluster-status"] == nil)
        #expect(reparse.facts.inventory?.chassisSerial == "JN1249018AFB")
        let text = BundleInspection.text(bundle)
        #expect(text.contains("chassis serial JN1249018AFB"))
        #expect(text.contains("2 of 8 RPCs failed"))
    }

    /// Regenerates the sample (only when asked: CARE_AGENT_WRITE_SAMPLE_BUNDLE=1). A new format
    /// version adds a new sample next to the old ones; old samples are never rewritten.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CARE_AGENT_WRITE_SAMPLE_BUNDLE"] == "1"))
    func writeVersion1Sample() throws {
        let dir = Fixtures.url("bundles")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var contents = try Sample.contents()
        contents.bundleId = UUID(uuidString: "6F1C2A4E-8B0D-4C57-9E3A-2D5B7C9E1F00")!
        try BundleWriter(directory: dir, key: Sample.key).write(contents, to: Fixtures.url(Self.version1))
        try (Sample.key.publicKey.base64 + "\n").write(to: dir.appendingPathComponent("sample-agent.pub"), atomically: true, encoding: .utf8)
    }
}
