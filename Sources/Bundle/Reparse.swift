import Foundation
import Junos

extension DeviceFacts {
    /// Facts rebuilt from stored replies with today's parsers: each reply whose RPC is a known
    /// ``FactKind`` is parsed and absorbed; failures land in `parseErrors`, as in a live collection.
    /// `outcomes` (a bundle's, by RPC): as the collector does, a reply the device answered with
    /// an error is read only for data beside the error, and one it said does not apply (no
    /// virtual chassis here) not at all; a re-parse found differences that were not there.
    public static func parsed(from replies: [RawReply], outcomes: [String: RPCOutcome.Status] = [:]) -> DeviceFacts {
        var facts = DeviceFacts()
        for reply in replies {
            guard let kind = FactKind(rpc: reply.rpc) else { continue }
            let status = outcomes[reply.rpc] ?? .ok
            guard status == .ok || status == .rpcError else { continue }
            do {
                let parsed = try JunosReply(bytes: reply.bytes)
                if status == .rpcError, parsed.payload.isEmpty && parsed.sections.isEmpty { continue }
                try? facts.absorb(parsed, as: kind)
            } catch where status != .ok {
                continue
            } catch {
                facts.parseErrors[reply.rpc] = JunosParseError.malformedXML(rpc: reply.rpc, error).description
            }
        }
        return facts
    }
}

/// `care-agent bundle reparse`: facts rebuilt from a bundle's raw replies with today's parsers,
/// and how they differ from the facts stored when the bundle was made.
public struct BundleReparse: Sendable {
    public var facts: DeviceFacts
    public var factsJSON: [UInt8]
    /// Stored facts → rebuilt facts.
    public var changes: [JSONChange]

    public init(_ bundle: VerifiedBundle) {
        let outcomes = Dictionary(bundle.manifest.outcomes.map { ($0.rpc, $0.status) }, uniquingKeysWith: { first, _ in first })
        facts = DeviceFacts.parsed(from: bundle.contents.rawReplies, outcomes: outcomes)
        factsJSON = (try? BundleWriter.factsJSON(facts)) ?? []
        let stored = (try? JSONValue(json: bundle.factsJSON)) ?? .object([])
        let rebuilt = (try? JSONValue(json: factsJSON)) ?? .object([])
        changes = JSONDiff.changes(from: stored, to: rebuilt)
    }

    /// The bundle's contents with the rebuilt facts, a new bundle id and a note of where they came from.
    /// Signing it is the writer's job, with the key of whoever runs the reparse.
    ///
    /// `derivedFrom` always names the agent's own capture: re-parsing a bundle that is itself
    /// derived keeps the first bundle id and signer, so no number of re-parses can launder a
    /// capture into one that looks signed by the re-parser alone.
    public func contents(replacingFactsOf bundle: VerifiedBundle, reason: String) -> BundleContents {
        var contents = bundle.contents
        contents.bundleId = UUID()
        contents.facts = facts
        let origin = bundle.manifest.derivedFrom
        contents.derivedFrom = BundleDerivation(bundleId: origin?.bundleId ?? bundle.manifest.bundleId, reason: reason,
                                                originalSigner: origin?.originalSigner ?? bundle.signer.fingerprint)
        contents.log += "\n[reparse] facts rebuilt from raw/ (\(changes.count) changes): \(reason)\n"
        return contents
    }
}
