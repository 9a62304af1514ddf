import Bundle
import Foundation
import Testing
import TestSupport

/// Issue 10's fleet test: hostile devices (every kind the simulator has) among healthy ones,
/// behind real sshd, collected by `care-agent collect now --standalone` as a user runs it. Every
/// healthy device gets its bundle, each hostile one fails alone naming the limit it hit, and the
/// agent's peak memory stays under the bound docs/security.md states.
@Suite(.serialized) struct HostileFleetTests {
    /// docs/security.md: the agent's peak RSS with the default limits and this fleet (debug build).
    static let peakMemoryBoundKiB = 512 * 1024

    @Test func hostileDevicesFailAloneAndHealthyDevicesAreCollected() throws {
        let executable = try careAgentExecutable()
        let scratch = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let hostile = ["entity-bomb", "entity-bomb-utf16", "deep-xml", "deep-text", "huge-reply", "endless-chunk", "doctype-hello"]
        let fleet = try FleetProcess(executable: executable, devices: 12, in: scratch,
                                     arguments: ["--faults", hostile.map { "\($0):1" }.joined(separator: ","), "--seed", "5"])
        defer { fleet.stop() }
        let devices = try #require(try fleet.plan()["devices"] as? [[String: Any]])
        var faultOf: [String: String] = [:]
        for device in devices { if let name = device["name"] as? String, let fault = device["fault"] as? String { faultOf[name] = fault } }
        #expect(Set(faultOf.values) == Set(hostile))

        let out = scratch.appendingPathComponent("bundles").path
        let stdout = scratch.appendingPathComponent("collect.out").path, stderr = scratch.appendingPathComponent("collect.err").path
        let (status, peakKiB) = try runMeasuringPeakMemory(executable, ["collect", "now", "--standalone"] + (try fleet.collectArguments()) + [
            "--out", out, "--state", scratch.appendingPathComponent("agent").path, "--timeout", "60", "--json",
        ], stdout: stdout, stderr: stderr)
        #expect(status == 1, "hostile devices fail, so the run does: \(readText(stderr))")
        let summaries = try #require(try JSONSerialization.jsonObject(with: Data(readText(stdout).utf8)) as? [[String: Any]], "\(readText(stdout)) \(readText(stderr))")
        #expect(summaries.count == 12)

        let bundles = try FileManager.default.contentsOfDirectory(atPath: out).filter(BundleFileName.isBundle)
        let bundled = Set(try bundles.map { try BundleReader().read(contentsOf: URL(fileURLWithPath: "\(out)/\($0)")).contents.device.name })
        let expectedMessage: [String: String] = [
            "entity-bomb": "DOCTYPE", "entity-bomb-utf16": "UTF-16", "deep-xml": "nested deeper than 200 elements",
            "deep-text": "nested deeper than 200 blocks", "huge-reply": "larger than the 32 MiB limit",
            "endless-chunk": "larger than the 32 MiB limit", "doctype-hello": "DOCTYPE",
        ]
        for summary in summaries {
            let name = summary["name"] as? String ?? "?"
            let everything = String(decoding: try JSONSerialization.data(withJSONObject: summary), as: UTF8.self)
            if let fault = faultOf[name] {
                #expect(summary["status"] as? String != "ok", "\(name) (\(fault)) collected as ok: \(everything)")
                #expect(everything.contains(expectedMessage[fault]!), "\(name) (\(fault)): \(everything)")
            } else {
                #expect(summary["status"] as? String == "ok", "healthy \(name): \(everything)")
                #expect(bundled.contains(name), "healthy \(name) has no bundle")
            }
        }
        #expect(peakKiB < Self.peakMemoryBoundKiB, "agent peak RSS \(peakKiB / 1024) MiB")
        print("hostile fleet: agent peak RSS \(peakKiB / 1024) MiB")
    }
}
