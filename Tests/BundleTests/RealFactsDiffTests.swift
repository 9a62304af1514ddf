import Foundation
import Junos
import Testing
import TestSupport
@testable import Bundle

/// `bundle diff` on facts from the real Junos parsers: a pulled optic, a swapped power supply and
/// a cleared alarm, between two captures of the same MX480.
@Suite struct RealFactsDiffTests {
    func bundle(_ edit: (inout BundleContents) throws -> Void) throws -> VerifiedBundle {
        var contents = try Sample.contents()
        try edit(&contents)
        contents.facts = DeviceFacts.parsed(from: contents.rawReplies)
        return try BundleReader().read(bytes: try BundleWriter.encode(contents, key: Sample.key))
    }

    func replace(_ rpc: String, in contents: inout BundleContents, _ transform: (String) -> String) {
        let index = contents.rawReplies.firstIndex { $0.rpc == rpc }!
        contents.rawReplies[index].bytes = Array(transform(String(decoding: contents.rawReplies[index].bytes, as: UTF8.self)).utf8)
    }

    @Test func pulledOpticSwappedPowerSupplyAndClearedAlarm() throws {
        let old = try bundle { _ in }
        let new = try bundle { contents in
            replace("get-chassis-inventory", in: &contents) { xml in
                let start = xml.range(of: "<chassis-sub-sub-module>\n                        <name>Xcvr 5</name>")!
                let end = xml.range(of: "</chassis-sub-sub-module>", range: start.upperBound ..< xml.endIndex)!
                return xml.replacingCharacters(in: start.lowerBound ..< end.upperBound, with: "")
                    .replacingOccurrences(of: "QCS1441U1AP", with: "QCS2020X9ZZ")
            }
            let alarms = contents.rawReplies.firstIndex { $0.rpc == "get-alarm-information" }!
            contents.rawReplies[alarms].bytes = try Fixtures.bytes("get-alarm-information/jsnapy__no-active-alarms.xml")
        }
        let comparison = BundleComparison(old: old, new: new)
        let labelled = comparison.factChanges.map { "\($0.label): \($0.change.path)" }
        #expect(labelled.contains { $0.hasPrefix("FRU removed: ") && $0.contains("Xcvr 5") })
        #expect(labelled.contains { $0.hasPrefix("FRU serial changed: ") && $0.contains("PEM 0") })
        #expect(labelled.contains { $0.hasPrefix("alarm cleared: ") && $0.contains("Plane 0 not online") })
        // Nothing else changed: no position-shifted noise from the removed optic.
        #expect(comparison.factChanges.filter { $0.section == "inventory" }.count == 2, "\(labelled)")
        let text = comparison.text
        #expect(text.contains("Hardware inventory\n"))
        #expect(text.contains("Chassis alarms\n"))
        #expect(comparison.configurationDiff == "")
    }
}

extension RealFactsDiffTests {
    @Test func aJunosUpgradeSummarisesPackagesPerRoutingEngine() throws {
        let old = try bundle { _ in }
        let new = try bundle { contents in
            replace("get-software-information", in: &contents) { xml in
                xml.replacingOccurrences(of: "15.1F5.15", with: "17.3R3.10")
                    .replacingOccurrences(of: "20160324.055814_builder_junos_151_f5", with: "20190101.000000_builder_junos_173_r3")
            }
        }
        let text = BundleComparison(old: old, new: new).text
        #expect(text.contains("  ~ version changed: routingEngines[name=re0].version: 15.1F5.15-C1.12 → 17.3R3.10-C1.12\n"), "\(text)")
        #expect(text.contains("  ~ routingEngines[name=re0].packages: "), "\(text)")
        #expect(!text.contains("packages[name="), "\(text)")
    }
}

/// `bundle reparse` reads replies as the collector did: an error reply of an RPC that does not
/// apply (no virtual chassis on this MX) is not a parse error, so a fresh bundle re-parses identical.
@Suite struct ReparseOutcomeTests {
    @Test func aReplyTheDeviceSaidDoesNotApplyIsNotReparsedIntoAnError() throws {
        var contents = try Sample.contents()
        let refusal = """
            <rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><rpc-error><error-type>protocol</error-type>\
            <error-tag>operation-failed</error-tag><error-severity>error</error-severity><error-message>syntax error</error-message>\
            <error-info><bad-element>get-virtual-chassis-information</bad-element></error-info></rpc-error></rpc-reply>
            """
        contents.rawReplies.append(RawReply(rpc: "get-virtual-chassis-information", bytes: Array(refusal.utf8)))
        contents.outcomes.append(RPCOutcome(rpc: "get-virtual-chassis-information", status: .notApplicable,
                                            message: "not applicable: the device answered syntax error", durationSeconds: 0.05))
        // The facts as the collector made them: from the replies it read.
        let outcomes = Dictionary(contents.outcomes.map { ($0.rpc, $0.status) }, uniquingKeysWith: { first, _ in first })
        contents.facts = DeviceFacts.parsed(from: contents.rawReplies, outcomes: outcomes)
        #expect(contents.facts.parseErrors.isEmpty)
        let bundle = try BundleReader().read(bytes: try BundleWriter.encode(contents, key: Sample.key))
        let reparse = BundleReparse(bundle)
        #expect(reparse.changes.isEmpty, "\(reparse.changes)")
        #expect(reparse.facts.inventory?.chassisSerial == "JN1249018AFB")
    }
}
