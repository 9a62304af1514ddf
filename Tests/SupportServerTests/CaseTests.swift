import Bundle
import Foundation
import Testing
import TestSupport

/// The intake's cases: an event bundle uploaded by the agent's real uploader opens one case for
/// its customer, listed by `care-support cases` and the read API, closed by `care-support case
/// close`; a re-upload opens no second case, and scheduled bundles open none.
@Suite(.serialized) struct CaseTests {
    /// The intake dies after committing an event bundle's row, before recording its case: the
    /// agent's retry (the same bytes, answered from the stored row without verifying again)
    /// opens the case from the stored file's manifest.
    @Test func aRetryAfterACrashBeforeTheCaseOpensIt() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start(environment: ["CARE_SUPPORT_CRASH_AT": "committed"])
        var contents = try SampleBundles.contents(device: "r1", started: SampleBundles.started)
        contents.trigger = .event
        contents.event = TriggerEvent(kind: "core-dump", source: "health-poll", time: SampleBundles.started,
                                      evidence: "new core file /var/tmp/rpd.core.0.gz")
        let url = try BundleWriter(directory: URL(fileURLWithPath: intake.outbox), key: SampleBundles.agentKey).write(contents)
        guard case .failed? = await intake.pass().outcomes[url.lastPathComponent] else {
            Issue.record("the intake did not die after committing"); return
        }
        intake.stop()
        #expect(try intake.json("bundles", "--customer", "ACME").count == 1)
        #expect(try intake.json("cases", "--customer", "ACME").isEmpty)
        try intake.start()
        #expect(await intake.pass().outcomes[url.lastPathComponent] == .accepted(status: 200))
        let cases = try intake.json("cases", "--customer", "ACME")
        #expect(cases.count == 1 && cases.first?["event_kind"] as? String == "core-dump", "\(cases)")
        #expect(cases.first?["bundle_id"] as? String == contents.bundleId.uuidString)
    }

    @Test func anEventBundleOpensOneCaseListedByTheCommandAndTheAPI() async throws {
        let intake = try await IntakeHarness()
        defer { intake.close() }
        try intake.start()
        var contents = try SampleBundles.contents(device: "r1", started: SampleBundles.started)
        contents.trigger = .event
        let noticed = Date(timeIntervalSince1970: 1_764_035_990)
        contents.event = TriggerEvent(kind: "fru-offline", source: "syslog", time: noticed,
                                      evidence: "syslog CHASSISD_FRU_OFFLINE_NOTICE: Taking FPC 1 offline [fru-name=FPC 1] (from 192.0.2.10)")
        let url = try BundleWriter(directory: URL(fileURLWithPath: intake.outbox), key: SampleBundles.agentKey).write(contents)
        let bytes = try Data(contentsOf: url)
        try SampleBundles.write(device: "r2", minutesAfter: 1, into: intake.outbox)
        #expect(await intake.pass().outcomes.values.allSatisfy { if case .accepted = $0 { true } else { false } })

        let cases = try intake.json("cases", "--customer", "ACME")
        #expect(cases.count == 1, "\(cases)")
        let record = try #require(cases.first)
        #expect(record["device"] as? String == "r1" && record["event_kind"] as? String == "fru-offline")
        #expect(record["event_source"] as? String == "syslog" && record["bundle_id"] as? String == contents.bundleId.uuidString)
        #expect((record["evidence"] as? String)?.contains("Taking FPC 1 offline") == true && record["closed"] == nil)
        let caseID = try #require(record["id"] as? String)

        // The same bundle again (the agent retrying after a lost answer): still one case.
        try bytes.write(to: url)
        #expect(await intake.pass().outcomes[url.lastPathComponent] == .accepted(status: 200))
        #expect(try intake.json("cases", "--customer", "ACME").count == 1)
        #expect(try intake.cli("cases", "--customer", "ACME").contains("fru-offline  syslog"))

        // The read API: the open case, then none open once closed, all with ?state=all.
        let read = String(try intake.cli("token", "create", "ACME", "--read").split(separator: "\n").last!)
        let listed = try intake.get("/customers/ACME/cases", token: read)
        let listedCases = try JSONSerialization.jsonObject(with: listed.body) as? [[String: Any]] ?? []
        #expect(listed.status == 200 && listedCases.compactMap { $0["id"] as? String } == [caseID])
        #expect(try intake.get("/customers/ACME/cases?state=bogus", token: read).status == 400)
        try intake.cli("customer", "add", "BETA")
        #expect(throws: (any Error).self, "another customer's case") { try intake.cli("case", "close", caseID, "--customer", "BETA") }
        #expect(try intake.cli("case", "close", caseID).contains("closed case \(caseID)"))
        #expect(throws: (any Error).self, "closed already") { try intake.cli("case", "close", caseID) }
        let open = try intake.get("/customers/ACME/cases", token: read)
        let openCases = try JSONSerialization.jsonObject(with: open.body) as? [Any]
        #expect(open.status == 200 && openCases?.isEmpty == true)
        let all = try intake.get("/customers/ACME/cases?state=all", token: read)
        let allCases = try JSONSerialization.jsonObject(with: all.body) as? [[String: Any]] ?? []
        #expect(allCases.count == 1 && allCases.first?["closed"] is String)
    }
}
