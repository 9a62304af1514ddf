import Bundle
import Foundation
import Junos
import XML

/// What reports know of one device at one time: its facts, and its configuration statements
/// (group-expanded, inactive ones dropped) when the collection has them. Built from a verified
/// bundle, or from facts alone (the agent's results, where configuration checks fall back to the
/// feature profile).
public struct DeviceSnapshot: Sendable {
    /// The inventory name.
    public var device: String
    public var hostname: String?
    public var collected: Date
    public var facts: DeviceFacts
    /// The effective configuration, nil when not collected or not kept.
    public var configuration: ConfigStatement?
    /// Where it came from (a bundle's path, `results/NAME.json`), for messages.
    public var source: String
    /// Why the configuration could not be read, when it was in the bundle but unreadable.
    public var configurationProblem: String?
    /// The RPCs the collection asked, nil when the source does not say (facts alone): a fact
    /// missing for an RPC never asked was left out by configuration, not lost.
    public var askedRPCs: Set<String>?
    /// Why each asked RPC that failed gave nothing (`get-alarm-information` → `timeout`).
    public var failedRPCs: [String: String] = [:]
    /// Set when these facts are older than the device's latest collection, which failed: why,
    /// and when it ran. Health says so rather than show old facts as today's.
    public var latestFailure: (reason: String, at: Date)?

    public init(device: String, hostname: String? = nil, collected: Date, facts: DeviceFacts,
                configuration: ConfigStatement? = nil, source: String, configurationProblem: String? = nil) {
        self.device = device
        self.hostname = hostname
        self.collected = collected
        self.facts = facts
        self.configuration = configuration
        self.source = source
        self.configurationProblem = configurationProblem
    }

    /// A snapshot of a verified bundle: its facts, and the statements of its stored configuration
    /// reply (`raw/get-configuration.xml`, XML or text) unless `readsConfiguration` is false
    /// (EOL and health reports do not need them).
    public init(bundle: VerifiedBundle, source: String, readsConfiguration: Bool = true) {
        let contents = bundle.contents
        var configuration: ConfigStatement?
        var problem: String?
        if readsConfiguration, let raw = contents.rawReplies.first(where: { $0.rpc == FactKind.configuration.rpc }) {
            do {
                let reply = try JunosReply(bytes: raw.bytes)
                if let section = reply.sections.first(where: { ConfigurationFacts.dataElements.contains($0.element.name) }) {
                    let tree = section.element.name == "configuration-text"
                        ? ConfigurationTree(text: section.element.text) : ConfigurationTree(element: section.element)
                    let expansion = tree.effectiveExpansion(appliedGroups: tree.appliedGroupNames)
                    // Read in part, it would clear advisories on features it did not reach:
                    // the configuration counts as unknown instead, saying why.
                    if expansion.complete { configuration = expansion.statement }
                    else { problem = "the configuration is not usable: \(ConfigurationTree.expansionLimitMessage)" }
                } else {
                    problem = "the configuration reply holds no configuration"
                }
            } catch {
                problem = "the configuration reply is not readable: \(error)"
            }
        }
        self.init(device: contents.device.name,
                  hostname: contents.facts.software?.hostname ?? contents.device.hostname,
                  collected: contents.started, facts: contents.facts, configuration: configuration,
                  source: source, configurationProblem: problem)
        (askedRPCs, failedRPCs) = Self.gaps(contents.outcomes)
        if let problem = bundle.factsDecodingError {
            // Every reply arrived and nothing of it is readable here: each fact says so.
            for kind in FactKind.allCases where failedRPCs[kind.rpc] == nil { failedRPCs[kind.rpc] = "facts.json not readable: \(problem)" }
        }
        if self.facts.software == nil, let model = contents.device.model {
            // Keep the manifest's model for platform matching when facts did not decode.
            self.facts.software = SoftwareInformation(hostname: contents.device.hostname, model: model)
        }
    }

    /// How ``failedRPCs`` writes a failure: its status first (`rpc-error: ...`, `timeout`), which
    /// health reads (an error reply to a cluster RPC is a standalone SRX, not a failure).
    public static func failure(_ status: String, _ message: String?) -> String {
        message.map { "\(status): \($0)" } ?? status
    }

    /// What a manifest's outcomes say was asked and what failed. The manifest lists the RPCs
    /// that were sent: after a session lost (a timeout, a broken transport), or none at all, the
    /// facts missing from it were not sent, not left out by configuration (asked is then unknown).
    public static func gaps(_ outcomes: [RPCOutcome]) -> (asked: Set<String>?, failed: [String: String]) {
        var failed: [String: String] = [:]
        for outcome in outcomes where outcome.status.isFailure {
            failed[outcome.rpc] = failure(outcome.status.rawValue, outcome.message)
        }
        let ended = outcomes.first { $0.status == .timeout || $0.status == .transportError }
        guard outcomes.isEmpty || ended != nil else { return (Set(outcomes.map(\.rpc)), failed) }
        let why = ended.map { "not sent: the session ended at \($0.rpc) (\($0.status.rawValue))" } ?? "not sent: nothing was collected (the bundle's log says why)"
        for kind in FactKind.allCases where !outcomes.contains(where: { $0.rpc == kind.rpc }) { failed[kind.rpc] = why }
        return (nil, failed)
    }

    /// The model (`mx960`): from the software facts, else the chassis description.
    public var model: String? {
        facts.software?.model ?? facts.inventory?.chassisDescription
    }

    /// Every running release: each routing engine / member / node, in reply order, without repeats.
    public var releases: [(name: String?, version: JunosVersion)] {
        var seen = Set<String>()
        var result: [(String?, JunosVersion)] = []
        for re in facts.software?.routingEngines ?? [] {
            if let v = re.version, seen.insert(v.raw).inserted { result.append((re.name, v)) }
        }
        if result.isEmpty, let v = facts.software?.version { result.append((nil, v)) }
        return result
    }
}

extension DeviceSnapshot {
    /// The latest snapshot per device (by collection time), with the one before it when there is one.
    public static func latestPerDevice(_ snapshots: [DeviceSnapshot]) -> [(latest: DeviceSnapshot, previous: DeviceSnapshot?)] {
        var byDevice: [String: [DeviceSnapshot]] = [:]
        for s in snapshots { byDevice[s.device, default: []].append(s) }
        return byDevice.keys.sorted().map { name in
            let sorted = byDevice[name]!.sorted { $0.collected > $1.collected }
            return (sorted[0], sorted.count > 1 ? sorted[1] : nil)
        }
    }
}
